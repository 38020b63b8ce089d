/**
 * The audit log leaving the host as it is written (issue 8): every committed record to syslog (audit/
 * shipper.ts), the chain head to syslog and the event feed every headEverySeconds, so that rewriting
 * history on a compromised wallet host shows against the copy elsewhere. Optional fail-closed: no
 * signature while the sink has been unreachable for longer than failClosedAfterSeconds; signing resumes
 * by itself once the backlog is delivered. The last shipped seq is kept in the data dir, so a restart
 * resends only what may not have left (collectors dedupe on seq).
 */
import type { AuditHead, AuditLog } from '../audit/log.js';
import { AuditShipper, type ShipperStatus } from '../audit/shipper.js';
import { createSyslogTransport, parseSyslogTarget } from '../audit/syslog.js';
import type { Store } from '../store/db.js';
import { SHIPPING } from '../store/layout.js';
import type { CustodyEvent, EventLog } from './events.js';

export interface AuditSinkOptions {
  readonly target: string;
  readonly facility: number;
  readonly headEverySeconds: number;
  /** Null: never block signing for the sink. */
  readonly failClosedAfterSeconds: number | null;
  readonly log?: (line: string) => void;
}

export interface AuditSinkStatus extends ShipperStatus {
  readonly failClosedAfterSeconds: number | null;
  /** Why signing is paused for the sink, or null. */
  readonly signingBlocked: string | null;
}

export class AuditSink {
  private lastAlert = -Infinity;
  private ticker: NodeJS.Timeout | undefined;
  /** Called every second while the sink is down, with how long (the automatic-freeze trigger decides). */
  onDown: ((downForMs: number) => void) | undefined;

  private constructor(
    private readonly shipper: AuditShipper,
    private readonly store: Store,
    private readonly events: EventLog,
    private readonly opts: AuditSinkOptions,
  ) {}

  static async open(store: Store, audit: AuditLog, events: EventLog, opts: AuditSinkOptions): Promise<AuditSink> {
    const target = parseSyslogTarget(opts.target, 'audit.syslog');
    const mark = await store.get(SHIPPING.auditShipped);
    const fromSeq = mark === undefined ? 0 : Number(mark) + 1;
    let sink: AuditSink | undefined;
    const shipper = new AuditShipper({
      log: audit,
      transport: createSyslogTransport(target),
      fromSeq,
      facility: opts.facility,
      headEveryMs: opts.headEverySeconds * 1000,
      pollMs: 250,
      onHead: (head) => sink?.published(head),
    });
    sink = new AuditSink(shipper, store, events, opts);
    sink.ticker = setInterval(() => sink?.check(), 1_000);
    sink.ticker.unref();
    opts.log?.(`audit: shipping records from seq ${fromSeq} to ${target.target}${opts.failClosedAfterSeconds === null ? '' : `; signing stops when it is unreachable for ${opts.failClosedAfterSeconds} s`}`);
    return sink;
  }

  /** Alerts to syslog at WARNING as they are raised (they are events first). */
  forwardAlerts(events: readonly CustodyEvent[]): void {
    for (const e of events) if (e.type.startsWith('alert.')) this.shipper.sendAlert(e.type, { seq: e.seq, ...e.data });
  }

  /** Ships what was just committed without waiting for the poll. */
  nudge(): void {
    this.shipper.nudge();
  }

  signingBlocked(now = Date.now()): string | null {
    const limit = this.opts.failClosedAfterSeconds;
    if (limit === null) return null;
    const down = this.shipper.downForMs(now);
    if (down <= limit * 1000) return null;
    return `the audit sink ${this.opts.target} has been unreachable for ${Math.round(down / 1000)} s (fail-closed after ${limit} s)`;
  }

  status(): AuditSinkStatus {
    return { ...this.shipper.status(), failClosedAfterSeconds: this.opts.failClosedAfterSeconds, signingBlocked: this.signingBlocked() };
  }

  private check(): void {
    const down = this.shipper.downForMs(Date.now());
    if (down <= 0) return;
    const now = Date.now();
    this.onDown?.(down);
    if (down < 5_000 || now - this.lastAlert < 600_000) return;
    this.lastAlert = now;
    const s = this.shipper.status();
    this.alert('alert.audit_sink_down', { target: s.target, downSince: s.downSince, waiting: s.waiting, lastError: s.lastError, signingBlocked: this.signingBlocked(now) !== null });
  }

  private alert(type: string, data: Record<string, unknown>): void {
    this.opts.log?.(`${type}: ${JSON.stringify(data)}`);
    const { event, ops } = this.events.append(type, data);
    void this.store.commit(ops).then(() => this.events.announce([event as CustodyEvent]), () => undefined);
  }

  /** The head went out: on the event feed too, and the shipped mark moves on. */
  private published(head: AuditHead): void {
    const s = this.shipper.status();
    const { event, ops } = this.events.append('audit.head', { seq: head.seq, hash: head.hash, shippedSeq: s.shippedSeq, target: s.target });
    if (s.shippedSeq >= 0) ops.push({ type: 'put', key: SHIPPING.auditShipped, value: String(s.shippedSeq) });
    void this.store.commit(ops).then(() => this.events.announce([event]), () => undefined);
  }

  async close(): Promise<void> {
    if (this.ticker !== undefined) clearInterval(this.ticker);
    const s = await this.shipper.close();
    if (s.shippedSeq >= 0) await this.store.commit([{ type: 'put', key: SHIPPING.auditShipped, value: String(s.shippedSeq) }]).catch(() => undefined);
    if (s.waiting > 0) this.opts.log?.(`audit: ${s.waiting} records not shipped to ${s.target} at shutdown; they are sent at the next start`);
  }
}
