/**
 * The audit log: append-only records {seq, time, actor, action, details, prevHash, hash}, each chained
 * to the one before by hash, so that changing, removing or reordering a stored record is detectable
 * by anyone who recomputes the chain (`custody audit verify`, or an outside script: the hash rule is in
 * canonical.ts and is RFC 8785 JSON for the values allowed here).
 *
 * Writing: `append` is synchronous. It assigns the next seq, hashes the record onto the in-memory head,
 * advances the head and returns the put ops; the caller commits them in the same Store.commit batch as
 * the state change they record (DESIGN §3: one batch per atomic change), so a record exists if and only
 * if its change does. Store.commit applies batches strictly in call order and fails closed after a write
 * error, so records land in seq order and nothing lands after a lost one. The caller's contract: call
 * `append` only when every check has passed, and pass its ops to `store.commit` in the same synchronous
 * turn (no `await` between them); ops that are never committed leave a hole that verify reports as
 * "missing". `appendNow` does both for acts that change no other state, or for a caller's own ops.
 *
 * The head (last seq and hash) is read from the last stored record when the log is opened, never stored
 * as a key of its own: batches from different writers could otherwise leave a head that disagrees with
 * the records. There is one AuditLog per Store (open returns the same instance), since two in-memory
 * heads over one data dir would fork the chain.
 *
 * Truncation of the newest records leaves a shorter chain that still verifies; only a copy of the head
 * kept elsewhere (the off-host syslog stream, DESIGN §1) can show it.
 */
import { createHash } from 'node:crypto';
import { CustodyError } from '../errors.js';
import type { BatchOp, Store } from '../store/db.js';
import { AUDIT, AUDIT_SEQ_MAX } from '../store/layout.js';
import { canonicalJson, recordHash, ZERO_HASH, type HashedFields } from './canonical.js';
import { screenSecrets } from './screen.js';

export { canonicalJson, recordHash, ZERO_HASH } from './canonical.js';

/** A record: the hashed fields (canonical.ts HashedFields: seq, time, actor, action, details, prevHash) and their hash. */
export interface AuditRecord extends HashedFields {
  /** SHA-256 of the canonical form of the hashed fields, lowercase hex. */
  readonly hash: string;
}

export interface AuditHead {
  /** -1 when the log is empty. */
  readonly seq: number;
  /** 64 zeros when the log is empty. */
  readonly hash: string;
}

export type AuditVerifyResult =
  | { readonly ok: true; readonly count: number; readonly head: AuditHead }
  | { readonly ok: false; readonly count: number; readonly brokenAt: number; readonly reason: string };

export const ACTOR = /^[a-z0-9][a-z0-9._:@-]{0,63}$/;
export const ACTION = /^[a-z][a-z0-9_.]{0,63}$/;
/** What toISOString writes for years 0000–9999; anything else is not a time this log wrote. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const HASH = /^[0-9a-f]{64}$/;
const KEY = /^u!([0-9a-f]{12})$/;
/** A record is a line in an operator's terminal and a syslog message (RFC 5424 collectors often cap near 64 KiB). */
export const MAX_DETAILS_BYTES = 16 * 1024;
/** Records read per LevelDB range call while verifying: bounded memory for any length of log. */
const PAGE = 512;
const FIELDS = ['action', 'actor', 'details', 'hash', 'prevHash', 'seq', 'time'];

function internal(message: string, field: string): CustodyError {
  return new CustodyError('INTERNAL', message, { field });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const e of Object.values(v)) deepFreeze(e);
    Object.freeze(v);
  }
  return v;
}

/** A key or value from disk, made safe and short enough to quote in a message. */
function quote(s: string, max = 40): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

/**
 * Parses one stored value into a record whose fields have the right shapes, or says what is wrong.
 * The hash is not checked here.
 */
export function parseRecord(value: string): AuditRecord | string {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    return 'unparsable record: the stored value is not JSON';
  }
  if (!isPlainObject(v)) return 'unparsable record: the stored value is not a JSON object';
  const keys = Object.keys(v).sort();
  const extra = keys.find((k) => !FIELDS.includes(k));
  if (extra !== undefined) return `unparsable record: unexpected field ${quote(extra)}`;
  const missing = FIELDS.find((k) => !keys.includes(k));
  if (missing !== undefined) return `unparsable record: field ${missing} is missing`;
  const { seq, time, actor, action, details, prevHash, hash } = v;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0 || seq > AUDIT_SEQ_MAX) return 'unparsable record: seq is not a whole number in range';
  if (typeof time !== 'string' || !ISO_TIME.test(time)) return 'unparsable record: time is not an ISO-8601 UTC time';
  if (typeof actor !== 'string' || !ACTOR.test(actor)) return 'unparsable record: actor breaks its rule';
  if (typeof action !== 'string' || !ACTION.test(action)) return 'unparsable record: action breaks its rule';
  if (!isPlainObject(details)) return 'unparsable record: details is not an object';
  if (typeof prevHash !== 'string' || !HASH.test(prevHash)) return 'unparsable record: prevHash is not 64 lowercase hex digits';
  if (typeof hash !== 'string' || !HASH.test(hash)) return 'unparsable record: hash is not 64 lowercase hex digits';
  return { seq, time, actor, action, details, prevHash, hash };
}

