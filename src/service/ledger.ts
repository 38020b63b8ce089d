/**
 * What the chain says about our money (DESIGN §3, §6): the blocks applied (height → hash), the deposits
 * to cold addresses with their state, and the hot and cold coins. The chain follower hands it blocks in
 * order; each block's changes, its undo record and its events are ONE batch, so a crash between blocks
 * loses nothing and a restart resumes from the last applied block without a duplicate event.
 *
 * Deposit states: `seen` (in the mempool or in a block with fewer confirmations than required) →
 * `confirmed`; either can become `reorged` (its block was disconnected, or it left the mempool unmined),
 * and a reorged deposit that comes back (in the mempool or a block) is `seen` again. Each change is an
 * event: deposit.seen, deposit.confirmed, deposit.reorged, with a durable sequence number.
 */
import { CustodyError } from '../errors.js';
import { BECH32_HRP, type Clock, type Network } from '../types.js';
import type { BlockRef, ChainSink } from '../chain/follower.js';
import type { WalkedBlock, WalkedOutput, WalkedTransaction } from '../chain/block-walker.js';
import type { BatchOp, Store } from '../store/db.js';
import { CHAIN, DEPOSITS, UTXOS } from '../store/layout.js';
import type { DepositAddresses } from './deposits.js';
import type { CustodyEvent, EventLog } from './events.js';
import { outpointKey, putOp, UtxoSet, type Balances, type UtxoRecord } from './utxo-set.js';
import { decodeTag, type WatchSet, type WatchedScript } from './watch.js';
import { segwitV0Address } from '../wallet/scripts.js';
import { listDeposits, stampDepositEvents, type DepositRecord, type DepositView, type PendingEvent } from './deposit-records.js';

export type { DepositRecord, DepositState, DepositView } from './deposit-records.js';

/** What applying one block changed: the keys to undo when it is disconnected. */
interface BlockUndo {
  readonly hash: string;
  /** Coins this block created or confirmed (from the mempool): removed on rollback. */
  readonly created: string[];
  /** Coins this block spent: unspent again on rollback. */
  readonly spent: string[];
  /** Deposits mined in this block: reorged on rollback. */
  readonly deposits: string[];
}

export interface LedgerOptions {
  readonly network: Network;
  /** Confirmations at which a deposit is `confirmed` (DESIGN: default 6, 1 on regtest). */
  readonly confirmations: number;
  /** Unused addresses watched ahead on cold change and the hot chains. */
  readonly lookahead: number;
  readonly clock?: Clock;
}


export class Ledger implements ChainSink {
  private tipRef: BlockRef | null;
  /** Deposits in state `seen` (in a block or the mempool): the ones a new block may confirm or the mempool may drop. */
  private readonly pending = new Map<string, DepositRecord>();
  private readonly clock: Clock;
  private readonly changeListeners = new Set<() => void>();
  /** Unconfirmed txids missing from the last mempool snapshot (dropped if missing from the next too). */
  private missingBefore = new Set<string>();

  private constructor(
    private readonly store: Store,
    private readonly events: EventLog,
    private readonly deposits: DepositAddresses,
    readonly watch: WatchSet,
    readonly utxos: UtxoSet,
    tip: BlockRef | null,
    private readonly opts: LedgerOptions,
  ) {
    this.tipRef = tip;
    this.clock = opts.clock ?? Date.now;
  }

  static async open(store: Store, events: EventLog, deposits: DepositAddresses, watch: WatchSet, opts: LedgerOptions): Promise<Ledger> {
    const tip = await store.get(CHAIN.tip);
    const ledger = new Ledger(store, events, deposits, watch, await UtxoSet.load(store), tip === undefined ? null : (JSON.parse(tip) as BlockRef), opts);
    let from: string = DEPOSITS.from;
    for (;;) {
      const page = await store.range(from, DEPOSITS.to, 10_000);
      for (const [k, v] of page) {
        const d = JSON.parse(v) as DepositRecord;
        if (d.state === 'seen') ledger.pending.set(k, d);
      }
      if (page.length < 10_000) break;
      from = `${(page[page.length - 1] as [string, string])[0]}\u0000`;
    }
    // Watch ahead of every coin we hold on the derived chains, so change and refills are found.
    for (const wallet of ['cold', 'hot'] as const) {
      for (const chain of [0, 1] as const) {
        if (wallet === 'cold' && chain === 0) continue; // deposit addresses come from issuance and the pool
        let highest = -1;
        for (const u of ledger.utxos.values()) if (u.wallet === wallet && u.chain === chain) highest = Math.max(highest, u.index);
        watch.extend(wallet, chain, highest + opts.lookahead);
      }
    }
    return ledger;
  }

