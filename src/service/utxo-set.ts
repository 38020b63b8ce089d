/**
 * The coins of the hot and cold wallets: every output paying one of our scripts, with where it was mined
 * (null while unconfirmed), what spent it, and which withdrawal or sweep has reserved it. All rows live
 * in the data dir (x!…); the ones not yet spent in a block are also held here in memory, because the
 * block walker asks about every input of every block (`has`) and balances are read on every status.
 * This module only holds and answers; service/ledger.ts decides and commits.
 */
import { CustodyError } from '../errors.js';
import type { OutpointWatch } from '../chain/block-walker.js';
import type { BatchOp, Store } from '../store/db.js';
import { UTXOS } from '../store/layout.js';
import type { Chain } from '../wallet/derive.js';
import type { Wallet } from './watch.js';

export interface SpentBy {
  readonly txid: string;
  /** Null while the spending transaction is only in the mempool. */
  readonly height: number | null;
}

/** One coin as stored (JSON): amounts as decimal strings, never floats. */
export interface UtxoRecord {
  readonly txid: string;
  readonly vout: number;
  readonly valueSats: string;
  readonly wallet: Wallet;
  readonly chain: Chain;
  readonly index: number;
  /** scriptPubKey, hex. */
  readonly script: string;
  readonly height: number | null;
  readonly spentBy: SpentBy | null;
  readonly reservedBy: string | null;
}

export interface Balances {
  readonly hot: { readonly confirmedSats: bigint; readonly unconfirmedSats: bigint; readonly reservedSats: bigint; readonly coins: number };
  readonly cold: { readonly confirmedSats: bigint; readonly unconfirmedSats: bigint; readonly coins: number };
}

export const outpointKey = (txid: string, vout: number): string => `${txid}:${vout}`;

export class UtxoSet implements OutpointWatch {
  /** Not spent in a block: unspent, or spent by a transaction still in the mempool. */
  private readonly live = new Map<string, UtxoRecord>();
  /**
   * A counting filter over the first 22 bits of live coins' txids (internal order): every input of every
   * block is checked against the set, nearly always to say no (a Map of prefixes cost ~0.5 µs per input,
   * 40 % of a block's walk at 100,000 coins). The counts (8 MB) are touched only when coins come and go;
   * inputs read a bitmap of the non-zero counts (512 KB, small enough to stay in cache). A counter that
   * reaches its maximum stays there (never decremented), which can only cost exact lookups, never miss a coin.
   */
  private readonly prefixes = new Uint16Array(1 << PREFIX_BITS);
  private readonly present = new Int32Array(1 << (PREFIX_BITS - 5));

  static async load(store: Store): Promise<UtxoSet> {
    const set = new UtxoSet();
    let from: string = UTXOS.from;
    for (;;) {
      const page = await store.range(from, UTXOS.to, 10_000);
      for (const [, v] of page) {
        const r = JSON.parse(v) as UtxoRecord;
        if (r.spentBy === null || r.spentBy.height === null) set.put(r);
      }
      if (page.length < 10_000) return set;
      from = `${(page[page.length - 1] as [string, string])[0]}\u0000`;
    }
  }

  get size(): number {
    return this.live.size;
  }

  get(txid: string, vout: number): UtxoRecord | undefined {
    return this.live.get(outpointKey(txid, vout));
  }

  /** Every live coin (balances, mempool reconciliation, coin selection later). */
  values(): IterableIterator<UtxoRecord> {
    return this.live.values();
  }

