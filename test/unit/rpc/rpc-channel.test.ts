import t from 'tap';
import { Dealer, Router } from 'zeromq';
import { RpcChannel } from '../../../src/client/rpc-channel.js';
import { SendQueue } from '../../../src/rpc/send-queue.js';

let n = 0;

/** A Router that answers requests whose method is "answer" (after `delayMs`) and ignores the rest. */
async function server(delayMs = 0) {
  const endpoint = `inproc://rpc-channel-test-${process.pid}-${n++}`;
  const router = new Router({ linger: 0 });
  await router.bind(endpoint);
  const replies = new SendQueue(router);
  void (async () => {
    try {
      for await (const [routing, frame] of router) {
        const req = JSON.parse(String(frame)) as { id: number; method: string };
        if (req.method !== 'answer') continue;
        setTimeout(() => replies.push([routing as Buffer, JSON.stringify({ jsonrpc: '2.0', id: req.id, result: `r${req.id}` })]), delayMs);
      }
    } catch {
      /* closed */
    }
  })();
  return { endpoint, close: () => router.close() };
}

function channel(endpoint: string, timeoutMs: number): RpcChannel {
  const dealer = new Dealer({ linger: 0 });
  dealer.connect(endpoint);
  return new RpcChannel(dealer, timeoutMs);
}

const call = (c: RpcChannel, method: string): Promise<unknown> => {
  const id = c.newId();
  return c.request(id, [JSON.stringify({ jsonrpc: '2.0', id, method })], method);
};

t.test('replies resolve their own request; unanswered ones fail with TIMEOUT at their own deadline', async (t) => {
  const srv = await server();
  const c = channel(srv.endpoint, 300);
  const started = performance.now();
  const settled = (p: Promise<unknown>) => p.then((v) => ({ v, ms: performance.now() - started }), (e: { code: string; message: string }) => ({ code: e.code, message: e.message, ms: performance.now() - started }));
  const first = settled(call(c, 'silent'));
  t.same(await call(c, 'answer'), 'r2');
  await new Promise((r) => setTimeout(r, 150));
  const second = settled(call(c, 'silent'));
  const third = settled(call(c, 'answer'));
  const a = (await first) as { code: string; message: string; ms: number };
  t.equal(a.code, 'TIMEOUT');
  t.match(a.message, /^silent: no reply within 300 ms/);
  t.ok(a.ms >= 295 && a.ms < 1_000, `first timed out at ${a.ms.toFixed(0)} ms`);
  t.equal(((await third) as { v: unknown }).v, 'r4', 'a request sent after a timed-out one still gets its reply');
  const b = (await second) as { code: string; ms: number };
  t.equal(b.code, 'TIMEOUT');
  t.ok(b.ms >= 445 && b.ms < 1_200, `second timed out at ${b.ms.toFixed(0)} ms, 300 ms after it was sent`);
  await c.close();
  srv.close();
});

t.test('a reply after the deadline is dropped; close() rejects what is pending with UNAVAILABLE', async (t) => {
  const srv = await server(200);
  const c = channel(srv.endpoint, 100);
  await t.rejects(call(c, 'answer'), { code: 'TIMEOUT' });
  await new Promise((r) => setTimeout(r, 200)); // the late reply arrives and is ignored
  const pending = call(c, 'silent');
  await c.close();
  await t.rejects(pending, { code: 'UNAVAILABLE' });
  srv.close();
});

t.test('many requests in flight: each gets its own reply', async (t) => {
  const srv = await server();
  const c = channel(srv.endpoint, 5_000);
  const results = await Promise.all(Array.from({ length: 500 }, () => call(c, 'answer')));
  t.same(results, Array.from({ length: 500 }, (_, i) => `r${i + 1}`));
  await c.close();
  srv.close();
});