  /** Called after every committed block, rollback or mempool change (the payouts service reconciles). */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  get network(): Network {
    return this.opts.network;
  }

  get scripts(): WatchSet {
    return this.watch;
  }

  get outpoints(): UtxoSet {
    return this.utxos;
  }

  tip(): BlockRef | null {
    return this.tipRef;
  }

  async hashAt(height: number): Promise<string | undefined> {
    return this.store.get(CHAIN.hash(height));
  }

  balances(): Balances {
    return this.utxos.balances();
  }

  confirmationsOf(height: number | null): number {
    return height === null || this.tipRef === null ? 0 : Math.max(0, this.tipRef.height - height + 1);
  }

  view(d: DepositRecord): DepositView {
    return { ...d, amountSats: Number(d.amountSats), confirmations: this.confirmationsOf(d.height) };
  }

  async getDeposit(txid: string, vout: number): Promise<DepositView | undefined> {
    const v = await this.store.get(DEPOSITS.record(txid, vout));
    return v === undefined ? undefined : this.view(JSON.parse(v) as DepositRecord);
  }

  /** Deposits by the sequence number of their last change, oldest change first (a feed that can resume). */
  listDeposits(opts: { account?: string; sinceSeq?: number; limit?: number } = {}): Promise<{ deposits: DepositView[]; lastSeq: number }> {
    return listDeposits(this.store, (d) => this.view(d), opts);
  }

  /** Reserves confirmed coins for one withdrawal or sweep (`by`): all or nothing, durable before it returns. */
  async reserve(outpoints: ReadonlyArray<{ txid: string; vout: number }>, by: string): Promise<UtxoRecord[]> {
    const previous = outpoints.map((o) => this.utxos.get(o.txid, o.vout));
    const { ops, records } = this.utxos.reserve(outpoints, by);
    // Held in memory at once, so a concurrent request cannot pick the same coin while this one commits.
    for (const r of records) this.utxos.put(r);
    try {
      await this.store.commit(ops);
    } catch (err) {
      for (const r of previous) if (r !== undefined) this.utxos.put(r);
      throw err;
    }
    return records;
  }

  /** Releases every coin `by` holds. */
  async release(by: string): Promise<number> {
    const { ops, records } = this.utxos.release(by);
    if (ops.length === 0) return 0;
    await this.store.commit(ops);
    for (const r of records) this.utxos.put(r);
    return records.length;
  }

  // --- blocks ------------------------------------------------------------------------------------