  has(bytes: Uint8Array, at: number, vout: number): boolean {
    const p = (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16)) & PREFIX_MASK;
    if ((this.present[p >>> 5]! & (1 << (p & 31))) === 0) return false;
    const txid = Buffer.from(bytes.subarray(at, at + 32)).reverse().toString('hex');
    return this.live.has(outpointKey(txid, vout));
  }

  /** Adds or replaces a coin in memory; one spent in a block leaves (it stays in the data dir). */
  put(r: UtxoRecord): void {
    const key = outpointKey(r.txid, r.vout);
    const had = this.live.has(key);
    if (r.spentBy !== null && r.spentBy.height !== null) {
      if (had) this.remove(r.txid, r.vout);
      return;
    }
    this.live.set(key, r);
    if (!had) {
      const p = prefixOf(r.txid);
      if (this.prefixes[p]! < STUCK && this.prefixes[p]!++ === 0) this.present[p >>> 5]! |= 1 << (p & 31);
    }
  }

  remove(txid: string, vout: number): void {
    if (!this.live.delete(outpointKey(txid, vout))) return;
    const p = prefixOf(txid);
    if (this.prefixes[p]! < STUCK && --this.prefixes[p]! === 0) this.present[p >>> 5]! &= ~(1 << (p & 31));
  }

  balances(): Balances {
    let hotConfirmed = 0n;
    let hotUnconfirmed = 0n;
    let hotReserved = 0n;
    let hotCoins = 0;
    let coldConfirmed = 0n;
    let coldUnconfirmed = 0n;
    let coldCoins = 0;
    for (const r of this.live.values()) {
      if (r.spentBy !== null) continue; // spent in the mempool: already on its way out
      const value = BigInt(r.valueSats);
      if (r.wallet === 'hot') {
        hotCoins++;
        if (r.height === null) hotUnconfirmed += value;
        else hotConfirmed += value;
        if (r.reservedBy !== null) hotReserved += value;
      } else {
        coldCoins++;
        if (r.height === null) coldUnconfirmed += value;
        else coldConfirmed += value;
      }
    }
    return {
      hot: { confirmedSats: hotConfirmed, unconfirmedSats: hotUnconfirmed, reservedSats: hotReserved, coins: hotCoins },
      cold: { confirmedSats: coldConfirmed, unconfirmedSats: coldUnconfirmed, coins: coldCoins },
    };
  }

  /**
   * Reserves confirmed, unspent coins for one withdrawal or sweep (`by`), so two requests never pick the
   * same coin. All or nothing; reserving again for the same `by` is a no-op. Returns the rows to commit.
   */
  reserve(outpoints: ReadonlyArray<{ txid: string; vout: number }>, by: string): { ops: BatchOp[]; records: UtxoRecord[] } {
    const records: UtxoRecord[] = [];
    for (const o of outpoints) {
      const r = this.get(o.txid, o.vout);
      const where = `${o.txid}:${o.vout}`;
      if (r === undefined) throw new CustodyError('UTXO_UNAVAILABLE', `outpoint ${where}: not a coin of ours, or already spent`, { outpoint: where });
      if (r.spentBy !== null) throw new CustodyError('UTXO_UNAVAILABLE', `outpoint ${where}: spent by ${r.spentBy.txid} (in the mempool)`, { outpoint: where });
      if (r.height === null) throw new CustodyError('UTXO_UNAVAILABLE', `outpoint ${where}: not confirmed yet`, { outpoint: where });
      if (r.reservedBy !== null && r.reservedBy !== by) throw new CustodyError('UTXO_UNAVAILABLE', `outpoint ${where}: reserved by ${r.reservedBy}`, { outpoint: where });
      records.push({ ...r, reservedBy: by });
    }
    return { ops: records.map((r) => putOp(r)), records };
  }

  /** The rows that release every coin `by` holds (a cancelled withdrawal, an abandoned sweep). */
  release(by: string): { ops: BatchOp[]; records: UtxoRecord[] } {
    const records = [...this.live.values()].filter((r) => r.reservedBy === by).map((r) => ({ ...r, reservedBy: null }));
    return { ops: records.map((r) => putOp(r)), records };
  }
}

export function putOp(r: UtxoRecord): BatchOp {
  return { type: 'put', key: UTXOS.record(r.txid, r.vout), value: JSON.stringify(r) };
}

const PREFIX_BITS = 22;
const PREFIX_MASK = (1 << PREFIX_BITS) - 1;
const STUCK = 0xffff;

function prefixOf(txid: string): number {
  // Internal byte order is the display hex reversed: its first 3 bytes are the display's last 6 digits, reversed.
  const b = Buffer.from(txid.slice(58, 64), 'hex').reverse();
  return (b[0]! | (b[1]! << 8) | (b[2]! << 16)) & PREFIX_MASK;
}