/** Recomputes a parsed record's hash; a string says why it cannot be computed (a value outside the allowed set). */
function recompute(r: AuditRecord): string | { error: string } {
  try {
    return recordHash(r);
  } catch (err) {
    return { error: err instanceof CustodyError ? err.message : 'its fields cannot be serialized canonically' };
  }
}

/** The seq a stored key names, or undefined when the key is not an audit record key. */
function keySeq(key: string): number | undefined {
  const m = KEY.exec(key);
  return m ? parseInt(m[1] as string, 16) : undefined;
}

const opening = new WeakMap<Store, Promise<AuditLog>>();

export interface AuditMark {
  readonly seq: number;
  readonly hash: string;
}

export class AuditLog {
  private headSeq: number;
  private headHash: string;

  private constructor(
    private readonly store: Store,
    private readonly clock: () => Date,
    head: AuditHead,
  ) {
    this.headSeq = head.seq;
    this.headHash = head.hash;
  }

  /**
   * Opens the log over a store, learning the head from the last stored record. Refuses (AUDIT_BROKEN)
   * when that record is unreadable or its hash does not recompute: appending onto a head that cannot
   * be trusted would bury the damage under valid-looking records (fail closed, DESIGN §7 rule 8).
   * The whole chain is checked by verifyAudit, which the daemon runs at start. A second open of the same
   * Store returns the first instance, clock included (one head per data dir, see the file comment).
   */
  static open(store: Store, clock: () => Date = () => new Date()): Promise<AuditLog> {
    let p = opening.get(store);
    if (p === undefined) {
      p = AuditLog.load(store, clock);
      opening.set(store, p);
      p.catch(() => opening.delete(store));
    }
    return p;
  }

  private static async load(store: Store, clock: () => Date): Promise<AuditLog> {
    const last = await store.range(AUDIT.from, AUDIT.to, 1, true);
    const row = last[0];
    if (row === undefined) return new AuditLog(store, clock, { seq: -1, hash: ZERO_HASH });
    const [key, value] = row;
    const seq = keySeq(key);
    const broken = (why: string): CustodyError =>
      new CustodyError('AUDIT_BROKEN', `the last audit record (key ${quote(key)}) cannot be appended to: ${why}; run \`custody audit verify\``, { key: quote(key) });
    if (seq === undefined) throw broken('its key is not an audit record key');
    const rec = parseRecord(value);
    if (typeof rec === 'string') throw broken(rec);
    if (rec.seq !== seq) throw broken(`it is stored under the key of seq ${seq} but says seq ${rec.seq}`);
    const hash = recompute(rec);
    if (typeof hash !== 'string') throw broken(hash.error);
    if (hash !== rec.hash) throw broken('hash mismatch: its contents were changed after it was written');
    return new AuditLog(store, clock, { seq, hash });
  }

  head(): AuditHead {
    return { seq: this.headSeq, hash: this.headHash };
  }

