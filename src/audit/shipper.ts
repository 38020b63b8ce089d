/**
 * Ships the audit log to syslog as it is written (DESIGN §1), so that rewriting or truncating the
 * history on the wallet host shows against the collector's copy.
 *
 * - Only COMMITTED records go out: the shipper reads them back from the store (AuditLog.range), never
 *   from `append`, whose record may still be in a batch that fails. It reads from its cursor when nudged
 *   (`nudge()` after commits; debounced to a zero timer, then re-checked on a short doubling timer while
 *   the in-memory head is ahead of the store, i.e. while a batch is being committed) and on a poll timer
 *   (default 1 s) so that nothing is missed whoever forgets to nudge. The store is the queue: at most
 *   `maxInFlight` records are handed to the transport at a time, so memory stays bounded however long the
 *   collector is away, and a refused or failed send rewinds the cursor to the first undelivered record.
 * - One message per record: MSGID "audit", severity 5 (notice), TIMESTAMP = the record's own time,
 *   SD params seq and hash, MSG = the record's canonical JSON (canonical.ts, the text its hash is over,
 *   plus the hash field), nothing else: records hold no secrets (screen.ts), and nothing is added.
 *   A collector verifies each record with recordHash, and the chain with prevHash.
 * - Facility: default 10 (authpriv, "security/authorization messages" in RFC 5424 Table 1). 13 ("log
 *   audit") would name it better, but stock rsyslog/journald rules route 13 into the general, widely
 *   readable log, while authpriv goes to a root-only file everywhere (DESIGN §7 rule 4: safe defaults).
 * - The head: at start and every `headEveryMs` (default 60 s) a message with MSGID "audit-head", SD seq
 *   and hash of the last committed record (seq -1 and 64 zeros for an empty log), also passed to
 *   `onHead` (the daemon puts it on its event feed: a second, independent copy). A collector that sees a
 *   head it has no record for, or a head older than one it saw, knows the log was truncated or rewritten.
 * - Delivery: a record is shipped when the transport says so: for TCP, written to the socket without
 *   error. Syslog over TCP has no application acknowledgement; see syslog.ts for the replay window that
 *   narrows the loss on a dropped connection. Collectors dedupe on seq.
 * - Restarts: the caller passes the first seq to ship (the daemon: its head at start, so the head record
 *   goes again; or earlier, to cover what a previous run's close() reported unshipped). Everything from
 *   there is re-sent; collectors dedupe on seq.
 * - Fail closed: `downForMs(now)` is how long the sink has been failing while records wait: from the
 *   later of the first failure since the last delivery and the time the oldest waiting record was first
 *   seen; 0 when nothing waits or the last send succeeded. An unreadable record counts as a failure too:
 *   the off-host copy stops there, and signing should stop with it.
 */
import { hostname as osHostname } from 'node:os';
import { CustodyError } from '../errors.js';
import { canonicalJson, ZERO_HASH } from './canonical.js';
import type { AuditHead, AuditLog, AuditRecord } from './log.js';
import { formatRfc5424, HEADER_LIMITS, type SyslogMessage, type SyslogTransport } from './syslog.js';

/** RFC 5424 Table 1: 10 = security/authorization (authpriv). */
export const DEFAULT_FACILITY = 10;
export const SEVERITY_NOTICE = 5;

export interface ShipperTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: ShipperTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout | undefined),
};

export interface AuditShipperOptions {
  readonly log: Pick<AuditLog, 'range' | 'tail' | 'head'>;
  /** Owned by the shipper from now on: close() closes it. */
  readonly transport: SyslogTransport;
  /** The first seq to ship (≥ 0). */
  readonly fromSeq: number;
  /** 0-23; default DEFAULT_FACILITY (10, authpriv). */
  readonly facility?: number;
  /** Default: os.hostname(), with characters syslog forbids replaced by '_'. */
  readonly hostname?: string;
  /** Default "custodyd". */
  readonly appName?: string;
  /** Default the process id. */
  readonly procId?: string;
  /** Default 60,000. */
  readonly headEveryMs?: number;
  /** Default 1000. */
  readonly pollMs?: number;
  /** Records handed to the transport and not yet confirmed, at most. Default 256. */
  readonly maxInFlight?: number;
  readonly onHead?: (head: AuditHead) => void;
  /** Milliseconds since the epoch. */
  readonly now?: () => number;
  readonly timers?: ShipperTimers;
}

export interface ShipperStatus {
  readonly target: string;
  /** The last seq delivered with every one before it (from fromSeq on); fromSeq - 1 before the first. */
  readonly shippedSeq: number;
  /** Records appended and not yet delivered (includes a batch being committed at this moment). */
  readonly waiting: number;
  /** ISO time of the first failure since the last delivery, or null. */
  readonly downSince: string | null;
  readonly lastError: string | null;
}

interface InFlight {
  readonly seq: number;
  done: boolean;
}

