/**
 * Paying approved withdrawals (DESIGN §6): batch them, select confirmed hot coins, sign while unlocked and
 * unfrozen, write the signed transaction and its withdrawals in ONE batch before broadcasting, broadcast,
 * confirm acceptance in the mempool, and follow it on chain. After a crash, a signed transaction is
 * broadcast again, never replaced by a different one paying the same requests. A stuck one is bumped by
 * CPFP through its change. The same machinery sweeps the hot balance above its cap to cold.
 *
 * Reconciliation, not bookkeeping of events: after every block, rollback or mempool change the state of
 * each transaction of ours is derived again from its inputs' coins (spent by it, in a block or not; spent
 * by something else), so restarts and reorgs need no special path.
 */
import { CustodyError, isCustodyError } from '../errors.js';
import type { Clock } from '../types.js';
import type { ChainBackend } from '../chain/backend.js';
import type { BatchOp, Store } from '../store/db.js';
import { UTXOS, WITHDRAWALS } from '../store/layout.js';
import { parseDestination } from '../wallet/destination.js';
import { estimateVbytes, signHotTransaction, type TxOutputSpec } from '../wallet/hot-tx.js';
import { DUST_CHANGE, planPayment, type PaymentPlan, type PlanCoin } from '../wallet/payment-plan.js';
import type { Deriver } from '../wallet/derive.js';
import type { Keystore } from '../keystore/keystore.js';
import type { EventLog, CustodyEvent } from './events.js';
import type { Ledger } from './ledger.js';
import type { Operator } from './operator.js';
import { putOp, type UtxoRecord } from './utxo-set.js';
import type { WatchSet } from './watch.js';
import type { WithdrawalRecord, Withdrawals } from './withdrawals.js';
import { PayoutSender } from './payout-sender.js';
import { hotCoin, hotSigned, payoutRecord, type PayoutKind, type PayoutOptions, type PayoutRecord } from './payout-records.js';

export type { PayoutKind, PayoutOptions, PayoutRecord, PayoutState, FeePolicy } from './payout-records.js';

/** Withdrawal ids named per audit record: 200 × ~20 bytes stays far below the 16 KiB details cap. */
const AUDIT_IDS_PER_RECORD = 200;

export class Payouts {
  private readonly active = new Map<string, PayoutRecord>();
  private timer: NodeJS.Timeout | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  private changeNext: number;
  private sweepNext: number;
  private readonly clock: Clock;
  private lastAlert = new Map<string, number>();
  private cachedRate: { rate: number; at: number } | undefined;
  /** A follow-up round is reading the mempool or waiting for its turn; `followAgain`: another was asked meanwhile. */
  private following = false;
  private followAgain = false;
  /** A signing pass is queued and has not started. */
  private passWanted = false;
  private readonly sender: PayoutSender;

  private constructor(
    private readonly store: Store,
    private readonly events: EventLog,
    private readonly withdrawals: Withdrawals,
    private readonly ledger: Ledger,
    private readonly watch: WatchSet,
    private readonly keystore: Keystore,
    private readonly operator: Operator,
    private readonly backend: ChainBackend,
    private readonly coldChange: Deriver,
    private readonly hotChange: Deriver,
    private readonly opts: PayoutOptions,
    counters: { change: number; sweep: number },
  ) {
    this.changeNext = counters.change;
    this.sweepNext = counters.sweep;
    this.clock = opts.clock ?? Date.now;
    this.sender = new PayoutSender(backend, this.clock, {
      ...(opts.log === undefined ? {} : { log: opts.log }),
      afterSend: () => this.opts.fault?.('after-broadcast'),
      // A node that will not keep it: its withdrawals wait and its coins stay reserved, so say so.
      notAccepted: (n) => this.alert('alert.stuck', { txid: n.txid, kind: this.active.get(n.txid)?.kind ?? null, reason: 'the node does not keep it in its mempool', resends: n.resends, lastError: n.lastError }),
    });
  }

