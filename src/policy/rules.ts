/**
 * The ordered withdrawal rules, as pure functions of the request, the policy and the moment (DESIGN §6):
 * frozen? → amount within [dust, maximum] → destination allowed → rolling limits → approvals needed.
 * Each refusal is a CustodyError whose code names the rule (POLICY_*), whose message names the field and
 * what is left, and whose details carry the rule's config key.
 */
import { CustodyError } from '../errors.js';
import { checkVelocity, type Charge, type VelocityWindow } from './velocity.js';

export interface WithdrawalPolicy {
  readonly maxAmountSats: bigint;
  readonly windows: readonly VelocityWindow[];
  /** Withdrawals above `aboveSats` wait for `approvals` approvals (null: none needed). */
  readonly approval: { readonly aboveSats: bigint; readonly approvals: number } | null;
  /** When set, only these addresses may be paid. */
  readonly allow: readonly string[] | null;
  readonly deny: readonly string[];
}

export interface PolicyRequest {
  readonly client: string;
  readonly address: string;
  readonly amountSats: bigint;
  readonly dustSats: bigint;
}

export type Decision = { readonly kind: 'approved' } | { readonly kind: 'pending_approval'; readonly approvals: number };

export function assertNotFrozen(frozen: { reason: string } | null): void {
  if (frozen !== null) throw new CustodyError('FROZEN', `the daemon is frozen by an operator (${frozen.reason}); no withdrawal is signed until it is unfrozen`);
}

export function checkAmount(req: PolicyRequest, policy: WithdrawalPolicy): void {
  if (req.amountSats < req.dustSats) {
    throw new CustodyError('AMOUNT_INVALID', `amountSats: ${req.amountSats} is below the dust limit of ${req.dustSats} sats for this address type`, { field: 'amountSats', minSats: Number(req.dustSats) });
  }
  if (req.amountSats > policy.maxAmountSats) {
    throw new CustodyError('POLICY_MAX_AMOUNT', `amountSats: ${req.amountSats} is above the per-withdrawal maximum of ${policy.maxAmountSats} sats`, {
      field: 'amountSats',
      rule: 'withdrawals.maxAmountSats',
      maxSats: Number(policy.maxAmountSats),
    });
  }
}

export function checkDestination(req: PolicyRequest, policy: WithdrawalPolicy): void {
  if (policy.deny.includes(req.address)) {
    throw new CustodyError('POLICY_DESTINATION', `address: ${req.address} is on the denylist`, { field: 'address', rule: 'withdrawals.deny' });
  }
  if (policy.allow !== null && !policy.allow.includes(req.address)) {
    throw new CustodyError('POLICY_DESTINATION', `address: ${req.address} is not on the allowlist`, { field: 'address', rule: 'withdrawals.allow' });
  }
}

/** Every rule in order; returns whether the withdrawal may go ahead now or waits for approvals. */
export function decide(req: PolicyRequest, policy: WithdrawalPolicy, charges: readonly Charge[], now: number): Decision {
  checkAmount(req, policy);
  checkDestination(req, policy);
  checkVelocity(charges, policy.windows, req.client, req.amountSats, now);
  if (policy.approval !== null && req.amountSats > policy.approval.aboveSats) return { kind: 'pending_approval', approvals: policy.approval.approvals };
  return { kind: 'approved' };
}

/** An approver may approve once, and never a withdrawal its own client requested. */
export function checkApprover(requestedBy: string, approver: string, already: readonly string[]): void {
  if (approver === `client:${requestedBy}`) {
    throw new CustodyError('POLICY_SELF_APPROVAL', `${approver} requested this withdrawal and cannot approve it`, { rule: 'withdrawals.approval' });
  }
  if (already.includes(approver)) throw new CustodyError('WITHDRAWAL_STATE', `${approver} has already approved this withdrawal`);
}
