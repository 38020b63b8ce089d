/**
 * Deposit addresses: the next index on cold chain 0, durably written before it is returned.
 *
 * - Idempotent: the same (scope, requestId) always returns the same address, also after a restart; the
 *   same requestId with another account or label is REQUEST_ID_CONFLICT. Different requestIds never
 *   share an address: indexes come from one counter, advanced in the same batch as the record.
 * - Fast: addresses come pre-derived from the AddressPool; concurrent requests are group-committed into
 *   one fsync'd LevelDB batch.
 * - Gap-aware: it knows the highest index issued and the highest that received funds, and reports the
 *   run between them, which a wallet restoring the cold seed must scan past (BIP44 gap limit).
 */
import { looksSecret } from '../audit/screen.js';
import { CustodyError } from '../errors.js';
import type { Clock } from '../types.js';
import type { ColdDescriptor } from '../wallet/descriptor.js';
import type { Store, BatchOp } from '../store/db.js';
import { ADDR } from '../store/layout.js';
import { AddressPool, DEFAULT_POOL, type PooledAddress, type PoolOptions } from './address-pool.js';

export interface NewAddressRequest {
  readonly requestId: string;
  readonly account: string;
  readonly label?: string;
}

export interface AddressRecord {
  readonly index: number;
  readonly address: string;
  /** Full derivation path of the first key, e.g. m/84h/0h/0h/0/7. */
  readonly path: string;
  readonly account: string;
  readonly label?: string;
  readonly requestId: string;
  /** Who asked: the RPC client name (or "cli"); requestIds are unique per scope. */
  readonly scope: string;
  readonly issuedAt: string;
}

export interface IssuedAddress extends AddressRecord {
  /** False when the requestId had already been answered: this is the earlier address. */
  readonly created: boolean;
}

export interface GapReport {
  readonly highestIssued: number; // -1 when none
  readonly highestUsed: number; // -1 when none
  /** Issued addresses above the highest used one: what a restoring wallet must scan past. */
  readonly gap: number;
  readonly warnAbove: number;
  readonly warning: string | null;
}

export interface DepositOptions {
  readonly pool?: PoolOptions;
  /** Warn in status when the recovery gap exceeds this (default 1,000). */
  readonly gapWarning?: number;
  readonly clock?: Clock;
  /**
   * Extra operations (e.g. the audit record) to commit in the same batch as each group of addresses;
   * called just before that batch is committed, in the same synchronous turn.
   */
  readonly onIssue?: (records: readonly AddressRecord[]) => BatchOp[];
}

/** Requests per LevelDB batch: large enough to amortise the fsync, small enough to overlap with the next. */
const MAX_GROUP = 1024;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const SCOPE = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_ACCOUNT = 128;
const MAX_LABEL = 256;

function invalid(field: string, message: string, value?: unknown): CustodyError {
  return new CustodyError('INVALID_ARGUMENT', `${field}: ${message}`, value === undefined ? { field } : { field, value });
}

function printable(s: string): boolean {
  // No control characters: these strings end up in logs, exports and terminals.
  return !/[\u0000-\u001f\u007f-\u009f]/.test(s);
}

export function validateNewAddress(req: NewAddressRequest, scope: string): void {
  if (!SCOPE.test(scope)) throw invalid('scope', 'expected 1 to 64 of A-Z a-z 0-9 . _ -');
  if (typeof req.requestId !== 'string' || !REQUEST_ID.test(req.requestId)) {
    throw invalid('requestId', 'expected 1 to 64 characters of A-Z a-z 0-9 . _ : -');
  }
  if (looksSecret(req.requestId)) throw invalid('requestId', 'looks like a private key; it goes into the audit log, and secrets never may');
  if (typeof req.account !== 'string' || req.account.length === 0 || req.account.length > MAX_ACCOUNT || !printable(req.account)) {
    throw invalid('account', `expected 1 to ${MAX_ACCOUNT} printable characters`);
  }
  if (req.label !== undefined && (typeof req.label !== 'string' || req.label.length > MAX_LABEL || !printable(req.label))) {
    throw invalid('label', `expected at most ${MAX_LABEL} printable characters`);
  }
}

