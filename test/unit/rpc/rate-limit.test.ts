import t from 'tap';
import { RateLimiter, Throttle, THROTTLE_OVERFLOW_KEY } from '../../../src/rpc/rate-limit.js';

t.test('the token bucket allows a burst, then the sustained rate, per client', async (t) => {
  const clock = { now: 0 };
  const rl = new RateLimiter({ ratePerSecond: 10, burst: 5 }, () => clock.now);
  const takes = (client: string, n: number): number => Array.from({ length: n }, () => rl.take(client)).filter(Boolean).length;
  t.equal(takes('a', 8), 5, 'burst of 5');
  t.equal(takes('b', 5), 5, 'b has its own bucket');
  clock.now += 100;
  t.equal(takes('a', 3), 1, '10/s refills one token per 100 ms');
  clock.now += 10_000;
  t.equal(takes('a', 10), 5, 'never more than the burst after idling');
  clock.now -= 5_000;
  t.equal(takes('a', 1), 0, 'a clock stepping back refills nothing');
  t.throws(() => new RateLimiter({ ratePerSecond: 0, burst: 1 }), { code: 'INVALID_ARGUMENT' });
});

t.test('the audit throttle lets N per key per minute through and counts the rest', async (t) => {
  const th = new Throttle({ max: 3 });
  const allowed = (key: string, now: number, n: number): number => Array.from({ length: n }, () => th.allow(key, now)).filter(Boolean).length;
  t.equal(allowed('10.0.0.1', 0, 100), 3);
  t.equal(th.takeSuppressed('10.0.0.1'), 97);
  t.equal(th.takeSuppressed('10.0.0.1'), 0, 'taking resets the count');
  t.equal(allowed('10.0.0.2', 1000, 2), 2, 'keys are independent');
  t.equal(allowed('10.0.0.1', 59_999, 5), 0, 'still the same minute');
  t.equal(allowed('10.0.0.1', 60_000, 5), 3, 'a new minute');
  t.equal(th.takeSuppressed('10.0.0.1'), 7);
});

t.test('a flood of distinct keys cannot grow the throttle or the audit volume without bound', async (t) => {
  const th = new Throttle({ max: 2, maxKeys: 100 });
  let through = 0;
  for (let i = 0; i < 10_000; i++) if (th.allow(`key-${i}`, 0)) through++;
  t.equal(through, 100 + 2, 'the first 100 keys get their one event through, then all later keys share one overflow budget of 2');
  t.ok(th.takeSuppressed(THROTTLE_OVERFLOW_KEY) > 9_000);
  // After the window, idle keys are pruned and new keys are tracked again.
  t.same([th.allow('fresh', 120_000), th.allow('fresh', 120_000), th.allow('fresh', 120_000)], [true, true, false]);
  t.equal(th.takeSuppressed('fresh'), 1, 'counted under its own key, not the overflow key');
});
