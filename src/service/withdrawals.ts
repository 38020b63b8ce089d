/**
 * Withdrawal requests and their state (DESIGN §6): created (idempotent by requestId per client), checked
 * by policy, waiting for approvals when large, approved (velocity charged), then handed to the payouts
 * service, which signs, persists, broadcasts and follows them on chain. Cancelled or failed ones release
 * their charge. Every change is one batch with its events.
 *
 *   pending_approval → approved → signed → broadcast → confirmed
 *        ↓ (reject/cancel)  ↓ (cancel)                 ↓ (conflict)   ↑↓ (reorg: back to broadcast)
 *     rejected/cancelled  cancelled                  failed
 */
import { looksSecret } from '../audit/screen.js';
import { CustodyError } from '../errors.js';
import type { Clock, Network } from '../types.js';
import type { BatchOp, Store } from '../store/db.js';
import { WITHDRAWALS, withdrawalId } from '../store/layout.js';
import { parseDestination } from '../wallet/destination.js';
import { assertNotFrozen, checkApprover, decide, type WithdrawalPolicy } from '../policy/rules.js';
import { checkVelocity, remainingAllowance, windowUse, type Charge, type WindowUse } from '../policy/velocity.js';
import type { CustodyEvent, EventLog } from './events.js';
import type { AuditLog } from '../audit/log.js';

export type WithdrawalState = 'pending_approval' | 'approved' | 'signed' | 'broadcast' | 'confirmed' | 'failed' | 'cancelled' | 'rejected';

export interface WithdrawalRecord {
  readonly id: string;
  readonly requestId: string;
  /** The client that asked (requestIds are unique per client). */
  readonly client: string;
  readonly address: string;
  readonly amountSats: string;
  readonly account: string | null;
  readonly memo: string | null;
  readonly state: WithdrawalState;
  readonly requiredApprovals: number;
  readonly approvals: readonly string[];
  readonly createdAt: string;
  readonly approvedAt: string | null;
  readonly txid: string | null;
  readonly vout: number | null;
  readonly height: number | null;
  readonly failure: string | null;
  readonly updatedAt: string;
}

/** As clients see it: amounts as JSON numbers. */
export type WithdrawalView = Omit<WithdrawalRecord, 'amountSats'> & { readonly amountSats: number };

export interface CreateWithdrawal {
  readonly requestId: string;
  readonly address: string;
  readonly amountSats: bigint;
  readonly account?: string;
  readonly memo?: string;
}

export interface WithdrawalOptions {
  readonly network: Network;
  readonly policy: WithdrawalPolicy;
  /** While locked: accept and queue, or refuse with WALLET_LOCKED. */
  readonly whenLocked: 'queue' | 'refuse';
  readonly isLocked: () => boolean;
  /** An operator's freeze refuses new withdrawals and approvals (DESIGN §6: frozen? is the first rule). */
  readonly frozen?: () => { readonly reason: string } | null;
  /** Every request, approval, rejection and cancellation is on record, in the batch of the change. */
  readonly audit?: AuditLog;
  readonly clock?: Clock;
}

interface AuditEntry {
  readonly actor: string;
  readonly action: string;
  readonly details: Record<string, unknown>;
}

interface PendingCreate {
  readonly req: CreateWithdrawal;
  readonly client: string;
  readonly destination: ReturnType<typeof parseDestination>;
  readonly resolve: (w: WithdrawalView & { created: boolean }) => void;
  readonly reject: (err: unknown) => void;
}

const ACTIVE: ReadonlySet<WithdrawalState> = new Set(['approved', 'signed', 'broadcast', 'confirmed']);
const PRINTABLE = /^[^\u0000-\u001f\u007f-\u009f]*$/;

function auditDetails(r: WithdrawalRecord): Record<string, unknown> {
  return { id: r.id, requestId: r.requestId, client: r.client, address: r.address, amountSats: Number(r.amountSats), state: r.state, approvals: [...r.approvals] };
}

export function view(r: WithdrawalRecord): WithdrawalView {
  return { ...r, amountSats: Number(r.amountSats) };
}

