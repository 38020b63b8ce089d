/**
 * The ordered withdrawal rules (DESIGN §6): each refusal's code, its message (the field, the rule's limit,
 * what is left) and details.rule (the config key); the order in which decide() applies them; approvals.
 */
import t, { type Test } from 'tap';
import { assertNotFrozen, checkAmount, checkApprover, checkDestination, decide, type PolicyRequest, type WithdrawalPolicy } from '../../../src/policy/rules.js';
import type { Charge } from '../../../src/policy/velocity.js';
import { CustodyError, isCustodyError, type ErrorCode } from '../../../src/errors.js';
import { thrown } from '../../support/vectors.js';

const NOW = 1_750_000_000_000;
const ALICE = 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4';
const BOB = 'bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3';
const MALLORY = '1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH';

const policy = (over: Partial<WithdrawalPolicy> = {}): WithdrawalPolicy => ({
  maxAmountSats: 1_000_000n,
  windows: [{ name: '24h', seconds: 86_400, perClientSats: 2_000_000n, globalSats: 5_000_000n }],
  approval: { aboveSats: 500_000n, approvals: 2 },
  allow: null,
  deny: [MALLORY],
  ...over,
});
const req = (over: Partial<PolicyRequest> = {}): PolicyRequest => ({ client: 'app1', address: ALICE, amountSats: 10_000n, dustSats: 294n, ...over });

/** The CustodyError `fn` throws, asserting its code. */
function refusal(t: Test, fn: () => unknown, code: ErrorCode): CustodyError {
  const err = thrown(fn);
  t.ok(isCustodyError(err, code), `refused with ${code}: ${String(err)}`);
  return err as CustodyError;
}

t.test('assertNotFrozen: passes unfrozen; frozen refuses with FROZEN and the operator’s reason', async (t) => {
  t.equal(thrown(() => assertNotFrozen(null)), undefined);
  const err = refusal(t, () => assertNotFrozen({ reason: 'incident 42' }), 'FROZEN');
  t.match(err.message, /frozen by an operator \(incident 42\)/);
});

t.test('checkAmount: below the address type’s dust is AMOUNT_INVALID naming the minimum; dust itself passes', async (t) => {
  t.equal(thrown(() => checkAmount(req({ amountSats: 294n }), policy())), undefined, 'exactly dust');
  const err = refusal(t, () => checkAmount(req({ amountSats: 293n }), policy()), 'AMOUNT_INVALID');
  t.equal(err.message, 'amountSats: 293 is below the dust limit of 294 sats for this address type');
  t.same(err.details, { field: 'amountSats', minSats: 294 });
  const p2pkh = refusal(t, () => checkAmount(req({ amountSats: 545n, dustSats: 546n }), policy()), 'AMOUNT_INVALID');
  t.match(p2pkh.message, /dust limit of 546/, 'the dust given for the address type, not a constant');
});

t.test('checkAmount: above the per-withdrawal maximum is POLICY_MAX_AMOUNT with rule withdrawals.maxAmountSats; the maximum passes', async (t) => {
  t.equal(thrown(() => checkAmount(req({ amountSats: 1_000_000n }), policy())), undefined, 'exactly the maximum');
  const err = refusal(t, () => checkAmount(req({ amountSats: 1_000_001n }), policy()), 'POLICY_MAX_AMOUNT');
  t.equal(err.message, 'amountSats: 1000001 is above the per-withdrawal maximum of 1000000 sats');
  t.same(err.details, { field: 'amountSats', rule: 'withdrawals.maxAmountSats', maxSats: 1_000_000 });
});