/**
 * The first request with a given requestId in a group: its record once known (assigned and durable, or
 * read back from an earlier answer), and what repeats waiting for it want done once it settles
 * (callbacks rather than a promise per request: repeats are rare, requests are not).
 */
interface Issue {
  readonly p: Pending;
  record: AddressRecord | undefined;
  settled: boolean;
  waiters: Array<() => void> | undefined;
}

function newIssue(p: Pending): Issue {
  return { p, record: undefined, settled: false, waiters: undefined };
}

function settle(issue: Issue): void {
  issue.settled = true;
  const waiters = issue.waiters;
  issue.waiters = undefined;
  if (waiters !== undefined) for (const w of waiters) w();
}

function onSettled(issue: Issue, then: () => void): void {
  if (issue.settled) queueMicrotask(then);
  else (issue.waiters ??= []).push(then);
}

interface Prepared {
  readonly ops: BatchOp[];
  /** The records of `fresh`, for the audit record (onIssue), which is appended when the batch is committed. */
  readonly records: AddressRecord[];
  readonly fresh: Issue[];
  /** Repeats of a request still being issued (in this group or one in flight). */
  readonly waiting: Array<{ p: Pending; issue: Issue }>;
  next?: number;
}

interface Pending {
  readonly req: NewAddressRequest;
  readonly scope: string;
  /** ADDR.requestId(scope, req.requestId), computed once. */
  readonly key: string;
  readonly resolve: (r: IssuedAddress) => void;
  readonly reject: (e: unknown) => void;
}

/** Two prepared groups as one, `b` prepared after `a` (its indexes and counter come after a's). */
function mergePrepared(a: Prepared, b: Prepared): Prepared {
  const merged: Prepared = { ops: a.ops.concat(b.ops), records: a.records.concat(b.records), fresh: a.fresh.concat(b.fresh), waiting: a.waiting.concat(b.waiting) };
  const next = b.next ?? a.next;
  if (next !== undefined) merged.next = next;
  return merged;
}

export class DepositAddresses {
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  /** Wakes the flush loop while it waits for a write to end, so a new request is looked up meanwhile. */
  private arrived: (() => void) | undefined;
  /** requestId key → the issue in a group not yet durable, so a repeat never gets a second address. */
  private readonly inflight = new Map<string, Issue>();
  private failed: CustodyError | undefined;
  private used: number;
  private readonly clock: Clock;
  private readonly gapWarning: number;
  private readonly originPath: string;

  private constructor(
    private readonly store: Store,
    readonly descriptor: ColdDescriptor,
    private readonly pool: AddressPool,
    private issuedNext: number,
    used: number,
    private readonly opts: DepositOptions,
  ) {
    this.used = used;
    this.clock = opts.clock ?? Date.now;
    this.gapWarning = opts.gapWarning ?? 1_000;
    const key = descriptor.keys[0];
    this.originPath = `m${key === undefined || key.originPath === '' ? '' : `/${key.originPath}`}`;
  }

  static async open(store: Store, descriptor: ColdDescriptor, opts: DepositOptions = {}): Promise<DepositAddresses> {
    const [next, used] = await store.getMany([ADDR.next, ADDR.used]);
    const start = next === undefined ? 0 : Number(next);
    const pool = new AddressPool(descriptor, descriptor.network, 0, start, opts.pool ?? DEFAULT_POOL);
    return new DepositAddresses(store, descriptor, pool, start, used === undefined ? -1 : Number(used), opts);
  }