export class Withdrawals {
  private next: number;
  /** Velocity charges of approved withdrawals not cancelled or failed (the longest window's worth and more). */
  private charges: Charge[] = [];
  /** Approved withdrawals not yet in a transaction, oldest first (what the payouts service batches). */
  private readonly queue = new Map<string, WithdrawalRecord>();
  private serial: Promise<unknown> = Promise.resolve();
  private readonly clock: Clock;
  private readonly listeners = new Set<() => void>();
  private readonly pendingCreates: PendingCreate[] = [];
  private readonly held = new Set<string>();

  private constructor(
    private readonly store: Store,
    private readonly events: EventLog,
    private readonly opts: WithdrawalOptions,
    next: number,
  ) {
    this.next = next;
    this.clock = opts.clock ?? Date.now;
  }

  static async open(store: Store, events: EventLog, opts: WithdrawalOptions): Promise<Withdrawals> {
    const next = await store.get(WITHDRAWALS.next);
    const w = new Withdrawals(store, events, opts, next === undefined ? 0 : Number(next));
    for (let from: string = WITHDRAWALS.from; ; ) {
      const page = await store.range(from, WITHDRAWALS.to, 5_000);
      for (const [, v] of page) w.remember(JSON.parse(v) as WithdrawalRecord);
      if (page.length < 5_000) break;
      from = `${(page[page.length - 1] as [string, string])[0]}\u0000`;
    }
    return w;
  }

  private remember(r: WithdrawalRecord): void {
    if (ACTIVE.has(r.state) && r.approvedAt !== null) this.charges.push({ id: r.id, client: r.client, amountSats: BigInt(r.amountSats), at: Date.parse(r.approvedAt) });
    if (r.state === 'approved') this.queue.set(r.id, r);
  }

  /** Called when approved withdrawals are waiting (the payouts service batches them). */
  onApproved(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Approved withdrawals waiting for a transaction, oldest first. */
  waiting(limit: number): WithdrawalRecord[] {
    return [...this.queue.values()].slice(0, limit);
  }

  get waitingCount(): number {
    return this.queue.size;
  }

  /** Serialises every state change, so policy sees each approval before deciding the next. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.serial.then(fn, fn);
    this.serial = run.catch(() => undefined);
    return run;
  }

  /**
   * Accepts a withdrawal request. Requests arriving together are decided one after another (each sees
   * the charges of those before it) and written in one fsync'd batch: a group commit, as for addresses.
   */
  create(req: CreateWithdrawal, client: string): Promise<WithdrawalView & { created: boolean }> {
    let destination: ReturnType<typeof parseDestination>;
    try {
      destination = parseDestination(req.address, this.opts.network);
      // It goes into the audit record of the group commit: refused here, for this request only.
      if (looksSecret(req.requestId)) throw new CustodyError('INVALID_ARGUMENT', 'requestId: looks like a private key; it goes into the audit log, and secrets never may', { field: 'requestId' });
      if (req.account !== undefined && (req.account.length === 0 || req.account.length > 128 || !PRINTABLE.test(req.account))) {
        throw new CustodyError('INVALID_ARGUMENT', 'account: expected 1 to 128 printable characters', { field: 'account' });
      }
      if (req.memo !== undefined && (req.memo.length > 256 || !PRINTABLE.test(req.memo))) throw new CustodyError('INVALID_ARGUMENT', 'memo: expected at most 256 printable characters', { field: 'memo' });
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.pendingCreates.push({ req, client, destination, resolve, reject });
      if (this.pendingCreates.length === 1) setImmediate(() => void this.exclusive(() => this.flushCreates()));
    });
  }

