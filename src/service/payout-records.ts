/**
 * The record of a transaction of ours (w!t!…), written before it is broadcast: what it pays, which coins
 * it spends, its change and fee, and where it is in its life. service/payouts.ts moves it along.
 */
import type { Transaction } from 'bitcoinjs-lib';
import { CustodyError } from '../errors.js';
import type { Clock } from '../types.js';
import type { HotCoin } from '../wallet/hot-tx.js';
import type { UtxoRecord } from './utxo-set.js';
import type { AuditLog } from '../audit/log.js';

/** withdrawals, sweep (hot → cold, over the cap) and cpfp are signed by the hot key; refill and consolidate are cold PSBT sweeps. */
export type PayoutKind = 'withdrawals' | 'sweep' | 'cpfp' | 'refill' | 'consolidate';

/** Only what the hot key signed can be bumped by the hot key (CPFP through hot change). */
export const hotSigned = (kind: PayoutKind): boolean => kind === 'withdrawals' || kind === 'sweep';
export type PayoutState = 'signed' | 'broadcast' | 'confirmed' | 'failed';

/** A transaction of ours, written before it is broadcast. */
export interface PayoutRecord {
  readonly txid: string;
  readonly kind: PayoutKind;
  readonly hex: string;
  readonly withdrawals: readonly string[];
  readonly inputs: ReadonlyArray<Omit<HotCoin, 'value'> & { readonly value: string }>;
  readonly change: { readonly vout: number; readonly index: number; readonly valueSats: string } | null;
  readonly feeSats: string;
  readonly vbytes: number;
  readonly feeRate: number;
  readonly state: PayoutState;
  readonly createdAt: string;
  readonly broadcastHeight: number | null;
  readonly height: number | null;
  /** For a CPFP child: the stuck parent; for a parent: its child. */
  readonly parent: string | null;
  readonly bumpedBy: string | null;
  readonly failure: string | null;
}

export interface FeePolicy {
  readonly targetBlocks: number;
  readonly minSatPerVb: number;
  readonly maxSatPerVb: number;
  readonly fallbackSatPerVb: number;
  readonly maxFeeSats: bigint;
}

export interface PayoutOptions {
  readonly batchWindowMs: number;
  readonly maxOutputs: number;
  readonly fee: FeePolicy;
  /** Blocks a broadcast transaction may wait before its change pays for it (CPFP). */
  readonly bumpAfterBlocks: number;
  readonly hot: { readonly minSats: bigint; readonly targetSats: bigint; readonly maxSats: bigint } | null;
  readonly lookahead: number;
  readonly clock?: Clock;
  /** Where each signature is recorded (in the batch that persists the transaction). */
  readonly audit?: AuditLog;
  readonly log?: (line: string) => void;
  /** Why signing must wait now (the audit sink fail-closed), or null. Checked with lock and freeze. */
  readonly signingBlocked?: () => string | null;
  /** Test-only fault injection (CUSTODY_FAULT_INJECT): called at each named step; may kill the process. */
  readonly fault?: (step: 'after-approval' | 'after-sign' | 'after-persist' | 'after-broadcast') => void;
}

export function payoutRecord(
  tx: Transaction,
  kind: PayoutKind,
  built: { coins: readonly UtxoRecord[]; change: { vout: number; index: number; value: bigint } | null; fee: bigint; vbytes: number; feeRate: number },
  withdrawals: readonly string[],
  parent: string | null,
  createdAt: string,
): PayoutRecord {
  return {
    txid: tx.getId(),
    kind,
    hex: tx.toHex(),
    withdrawals,
    inputs: built.coins.map((c) => ({ txid: c.txid, vout: c.vout, chain: c.chain, index: c.index, value: c.valueSats })),
    change: built.change === null ? null : { vout: built.change.vout, index: built.change.index, valueSats: built.change.value.toString() },
    feeSats: built.fee.toString(),
    vbytes: built.vbytes,
    feeRate: built.feeRate,
    state: 'signed',
    createdAt,
    broadcastHeight: null,
    height: null,
    parent,
    bumpedBy: null,
    failure: null,
  };
}

export function hotCoin(c: UtxoRecord): HotCoin {
  if (c.wallet !== 'hot') throw new CustodyError('INTERNAL', `coin ${c.txid}:${c.vout} is not a hot coin`);
  return { txid: c.txid, vout: c.vout, value: BigInt(c.valueSats), chain: c.chain, index: c.index };
}