  /** Issues (or re-answers) a deposit address. Resolves only once the record is fsync'd. */
  newAddress(req: NewAddressRequest, scope = 'cli'): Promise<IssuedAddress> {
    try {
      validateNewAddress(req, scope);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ req, scope, key: ADDR.requestId(scope, req.requestId), resolve, reject });
      this.arrived?.();
      this.flushing ??= this.flushLoop();
    });
  }

  /**
   * Group commit, pipelined: while one group's batch is being written and fsync'd, every request that
   * arrives is looked up and prepared at once, joining the next group; the moment the write ends, that
   * group is committed, so a group holds what arrived during one fsync and no lookup waits between two
   * writes. Commits stay strictly sequential (the index counter only moves forward), and nobody is
   * answered before the batch holding their address is durable.
   */
  private async flushLoop(): Promise<void> {
    let committing: Promise<void> | undefined;
    let ready: Prepared | undefined;
    let readySize = 0;
    try {
      // Let every request arriving in this turn of the event loop join the first group.
      await new Promise<void>((r) => setImmediate(r));
      for (;;) {
        if (committing === undefined && ready !== undefined) {
          const group = ready;
          ready = undefined;
          readySize = 0;
          const c: Promise<void> = this.commitGroup(group).then(() => {
            if (committing === c) committing = undefined;
          });
          committing = c;
          continue;
        }
        if (this.pending.length > 0 && readySize < MAX_GROUP) {
          const more = await this.prepare(this.takePending(MAX_GROUP - readySize));
          readySize += more.fresh.length + more.waiting.length;
          ready = ready === undefined ? more : mergePrepared(ready, more);
          continue;
        }
        if (committing === undefined) break; // nothing prepared, pending or being written
        // A write is in flight and everything that arrived is prepared: wait for the write or an arrival.
        const writing = committing;
        await new Promise<void>((resolve) => {
          this.arrived = resolve;
          void writing.then(resolve);
        });
        this.arrived = undefined;
      }
    } finally {
      this.flushing = undefined;
      if (this.pending.length > 0) this.flushing = this.flushLoop();
    }
  }

  /** Up to `max` pending requests, oldest first. */
  private takePending(max: number): Pending[] {
    if (this.pending.length <= max) {
      const all = this.pending;
      this.pending = [];
      return all;
    }
    return this.pending.splice(0, max);
  }

  private async prepare(group: Pending[]): Promise<Prepared> {
    const prepared: Prepared = { ops: [], records: [], fresh: [], waiting: [] };
    if (this.failed) {
      for (const p of group) p.reject(this.failed);
      return prepared;
    }
    // 1. Answered before? First by a group still being committed, then by the data dir.
    const lookup: Issue[] = [];
    const lookupKeys: string[] = [];
    const inGroup = new Map<string, Issue>();
    for (const p of group) {
      const issue = this.inflight.get(p.key) ?? inGroup.get(p.key);
      if (issue !== undefined) prepared.waiting.push({ p, issue });
      else {
        const first = newIssue(p);
        inGroup.set(p.key, first);
        lookup.push(first);
        lookupKeys.push(p.key);
      }
    }
    let known: (string | undefined)[] = [];
    try {
      known = lookup.length === 0 ? [] : await this.store.getMany(lookupKeys);
    } catch (err) {
      for (const p of group) p.reject(err);
      for (const issue of inGroup.values()) settle(issue);
      prepared.waiting.length = 0;
      return prepared;
    }
    const earlier: Array<{ issue: Issue; index: number }> = [];
    for (let j = 0; j < lookup.length; j++) {
      const issue = lookup[j] as Issue;
      const stored = known[j];
      if (stored !== undefined) earlier.push({ issue, index: Number(stored) });
      else prepared.fresh.push(issue);
    }
    if (earlier.length > 0) void this.answerEarlier(earlier);
    this.attachRepeats(prepared.waiting);
    if (prepared.fresh.length === 0) return prepared;

    // 2. New addresses: records, requestId and address indexes, and the counter, in one batch.
    let taken: PooledAddress[];
    try {
      taken = await this.pool.take(prepared.fresh.length);
    } catch (err) {
      for (const issue of prepared.fresh) {
        issue.p.reject(err);
        settle(issue);
      }
      prepared.fresh.length = 0;
      return prepared;
    }
    const issuedAt = new Date(this.clock()).toISOString();
    const records = prepared.records;
    for (let i = 0; i < prepared.fresh.length; i++) {
      const issue = prepared.fresh[i] as Issue;
      const a = taken[i] as PooledAddress;
      const { req, scope, key } = issue.p;
      const path = `${this.originPath}/0/${a.index}`;
      const record: AddressRecord =
        req.label === undefined
          ? { index: a.index, address: a.address, path, account: req.account, requestId: req.requestId, scope, issuedAt }
          : { index: a.index, address: a.address, path, account: req.account, label: req.label, requestId: req.requestId, scope, issuedAt };
      issue.record = record;
      records.push(record);
      this.inflight.set(key, issue);
      const index = String(a.index);
      prepared.ops.push(
        { type: 'put', key: ADDR.record(a.index), value: JSON.stringify(record) },
        { type: 'put', key, value: index },
        { type: 'put', key: ADDR.address(a.address), value: index },
      );
    }
    prepared.next = (taken[taken.length - 1] as PooledAddress).index + 1;
    prepared.ops.push({ type: 'put', key: ADDR.next, value: String(prepared.next) });
    return prepared;
  }

  private async commitGroup(g: Prepared): Promise<void> {
    try {
      if (g.ops.length > 0) {
        // The audit record is appended here, in the same synchronous turn as the commit that carries it
        // (audit/log.ts: a record appended and committed later could land after another writer's).
        const audit = this.opts.onIssue && g.records.length > 0 ? this.opts.onIssue(g.records) : [];
        await this.store.commit(audit.length > 0 ? g.ops.concat(audit) : g.ops);
        if (g.next !== undefined) this.issuedNext = g.next;
      }
      for (const issue of g.fresh) issue.p.resolve({ ...(issue.record as AddressRecord), created: true });
    } catch (err) {
      // Fail closed: after a failed write the counter and the pool can no longer be trusted to agree,
      // so this instance issues nothing more; a restart re-reads the counter from the data dir.
      this.failed = err instanceof CustodyError ? err : new CustodyError('STORE_IO', `deposit address write failed: ${(err as Error).message}`);
      for (const issue of g.fresh) {
        issue.record = undefined;
        issue.p.reject(this.failed);
      }
    } finally {
      for (const issue of g.fresh) {
        this.inflight.delete(issue.p.key);
        settle(issue);
      }
    }
  }

  /** Repeats of a request still being answered: answered from its record once that is durable. */
  private attachRepeats(waiting: ReadonlyArray<{ p: Pending; issue: Issue }>): void {
    for (const { p, issue } of waiting) {
      onSettled(issue, () => {
        if (issue.record === undefined) p.reject(this.failed ?? new CustodyError('STORE_IO', 'the first request with this requestId failed; retry'));
        else this.answerRepeat(p, issue.record);
      });
    }
  }

  private async answerEarlier(earlier: ReadonlyArray<{ issue: Issue; index: number }>): Promise<void> {
    let values: (string | undefined)[] = [];
    let failure: unknown;
    try {
      values = await this.store.getMany(earlier.map((e) => ADDR.record(e.index)));
    } catch (err) {
      failure = err;
    }
    earlier.forEach(({ issue, index }, i) => {
      const v = values[i];
      if (failure !== undefined) issue.p.reject(failure);
      else if (v === undefined) issue.p.reject(new CustodyError('INTERNAL', `address record ${index} is missing from the data dir`));
      else {
        issue.record = JSON.parse(v) as AddressRecord;
        this.answerRepeat(issue.p, issue.record);
      }
      settle(issue);
    });
  }

  private answerRepeat(p: Pending, record: AddressRecord): void {
    if (record.account !== p.req.account || record.label !== p.req.label) {
      p.reject(
        new CustodyError('REQUEST_ID_CONFLICT', `requestId: "${p.req.requestId}" was already used with another account or label (it issued index ${record.index})`, {
          field: 'requestId',
          index: record.index,
        }),
      );
      return;
    }
    p.resolve({ ...record, created: false });
  }

  /** Addresses derived ahead and ready to issue without derivation. */
  get pooled(): number {
    return this.pool.available;
  }

  /** Resolves once `n` addresses are derived ahead, so the next n issuances cost no derivation. */
  warm(n: number): Promise<void> {
    return this.pool.warm(n);
  }

  async lookup(address: string): Promise<AddressRecord | undefined> {
    const index = await this.store.get(ADDR.address(address));
    return index === undefined ? undefined : this.byIndex(Number(index));
  }

  async byIndex(index: number): Promise<AddressRecord | undefined> {
    const v = await this.store.get(ADDR.record(index));
    return v === undefined ? undefined : (JSON.parse(v) as AddressRecord);
  }

  /** Issued addresses in index order, optionally for one account. */
  async list(opts: { account?: string; fromIndex?: number; limit?: number } = {}): Promise<AddressRecord[]> {
    const limit = Math.min(opts.limit ?? 100, 10_000);
    const out: AddressRecord[] = [];
    let from = ADDR.record(opts.fromIndex ?? 0);
    // Page through the records so an account filter does not load the whole table at once.
    for (;;) {
      const page = await this.store.range(from, ADDR.recordsTo, 1_000);
      for (const [, v] of page) {
        const r = JSON.parse(v) as AddressRecord;
        if (opts.account === undefined || r.account === opts.account) out.push(r);
        if (out.length >= limit) return out;
      }
      if (page.length < 1_000) return out;
      from = `${(page[page.length - 1] as [string, string])[0]}\u0000`;
    }
  }

  /** Watches every address derived for issuance, including those still in the pool (service/ledger.ts). */
  onDerived(listener: (addresses: ReadonlyArray<{ index: number; address: string; script: Uint8Array }>) => void): void {
    this.pool.onDerived(listener);
  }

  /**
   * The row that records `index` as the highest address that received funds, to commit in the batch that
   * records the deposit (then call noteUsed); undefined when a higher one is already recorded.
   */
  usedOp(index: number): BatchOp | undefined {
    return index > this.used ? { type: 'put', key: ADDR.used, value: String(index) } : undefined;
  }

  noteUsed(index: number): void {
    if (index > this.used) this.used = index;
  }

  /** Records `index` as used on its own (tools and tests; the ledger batches usedOp with the deposit). */
  async markUsed(index: number): Promise<void> {
    const op = this.usedOp(index);
    if (op === undefined) return;
    await this.store.commit([op]);
    this.noteUsed(index);
  }

  gap(): GapReport {
    const highestIssued = this.issuedNext - 1;
    const gap = Math.max(0, highestIssued - this.used);
    return {
      highestIssued,
      highestUsed: this.used,
      gap,
      warnAbove: this.gapWarning,
      warning:
        gap > this.gapWarning
          ? `${gap} issued deposit addresses above the last used one: a wallet restoring the cold seed needs a gap limit of at least ${gap + 1} (see custody addresses export)`
          : null,
    };
  }

  /** Everything a wallet restoring the cold seed needs to find every deposit. */
  async manifest(): Promise<{ descriptor: string; network: string; highestIssued: number; highestUsed: number; gapLimit: number; accounts: Array<{ index: number; account: string }> }> {
    const g = this.gap();
    const accounts: Array<{ index: number; account: string }> = [];
    let from: string = ADDR.recordsFrom;
    for (;;) {
      const page = await this.store.range(from, ADDR.recordsTo, 10_000);
      for (const [, v] of page) {
        const r = JSON.parse(v) as AddressRecord;
        accounts.push({ index: r.index, account: r.account });
      }
      if (page.length < 10_000) break;
      from = `${(page[page.length - 1] as [string, string])[0]}\u0000`;
    }
    return {
      descriptor: this.descriptor.canonical,
      network: this.descriptor.network,
      highestIssued: g.highestIssued,
      highestUsed: g.highestUsed,
      gapLimit: Math.max(20, g.gap + 1),
      accounts,
    };
  }

  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.pool.close();
  }
}