  static async open(
    store: Store,
    events: EventLog,
    withdrawals: Withdrawals,
    ledger: Ledger,
    watch: WatchSet,
    keystore: Keystore,
    operator: Operator,
    backend: ChainBackend,
    derivers: { cold: Deriver; hot: Deriver },
    opts: PayoutOptions,
  ): Promise<Payouts> {
    const [change, sweep] = await store.getMany([WITHDRAWALS.changeIndex, WITHDRAWALS.sweepIndex]);
    const p = new Payouts(store, events, withdrawals, ledger, watch, keystore, operator, backend, derivers.cold, derivers.hot, opts, {
      change: change === undefined ? 0 : Number(change),
      sweep: sweep === undefined ? 0 : Number(sweep),
    });
    for (let from: string = WITHDRAWALS.payoutsFrom; ; ) {
      const page = await store.range(from, WITHDRAWALS.payoutsTo, 1_000);
      for (const [, v] of page) {
        const r = JSON.parse(v) as PayoutRecord;
        if (r.state !== 'failed' && !(r.state === 'confirmed' && r.height !== null && r.height < (ledger.tip()?.height ?? 0) - 100)) p.active.set(r.txid, r);
      }
      if (page.length < 1_000) break;
      from = `${(page[page.length - 1] as [string, string])[0]}\u0000`;
    }
    watch.extend('hot', 1, p.changeNext + opts.lookahead);
    watch.extend('cold', 1, p.sweepNext + opts.lookahead);
    return p;
  }