const safeHeader = (s: string, max: number): string => s.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class AuditShipper {
  private readonly log: AuditShipperOptions['log'];
  private readonly transport: SyslogTransport;
  private readonly base: Omit<SyslogMessage, 'time' | 'msgId' | 'structuredData' | 'message'>;
  private readonly headEveryMs: number;
  private readonly pollMs: number;
  private readonly maxInFlight: number;
  private readonly onHead: ((head: AuditHead) => void) | undefined;
  private readonly now: () => number;
  private readonly timers: ShipperTimers;
  private nextSeq: number;
  private shipped: number;
  private inflight: InFlight[] = [];
  /** Bumped on a rewind: results of sends from before it are ignored. */
  private generation = 0;
  private reading = false;
  private headSending = false;
  private stopped = false;
  private downSince: number | undefined;
  private pendingSince: number | undefined;
  private lastError: string | undefined;
  private pollTimer: unknown;
  private headTimer: unknown;
  private soonTimer: unknown;
  private soonDelay = 0;

  constructor(opts: AuditShipperOptions) {
    const bad = (field: string, rule: string): CustodyError => new CustodyError('CONFIG_INVALID', `audit shipper ${field}: ${rule}`, { field });
    if (!Number.isSafeInteger(opts.fromSeq) || opts.fromSeq < 0) throw bad('fromSeq', 'expected a whole number ≥ 0');
    for (const [field, v] of [['headEveryMs', opts.headEveryMs], ['pollMs', opts.pollMs], ['maxInFlight', opts.maxInFlight]] as const) {
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) throw bad(field, 'expected a whole number ≥ 1');
    }
    this.log = opts.log;
    this.transport = opts.transport;
    this.base = {
      facility: opts.facility ?? DEFAULT_FACILITY,
      severity: SEVERITY_NOTICE,
      hostname: opts.hostname ?? safeHeader(osHostname(), HEADER_LIMITS.hostname),
      appName: opts.appName ?? 'custodyd',
      procId: opts.procId ?? String(process.pid),
    };
    try {
      formatRfc5424({ ...this.base, time: new Date(0), msgId: 'audit', message: '' });
    } catch (err) {
      throw new CustodyError('CONFIG_INVALID', `audit shipper: ${errText(err)}`, err instanceof CustodyError ? err.details : undefined);
    }
    this.headEveryMs = opts.headEveryMs ?? 60_000;
    this.pollMs = opts.pollMs ?? 1000;
    this.maxInFlight = opts.maxInFlight ?? 256;
    this.onHead = opts.onHead;
    this.now = opts.now ?? Date.now;
    this.timers = opts.timers ?? realTimers;
    this.nextSeq = opts.fromSeq;
    this.shipped = opts.fromSeq - 1;
    this.transport.onError((err) => this.fail(err.message));
    this.pollTimer = this.timers.setTimeout(() => this.poll(), this.pollMs);
    this.headTimer = this.timers.setTimeout(() => this.headTick(), this.headEveryMs);
    this.nudge();
    void this.publishHead();
  }

  /** Call after audit records are committed; cheap and debounced. */
