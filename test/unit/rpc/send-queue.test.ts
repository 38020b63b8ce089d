import t from 'tap';
import { SendQueue } from '../../../src/rpc/send-queue.js';

/** A socket that, like zeromq 6, throws EBUSY when a second send starts before the first settled. */
function fakeSocket(opts: { failOn?: string } = {}) {
  const sent: string[] = [];
  let busy = false;
  const socket = {
    closed: false,
    async send(msg: Array<Buffer | string>): Promise<void> {
      if (busy) throw Object.assign(new Error('Socket is busy writing'), { code: 'EBUSY' });
      busy = true;
      await Promise.resolve();
      busy = false;
      const text = msg.map(String).join('|');
      if (text === opts.failOn) throw new Error('send failed');
      sent.push(text);
    },
  };
  return { socket, sent };
}

for (const coalesce of [false, true]) {
  t.test(`coalesce ${coalesce}: every message is sent, in order, one send at a time; idle() waits for them`, async (t) => {
    const { socket, sent } = fakeSocket({ failOn: 'm3' });
    const errors: unknown[] = [];
    const q = new SendQueue(socket, (e) => errors.push(e), coalesce);
    for (let i = 0; i < 5; i++) q.push([`m${i}`]);
    if (coalesce) t.same(sent, [], 'nothing goes out before the end of the turn');
    await q.idle();
    t.same(sent, ['m0', 'm1', 'm2', 'm4'], 'a failed send is reported and the rest still go');
    t.equal(errors.length, 1);
    // Pushed while a drain is running: picked up by the same drain.
    q.push(['a']);
    q.push(['b']);
    await q.idle();
    q.push(['c']);
    await q.idle();
    t.same(sent.slice(4), ['a', 'b', 'c']);
    await q.idle(); // idle with nothing queued resolves at once
  });
}

t.test('coalesce: messages pushed in one turn leave together, after the turn', async (t) => {
  const { socket, sent } = fakeSocket();
  const q = new SendQueue(socket, undefined, true);
  q.push(['x']);
  await Promise.resolve();
  q.push(['y']);
  t.same(sent, []);
  await new Promise((r) => setImmediate(r));
  await q.idle();
  t.same(sent, ['x', 'y']);
});

t.test('a closed socket: nothing more is sent and idle() does not hang', async (t) => {
  const { socket, sent } = fakeSocket();
  const q = new SendQueue(socket, undefined, true);
  q.push(['x']);
  socket.closed = true;
  q.push(['y']);
  await q.idle();
  t.same(sent, []);
});