  /**
   * Builds the next record and returns it with the ops that store it; the caller commits the ops in the
   * batch of the change the record describes (see the file comment for the contract). Everything that
   * can refuse happens before the head moves: a refused record consumes no seq.
   */
  append(actor: string, action: string, details: Record<string, unknown> = {}): { record: AuditRecord; ops: BatchOp[] } {
    if (typeof actor !== 'string' || !ACTOR.test(actor)) throw internal(`audit record actor: expected ${ACTOR.source}`, 'actor');
    if (typeof action !== 'string' || !ACTION.test(action)) throw internal(`audit record action: expected ${ACTION.source}`, 'action');
    if (!isPlainObject(details)) throw internal('audit record details: expected a plain object', 'details');
    let detailsText: string;
    try {
      detailsText = canonicalJson(details, 'details');
    } catch (err) {
      throw err instanceof CustodyError ? new CustodyError('INTERNAL', `audit record ${err.message}`, err.details) : err;
    }
    screenSecrets(details, 'details');
    if (Buffer.byteLength(detailsText, 'utf8') > MAX_DETAILS_BYTES) {
      throw internal(`audit record details: ${Buffer.byteLength(detailsText, 'utf8')} bytes, more than the ${MAX_DETAILS_BYTES}-byte limit`, 'details');
    }
    const seq = this.headSeq + 1;
    if (seq > AUDIT_SEQ_MAX) throw internal('audit log: no seq left in the 48-bit key space', 'seq');
    const now = this.clock();
    const time = now instanceof Date && !Number.isNaN(now.getTime()) ? now.toISOString() : '';
    if (!ISO_TIME.test(time)) throw internal('audit record time: the clock gave no valid time in years 0000-9999', 'time');
    // A private deep copy, parsed back from the canonical text: the record and its hash cannot drift if
    // the caller mutates its object later, and what is stored is exactly what was hashed.
    const copy = JSON.parse(detailsText) as Record<string, unknown>;
    const prevHash = this.headHash;
    // canonicalJson of the record, written out rather than walked again (the details twice more cost as
    // much as the rest of an address issuance): the keys in canonical (sorted) order, actor and action
    // matched their ASCII rules above, time is ISO_TIME, prevHash hex, seq a safe integer, so each value's
    // canonical form is JSON.stringify's. recordHash and verifyAudit recompute exactly this text.
    const front = `{"action":${JSON.stringify(action)},"actor":${JSON.stringify(actor)},"details":${detailsText},`;
    const back = `"prevHash":"${prevHash}","seq":${seq},"time":"${time}"}`;
    const hash = createHash('sha256').update(front + back, 'utf8').digest('hex');
    const record: AuditRecord = deepFreeze({ seq, time, actor, action, details: copy, prevHash, hash });
    this.headSeq = seq;
    this.headHash = hash;
    return { record, ops: [{ type: 'put', key: AUDIT.record(seq), value: `${front}"hash":"${hash}",${back}` }] };
  }

  /**
   * Several records for one batch, all or none: when one is refused (a secret, the size cap, a value
   * outside the canonical subset), the head is put back, so no seq is taken by a record that will never
   * be stored and the next record chains to what is on disk.
   */
  appendAll(entries: ReadonlyArray<{ readonly actor: string; readonly action: string; readonly details?: Record<string, unknown> }>): BatchOp[] {
    const mark = this.mark();
    const ops: BatchOp[] = [];
    try {
      for (const e of entries) ops.push(...this.append(e.actor, e.action, e.details ?? {}).ops);
    } catch (err) {
      this.rollback(mark);
      throw err;
    }
    return ops;
  }

  /** The head now, to put back with rollback() if the batch being built is abandoned before its commit. */
  mark(): AuditMark {
    return { seq: this.headSeq, hash: this.headHash };
  }

  /** Forgets the records appended since `mark` (same synchronous turn, never committed). */
  rollback(mark: AuditMark): void {
    this.headSeq = mark.seq;
    this.headHash = mark.hash;
  }

  /**
   * append + commit, for acts that change no other state (a verification, a drill) or whose state ops
   * the caller passes as `alsoCommit`, which land in the same batch, before the record.
   */
  async appendNow(actor: string, action: string, details: Record<string, unknown> = {}, alsoCommit: readonly BatchOp[] = []): Promise<AuditRecord> {
    const { record, ops } = this.append(actor, action, details);
    await this.store.commit(alsoCommit.length > 0 ? [...alsoCommit, ...ops] : ops);
    return record;
  }

  /** The last n records, oldest first. */
  tail(n: number): Promise<AuditRecord[]> {
    return tailAudit(this.store, n);
  }

  /** Up to `limit` records from seq `fromSeq` on, in seq order. */
  async range(fromSeq: number, limit: number): Promise<AuditRecord[]> {
    if (!Number.isSafeInteger(fromSeq) || fromSeq < 0) throw internal('audit range: fromSeq must be a whole number ≥ 0', 'fromSeq');
    if (!Number.isSafeInteger(limit) || limit < 1) throw internal('audit range: limit must be a whole number of at least 1', 'limit');
    if (fromSeq > AUDIT_SEQ_MAX) return [];
    const rows = await this.store.range(AUDIT.record(fromSeq), AUDIT.to, limit);
    return rows.map(([key, value]) => readRecord(key, value));
  }
}

/**
 * The last n records, oldest first, without opening an AuditLog: an operator looking into a chain whose
 * last record is damaged (which AuditLog.open refuses) still needs to read it.
 */
export async function tailAudit(store: Store, n: number): Promise<AuditRecord[]> {
  if (!Number.isSafeInteger(n) || n < 1) throw internal('audit tail: n must be a whole number of at least 1', 'n');
  const rows = await store.range(AUDIT.from, AUDIT.to, n, true);
  return rows.reverse().map(([key, value]) => readRecord(key, value));
}

/** For reading (tail, range): a record that cannot even be parsed is reported, not skipped. */
function readRecord(key: string, value: string): AuditRecord {
  const rec = parseRecord(value);
  if (typeof rec === 'string') throw new CustodyError('AUDIT_BROKEN', `audit record at key ${quote(key)}: ${rec}; run \`custody audit verify\``, { key: quote(key) });
  return rec;
}