/**
   * An alert, at WARNING (RFC 5424 severity 4), MSGID "alert": best effort (an alert about the sink
   * being down cannot go through it; it is on the event feed either way).
   */
  sendAlert(type: string, data: Record<string, unknown>): void {
    if (this.stopped) return;
    const msg: SyslogMessage = { ...this.base, severity: 4, time: new Date(this.now()), msgId: 'alert', structuredData: { type }, message: JSON.stringify({ type, ...data }) };
    this.transport.send(msg).catch(() => undefined);
  }

    nudge(): void {
    this.soonDelay = 0;
    this.schedule(0);
  }

  /** How long the sink has been failing while records wait; 0 when healthy. */
  downForMs(now = this.now()): number {
    this.observe(now);
    if (this.downSince === undefined || this.pendingSince === undefined) return 0;
    return Math.max(0, now - Math.max(this.downSince, this.pendingSince));
  }

  status(): ShipperStatus {
    this.observe(this.now());
    return {
      target: this.transport.target,
      shippedSeq: this.shipped,
      waiting: this.waiting(),
      downSince: this.downSince === undefined ? null : new Date(this.downSince).toISOString(),
      lastError: this.lastError ?? null,
    };
  }

  /** Sends the head now (also done at start and every headEveryMs) and passes it to onHead. */
  async publishHead(): Promise<void> {
    let head: AuditHead;
    try {
      const last = (await this.log.tail(1))[0];
      head = last === undefined ? { seq: -1, hash: ZERO_HASH } : { seq: last.seq, hash: last.hash };
    } catch (err) {
      this.fail(`reading the audit head: ${errText(err)}`);
      return;
    }
    try {
      this.onHead?.(head);
    } catch (err) {
      this.lastError = `onHead: ${errText(err)}`;
    }
    // One head at a time in the transport: while the sink is away they would only pile up.
    if (this.headSending || this.stopped) return;
    this.headSending = true;
    const msg: SyslogMessage = {
      ...this.base,
      time: new Date(this.now()),
      msgId: 'audit-head',
      structuredData: { seq: String(head.seq), hash: head.hash },
      message: canonicalJson({ seq: head.seq, hash: head.hash }),
    };
    try {
      await this.transport.send(msg);
      this.downSince = undefined;
    } catch (err) {
      this.fail(errText(err));
    } finally {
      this.headSending = false;
    }
  }

  /**
   * Stops the timers, ships what it can within timeoutMs, then closes the transport. Returns the final
   * status: `waiting` > 0 says records were left unshipped (start the next run's shipper at or before
   * shippedSeq + 1 to send them).
   */
  async close(timeoutMs = 5000): Promise<ShipperStatus> {
    const deadline = this.now() + timeoutMs;
    this.timers.clearTimeout(this.pollTimer);
    this.timers.clearTimeout(this.headTimer);
    this.timers.clearTimeout(this.soonTimer);
    this.soonTimer = undefined;
    // Keep pumping (rewinds included) until everything committed is delivered or time runs out.
    while (!this.stopped && this.waiting() > 0 && this.now() < deadline) {
      await this.pump();
      await new Promise<void>((resolve) => this.timers.setTimeout(resolve, 20));
    }
    this.stopped = true;
    await this.transport.close(Math.max(0, deadline - this.now()));
    return this.status();
  }

  private waiting(): number {
    return Math.max(0, this.log.head().seq - this.shipped);
  }

  private observe(now: number): void {
    if (this.waiting() === 0) this.pendingSince = undefined;
    else this.pendingSince ??= now;
  }

  private fail(message: string): void {
    this.lastError = message;
    this.downSince ??= this.now();
  }

  private poll(): void {
    if (this.stopped) return;
    this.observe(this.now());
    void this.pump();
    this.pollTimer = this.timers.setTimeout(() => this.poll(), this.pollMs);
  }

  private headTick(): void {
    if (this.stopped) return;
    void this.publishHead();
    this.headTimer = this.timers.setTimeout(() => this.headTick(), this.headEveryMs);
  }

  private schedule(ms: number): void {
    if (this.stopped || this.soonTimer !== undefined) return;
    this.soonTimer = this.timers.setTimeout(() => {
      this.soonTimer = undefined;
      void this.pump();
    }, ms);
  }

  private async pump(): Promise<void> {
    if (this.reading || this.stopped) return;
    this.reading = true;
    let progressed = false;
    try {
      for (;;) {
        const room = this.maxInFlight - this.inflight.length;
        if (room <= 0) break;
        const generation = this.generation;
        const from = this.nextSeq;
        const records = await this.log.range(from, Math.min(room, 128));
        if (generation !== this.generation || from !== this.nextSeq) continue; // rewound meanwhile: read again
        for (const r of records) this.ship(r, generation);
        if (records.length > 0) {
          this.nextSeq = (records[records.length - 1] as AuditRecord).seq + 1;
          progressed = true;
        }
        if (records.length < Math.min(room, 128)) break;
      }
    } catch (err) {
      this.fail(`reading the audit log at seq ${this.nextSeq}: ${errText(err)}`);
    } finally {
      this.reading = false;
    }
    this.observe(this.now());
    // Appended but not readable yet: a batch is being committed. Look again soon, backing off to the poll.
    if (this.log.head().seq >= this.nextSeq && this.inflight.length < this.maxInFlight) {
      this.soonDelay = progressed ? 5 : Math.min(this.pollMs, Math.max(5, this.soonDelay * 2));
      this.schedule(this.soonDelay);
    }
  }

  private ship(r: AuditRecord, generation: number): void {
    const entry: InFlight = { seq: r.seq, done: false };
    this.inflight.push(entry);
    const msg: SyslogMessage = {
      ...this.base,
      time: new Date(r.time),
      msgId: 'audit',
      structuredData: { seq: String(r.seq), hash: r.hash },
      message: canonicalJson(r),
    };
    this.transport.send(msg).then(
      () => this.delivered(entry, generation),
      (err: unknown) => this.refused(entry, generation, err),
    );
  }

  private delivered(entry: InFlight, generation: number): void {
    if (generation !== this.generation) return;
    entry.done = true;
    let advanced = false;
    while (this.inflight[0]?.done === true) {
      this.shipped = (this.inflight.shift() as InFlight).seq;
      advanced = true;
    }
    if (advanced) {
      this.downSince = undefined;
      if (this.waiting() === 0) this.pendingSince = undefined;
      if (this.log.head().seq >= this.nextSeq) this.schedule(0);
    }
  }

  private refused(entry: InFlight, generation: number, err: unknown): void {
    if (generation !== this.generation) return;
    this.fail(`seq ${entry.seq} not shipped: ${errText(err)}`);
    // Everything from the first undelivered record goes again, from the store, on the next poll.
    this.generation++;
    const first = this.inflight.find((e) => !e.done);
    if (first !== undefined) this.nextSeq = Math.min(this.nextSeq, first.seq);
    this.inflight = [];
  }
}