  private async flushCreates(): Promise<void> {
    const group = this.pendingCreates.splice(0);
    if (group.length === 0) return;
    let known: (string | undefined)[];
    try {
      known = await this.store.getMany(group.map((g) => WITHDRAWALS.requestId(g.client, g.req.requestId)));
    } catch (err) {
      for (const g of group) g.reject(err);
      return;
    }
    const now = this.clock();
    const at = new Date(now).toISOString();
    const charges = [...this.charges];
    const fresh: Array<{ g: PendingCreate; record: WithdrawalRecord }> = [];
    const repeats: Array<{ g: PendingCreate; id: string }> = [];
    const inGroup = new Map<string, string>();
    const ops: BatchOp[] = [];
    let next = this.next;
    group.forEach((g, i) => {
      const key = WITHDRAWALS.requestId(g.client, g.req.requestId);
      const earlier = known[i] ?? inGroup.get(key);
      if (earlier !== undefined) {
        repeats.push({ g, id: earlier });
        return;
      }
      try {
        assertNotFrozen(this.opts.frozen?.() ?? null);
        if (this.opts.whenLocked === 'refuse' && this.opts.isLocked()) {
          throw new CustodyError('WALLET_LOCKED', 'the hot wallet is locked; withdrawals are refused until custodians unlock it (withdrawals.whenLocked = "refuse")');
        }
        const decision = decide({ client: g.client, address: g.destination.address, amountSats: g.req.amountSats, dustSats: g.destination.dustSats }, this.opts.policy, charges, now);
        const id = withdrawalId(next++);
        const record: WithdrawalRecord = {
          id,
          requestId: g.req.requestId,
          client: g.client,
          address: g.destination.address,
          amountSats: g.req.amountSats.toString(),
          account: g.req.account ?? null,
          memo: g.req.memo ?? null,
          state: decision.kind,
          requiredApprovals: decision.kind === 'pending_approval' ? decision.approvals : 0,
          approvals: [],
          createdAt: at,
          approvedAt: decision.kind === 'approved' ? at : null,
          txid: null,
          vout: null,
          height: null,
          failure: null,
          updatedAt: at,
        };
        if (decision.kind === 'approved') charges.push({ id, client: g.client, amountSats: g.req.amountSats, at: now });
        inGroup.set(key, id);
        fresh.push({ g, record });
        ops.push({ type: 'put', key, value: id });
      } catch (err) {
        g.reject(err);
      }
    });
    if (fresh.length > 0) {
      ops.push({ type: 'put', key: WITHDRAWALS.next, value: String(next) });
      try {
        await this.write(
          fresh.map((f) => f.record),
          ops,
          undefined,
          fresh.map((f) => ({ actor: `client:${f.record.client}`, action: 'withdrawal.create', details: auditDetails(f.record) })),
        );
        this.next = next;
      } catch (err) {
        for (const f of fresh) f.g.reject(err);
        for (const r of repeats) r.g.reject(err);
        return;
      }
      for (const f of fresh) f.g.resolve({ ...view(f.record), created: true });
    }
    for (const r of repeats) {
      try {
        const w = await this.get(r.id);
        const q = r.g.req;
        if (w.address !== q.address || w.amountSats !== Number(q.amountSats) || w.account !== (q.account ?? null) || w.memo !== (q.memo ?? null)) {
          throw new CustodyError('REQUEST_ID_CONFLICT', `requestId: "${q.requestId}" was already used for withdrawal ${w.id} with other parameters`, { field: 'requestId', id: w.id });
        }
        r.g.resolve({ ...w, created: false });
      } catch (err) {
        r.g.reject(err);
      }
    }
  }

  async get(id: string): Promise<WithdrawalView> {
    const v = await this.store.get(WITHDRAWALS.record(id));
    if (v === undefined) throw new CustodyError('WITHDRAWAL_NOT_FOUND', `id: no withdrawal ${id}`, { field: 'id' });
    return view(JSON.parse(v) as WithdrawalRecord);
  }

  async record(id: string): Promise<WithdrawalRecord | undefined> {
    const v = await this.store.get(WITHDRAWALS.record(id));
    return v === undefined ? undefined : (JSON.parse(v) as WithdrawalRecord);
  }

  /** Withdrawals in id (creation) order after `afterId`, optionally one client's, account's or state's. */
  async list(opts: { client?: string; account?: string; state?: WithdrawalState; afterId?: string; limit?: number } = {}): Promise<WithdrawalView[]> {
    const limit = Math.min(Math.max(1, opts.limit ?? 100), 1_000);
    const out: WithdrawalView[] = [];
    for (let from = opts.afterId === undefined ? WITHDRAWALS.from : `${WITHDRAWALS.record(opts.afterId)}\u0000`; ; ) {
      const page = await this.store.range(from, WITHDRAWALS.to, 1_000);
      for (const [, v] of page) {
        const r = JSON.parse(v) as WithdrawalRecord;
        if ((opts.client === undefined || r.client === opts.client) && (opts.account === undefined || r.account === opts.account) && (opts.state === undefined || r.state === opts.state)) out.push(view(r));
        if (out.length >= limit) return out;
      }
      if (page.length < 1_000) return out;
      from = `${(page[page.length - 1] as [string, string])[0]}\u0000`;
    }
  }