/**
 * Recomputes the chain from `from` (default 0) to the last record and reports the first record that
 * breaks it: not parsable, stored under another seq's key, a gap in the seqs, a hash that does not
 * recompute, or a prevHash that does not link to the record before. A read error (e.g. LevelDB finds a
 * corrupted table file) is reported the same way, naming the record it got to, rather than thrown:
 * whoever runs this wants a verdict.
 */
export async function verifyAudit(store: Store, opts: { from?: number; onProgress?(seq: number): void } = {}): Promise<AuditVerifyResult> {
  const from = opts.from ?? 0;
  if (!Number.isSafeInteger(from) || from < 0 || from > AUDIT_SEQ_MAX) throw internal('verifyAudit: from must be a whole number ≥ 0', 'from');
  let expected = from;
  let count = 0;
  let prevHash = ZERO_HASH;
  /** The error that failed a page read, kept while the walk goes on one row at a time (below). */
  let pageError: string | undefined;
  const broken = (reason: string, at = expected): AuditVerifyResult => ({
    ok: false,
    count,
    brokenAt: at,
    reason: pageError === undefined ? reason : `${reason}; LevelDB reported an error reading this part of the log (${pageError})`,
  });
  const errorText = (err: unknown): string => {
    const cause = (err as { cause?: { message?: unknown } }).cause?.message;
    return typeof cause === 'string' ? cause : err instanceof Error ? err.message : String(err);
  };
  const readError = (err: unknown): AuditVerifyResult => {
    pageError = undefined;
    return broken(`reading record ${expected} from the data dir failed (${errorText(err)})`);
  };

  if (from > 0) {
    // The chain is verified from here on, linking to the stored hash of the record before, which must
    // itself at least recompute.
    let value: string | undefined;
    try {
      value = await store.get(AUDIT.record(from - 1));
    } catch (err) {
      return readError(err);
    }
    if (value === undefined) return broken(`record ${from - 1} is missing, so record ${from} cannot be linked`, from - 1);
    const rec = parseRecord(value);
    if (typeof rec === 'string') return broken(rec, from - 1);
    const hash = recompute(rec);
    if (typeof hash !== 'string' || hash !== rec.hash || rec.seq !== from - 1) return broken('the record before the starting point does not verify', from - 1);
    prevHash = rec.hash;
  }

  // A read error fails a whole page. The walk then goes on one row at a time from the same place, so
  // the verdict names the record where the damage starts rather than the start of the page. Observed
  // with LevelDB 1.23: a row-at-a-time read may step over a block it cannot decompress without an error
  // (the iterator's status is only checked when it ends), so the damage then shows as missing records;
  // the page's error is kept and quoted in the verdict, and a walk that finds nothing wrong after a
  // failed page still fails (fail closed: an unread part of the log is not a verified one).
  let page = PAGE;
  for (;;) {
    let rows: Array<[string, string]>;
    try {
      rows = expected > AUDIT_SEQ_MAX ? [] : await store.range(AUDIT.record(expected), AUDIT.to, page);
    } catch (err) {
      if (page > 1) {
        page = 1;
        pageError = errorText(err);
        continue;
      }
      return readError(err);
    }
    for (const [key, value] of rows) {
      const seq = keySeq(key);
      if (seq === undefined) return broken(`the row ${quote(key)} in the audit key range is not an audit record key`);
      if (seq !== expected) return broken(`record ${expected} is missing (the next stored record is ${seq})`);
      const rec = parseRecord(value);
      if (typeof rec === 'string') return broken(rec);
      if (rec.seq !== seq) return broken(`key/seq mismatch: stored under the key of record ${seq} but says seq ${rec.seq}`);
      const hash = recompute(rec);
      if (typeof hash !== 'string') return broken(`unparsable record: ${hash.error}`);
      if (hash !== rec.hash) return broken(`hash mismatch: the stored hash does not match the record's contents, so the record was changed after it was written (stored ${rec.hash}, recomputed ${hash})`);
      if (rec.prevHash !== prevHash) {
        return broken(
          seq === 0
            ? 'prevHash does not link: record 0 must have a prevHash of 64 zeros'
            : `prevHash does not link to record ${seq - 1} (that record was rewritten, or this one was moved)`,
        );
      }
      prevHash = hash;
      expected = seq + 1;
      count++;
    }
    if (rows.length > 0) opts.onProgress?.(expected - 1);
    if (rows.length < page) break;
  }
  if (pageError !== undefined) {
    return { ok: false, count, brokenAt: expected, reason: `reading the data dir failed (${pageError}); every record that could be read, up to ${expected - 1}, verified` };
  }
  return { ok: true, count, head: { seq: expected - 1, hash: prevHash } };
}
