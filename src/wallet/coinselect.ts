/**
 * Coin selection with `coinselect` (bitcoinjs' module: branch-and-bound-like "blackjack", falling back to
 * accumulating largest first). It sizes inputs and outputs from the script lengths it is given; we hand
 * it P2WPKH witness sizes, then size the transaction exactly ourselves (wallet/hot-tx.ts) and decide the
 * change there. Amounts cross into coinselect as numbers: always < 2^53 sats (21e6 BTC = 2.1e15 sats).
 */
import coinSelect from 'coinselect';

export interface Candidate {
  readonly id: string;
  readonly value: bigint;
}

/** A P2WPKH input is 68 vbytes: coinselect adds its 41-byte base to the "script" length we give. */
const P2WPKH_INPUT_EXTRA = { length: 27 };

export function selectCoins(coins: readonly Candidate[], outputScripts: readonly Uint8Array[], totalOut: bigint, feeRate: number): { inputs: string[] } | null {
  if (coins.length === 0) return null;
  // coinselect counts 10 vbytes of overhead, estimateVbytes 11 (the segwit marker and flag round up):
  // ask for one vbyte's fee more, so what it selects always covers the fee we then require.
  const rate = Math.ceil(feeRate);
  totalOut += BigInt(rate);
  const perOutput = totalOut / BigInt(Math.max(1, outputScripts.length));
  const targets = outputScripts.map((script, i) => ({
    script,
    // The split between outputs does not matter for selection, only the total; keep each a number.
    value: Number(i === outputScripts.length - 1 ? totalOut - perOutput * BigInt(outputScripts.length - 1) : perOutput),
  }));
  const utxos = coins.map((c) => ({ id: c.id, value: Number(c.value), script: P2WPKH_INPUT_EXTRA }));
  const r = coinSelect(utxos, targets, rate);
  if (r.inputs === undefined) return null;
  return { inputs: r.inputs.map((u) => u.id) };
}