  async applyBlock(height: number, block: WalkedBlock, opts: { rescan: boolean; nodeTip: number }): Promise<void> {
    const tip = this.tipRef;
    if (!opts.rescan && tip !== null && (height !== tip.height + 1 || block.prevHash !== tip.hash)) {
      throw new CustodyError('INTERNAL', `block ${block.hash} at ${height} does not extend the tip ${tip.hash} at ${tip.height}`);
    }
    // Reads first; then the batch is built and committed without a pause, so sequence numbers stay in order.
    const accounts = await this.accountsFor(block.outputs);
    const known = await this.depositsFor(block.outputs);
    const stored = opts.rescan ? await this.store.get(CHAIN.undo(height)) : undefined;
    // A rescan below the first block applied (a birthday set too late) records those heights too, so a
    // deep reorganisation can still roll them back.
    const knownHash = opts.rescan ? await this.hashAt(height) : undefined;
    const undo: BlockUndo = stored === undefined ? { hash: block.hash, created: [], spent: [], deposits: [] } : (JSON.parse(stored) as BlockUndo);
    const before = { created: undo.created.length, spent: undo.spent.length, deposits: undo.deposits.length };

    const ops: BatchOp[] = [];
    const pendingEvents: PendingEvent[] = [];
    const coins = new Map<string, UtxoRecord>();
    const touched = new Map<string, DepositRecord>();
    const now = new Date(this.clock()).toISOString();

    for (const o of block.outputs) {
      const w = decodeTag(o.tag);
      const key = outpointKey(o.txid, o.vout);
      const coin = this.utxos.get(o.txid, o.vout);
      if (coin === undefined || coin.height === null) {
        if (!(opts.rescan && coin === undefined && (await this.store.get(UTXOS.record(o.txid, o.vout))) !== undefined)) {
          coins.set(key, coin === undefined ? newCoin(o, w, height) : { ...coin, height });
          undo.created.push(key);
        }
      }
      if (w.wallet !== 'cold' || w.chain !== 0) continue;
      const dkey = DEPOSITS.record(o.txid, o.vout);
      const d = known.get(dkey);
      if (d !== undefined && d.state !== 'reorged' && d.height !== null) continue; // already applied (a rescan)
      // Seen in the mempool and now mined: no new event (confirmed follows); new or back after a reorg: seen.
      const record = d !== undefined && d.state === 'seen' ? { ...d, height, blockHash: block.hash } : this.seen(d, o, w, accounts, height, block.hash, now);
      touched.set(dkey, record);
      undo.deposits.push(dkey);
      if (d === undefined || d.state === 'reorged') pendingEvents.push({ type: 'deposit.seen', data: {}, depositKey: dkey });
      const used = this.deposits.usedOp(w.index);
      if (used !== undefined) ops.push(used);
    }
    for (const s of block.spends) {
      const key = outpointKey(s.prevTxid, s.prevVout);
      const coin = coins.get(key) ?? this.utxos.get(s.prevTxid, s.prevVout); // created earlier in this block, or before
      if (coin === undefined || (coin.spentBy !== null && coin.spentBy.height !== null)) continue;
      coins.set(key, { ...coin, spentBy: { txid: s.txid, height } });
      undo.spent.push(key);
    }
    // Confirmations: every seen deposit in a block deep enough now (including this block's own).
    const tipHeight = opts.rescan ? Math.max(opts.nodeTip, tip?.height ?? height) : height;
    for (const [dkey, d0] of [...this.pending, ...touched]) {
      const d = touched.get(dkey) ?? d0;
      if (d.state !== 'seen' || d.height === null || tipHeight - d.height + 1 < this.opts.confirmations) continue;
      touched.set(dkey, { ...d, state: 'confirmed', confirmedAt: now });
      pendingEvents.push({ type: 'deposit.confirmed', data: {}, depositKey: dkey });
    }

    const changed = undo.created.length !== before.created || undo.spent.length !== before.spent || undo.deposits.length !== before.deposits;
    if (!opts.rescan || changed) ops.push({ type: 'put', key: CHAIN.undo(height), value: JSON.stringify(undo) });
    if (!opts.rescan) {
      ops.push({ type: 'put', key: CHAIN.hash(height), value: block.hash }, { type: 'put', key: CHAIN.tip, value: JSON.stringify({ height, hash: block.hash }) });
    } else if (knownHash === undefined) ops.push({ type: 'put', key: CHAIN.hash(height), value: block.hash });
    for (const c of coins.values()) ops.push(putOp(c));
    const final = this.stampEvents(touched, pendingEvents, tipHeight, ops);
    await this.commit(ops, final.events);
    for (const c of coins.values()) this.settleCoin(c);
    this.settleDeposits(final.records);
    for (const o of block.outputs) {
      const w = decodeTag(o.tag);
      if (w.wallet === 'cold' && w.chain === 0) this.deposits.noteUsed(w.index);
      else if (w.index + this.opts.lookahead > this.watch.highestWatched(w.wallet, w.chain)) this.watch.extend(w.wallet, w.chain, w.index + this.opts.lookahead);
    }
    if (!opts.rescan) this.tipRef = { height, hash: block.hash };
  }