  /** One approval from an `approver` client or an operator; the last one needed charges velocity. */
  approve(id: string, actor: string): Promise<WithdrawalView> {
    return this.exclusive(async () => {
      const r = await this.mustBe(id, ['pending_approval'], 'approve');
      assertNotFrozen(this.opts.frozen?.() ?? null);
      checkApprover(r.client, actor, r.approvals);
      const approvals = [...r.approvals, actor];
      const now = this.clock();
      const at = new Date(now).toISOString();
      if (approvals.length < r.requiredApprovals) {
        const partial = { ...r, approvals, updatedAt: at };
        await this.write([partial], [], 'withdrawal.approval', [{ actor, action: 'withdrawal.approve', details: auditDetails(partial) }]);
        return (await this.get(id));
      }
      // The charge is made now: the limits must still hold at the moment the money is committed.
      checkVelocity(this.charges, this.opts.policy.windows, r.client, BigInt(r.amountSats), now);
      const approved: WithdrawalRecord = { ...r, approvals, state: 'approved', approvedAt: at, updatedAt: at };
      await this.write([approved], [], undefined, [{ actor, action: 'withdrawal.approve', details: auditDetails(approved) }]);
      return this.get(id);
    });
  }

  reject(id: string, actor: string): Promise<WithdrawalView> {
    return this.exclusive(async () => {
      const r = await this.mustBe(id, ['pending_approval'], 'reject');
      checkApprover(r.client, actor, []);
      const rejected: WithdrawalRecord = { ...r, state: 'rejected', failure: `rejected by ${actor}`, updatedAt: new Date(this.clock()).toISOString() };
      await this.write([rejected], [], undefined, [{ actor, action: 'withdrawal.reject', details: auditDetails(rejected) }]);
      return this.get(id);
    });
  }

  /** Until it is signed, the requesting client (or an operator) may cancel; its charge is released. */
  cancel(id: string, actor: string, client?: string): Promise<WithdrawalView> {
    return this.exclusive(async () => {
      const r = await this.mustBe(id, ['pending_approval', 'approved'], 'cancel');
      if (client !== undefined && r.client !== client) throw new CustodyError('WITHDRAWAL_NOT_FOUND', `id: no withdrawal ${id} of client ${client}`, { field: 'id' });
      // Once the payouts service has taken it to sign, the signed transaction may already exist. Decided
      // from memory, in the same synchronous stretch as the write below: the record read above may predate
      // a signature that landed meanwhile (an approved withdrawal no longer in the queue has been taken).
      if (r.state === 'approved' && (this.held.has(id) || !this.queue.has(id))) {
        throw new CustodyError('WITHDRAWAL_STATE', `withdrawal ${id} is being signed or was signed; it can no longer be cancelled`, { state: 'approved' });
      }
      const cancelled: WithdrawalRecord = { ...r, state: 'cancelled', failure: `cancelled by ${actor}`, updatedAt: new Date(this.clock()).toISOString() };
      await this.write([cancelled], [], undefined, [{ actor, action: 'withdrawal.cancel', details: auditDetails(cancelled) }]);
      return this.get(id);
    });
  }

  private async mustBe(id: string, states: readonly WithdrawalState[], what: string): Promise<WithdrawalRecord> {
    const r = await this.record(id);
    if (r === undefined) throw new CustodyError('WITHDRAWAL_NOT_FOUND', `id: no withdrawal ${id}`, { field: 'id' });
    if (!states.includes(r.state)) throw new CustodyError('WITHDRAWAL_STATE', `withdrawal ${id} is ${r.state}; only ${states.join(' or ')} can ${what}`, { state: r.state });
    return r;
  }

