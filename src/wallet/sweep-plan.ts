/**
 * Which cold coins a sweep spends, and its fee and change. A refill takes the largest coins first (fewest
 * inputs: cold inputs are the heavy ones, multisig above all); a consolidation takes the smallest first,
 * up to maxInputs, into one cold change output. Fees are from the descriptor's exact input size.
 * Pure: coins and rates in, a plan out; every refusal says what was short.
 */
import { CustodyError } from '../errors.js';
import type { ColdDescriptor } from './descriptor.js';
import { scriptType } from './destination.js';
import { sweepVbytes } from './psbt.js';

export interface PlanCoin {
  readonly id: string;
  readonly value: bigint;
}

export interface SweepPlan {
  readonly coins: readonly PlanCoin[];
  readonly feeSats: bigint;
  /** Refill: the cold change, or null when it would be dust (then it goes to the fee). Consolidate: the one output. */
  readonly changeSats: bigint | null;
  readonly vbytes: number;
}

export type SweepPlanRequest = {
  readonly coins: readonly PlanCoin[];
  readonly descriptor: ColdDescriptor;
  readonly feeRate: number;
  readonly maxFeeSats: bigint;
} & (
  | { readonly kind: 'refill'; readonly amountSats: bigint; readonly destination: Uint8Array; readonly changeScript: Uint8Array }
  | { readonly kind: 'consolidate'; readonly maxInputs: number; readonly destination: Uint8Array }
);

/** Bitcoin Core's dust thresholds at 3 sat/vB: 294 sats for P2WPKH, 330 for P2WSH. */
function dustOf(script: Uint8Array): bigint {
  return scriptType(script) === 'p2wpkh' ? 294n : 330n;
}

const fee = (vbytes: number, rate: number): bigint => BigInt(Math.ceil(vbytes * rate));

export function planSweep(req: SweepPlanRequest): SweepPlan {
  if (!(req.feeRate > 0) || !Number.isFinite(req.feeRate)) throw new CustodyError('INVALID_ARGUMENT', `feeRate: ${req.feeRate} must be a positive number of sat/vB`, { field: 'feeRate' });
  const plan = req.kind === 'refill' ? refill(req) : consolidate(req);
  if (plan.feeSats > req.maxFeeSats) {
    throw new CustodyError('INVALID_ARGUMENT', `feeRate: a fee of ${plan.feeSats} sats (${plan.coins.length} inputs at ${req.feeRate} sat/vB) is above sweeps.maxFeeSats ${req.maxFeeSats}`, { field: 'feeRate', feeSats: Number(plan.feeSats) });
  }
  return plan;
}

function refill(req: SweepPlanRequest & { kind: 'refill' }): SweepPlan {
  if (req.amountSats < dustOf(req.destination)) throw new CustodyError('AMOUNT_INVALID', `amountSats: ${req.amountSats} is below the dust limit of ${dustOf(req.destination)} sats`, { field: 'amountSats' });
  const sorted = [...req.coins].sort((a, b) => (a.value > b.value ? -1 : a.value < b.value ? 1 : a.id < b.id ? -1 : 1));
  const taken: PlanCoin[] = [];
  let sum = 0n;
  for (const c of sorted) {
    taken.push(c);
    sum += c.value;
    const withChange = sweepVbytes(req.descriptor, taken.length, [req.destination, req.changeScript]);
    const change = sum - req.amountSats - fee(withChange, req.feeRate);
    if (change >= dustOf(req.changeScript)) return { coins: taken, feeSats: sum - req.amountSats - change, changeSats: change, vbytes: withChange };
    const without = sweepVbytes(req.descriptor, taken.length, [req.destination]);
    if (sum >= req.amountSats + fee(without, req.feeRate)) return { coins: taken, feeSats: sum - req.amountSats, changeSats: null, vbytes: without };
  }
  const need = req.amountSats + fee(sweepVbytes(req.descriptor, Math.max(1, sorted.length), [req.destination]), req.feeRate);
  throw new CustodyError('SWEEP_FUNDS', `amountSats: ${req.amountSats} plus the fee needs about ${need} sats; the cold wallet has ${sum} sats in ${sorted.length} confirmed coin${sorted.length === 1 ? '' : 's'} free to sweep`, {
    field: 'amountSats',
    neededSats: Number(need),
    availableSats: Number(sum),
  });
}

function consolidate(req: SweepPlanRequest & { kind: 'consolidate' }): SweepPlan {
  const sorted = [...req.coins].sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : a.id < b.id ? -1 : 1));
  const taken = sorted.slice(0, req.maxInputs);
  if (taken.length < 2) throw new CustodyError('SWEEP_FUNDS', `consolidate: ${taken.length} confirmed cold coin${taken.length === 1 ? '' : 's'} free to sweep; at least 2 are needed`, { coins: taken.length });
  const sum = taken.reduce((a, c) => a + c.value, 0n);
  const vbytes = sweepVbytes(req.descriptor, taken.length, [req.destination]);
  const f = fee(vbytes, req.feeRate);
  const out = sum - f;
  if (out < dustOf(req.destination)) throw new CustodyError('SWEEP_FUNDS', `consolidate: ${taken.length} coins of ${sum} sats cannot pay a fee of ${f} sats`, { availableSats: Number(sum), feeSats: Number(f) });
  return { coins: taken, feeSats: f, changeSats: out, vbytes };
}
