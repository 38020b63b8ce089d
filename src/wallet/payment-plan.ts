/**
 * Plans a hot-wallet payment: which coins (coinselect), the exact size and fee at the given rate, and
 * whether a change output is worth it (not below the P2WPKH dust limit; otherwise the remainder goes to
 * the fee). Refuses a plan whose fee exceeds the absolute cap. Pure: coins, outputs and rate come in.
 */
import { selectCoins } from './coinselect.js';
import { estimateVbytes, type TxOutputSpec } from './hot-tx.js';

export interface PlanCoin {
  readonly id: string;
  readonly value: bigint;
}

export interface PaymentPlan<C extends PlanCoin> {
  readonly coins: C[];
  readonly outputs: TxOutputSpec[];
  readonly change: { readonly vout: number; readonly index: number; readonly value: bigint } | null;
  readonly fee: bigint;
  readonly vbytes: number;
  readonly feeRate: number;
}

export type PlanResult<C extends PlanCoin> =
  | { readonly ok: true; readonly plan: PaymentPlan<C> }
  | { readonly ok: false; readonly reason: 'insufficient_funds'; readonly neededSats: bigint; readonly spendableSats: bigint }
  | { readonly ok: false; readonly reason: 'fee_cap'; readonly feeSats: bigint };

/** P2WPKH dust (Bitcoin Core GetDustThreshold at 3 sat/vB): change below this is not worth an output. */
export const DUST_CHANGE = 294n;

export function planPayment<C extends PlanCoin>(opts: {
  readonly coins: readonly C[];
  readonly outputs: readonly TxOutputSpec[];
  readonly feeRate: number;
  readonly change: { readonly script: Uint8Array; readonly index: number };
  readonly maxFeeSats: bigint;
}): PlanResult<C> {
  const { coins, outputs, feeRate } = opts;
  const totalOut = outputs.reduce((a, o) => a + o.value, 0n);
  const spendableSats = coins.reduce((a, c) => a + c.value, 0n);
  const selected = selectCoins(coins, outputs.map((o) => o.script), totalOut, feeRate);
  if (selected === null) return { ok: false, reason: 'insufficient_funds', neededSats: totalOut, spendableSats };
  const byId = new Map(coins.map((c) => [c.id, c]));
  const inputs = selected.inputs.map((id) => byId.get(id) as C);
  const totalIn = inputs.reduce((a, c) => a + c.value, 0n);
  const withChange = estimateVbytes(inputs.length, [...outputs.map((o) => o.script), opts.change.script]);
  const feeWithChange = BigInt(Math.ceil(withChange * feeRate));
  const changeValue = totalIn - totalOut - feeWithChange;
  let plan: PaymentPlan<C>;
  if (changeValue >= DUST_CHANGE) {
    plan = {
      coins: inputs,
      outputs: [...outputs, { script: opts.change.script, value: changeValue }],
      change: { vout: outputs.length, index: opts.change.index, value: changeValue },
      fee: feeWithChange,
      vbytes: withChange,
      feeRate,
    };
  } else {
    const vbytes = estimateVbytes(inputs.length, outputs.map((o) => o.script));
    const fee = totalIn - totalOut;
    if (fee < BigInt(Math.ceil(vbytes * feeRate))) return { ok: false, reason: 'insufficient_funds', neededSats: totalOut, spendableSats };
    plan = { coins: inputs, outputs: [...outputs], change: null, fee, vbytes, feeRate };
  }
  if (plan.fee > opts.maxFeeSats) return { ok: false, reason: 'fee_cap', feeSats: plan.fee };
  return { ok: true, plan };
}
