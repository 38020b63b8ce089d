/**
 * Rolling withdrawal limits: per-client and global windows, charges ageing out at the window's edge, the
 * order windows are checked in and what their refusals say, windowUse, remainingAllowance; and a
 * fast-check property that checkVelocity accepts a request exactly when, for every window, what is used
 * plus the request fits, computed here independently.
 */
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { checkVelocity, remainingAllowance, windowUse, type Charge, type VelocityWindow } from '../../../src/policy/velocity.js';
import { isCustodyError, type CustodyError } from '../../../src/errors.js';
import { thrown } from '../../support/vectors.js';

const NOW = 1_750_000_000_000;
const H = 3_600_000;
const W1H: VelocityWindow = { name: '1h', seconds: 3_600, perClientSats: 100n, globalSats: 150n };
const W24H: VelocityWindow = { name: '24h', seconds: 86_400, perClientSats: 300n, globalSats: 500n };

let n = 0;
const charge = (client: string, amountSats: bigint, at: number): Charge => ({ id: `wd-${n++}`, client, amountSats, at });

function velocityRefusal(t: Test, fn: () => unknown): CustodyError {
  const err = thrown(fn);
  t.ok(isCustodyError(err, 'POLICY_VELOCITY'), `POLICY_VELOCITY: ${String(err)}`);
  return err as CustodyError;
}

t.test('per-client window: a client’s own charges count, another client’s do not; the message names window, client and what is left', async (t) => {
  const charges = [charge('a', 60n, NOW - 10_000), charge('b', 30n, NOW - 10_000)];
  const perClient: VelocityWindow[] = [{ name: '1h', seconds: 3_600, perClientSats: 100n }];
  t.equal(thrown(() => checkVelocity(charges, perClient, 'a', 40n, NOW)), undefined, '60 + 40 = 100 fits');
  const err = velocityRefusal(t, () => checkVelocity(charges, perClient, 'a', 41n, NOW));
  t.equal(err.message, 'amountSats: 41 exceeds the 1h limit for client a: 40 of 100 sats left');
  t.same(err.details, { field: 'amountSats', rule: 'withdrawals.windows.1h.perClientSats', remainingSats: 40 });
  t.equal(thrown(() => checkVelocity(charges, perClient, 'b', 70n, NOW)), undefined, 'b has used 30 of its own 100');
  t.ok(isCustodyError(thrown(() => checkVelocity(charges, perClient, 'b', 71n, NOW)), 'POLICY_VELOCITY'), 'and not 71');
  t.equal(thrown(() => checkVelocity(charges, perClient, 'c', 100n, NOW)), undefined, 'a new client has all 100');
});

t.test('global window: every client’s charges count together; the message says "all clients"', async (t) => {
  const charges = [charge('a', 60n, NOW - 10_000), charge('b', 30n, NOW - 10_000)];
  const global: VelocityWindow[] = [{ name: '1h', seconds: 3_600, globalSats: 150n }];
  t.equal(thrown(() => checkVelocity(charges, global, 'c', 60n, NOW)), undefined, '90 + 60 = 150 fits');
  const err = velocityRefusal(t, () => checkVelocity(charges, global, 'c', 61n, NOW));
  t.equal(err.message, 'amountSats: 61 exceeds the 1h limit for all clients: 60 of 150 sats left');
  t.same(err.details, { field: 'amountSats', rule: 'withdrawals.windows.1h.globalSats', remainingSats: 60 });
});

t.test('order: within a window the per-client limit is checked before the global one; windows in the order configured', async (t) => {
  const charges = [charge('a', 100n, NOW - 1_000), charge('b', 50n, NOW - 1_000)];
  const both = velocityRefusal(t, () => checkVelocity(charges, [W1H], 'a', 1n, NOW));
  t.equal(both.details?.['rule'], 'withdrawals.windows.1h.perClientSats', 'a is over both its own and the global 1h limit: per-client reported');
  const globalOnly = velocityRefusal(t, () => checkVelocity(charges, [W1H], 'b', 1n, NOW));
  t.equal(globalOnly.details?.['rule'], 'withdrawals.windows.1h.globalSats', 'b has 50 of its own left but nothing globally');
  const first24 = velocityRefusal(t, () => checkVelocity([charge('a', 300n, NOW - 2 * H)], [W24H, W1H], 'a', 101n, NOW));
  t.equal(first24.details?.['rule'], 'withdrawals.windows.24h.perClientSats', 'both windows refuse 101: the first listed is named');
  const first1 = velocityRefusal(t, () => checkVelocity([charge('a', 300n, NOW - 2 * H)], [W1H, W24H], 'a', 101n, NOW));
  t.equal(first1.details?.['rule'], 'withdrawals.windows.1h.perClientSats', 'and in the other order, the other');
});