t.test('checkDestination: the denylist, then the allowlist, each with its rule', async (t) => {
  t.equal(thrown(() => checkDestination(req({ address: BOB }), policy())), undefined, 'no allowlist: anything not denied');
  const denied = refusal(t, () => checkDestination(req({ address: MALLORY }), policy()), 'POLICY_DESTINATION');
  t.equal(denied.message, `address: ${MALLORY} is on the denylist`);
  t.same(denied.details, { field: 'address', rule: 'withdrawals.deny' });
  const allowOnlyAlice = policy({ allow: [ALICE], deny: [] });
  t.equal(thrown(() => checkDestination(req({ address: ALICE }), allowOnlyAlice)), undefined, 'on the allowlist');
  const notAllowed = refusal(t, () => checkDestination(req({ address: BOB }), allowOnlyAlice), 'POLICY_DESTINATION');
  t.equal(notAllowed.message, `address: ${BOB} is not on the allowlist`);
  t.same(notAllowed.details, { field: 'address', rule: 'withdrawals.allow' });
  const both = refusal(t, () => checkDestination(req({ address: MALLORY }), policy({ allow: [MALLORY] })), 'POLICY_DESTINATION');
  t.equal(both.details?.['rule'], 'withdrawals.deny', 'denied wins over allowed');
  t.ok(isCustodyError(thrown(() => checkDestination(req(), policy({ allow: [], deny: [] }))), 'POLICY_DESTINATION'), 'an empty allowlist allows nothing');
});

t.test('decide: approved at or below the approval threshold, pending_approval with the count above it', async (t) => {
  t.same(decide(req({ amountSats: 500_000n }), policy(), [], NOW), { kind: 'approved' });
  t.same(decide(req({ amountSats: 500_001n }), policy(), [], NOW), { kind: 'pending_approval', approvals: 2 });
  t.same(decide(req({ amountSats: 1_000_000n }), policy({ approval: null }), [], NOW), { kind: 'approved' }, 'no approval rule');
});

t.test('decide applies the rules in order: amount, destination, velocity, approvals', async (t) => {
  const full: Charge[] = [{ id: 'wd-1', client: 'app1', amountSats: 2_000_000n, at: NOW - 1_000 }];
  // Every rule broken at once: the amount is reported.
  const a = refusal(t, () => decide(req({ address: MALLORY, amountSats: 1_000_001n }), policy(), full, NOW), 'POLICY_MAX_AMOUNT');
  t.equal(a.details?.['rule'], 'withdrawals.maxAmountSats');
  t.ok(isCustodyError(thrown(() => decide(req({ address: MALLORY, amountSats: 100n }), policy(), full, NOW)), 'AMOUNT_INVALID'), 'dust before destination');
  // Amount fine; destination and velocity broken: the destination.
  const d = refusal(t, () => decide(req({ address: MALLORY, amountSats: 600_000n }), policy(), full, NOW), 'POLICY_DESTINATION');
  t.equal(d.details?.['rule'], 'withdrawals.deny');
  // Destination fine; velocity broken and the amount would need approvals: velocity refuses first.
  const v = refusal(t, () => decide(req({ amountSats: 600_000n }), policy(), full, NOW), 'POLICY_VELOCITY');
  t.equal(v.message, 'amountSats: 600000 exceeds the 24h limit for client app1: 0 of 2000000 sats left');
  t.same(v.details, { field: 'amountSats', rule: 'withdrawals.windows.24h.perClientSats', remainingSats: 0 });
  // Another client is not held back by app1's per-client use.
  t.same(decide(req({ client: 'app2', amountSats: 600_000n }), policy(), full, NOW), { kind: 'pending_approval', approvals: 2 });
});

t.test('checkApprover: the requesting client cannot approve; an approver approves once; others may', async (t) => {
  const self = refusal(t, () => checkApprover('app1', 'client:app1', []), 'POLICY_SELF_APPROVAL');
  t.equal(self.message, 'client:app1 requested this withdrawal and cannot approve it');
  t.same(self.details, { rule: 'withdrawals.approval' });
  const twice = refusal(t, () => checkApprover('app1', 'client:approver1', ['client:approver1']), 'WITHDRAWAL_STATE');
  t.match(twice.message, /client:approver1 has already approved/);
  t.equal(thrown(() => checkApprover('app1', 'client:approver2', ['client:approver1'])), undefined, 'a second, different approver');
  t.equal(thrown(() => checkApprover('app1', 'operator:alice', [])), undefined, 'an operator');
  t.equal(thrown(() => checkApprover('app1', 'client:app10', [])), undefined, 'a client whose name merely starts the same');
});