  /**
   * The rows and events of state changes, for the payouts service to commit in its own batch (the signed
   * transaction and its withdrawals together); call settle() once that batch is durable.
   */
  stage(records: readonly WithdrawalRecord[], eventType?: string): { ops: BatchOp[]; events: CustodyEvent[] } {
    const ops: BatchOp[] = [];
    const events: CustodyEvent[] = [];
    for (const r of records) {
      ops.push({ type: 'put', key: WITHDRAWALS.record(r.id), value: JSON.stringify(r) });
      const { event, ops: eventOps } = this.events.append(eventType ?? `withdrawal.${r.state}`, {
        id: r.id,
        requestId: r.requestId,
        client: r.client,
        address: r.address,
        amountSats: Number(r.amountSats),
        account: r.account,
        state: r.state,
        approvals: r.approvals.length,
        requiredApprovals: r.requiredApprovals,
        txid: r.txid,
        height: r.height,
        ...(r.failure === null ? {} : { failure: r.failure }),
      });
      ops.push(...eventOps);
      events.push(event);
    }
    return { ops, events };
  }

  /** Applies durable state changes to the in-memory queue and charges. */
  settle(records: readonly WithdrawalRecord[]): void {
    let approved = false;
    for (const r of records) {
      this.held.delete(r.id);
      if (r.state === 'approved') {
        this.queue.set(r.id, r);
        approved = true;
      } else this.queue.delete(r.id);
      const charged = this.charges.findIndex((c) => c.id === r.id);
      if (!ACTIVE.has(r.state) && charged >= 0) this.charges.splice(charged, 1);
      if (ACTIVE.has(r.state) && charged < 0 && r.approvedAt !== null) this.charges.push({ id: r.id, client: r.client, amountSats: BigInt(r.amountSats), at: Date.parse(r.approvedAt) });
    }
    if (approved) for (const l of this.listeners) l();
  }

  /**
   * Takes withdrawals out of the queue while a payout for them is being built (back with settle or
   * requeue); until then they cannot be cancelled, so a cancel can never race a signature.
   */
  hold(records: readonly WithdrawalRecord[]): void {
    for (const r of records) {
      this.queue.delete(r.id);
      this.held.add(r.id);
    }
  }

  requeue(records: readonly WithdrawalRecord[]): void {
    for (const r of records) {
      this.held.delete(r.id);
      if (r.state === 'approved') this.queue.set(r.id, r);
    }
    const sorted = [...this.queue.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    this.queue.clear();
    for (const r of sorted) this.queue.set(r.id, r);
  }

  private async write(records: readonly WithdrawalRecord[], extra: readonly BatchOp[] = [], eventType?: string, audit: readonly AuditEntry[] = []): Promise<void> {
    // Appended right before the commit call (no await between): audit sequence numbers stay in commit order.
    // Audit first, all or none: a refused record must not leave an event number taken and never stored.
    const auditOps = this.opts.audit === undefined ? [] : this.opts.audit.appendAll(audit);
    const { ops, events } = this.stage(records, eventType);
    const committed = this.store.commit([...extra, ...ops, ...auditOps]);
    // Settled while the write is in flight, so the payouts pass builds and signs during the fsync (or joins
    // it, when the write is still queued): its batch can only land after this one, as the store applies
    // commits in call order and, once one fails, fails every later one. Nothing is answered or announced
    // before this batch is durable, and nothing is durably signed for a request that is not.
    this.settle(records);
    await committed;
    this.events.announce(events);
  }

  /** The velocity picture for status: each window's use, and what the app tier could still move in 24 h. */
  velocity(hotBalance: bigint): { windows: WindowUse[]; worstCase24hSats: bigint; allowance24hSats: bigint | null } {
    const now = this.clock();
    const allowance = remainingAllowance(this.charges, this.opts.policy.windows, now, 86_400);
    return { windows: windowUse(this.charges, this.opts.policy.windows, now), worstCase24hSats: allowance === null || hotBalance < allowance ? hotBalance : allowance, allowance24hSats: allowance };
  }

  /** Sum of charges (tests compare it with the chain). */
  chargedSats(): bigint {
    return this.charges.reduce((a, c) => a + c.amountSats, 0n);
  }
}
