import t from 'tap';
import { EventSequencer } from '../../../src/client/event-sequencer.js';
import type { CustodyEvent } from '../../../src/service/events.js';

const ev = (seq: number): CustodyEvent => ({ seq, type: 'test', time: '2026-01-01T00:00:00.000Z', data: {} });

/** A store holding events with the given seqs; `visible` limits what a read sees (a write not yet durable). */
function store(seqs: number[]): { fetch: (after: number, limit: number) => Promise<CustodyEvent[]>; reads: number; visibleUpTo: number } {
  const s = {
    reads: 0,
    visibleUpTo: Infinity,
    fetch: async (after: number, limit: number): Promise<CustodyEvent[]> => {
      s.reads++;
      return seqs.filter((q) => q > after && q <= s.visibleUpTo).slice(0, limit).map(ev);
    },
  };
  return s;
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30));

t.test('live events in order are delivered once each; repeats are dropped', async (t) => {
  const got: number[] = [];
  const st = store([]);
  const q = new EventSequencer(4, st.fetch, (e) => got.push(e.seq), () => 1);
  await q.catchUp();
  for (const s of [5, 6, 6, 5, 7]) q.live(ev(s));
  t.same(got, [5, 6, 7]);
});

t.test('a gap in the live feed is filled from the store, then the held events follow in order', async (t) => {
  const got: number[] = [];
  const st = store([1, 2, 3, 4, 5, 6]);
  const q = new EventSequencer(0, st.fetch, (e) => got.push(e.seq), () => 1);
  await q.catchUp();
  t.same(got, [1, 2, 3, 4, 5, 6]);
  const st2 = store([7, 8, 9, 10]);
  const q2 = new EventSequencer(6, st2.fetch, (e) => got.push(e.seq), () => 1);
  q2.live(ev(9)); // 7 and 8 were missed by the feed
  q2.live(ev(10));
  await settle();
  t.same(got.slice(6), [7, 8, 9, 10]);
});

t.test('events held behind a gap the first read could not fill are delivered without waiting for another live event', async (t) => {
  const got: number[] = [];
  const st = store([1, 2, 3]);
  st.visibleUpTo = 1; // the read happens before 2 is durable; the feed has already dropped 2 and brought 3
  const q = new EventSequencer(0, st.fetch, (e) => got.push(e.seq), () => 5);
  const replay = q.catchUp();
  q.live(ev(3));
  await new Promise((r) => setTimeout(r, 1));
  st.visibleUpTo = Infinity;
  await replay;
  t.same(got, [1, 2, 3], 'all three, in order, with no further live event');
  t.ok(st.reads >= 2, 'the store was read again');
});

t.test('a sequence number missing below a stored one (never stored) is stepped over, not waited for', async (t) => {
  const got: number[] = [];
  const st = store([1, 2, 4, 5]);
  const q = new EventSequencer(0, st.fetch, (e) => got.push(e.seq), () => 1);
  q.live(ev(5)); // a gap: starts a replay
  await settle();
  t.same(got, [1, 2, 4, 5]);
  q.live(ev(6));
  t.same(got, [1, 2, 4, 5, 6], 'and the live feed goes on');
});

t.test('a failed read is retried until it answers', async (t) => {
  const got: number[] = [];
  let failures = 2;
  const q = new EventSequencer(
    0,
    async () => {
      if (failures-- > 0) throw new Error('timeout');
      return [ev(1), ev(2)];
    },
    (e) => got.push(e.seq),
    () => 1,
  );
  await q.catchUp();
  t.same(got, [1, 2]);
});