t.test('a window already over its limit (lowered by config) reports 0 left, never a negative amount', async (t) => {
  const err = velocityRefusal(t, () => checkVelocity([charge('a', 250n, NOW - 1_000)], [{ name: '1h', seconds: 3_600, perClientSats: 100n }], 'a', 1n, NOW));
  t.equal(err.message, 'amountSats: 1 exceeds the 1h limit for client a: 0 of 100 sats left');
  t.equal(err.details?.['remainingSats'], 0);
});

t.test('charges age out of a window exactly at its length, and still count a millisecond before', async (t) => {
  const w: VelocityWindow[] = [{ name: '1h', seconds: 3_600, perClientSats: 100n, globalSats: 100n }];
  t.equal(thrown(() => checkVelocity([charge('a', 100n, NOW - H)], w, 'a', 100n, NOW)), undefined, 'approved exactly one hour ago: out of the window');
  t.ok(isCustodyError(thrown(() => checkVelocity([charge('a', 100n, NOW - H + 1)], w, 'a', 1n, NOW)), 'POLICY_VELOCITY'), 'one millisecond less than an hour: still in');
  // The same charges, seen from later and later: the 1h window frees up, the 24h window does not yet.
  const charges = [charge('a', 100n, NOW), charge('a', 150n, NOW + 30 * 60_000)];
  t.ok(isCustodyError(thrown(() => checkVelocity(charges, [W1H, W24H], 'a', 1n, NOW + 31 * 60_000)), 'POLICY_VELOCITY'));
  t.equal(thrown(() => checkVelocity(charges, [W1H, W24H], 'a', 50n, NOW + 2 * H)), undefined, 'after two hours both have left the 1h window; 24h has 300 - 250 = 50');
  const err = velocityRefusal(t, () => checkVelocity(charges, [W1H, W24H], 'a', 51n, NOW + 2 * H));
  t.equal(err.details?.['rule'], 'withdrawals.windows.24h.perClientSats');
  t.equal(thrown(() => checkVelocity(charges, [W1H, W24H], 'a', 100n, NOW + 25 * H)), undefined, 'a day later, all of it again');
});

t.test('windowUse: global use, limit and what is left per window; null without a global limit; never below 0', async (t) => {
  const charges = [charge('a', 100n, NOW - 2 * H), charge('b', 120n, NOW - 1_000)];
  const use = windowUse(charges, [W1H, W24H, { name: 'client-only', seconds: 60, perClientSats: 5n }], NOW);
  t.same(use, [
    { name: '1h', seconds: 3_600, globalUsedSats: 120n, globalLimitSats: 150n, globalRemainingSats: 30n },
    { name: '24h', seconds: 86_400, globalUsedSats: 220n, globalLimitSats: 500n, globalRemainingSats: 280n },
    { name: 'client-only', seconds: 60, globalUsedSats: 120n, globalLimitSats: null, globalRemainingSats: null },
  ]);
  t.equal(windowUse([charge('a', 900n, NOW)], [W1H], NOW)[0]?.globalRemainingSats, 0n, 'over the limit: 0 left');
});

t.test('remainingAllowance: a window at least as long as the horizon caps it at the limit less the charges still in it at the end; a shorter one at its limit per stretch', async (t) => {
  const charges = [charge('a', 100n, NOW - 1_000), charge('b', 200n, NOW - 2 * H)];
  t.equal(remainingAllowance([], [{ name: 'c', seconds: 60, perClientSats: 1n }], NOW, 86_400), null, 'no global limit: null');
  t.equal(remainingAllowance(charges, [W24H], NOW, 86_400), 500n, '24h window, 24h horizon: every old charge ages out by its end');
  t.equal(remainingAllowance(charges, [W24H], NOW, 3_600), 200n, '24h window, 1h horizon: 500 - 300 (both still inside an hour from now)');
  t.equal(remainingAllowance(charges, [W24H], NOW, 23 * 3_600 - 1), 400n, '24h window, ~23h horizon: b ages out, a does not: 500 - 100');
  t.equal(remainingAllowance(charges, [W1H], NOW, 3_600), 150n, '1h window, 1h horizon: a ages out within the hour');
  t.equal(remainingAllowance(charges, [W1H], NOW, 86_400), 150n * 25n, '1h window, 24h horizon: at most 150 in each of floor(24)+1 stretches');
  t.equal(remainingAllowance(charges, [W1H], NOW, 5_400), 150n * 2n, '1.5 h horizon: two stretches');
  t.equal(remainingAllowance(charges, [W1H, W24H], NOW, 86_400), 500n, 'the tightest window wins: min(3750, 500)');
  t.equal(remainingAllowance([charge('a', 900n, NOW)], [W1H], NOW, 7_200), 450n, 'over the limit now: still three stretches of 150 in 2 h');
});