  start(): void {
    this.withdrawals.onApproved(() => this.schedule(this.withdrawals.waitingCount >= this.opts.maxOutputs ? 0 : this.opts.batchWindowMs));
    // A block, rollback or mempool change: follow our transactions now, but do not cut a batch window short.
    this.ledger.onChange(() => this.followUpSoon());
    // Unlock and unfreeze are noticed within a second; the batch window still applies.
    this.ticker = setInterval(() => {
      this.followUpSoon();
      if (this.withdrawals.waitingCount > 0) this.schedule(this.opts.batchWindowMs);
    }, 1_000);
    this.ticker.unref();
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.ticker !== undefined) clearInterval(this.ticker);
    await this.running;
  }

  /** Runs `fn` after everything queued before it; resolves when it has run (or failed, which is logged). */
  private enqueue(fn: () => Promise<void>): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const run = this.running.then(fn).catch((err: unknown) => this.opts.log?.(`payouts: ${(err as Error).message}`));
    this.running = run;
    return run;
  }

  /**
   * Follows our transactions. The node's mempool, when some transaction's state depends on it, is read
   * before joining the queue, not in it: with a busy mempool the call takes tens of milliseconds, and a
   * signing pass waiting behind it was most of a withdrawal's time from request to signature (measured:
   * ~10-25 ms of ~30). Asks that come while a round is under way are merged into one more round.
   */
  private followUpSoon(): void {
    if (this.stopped) return;
    if (this.following) {
      this.followAgain = true;
      return;
    }
    this.following = true;
    void (async () => {
      try {
        do {
          this.followAgain = false;
          const mempool = await this.mempoolIfNeeded();
          await this.enqueue(async () => {
            await this.reconcile(mempool);
            if (this.canSign()) await this.capHotBalance();
          });
        } while (this.followAgain && !this.stopped);
      } finally {
        this.following = false;
      }
    })();
  }

  /**
   * The node's mempool if the state of a transaction we follow depends on it (signed, or broadcast with
   * something changed); undefined if none does; null if the node did not answer.
   */
  private async mempoolIfNeeded(): Promise<Set<string> | null | undefined> {
    const tip = this.ledger.tip()?.height ?? 0;
    if (![...this.active.values()].some((p) => p.state === 'signed' || (p.state === 'broadcast' && !this.unchanged(p, tip)))) return undefined;
    try {
      return new Set(await this.backend.getRawMempool());
    } catch (err) {
      this.opts.log?.(`payouts: reading the node's mempool: ${(err as Error).message}`);
      return null;
    }
  }

  /** Runs a pass after `ms` (the batch window), unless one is already due sooner. */
  schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer !== undefined && ms > 0) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (ms === 0) {
      this.passDue(); // not setTimeout(0), which waits at least a millisecond
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.passDue();
    }, ms);
  }

  /** A pass is due: queued, and taken early by a reconciliation under way, at its next safe point. */
  private passDue(): void {
    if (this.passWanted) return; // one is queued already
    this.passWanted = true;
    void this.enqueue(() => this.pass());
  }

  list(): PayoutRecord[] {
    return [...this.active.values()];
  }

  /** A transaction this daemon follows (from the active set, else the data dir). */
  async payout(txid: string): Promise<PayoutRecord | undefined> {
    const live = this.active.get(txid);
    if (live !== undefined) return live;
    const v = await this.store.get(WITHDRAWALS.payout(txid));
    return v === undefined ? undefined : (JSON.parse(v) as PayoutRecord);
  }

  /**
   * The next cold chain-1 index (shared by hot→cold sweeps and cold PSBT change, so no two transactions
   * pay the same address) and the row that records it; the caller commits the row with its own batch.
   */
  takeColdChangeIndex(): { index: number; op: BatchOp } {
    const index = this.sweepNext++;
    this.watch.extend('cold', 1, this.sweepNext + this.opts.lookahead);
    return { index, op: { type: 'put', key: WITHDRAWALS.sweepIndex, value: String(this.sweepNext) } };
  }

  /**
   * Follows a transaction signed elsewhere (a cold PSBT sweep put together by service/sweeps.ts) exactly
   * like one of its own: written before it is sent, sent again until the node has it, confirmed, rolled
   * back on a reorg, failed if its coins are spent otherwise. `extra` is called in the same synchronous
   * turn as the commit of the batch that records it, so audit and event records it appends land in
   * sequence order (audit/log.ts: append, then commit, no await between).
   */
  async adopt(p: PayoutRecord, coins: readonly UtxoRecord[], extra: () => BatchOp[]): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.enqueue(async () => {
        try {
          await this.persist(p, [], coins, extra);
          resolve();
        } catch (err) {
          reject(err as Error);
        }
      });
    });
  }

  /** Called with the sats a refill should bring when the confirmed hot balance is below hot.minSats. */
  onHotLow: ((refillSats: bigint) => void) | undefined;

  /** Pays what is waiting (signing first: following up on earlier transactions can wait for the next turn). */
  private async pass(): Promise<void> {
    this.passWanted = false;
    if (!this.canSign()) return;
    while (this.withdrawals.waitingCount > 0 && !this.stopped && this.canSign()) {
      const paid = await this.payBatch(this.withdrawals.waiting(this.opts.maxOutputs));
      if (!paid) break;
    }
    await this.capHotBalance();
  }

  private now(): string {
    return new Date(this.clock()).toISOString();
  }

  private canSign(): boolean {
    // A broken store (a write failed) refuses every commit: signing would only use the hot key for nothing.
    return this.keystore.status().state === 'unlocked' && this.operator.frozen === null && this.ledger.tip() !== null && !this.store.isBroken && (this.opts.signingBlocked?.() ?? null) === null;
  }

  // --- building and signing -------------------------------------------------------------------

  /**
   * The fee rate: the node's estimate for the target, clamped to the configured bounds, or the fallback
   * when it has none. Kept for 30 s: estimates move with blocks, not per batch, and the call is on the
   * path from request to signature.
   */
  async feeRate(): Promise<number> {
    const now = this.clock();
    if (this.cachedRate !== undefined && now - this.cachedRate.at < 30_000) return this.cachedRate.rate;
    const f = this.opts.fee;
    let estimate: number | null = null;
    try {
      estimate = await this.backend.estimateSmartFee(f.targetBlocks);
    } catch (err) {
      if (!isCustodyError(err)) throw err;
    }
    const rate = Math.min(f.maxSatPerVb, Math.max(f.minSatPerVb, estimate ?? f.fallbackSatPerVb));
    this.cachedRate = { rate, at: now };
    return rate;
  }

  private spendable(): UtxoRecord[] {
    return [...this.ledger.utxos.values()].filter((u) => u.wallet === 'hot' && u.height !== null && u.spentBy === null && u.reservedBy === null);
  }

  /** Pays a batch of approved withdrawals in one transaction. False when it cannot now (funds, fee cap). */
  private async payBatch(batch: readonly WithdrawalRecord[]): Promise<boolean> {
    // Held from here on: no cancel can slip in between reading them and signing for them.
    this.withdrawals.hold(batch);
    let committed = false;
    try {
      const outputs: TxOutputSpec[] = batch.map((w) => ({ script: parseDestination(w.address, this.ledger.network).script, value: BigInt(w.amountSats) }));
      const built = this.build(outputs, await this.feeRate(), 'withdrawals');
      if (built === null) {
        this.withdrawals.requeue(batch);
        return false;
      }
      this.opts.fault?.('after-approval');
      const tx = this.sign(built.coins, built.outputs);
      this.opts.fault?.('after-sign');
      const at = this.now();
      const signed = batch.map((w, vout) => ({ ...w, state: 'signed' as const, txid: tx.getId(), vout, updatedAt: at }));
      await this.persist(payoutRecord(tx, 'withdrawals', built, signed.map((w) => w.id), null, this.now()), signed, built.coins, [], () => (committed = true));
    } catch (err) {
      // Never back in the queue once the signed transaction is on disk: that would pay them twice.
      if (!committed) {
        this.withdrawals.requeue(batch);
        // The same batch comes first again at the next pass: a failure that repeats holds up every
        // withdrawal behind it, so say so (error messages never hold secrets, errors.ts).
        this.alert('alert.signing_failed', { withdrawals: batch.length, first: batch[0]?.id ?? null, reason: (err as Error).message.slice(0, 300) });
      }
      throw err;
    }
    return true;
  }

  private build(outputs: readonly TxOutputSpec[], feeRate: number, kind: PayoutKind): (Omit<PaymentPlan<PlanCoin>, 'coins'> & { coins: UtxoRecord[] }) | null {
    const records = new Map(this.spendable().map((c) => [`${c.txid}:${c.vout}`, c]));
    const coins = [...records].map(([id, c]) => ({ id, value: BigInt(c.valueSats) }));
    const r = planPayment({ coins, outputs, feeRate, change: { script: this.hotChange.script(1, this.changeNext), index: this.changeNext }, maxFeeSats: this.opts.fee.maxFeeSats });
    if (r.ok) return { ...r.plan, coins: r.plan.coins.map((c) => records.get(c.id) as UtxoRecord) };
    if (r.reason === 'insufficient_funds') this.alert('alert.insufficient_funds', { kind, neededSats: Number(r.neededSats), spendableSats: Number(r.spendableSats) });
    else this.alert('alert.fee_cap', { kind, feeSats: Number(r.feeSats), maxFeeSats: Number(this.opts.fee.maxFeeSats), feeRate });
    return null;
  }

  private sign(coins: readonly UtxoRecord[], outputs: readonly TxOutputSpec[]): import('bitcoinjs-lib').Transaction {
    return signHotTransaction(this.keystore.hotAccount(), coins.map(hotCoin), outputs, this.keystore.hotChains());
  }

  /** The signed transaction, its withdrawals, the coins it reserves and the change counter: one batch, before broadcast. */
  private async persist(p: PayoutRecord, signed: readonly WithdrawalRecord[], coins: readonly UtxoRecord[], extra: readonly BatchOp[] | (() => BatchOp[]) = [], onCommitted?: () => void): Promise<void> {
    const reserved = coins.map((c) => ({ ...c, reservedBy: p.txid }));
    // Every signature the hot key makes is on record, in the batch that keeps the transaction.
    // A cold PSBT sweep was signed by the custodians, not here: it is recorded, not signed (sweeps.ts audits the import).
    // Built in one synchronous stretch; if any append is refused (the audit screen, the size cap), every
    // record and event appended so far is taken back, so no sequence number is left that is never stored.
    const audit = this.opts.audit;
    const marks = { events: this.events.mark(), audit: audit?.mark() };
    let ops: BatchOp[];
    let staged: ReturnType<Withdrawals['stage']>;
    let kindEvent: ReturnType<EventLog['append']>;
    try {
      ({ ops, staged, kindEvent } = this.payoutBatch(p, signed, reserved, extra));
    } catch (err) {
      this.events.rollback(marks.events);
      if (audit !== undefined && marks.audit !== undefined) audit.rollback(marks.audit);
      throw err;
    }
    await this.store.commit(ops);
    onCommitted?.();
    for (const c of reserved) this.ledger.utxos.put(c);
    if (p.change !== null) {
      this.changeNext = p.change.index + 1;
      this.watch.extend('hot', 1, this.changeNext + this.opts.lookahead);
    }
    this.withdrawals.settle(signed);
    this.events.announce([...staged.events, kindEvent.event]);
    this.active.set(p.txid, p);
    this.opts.fault?.('after-persist');
    // Durable now: sending is not on the signing path. The follow-up after it sees it in the mempool and
    // moves it to broadcast; if the send is lost, a reconciliation sends it again.
    void this.sender.send(p).then(() => this.followUpSoon());
  }

  /** The batch that keeps a signed transaction: its record, coins, withdrawals, events and audit records (appended here). */
  private payoutBatch(
    p: PayoutRecord,
    signed: readonly WithdrawalRecord[],
    reserved: readonly UtxoRecord[],
    extra: readonly BatchOp[] | (() => BatchOp[]),
  ): { ops: BatchOp[]; staged: ReturnType<Withdrawals['stage']>; kindEvent: ReturnType<EventLog['append']> } {
    const ops: BatchOp[] = [{ type: 'put', key: WITHDRAWALS.payout(p.txid), value: JSON.stringify(p) }, ...reserved.map((c) => putOp(c))];
    if (p.change !== null) ops.push({ type: 'put', key: WITHDRAWALS.changeIndex, value: String(p.change.index + 1) });
    if (this.opts.audit !== undefined) {
      // An audit record's details are capped (16 KiB): a batch of up to 1,000 withdrawals is named over
      // several records of at most AUDIT_IDS_PER_RECORD ids, all in this batch. (One record of 800+ ids
      // was refused, the batch requeued, and retried forever: nothing else was signed.)
      const action = hotSigned(p.kind) || p.kind === 'cpfp' ? 'payout.sign' : 'payout.record';
      const parts = Math.max(1, Math.ceil(p.withdrawals.length / AUDIT_IDS_PER_RECORD));
      for (let part = 0; part < parts; part++) {
        const ids = p.withdrawals.slice(part * AUDIT_IDS_PER_RECORD, (part + 1) * AUDIT_IDS_PER_RECORD);
        const details =
          part === 0
            ? { txid: p.txid, kind: p.kind, withdrawals: [...ids], feeSats: Number(p.feeSats), parent: p.parent, ...(parts > 1 ? { part: 1, parts, withdrawalCount: p.withdrawals.length } : {}) }
            : { txid: p.txid, withdrawals: [...ids], part: part + 1, parts };
        ops.push(...this.opts.audit.append('system', part === 0 ? action : `${action}.more`, details).ops);
      }
    }
    const staged = this.withdrawals.stage(signed);
    ops.push(...staged.ops, ...(typeof extra === 'function' ? extra() : extra));
    const kindEvent = this.events.append(`payout.signed`, { txid: p.txid, kind: p.kind, withdrawals: p.withdrawals.length, feeSats: Number(p.feeSats), feeRate: p.feeRate, parent: p.parent });
    ops.push(...kindEvent.ops);
    return { ops, staged, kindEvent };
  }

  // --- broadcast and reconciliation ------------------------------------------------------------


  /** Moves a payout and its withdrawals to a new state in one batch, with events. */
  private async transition(p: PayoutRecord, change: Partial<PayoutRecord>, withdrawalState: WithdrawalRecord['state'] | null, extra: readonly BatchOp[] = [], released: readonly UtxoRecord[] = []): Promise<PayoutRecord> {
    const next: PayoutRecord = { ...p, ...change };
    const at = new Date(this.clock()).toISOString();
    const records: WithdrawalRecord[] = [];
    if (withdrawalState !== null) {
      for (const id of p.withdrawals) {
        const w = await this.withdrawals.record(id);
        if (w !== undefined && w.state !== withdrawalState) records.push({ ...w, state: withdrawalState, height: next.height, updatedAt: at, ...(next.failure === null ? {} : { failure: next.failure }) });
      }
    }
    const staged = this.withdrawals.stage(records);
    const e = this.events.append(`payout.${next.state}`, { txid: p.txid, kind: p.kind, height: next.height, ...(next.failure === null ? {} : { failure: next.failure }) });
    const ops: BatchOp[] = [{ type: 'put', key: WITHDRAWALS.payout(p.txid), value: JSON.stringify(next) }, ...staged.ops, ...e.ops, ...extra, ...released.map((c) => putOp(c))];
    await this.store.commit(ops);
    for (const c of released) this.ledger.utxos.put(c);
    this.withdrawals.settle(records);
    this.events.announce([...staged.events, e.event]);
    if (next.state === 'failed') {
      this.active.delete(p.txid);
      this.sender.forget(p.txid);
    } else this.active.set(p.txid, next);
    return next;
  }

  private async inputCoins(p: PayoutRecord): Promise<Array<UtxoRecord | undefined>> {
    const rows = await this.store.getMany(p.inputs.map((i) => UTXOS.record(i.txid, i.vout)));
    return rows.map((v) => (v === undefined ? undefined : (JSON.parse(v) as UtxoRecord)));
  }

  /**
   * What the in-memory coin set already proves, without a read: a broadcast transaction whose inputs are
   * all spent by it in the mempool is still waiting (unless it is due a bump); a confirmed one whose
   * inputs have left the live set is still mined (a rollback would have put them back).
   */
  private unchanged(p: PayoutRecord, tip: number): boolean {
    const live = p.inputs.map((i) => this.ledger.utxos.get(i.txid, i.vout));
    if (p.state === 'confirmed') return live.every((c) => c === undefined);
    if (p.state !== 'broadcast') return false;
    const waiting = live.every((c) => c !== undefined && c.spentBy?.txid === p.txid && c.spentBy.height === null);
    const dueBump = p.bumpedBy === null && hotSigned(p.kind) && p.broadcastHeight !== null && tip - p.broadcastHeight >= this.opts.bumpAfterBlocks;
    return waiting && !dueBump;
  }

  /**
   * Derives each transaction's state again from the chain as the ledger sees it, and from `mempool`, the
   * node's mempool read just before (undefined: not read, as nothing needed it then; null: the node did
   * not answer). Only our own data is read and written here; transactions to send again are sent after it,
   * outside the queue (a node that refuses one is asked again at the next round, not in a loop: some nodes
   * answer a txid even when they refuse, so only the mempool says a transaction is there).
   */
  private async reconcile(mempool: Set<string> | null | undefined): Promise<void> {
    const tip = this.ledger.tip()?.height ?? 0;
    const resend: PayoutRecord[] = [];
    for (const p of [...this.active.values()]) {
      // A signing pass due meanwhile goes first, here between two transactions (a safe point: nothing of
      // this one read yet), so following up never sits on a withdrawal's path to its signature.
      if (this.passWanted) {
        try {
          await this.pass();
        } catch (err) {
          // Its own failure (already requeued and alerted): the rest of this round still runs.
          this.opts.log?.(`payouts: ${(err as Error).message}`);
        }
      }
      // 100 blocks deep: no reorg will take it back; stop following it (the record stays on disk).
      if (p.state === 'confirmed' && p.height !== null && p.height < tip - 100) {
        this.active.delete(p.txid);
        this.sender.forget(p.txid);
        continue;
      }
      if (this.unchanged(p, tip)) continue;
      const coins = await this.inputCoins(p);
      const minedAt = coins.every((c) => c?.spentBy?.txid === p.txid && c.spentBy.height !== null) ? (coins[0]?.spentBy?.height ?? null) : null;
      const conflict = coins.find((c) => c !== undefined && c.spentBy !== null && c.spentBy.txid !== p.txid && c.spentBy.height !== null);
      if (minedAt !== null) {
        if (p.state !== 'confirmed' || p.height !== minedAt) await this.transition(p, { state: 'confirmed', height: minedAt }, 'confirmed');
        continue;
      }
      if (conflict !== undefined) {
        // Another transaction spent our input in a block: this one can never confirm. Release what it held.
        const released = coins.filter((c): c is UtxoRecord => c !== undefined && c.reservedBy === p.txid && c.spentBy === null).map((c) => ({ ...c, reservedBy: null }));
        await this.transition(p, { state: 'failed', failure: `input ${conflict.txid}:${conflict.vout} was spent by ${conflict.spentBy?.txid} in block ${conflict.spentBy?.height}` }, 'failed', [], released);
        continue;
      }
      if (p.state === 'confirmed') {
        // A reorg took its block: back to broadcast, and send it again.
        resend.push(await this.transition(p, { state: 'broadcast', height: null, broadcastHeight: tip }, 'broadcast'));
        continue;
      }
      if (mempool === undefined) {
        // It needs the mempool, which was not read when the round began (it was signed since): one more round.
        this.followAgain = true;
        continue;
      }
      if (mempool === null) continue; // the node did not answer: the next round asks again
      if (!mempool.has(p.txid)) {
        resend.push(p);
        continue;
      }
      this.sender.accepted(p.txid);
      if (p.state === 'signed') await this.transition(p, { state: 'broadcast', broadcastHeight: tip }, 'broadcast');
      else if (this.canSign() && p.bumpedBy === null && hotSigned(p.kind) && p.broadcastHeight !== null && tip - p.broadcastHeight >= this.opts.bumpAfterBlocks) await this.bump(p);
    }
    for (const p of resend) this.sender.resend(p);
  }

  /**
   * Child pays for parent: spends the stuck transaction's change back to the hot wallet with a fee that
   * lifts the pair to the current rate. The withdrawals are untouched (their velocity was charged once).
   */
  private async bump(parent: PayoutRecord): Promise<void> {
    if (parent.change === null) {
      this.alert('alert.stuck', { txid: parent.txid, reason: 'no change output to bump from', blocks: (this.ledger.tip()?.height ?? 0) - (parent.broadcastHeight ?? 0) });
      return;
    }
    const rate = Math.max(await this.feeRate(), parent.feeRate + 1);
    const coin = this.ledger.utxos.get(parent.txid, parent.change.vout);
    if (coin === undefined || coin.spentBy !== null) return;
    const changeIndex = this.changeNext;
    const script = this.hotChange.script(1, changeIndex);
    const vbytes = estimateVbytes(1, [script]);
    const fee = BigInt(Math.ceil((vbytes + parent.vbytes) * rate)) - BigInt(parent.feeSats);
    const value = BigInt(coin.valueSats) - fee;
    if (fee <= 0n || value < DUST_CHANGE) {
      this.alert('alert.stuck', { txid: parent.txid, reason: 'its change cannot pay the bump', feeSats: Number(fee) });
      return;
    }
    if (fee > this.opts.fee.maxFeeSats) {
      this.alert('alert.fee_cap', { kind: 'cpfp', feeSats: Number(fee), maxFeeSats: Number(this.opts.fee.maxFeeSats) });
      return;
    }
    const inputCoin = { ...coin, height: coin.height };
    const tx = signHotTransaction(this.keystore.hotAccount(), [hotCoin(inputCoin)], [{ script, value }], this.keystore.hotChains());
    const child = payoutRecord(tx, 'cpfp', { coins: [inputCoin], change: { vout: 0, index: changeIndex, value }, fee, vbytes, feeRate: rate }, [], parent.txid, this.now());
    const updatedParent: PayoutRecord = { ...parent, bumpedBy: child.txid };
    this.opts.log?.(`payouts: ${parent.txid} stuck for ${this.opts.bumpAfterBlocks} blocks; child ${child.txid} pays ${fee} sats for both`);
    await this.persist(child, [], [inputCoin], [{ type: 'put', key: WITHDRAWALS.payout(parent.txid), value: JSON.stringify(updatedParent) }]);
    // Only once the child is durable: a failed write must leave the parent free to be bumped again.
    this.active.set(parent.txid, updatedParent);
  }

  // --- hot cap --------------------------------------------------------------------------------

  /**
   * Above hot.maxSats (confirmed), sweep down to hot.targetSats into the next cold chain-1 address, derived
   * here from the cold descriptor and checked to be a script the daemon watches as cold change. Below
   * hot.minSats, alert (the refill PSBT is written by the sweep tooling).
   */
  private async capHotBalance(): Promise<void> {
    const cap = this.opts.hot;
    if (cap === null) return;
    if ([...this.active.values()].some((p) => p.kind === 'sweep' && p.state !== 'confirmed')) return;
    const confirmed = this.ledger.balances().hot.confirmedSats;
    if (confirmed < cap.minSats) {
      this.alert('alert.hot_low', { confirmedSats: Number(confirmed), minSats: Number(cap.minSats), refillSats: Number(cap.targetSats - confirmed) }, 3_600_000);
      this.onHotLow?.(cap.targetSats - confirmed);
    }
    if (confirmed <= cap.maxSats || this.withdrawals.waitingCount > 0) return;
    const index = this.sweepNext;
    const out = this.coldChange.derive(1, index);
    // The destination must be what the cold descriptor derives and what the follower counts as cold.
    const again = this.coldChange.script(1, index);
    if (Buffer.compare(Buffer.from(out.script), Buffer.from(again)) !== 0) throw new CustodyError('INTERNAL', 'cold change derivation is not deterministic; refusing to sweep');
    const built = this.build([{ script: out.script, value: confirmed - cap.targetSats }], await this.feeRate(), 'sweep');
    if (built === null) return;
    const tx = this.sign(built.coins, built.outputs);
    const p = payoutRecord(tx, 'sweep', built, [], null, this.now());
    this.opts.log?.(`payouts: hot balance ${confirmed} above ${cap.maxSats}: sweeping ${confirmed - cap.targetSats} sats to cold ${out.address} (${out.path})`);
    this.sweepNext = index + 1;
    this.watch.extend('cold', 1, this.sweepNext + this.opts.lookahead);
    await this.persist(p, [], built.coins, [{ type: 'put', key: WITHDRAWALS.sweepIndex, value: String(index + 1) }]);
  }

  /** An alert event, at most once per `everyMs` per type. */
  private alert(type: string, data: Record<string, unknown>, everyMs = 600_000): void {
    const now = this.clock();
    if ((this.lastAlert.get(type) ?? -Infinity) > now - everyMs) return;
    this.lastAlert.set(type, now);
    this.opts.log?.(`${type}: ${JSON.stringify(data)}`);
    const { event, ops } = this.events.append(type, data);
    // A failed write (the store is then broken, and says so in every later commit) is already logged above.
    void this.store.commit(ops).then(() => this.events.announce([event as CustodyEvent]), () => undefined);
  }
}