  async rollbackTip(): Promise<void> {
    const tip = this.tipRef;
    if (tip === null) return;
    const [undoJson, prevHash] = await this.store.getMany([CHAIN.undo(tip.height), CHAIN.hash(tip.height - 1)]);
    const undo: BlockUndo = undoJson === undefined ? { hash: tip.hash, created: [], spent: [], deposits: [] } : (JSON.parse(undoJson) as BlockUndo);
    const spentRows = await this.store.getMany(undo.spent.map((k) => utxoKey(k)));
    const depositRows = await this.store.getMany(undo.deposits);

    const ops: BatchOp[] = [];
    const pendingEvents: PendingEvent[] = [];
    const restored: UtxoRecord[] = [];
    const touched = new Map<string, DepositRecord>();
    spentRows.forEach((v) => {
      if (v === undefined) return;
      const r = JSON.parse(v) as UtxoRecord;
      if (r.spentBy?.height !== tip.height) return;
      restored.push({ ...r, spentBy: null });
    });
    const removed = new Set(undo.created);
    for (const r of restored) if (!removed.has(outpointKey(r.txid, r.vout))) ops.push(putOp(r));
    for (const k of undo.created) ops.push({ type: 'del', key: utxoKey(k) });
    depositRows.forEach((v, i) => {
      if (v === undefined) return;
      const d = JSON.parse(v) as DepositRecord;
      if (d.height !== tip.height) return;
      const dkey = undo.deposits[i] as string;
      touched.set(dkey, { ...d, state: 'reorged', height: null, blockHash: null, confirmedAt: null });
      pendingEvents.push({ type: 'deposit.reorged', data: { reason: 'block-disconnected', wasConfirmed: d.state === 'confirmed', disconnectedHeight: tip.height, disconnectedBlock: tip.hash }, depositKey: dkey });
    });
    ops.push({ type: 'del', key: CHAIN.undo(tip.height) }, { type: 'del', key: CHAIN.hash(tip.height) });
    const prev: BlockRef | null = prevHash === undefined ? null : { height: tip.height - 1, hash: prevHash };
    ops.push(prev === null ? { type: 'del', key: CHAIN.tip } : { type: 'put', key: CHAIN.tip, value: JSON.stringify(prev) });
    const final = this.stampEvents(touched, pendingEvents, tip.height - 1, ops);
    await this.commit(ops, final.events);
    for (const k of undo.created) {
      const [txid, vout] = splitKey(k);
      this.utxos.remove(txid, vout);
    }
    for (const r of restored) if (!removed.has(outpointKey(r.txid, r.vout))) this.utxos.put(r);
    this.settleDeposits(final.records);
    this.tipRef = prev;
  }

  // --- mempool -----------------------------------------------------------------------------------

  async applyMempool(added: readonly WalkedTransaction[], mempool: ReadonlySet<string>): Promise<void> {
    const outputs = added.flatMap((t) => t.outputs);
    const accounts = await this.accountsFor(outputs);
    const known = await this.depositsFor(outputs);
    const ops: BatchOp[] = [];
    const pendingEvents: PendingEvent[] = [];
    const coins = new Map<string, UtxoRecord>();
    const gone: UtxoRecord[] = [];
    const touched = new Map<string, DepositRecord>();
    const now = new Date(this.clock()).toISOString();

    for (const o of outputs) {
      const w = decodeTag(o.tag);
      if (this.utxos.get(o.txid, o.vout) === undefined) coins.set(outpointKey(o.txid, o.vout), newCoin(o, w, null));
      if (w.wallet !== 'cold' || w.chain !== 0) continue;
      const dkey = DEPOSITS.record(o.txid, o.vout);
      const d = known.get(dkey);
      if (d !== undefined && d.state !== 'reorged') continue;
      touched.set(dkey, this.seen(d, o, w, accounts, null, null, now));
      pendingEvents.push({ type: 'deposit.seen', data: {}, depositKey: dkey });
    }
    for (const s of added.flatMap((t) => t.spends)) {
      const key = outpointKey(s.prevTxid, s.prevVout);
      const coin = coins.get(key) ?? this.utxos.get(s.prevTxid, s.prevVout);
      if (coin !== undefined && coin.spentBy === null) coins.set(key, { ...coin, spentBy: { txid: s.txid, height: null } });
    }
    // Unconfirmed payments and spends whose transaction left the mempool without being mined. Only when
    // missing from two snapshots in a row: a node may drop a mined transaction from its mempool a moment
    // before its best block hash moves, and the next pass applies that block first.
    const missing = new Set<string>();
    const leftMempool = (txid: string): boolean => {
      if (mempool.has(txid)) return false;
      missing.add(txid);
      return this.missingBefore.has(txid);
    };
    for (const u of this.utxos.values()) {
      if (u.height === null && leftMempool(u.txid)) gone.push(u);
      else if (u.spentBy !== null && u.spentBy.height === null && leftMempool(u.spentBy.txid)) coins.set(outpointKey(u.txid, u.vout), { ...u, spentBy: null });
    }
    for (const [dkey, d] of this.pending) {
      if (d.height !== null || !leftMempool(d.txid)) continue;
      touched.set(dkey, { ...d, state: 'reorged' });
      pendingEvents.push({ type: 'deposit.reorged', data: { reason: 'left-mempool', wasConfirmed: false }, depositKey: dkey });
    }
    this.missingBefore = missing;
    if (coins.size === 0 && gone.length === 0 && touched.size === 0) return;
    for (const c of coins.values()) ops.push(putOp(c));
    for (const g of gone) ops.push({ type: 'del', key: UTXOS.record(g.txid, g.vout) });
    const final = this.stampEvents(touched, pendingEvents, this.tipRef?.height ?? 0, ops);
    await this.commit(ops, final.events);
    for (const c of coins.values()) this.settleCoin(c);
    for (const g of gone) this.utxos.remove(g.txid, g.vout);
    this.settleDeposits(final.records);
  }