// Charges age out of their windows during the horizon: remainingAllowance must bound everything
// checkVelocity itself would accept within it (the schedules below are accepted by checkVelocity).
t.test('remainingAllowance bounds what checkVelocity would accept within the horizon', async (t) => {
  {
    const w: VelocityWindow[] = [{ name: '1h', seconds: 3_600, globalSats: 100n }];
    const charges = [charge('a', 100n, NOW - H + 1_000)];
    const allowance = remainingAllowance(charges, w, NOW, 7_200) ?? 0n;
    let moved = 0n;
    for (const at of [NOW + 1_000, NOW + H + 1_000]) {
      checkVelocity(charges, w, 'a', 100n, at); // throws if policy would refuse
      charges.push(charge('a', 100n, at));
      moved += 100n;
    }
    t.ok(moved <= allowance, `1h window, 2h horizon: ${moved} approved, allowance said ${allowance}`);
  }
  {
    const w: VelocityWindow[] = [{ name: '24h', seconds: 86_400, globalSats: 100n }];
    const charges = [charge('a', 100n, NOW - 23 * H)];
    const allowance = remainingAllowance(charges, w, NOW, 86_400) ?? 0n;
    checkVelocity(charges, w, 'a', 100n, NOW + H + 1);
    t.ok(100n <= allowance, `24h window, 24h horizon: 100 approved an hour from now, allowance said ${allowance}`);
  }
});

// --- the property ------------------------------------------------------------------------------------

const CLIENTS = ['a', 'b', 'c'];
const arbWindow = fc.record(
  {
    seconds: fc.oneof(fc.constantFrom(60, 3_600, 86_400), fc.integer({ min: 1, max: 200_000 })),
    perClientSats: fc.bigInt({ min: 0n, max: 2_000n }),
    globalSats: fc.bigInt({ min: 0n, max: 4_000n }),
  },
  { requiredKeys: ['seconds'] },
);
const arbCharge = fc.record({
  client: fc.constantFrom(...CLIENTS),
  amountSats: fc.bigInt({ min: 1n, max: 800n }),
  // Mostly in the past, across and beyond the windows; a few slightly in the future (clock steps).
  ageMs: fc.integer({ min: -5_000, max: 250_000_000 }),
});

interface Expected {
  readonly rule: string;
  readonly remaining: bigint;
}

/** Written from the rule's statement, not from velocity.ts: the first (window, scope) the request overflows. */
function firstOverflow(charges: readonly Charge[], windows: readonly VelocityWindow[], client: string, amount: bigint, now: number): Expected | null {
  for (const w of windows) {
    const inWindow = charges.filter((c) => now - c.at < w.seconds * 1_000);
    const scopes: Array<[string, bigint | undefined, readonly Charge[]]> = [
      ['perClientSats', w.perClientSats, inWindow.filter((c) => c.client === client)],
      ['globalSats', w.globalSats, inWindow],
    ];
    for (const [scope, limit, counted] of scopes) {
      if (limit === undefined) continue;
      const usedSats = counted.reduce((a, c) => a + c.amountSats, 0n);
      if (usedSats + amount > limit) return { rule: `withdrawals.windows.${w.name}.${scope}`, remaining: limit > usedSats ? limit - usedSats : 0n };
    }
  }
  return null;
}

t.test('checkVelocity (property): accepts iff every window’s use plus the request fits; else names the first overflow and what is left', async (t) => {
  let refusals = 0;
  let accepts = 0;
  fc.assert(
    fc.property(
      fc.array(arbWindow, { minLength: 0, maxLength: 3 }),
      fc.array(arbCharge, { maxLength: 25 }),
      fc.constantFrom(...CLIENTS, 'new'),
      fc.bigInt({ min: 0n, max: 3_000n }),
      (ws, cs, client, amount) => {
        const windows: VelocityWindow[] = ws.map((w, i) => ({ ...w, name: `w${i}` }));
        const charges: Charge[] = cs.map((c, i) => ({ id: `wd-${i}`, client: c.client, amountSats: c.amountSats, at: NOW - c.ageMs }));
        const expected = firstOverflow(charges, windows, client, amount, NOW);
        const err = thrown(() => checkVelocity(charges, windows, client, amount, NOW));
        if (expected === null) {
          accepts++;
          return err === undefined;
        }
        refusals++;
        return isCustodyError(err, 'POLICY_VELOCITY') && err.details?.['rule'] === expected.rule && err.details['remainingSats'] === Number(expected.remaining) && err.details['field'] === 'amountSats';
      },
    ),
    { numRuns: 1_000 },
  );
  t.ok(refusals > 100 && accepts > 100, `both outcomes exercised (${accepts} accepted, ${refusals} refused)`);
});