  // --- helpers -----------------------------------------------------------------------------------

  /** A deposit in state seen: new, or one that was reorged coming back (it keeps its seq, to replace the index row). */
  private seen(d: DepositRecord | undefined, o: WalkedOutput, w: WatchedScript, accounts: ReadonlyMap<number, string>, height: number | null, blockHash: string | null, now: string): DepositRecord {
    if (d !== undefined) return { ...d, state: 'seen', height, blockHash, confirmedAt: null };
    return {
      txid: o.txid,
      vout: o.vout,
      address: segwitV0Address(o.script.subarray(2), BECH32_HRP[this.opts.network]),
      account: accounts.get(w.index) ?? null,
      index: w.index,
      amountSats: o.value.toString(),
      height,
      blockHash,
      state: 'seen',
      seenAt: now,
      confirmedAt: null,
      seq: -1,
    };
  }

  /** Accounts of the deposit addresses paid (one read per distinct index). */
  private async accountsFor(outputs: readonly WalkedOutput[]): Promise<Map<number, string>> {
    const indexes = [...new Set(outputs.map((o) => decodeTag(o.tag)).filter((w) => w.wallet === 'cold' && w.chain === 0).map((w) => w.index))];
    const out = new Map<number, string>();
    for (const i of indexes) {
      const r = await this.deposits.byIndex(i);
      if (r !== undefined) out.set(i, r.account);
    }
    return out;
  }

  private async depositsFor(outputs: readonly WalkedOutput[]): Promise<Map<string, DepositRecord>> {
    const keys = outputs.filter((o) => {
      const w = decodeTag(o.tag);
      return w.wallet === 'cold' && w.chain === 0;
    }).map((o) => DEPOSITS.record(o.txid, o.vout));
    const out = new Map<string, DepositRecord>();
    const missing = keys.filter((k) => {
      const p = this.pending.get(k);
      if (p !== undefined) out.set(k, p);
      return p === undefined;
    });
    const rows = missing.length === 0 ? [] : await this.store.getMany(missing);
    rows.forEach((v, i) => {
      if (v !== undefined) out.set(missing[i] as string, JSON.parse(v) as DepositRecord);
    });
    return out;
  }

  private stampEvents(touched: Map<string, DepositRecord>, pending: readonly PendingEvent[], tipHeight: number, ops: BatchOp[]): { events: CustodyEvent[]; records: Map<string, DepositRecord> } {
    return stampDepositEvents(this.events, touched, pending, tipHeight, ops);
  }

  private async commit(ops: BatchOp[], events: readonly CustodyEvent[]): Promise<void> {
    await this.store.commit(ops);
    this.events.announce(events);
    // After the caller has updated memory (listeners run on a later turn).
    if (this.changeListeners.size > 0) setImmediate(() => this.changeListeners.forEach((l) => l()));
  }

  /** A reservation made while this batch was being written wins (its own batch was written after ours). */
  private settleCoin(c: UtxoRecord): void {
    const now = this.utxos.get(c.txid, c.vout);
    this.utxos.put(now !== undefined && now.reservedBy !== c.reservedBy ? { ...c, reservedBy: now.reservedBy } : c);
  }

  private settleDeposits(records: ReadonlyMap<string, DepositRecord>): void {
    for (const [key, d] of records) {
      if (d.state === 'seen') this.pending.set(key, d);
      else this.pending.delete(key);
    }
  }
}

function newCoin(o: WalkedOutput, w: WatchedScript, height: number | null): UtxoRecord {
  return {
    txid: o.txid,
    vout: o.vout,
    valueSats: o.value.toString(),
    wallet: w.wallet,
    chain: w.chain,
    index: w.index,
    script: Buffer.from(o.script).toString('hex'),
    height,
    spentBy: null,
    reservedBy: null,
  };
}

function utxoKey(key: string): string {
  const [txid, vout] = splitKey(key);
  return UTXOS.record(txid, vout);
}

function splitKey(key: string): [string, number] {
  const i = key.lastIndexOf(':');
  return [key.slice(0, i), Number(key.slice(i + 1))];
}

