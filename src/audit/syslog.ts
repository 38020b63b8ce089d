/**
 * Syslog output for the audit log (DESIGN §1: the hash-chained records go off-host, so a rewrite of the
 * history on the wallet host shows against the collector's copy). Three parts, no dependency beyond
 * node:net and node:dgram:
 *
 * - formatRfc5424 / encodeRfc5424: one RFC 5424 message, pure.
 *     PRI = facility * 8 + severity (§6.2.1), VERSION 1, TIMESTAMP as toISOString writes it (§6.2.3:
 *     UTC "Z", 3 fraction digits; NILVALUE when the Date is invalid or outside years 0000-9999, as the
 *     RFC says for a sender that has no valid time), HOSTNAME / APP-NAME / PROCID / MSGID printable
 *     US-ASCII (33-126) of at most 255 / 48 / 128 / 32 characters, NILVALUE "-" when empty (§6.2.4-7).
 *     A value that breaks those rules is refused, not silently rewritten: the caller validates its
 *     configuration once (the shipper does, at construction).
 *     STRUCTURED-DATA: one SD-ELEMENT with SD-ID "custody@32473" (32473 is the private enterprise number
 *     RFC 5612 reserves for documentation; a deployment with its own PEN may change SD_ID), the params in
 *     the order given, values escaped per §6.3.3 (`"` `\` `]` get a backslash), NILVALUE when there are no
 *     params.
 *     MSG: UTF-8 preceded by the BOM (§6.4 MSG-UTF8: a MSG known to be UTF-8 "MUST start with" the BOM;
 *     audit details may hold any Unicode text, so we always send it). A collector or verifier strips the
 *     three bytes EF BB BF before parsing the JSON. An empty message sends no MSG part at all.
 * - SyslogTransport, and two of them:
 *     TcpSyslog: RFC 6587 §3.4.1 octet counting ("LEN SP MSG", LEN = byte length of the message in
 *     decimal), connect timeout, reconnect with exponential backoff, a bounded in-memory queue. A full
 *     queue refuses the line (the send promise rejects) and reports it to the error listeners: a line is
 *     never dropped silently. "Delivered" means written to the socket without error: syslog over TCP has
 *     no application-level acknowledgement, so a line written in the moments before the collector died
 *     can still be lost in the kernel. To narrow that window the last `replay` lines written on a
 *     connection are written again, first, on the next connection after an unexpected close; collectors
 *     dedupe on the seq param (they must anyway, see shipper.ts).
 *     UdpSyslog: RFC 5426, one datagram per message, at most 8192 bytes; a longer message has its MSG cut
 *     (at a UTF-8 character boundary), never the header or the structured data. UDP has no way to see a
 *     collector that is down (only local send errors are reported): use TCP where fail-closed matters.
 * - parseSyslogTarget: "tcp://host:port" or "udp://host:port" (IPv6 in brackets) from the configuration.
 */
import { Socket, createConnection, isIPv6 } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { CustodyError } from '../errors.js';

export const SD_ID = 'custody@32473';
export const NILVALUE = '-';
/** RFC 5426 §3.2 says IPv4 receivers must take 480 bytes and should take 2048; common collectors take 8 KiB. */
export const UDP_MAX_BYTES = 8192;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
export const HEADER_LIMITS = { hostname: 255, appName: 48, procId: 128, msgId: 32 } as const;
const PRINTUSASCII = /^[\x21-\x7e]+$/;
/** SD-NAME (§6.3.2): 1*32 PRINTUSASCII except '=', SP, ']' and '"'. */
const SD_NAME = /^[\x21\x23-\x3c\x3e-\x5c\x5e-\x7e]{1,32}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export interface SyslogMessage {
  /** 0-23 (RFC 5424 Table 1). */
  readonly facility: number;
  /** 0-7 (RFC 5424 Table 2); 5 = notice. */
  readonly severity: number;
  readonly time: Date;
  readonly hostname: string;
  readonly appName: string;
  readonly procId: string;
  readonly msgId: string;
  /** Params of the one SD-ELEMENT "custody@32473", in this order. */
  readonly structuredData?: Readonly<Record<string, string>>;
  readonly message: string;
}

function refuse(field: string, rule: string): CustodyError {
  return new CustodyError('INTERNAL', `syslog ${field}: ${rule}`, { field });
}

function headerField(field: keyof typeof HEADER_LIMITS, value: unknown): string {
  if (typeof value !== 'string') throw refuse(field, 'expected a string');
  if (value === '') return NILVALUE;
  const max = HEADER_LIMITS[field];
  if (value.length > max) throw refuse(field, `${value.length} characters, more than the ${max} RFC 5424 allows`);
  if (!PRINTUSASCII.test(value)) throw refuse(field, 'only printable US-ASCII (33-126, no space) is allowed (RFC 5424 §6)');
  return value;
}

const escapeSdValue = (v: string): string => v.replace(/["\\\]]/g, (c) => `\\${c}`);

/** Everything before MSG: HEADER SP STRUCTURED-DATA. */
function formatHead(m: SyslogMessage): string {
  const { facility, severity } = m;
  if (!Number.isInteger(facility) || facility < 0 || facility > 23) throw refuse('facility', 'expected a whole number 0-23');
  if (!Number.isInteger(severity) || severity < 0 || severity > 7) throw refuse('severity', 'expected a whole number 0-7');
  const iso = m.time instanceof Date && !Number.isNaN(m.time.getTime()) ? m.time.toISOString() : '';
  const time = ISO_TIME.test(iso) ? iso : NILVALUE;
  const params = Object.entries(m.structuredData ?? {}).map(([name, value]) => {
    if (!SD_NAME.test(name)) throw refuse(`structured data param name ${JSON.stringify(name.slice(0, 40))}`, 'expected 1-32 printable US-ASCII characters other than = ] " and space');
    if (typeof value !== 'string') throw refuse(`structured data param ${name}`, 'expected a string value');
    return ` ${name}="${escapeSdValue(value)}"`;
  });
  const sd = params.length === 0 ? NILVALUE : `[${SD_ID}${params.join('')}]`;
  const fields = [headerField('hostname', m.hostname), headerField('appName', m.appName), headerField('procId', m.procId), headerField('msgId', m.msgId)];
  return `<${facility * 8 + severity}>1 ${time} ${fields.join(' ')} ${sd}`;
}

/** The message as text (the BOM as U+FEFF); throws CustodyError INTERNAL naming a field that breaks its rule. */
export function formatRfc5424(m: SyslogMessage): string {
  const head = formatHead(m);
  return m.message === '' ? head : `${head} \uFEFF${m.message}`;
}

/**
 * The message as bytes, at most `maxBytes` long: only MSG is cut (at a UTF-8 character boundary), never
 * the header or the structured data; a message whose head alone is longer is refused.
 */
export function encodeRfc5424(m: SyslogMessage, maxBytes = Number.POSITIVE_INFINITY): { bytes: Buffer; truncated: boolean } {
  const head = Buffer.from(formatHead(m), 'utf8');
  if (head.length > maxBytes) throw refuse('message', `the header and structured data take ${head.length} bytes, more than the ${maxBytes}-byte limit`);
  if (m.message === '') return { bytes: head, truncated: false };
  const msg = Buffer.from(m.message, 'utf8');
  const room = maxBytes - head.length - 1 - BOM.length;
  if (room >= msg.length) return { bytes: Buffer.concat([head, Buffer.from(' '), BOM, msg]), truncated: false };
  if (room < 0) return { bytes: head, truncated: true };
  let cut = room;
  // Back off over continuation bytes (10xxxxxx) so the cut never splits a character.
  while (cut > 0 && ((msg[cut] as number) & 0xc0) === 0x80) cut--;
  return { bytes: Buffer.concat([head, Buffer.from(' '), BOM, msg.subarray(0, cut)]), truncated: true };
}

export interface SyslogTarget {
  readonly protocol: 'tcp' | 'udp';
  /** Without brackets for IPv6. */
  readonly host: string;
  readonly port: number;
  /** The normalized form, e.g. "tcp://[::1]:6514": what status and errors show. */
  readonly target: string;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** Parses a configured target; CONFIG_INVALID names the field and the value. */
export function parseSyslogTarget(value: unknown, field = 'audit.syslog'): SyslogTarget {
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value) : typeof value;
  const bad = (rule: string): CustodyError => new CustodyError('CONFIG_INVALID', `${field}: ${shown} is not a syslog target: ${rule}`, { field });
  if (typeof value !== 'string') throw bad('expected a string like "tcp://host:port" or "udp://host:port"');
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/.exec(value);
  if (!m) throw bad('expected "tcp://host:port" or "udp://host:port"');
  const scheme = (m[1] as string).toLowerCase();
  if (scheme !== 'tcp' && scheme !== 'udp') throw bad(`the scheme must be tcp or udp, not ${JSON.stringify(m[1])}`);
  const hp = /^(\[[^\]]*\]|[^:/?#@[\]]*)(?::(.*))?$/.exec(m[2] as string);
  if (!hp) throw bad('expected host:port after "//" (no user, path, query or fragment)');
  const rawHost = hp[1] as string;
  const rawPort = hp[2];
  if (rawHost === '' || rawHost === '[]') throw bad('the host is missing');
  if (rawPort === undefined || rawPort === '') throw bad('the port is missing (syslog has several usual ports: 514, 601, 6514; say which)');
  if (!/^\d{1,5}$/.test(rawPort) || Number(rawPort) < 1 || Number(rawPort) > 65535) throw bad('the port must be a whole number 1-65535');
  let host: string;
  if (rawHost.startsWith('[')) {
    host = rawHost.slice(1, -1);
    if (!isIPv6(host)) throw bad('the bracketed host is not an IPv6 address');
  } else {
    host = rawHost;
    if (!HOSTNAME.test(host)) throw bad('the host is not a valid host name or IPv4 address');
  }
  const port = Number(rawPort);
  return { protocol: scheme, host, port, target: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}` };
}

/** Where audit lines go. Implementations keep lines in order. */
export interface SyslogTransport {
  readonly target: string;
  /**
   * Sends one message. Resolves once it is handed to the network (TCP: written to the socket without
   * error; UDP: the datagram was sent). Rejects with CustodyError when it was not accepted (queue full,
   * transport closed, message refused by the formatter, UDP send error); it is then not sent later.
   */
  send(message: SyslogMessage): Promise<void>;
  /** Every failure (connect error or timeout, lost connection, write error, full queue) is reported here. */
  onError(listener: (err: CustodyError) => void): void;
  /** Stops accepting lines, writes what it can within timeoutMs, rejects the rest and releases the socket. */
  close(timeoutMs?: number): Promise<void>;
}

export interface TcpSyslogOptions {
  /** Default 5000. */
  readonly connectTimeoutMs?: number;
  /** First reconnect delay, doubled after each failure up to backoffMaxMs. Defaults 250 and 30,000. */
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
  /** Lines queued or written but unconfirmed beyond which send refuses. Default 10,000. */
  readonly queueLimit?: number;
  /** Lines written last on a connection that are written again after it closes unexpectedly. Default 128; 0 disables. */
  readonly replay?: number;
}

interface Pending {
  readonly frame: Buffer;
  resolve(): void;
  reject(err: CustodyError): void;
}

const noop = (): void => undefined;
const errCode = (err: unknown): string => (err as NodeJS.ErrnoException | undefined)?.code ?? (err instanceof Error ? err.message : 'error');

abstract class Reporter {
  private readonly listeners: Array<(err: CustodyError) => void> = [];
  constructor(readonly target: string) {}
  onError(listener: (err: CustodyError) => void): void {
    this.listeners.push(listener);
  }
  protected report(rule: string): CustodyError {
    const err = new CustodyError('UNAVAILABLE', `syslog ${this.target}: ${rule}`, { target: this.target });
    for (const l of this.listeners) {
      try {
        l(err);
      } catch {
        // A listener's failure must not stop the transport or the other listeners.
      }
    }
    return err;
  }
}

export class TcpSyslog extends Reporter implements SyslogTransport {
  private readonly connectTimeoutMs: number;
  private readonly backoffMinMs: number;
  private readonly backoffMaxMs: number;
  private readonly queueLimit: number;
  private readonly replay: number;
  private socket: Socket | undefined;
  private connected = false;
  private queue: Pending[] = [];
  /** Written to the socket, write callback not yet called. */
  private written: Pending[] = [];
  /** The last frames confirmed written on this connection, oldest first (the replay window). */
  private recent: Buffer[] = [];
  private failures = 0;
  private connectedAt = 0;
  private lastFailure: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private accepting = true;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    readonly host: string,
    readonly port: number,
    opts: TcpSyslogOptions = {},
  ) {
    super(`tcp://${isIPv6(host) ? `[${host}]` : host}:${port}`);
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.backoffMinMs = opts.backoffMinMs ?? 250;
    this.backoffMaxMs = opts.backoffMaxMs ?? 30_000;
    this.queueLimit = opts.queueLimit ?? 10_000;
    this.replay = opts.replay ?? 128;
  }

  /** Lines not yet written (queued, or written with the write callback outstanding). */
  get backlog(): number {
    return this.queue.length + this.written.length;
  }

  send(message: SyslogMessage): Promise<void> {
    if (!this.accepting) return Promise.reject(new CustodyError('UNAVAILABLE', `syslog ${this.target}: the transport is closed`, { target: this.target }));
    let bytes: Buffer;
    try {
      bytes = encodeRfc5424(message).bytes;
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.backlog >= this.queueLimit) {
      return Promise.reject(this.report(`the queue is full (${this.backlog} lines waiting, limit ${this.queueLimit}); the line was refused, not queued`));
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame: Buffer.concat([Buffer.from(`${bytes.length} `, 'ascii'), bytes]), resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.closed) return;
    if (this.connected) this.pump();
    else if (this.socket === undefined && this.retryTimer === undefined && this.queue.length > 0) this.connect();
  }

  private connect(): void {
    const s = createConnection({ host: this.host, port: this.port });
    this.socket = s;
    this.lastFailure = undefined;
    this.connectTimer = setTimeout(() => {
      this.lastFailure = `no connection within ${this.connectTimeoutMs} ms`;
      s.destroy();
    }, this.connectTimeoutMs);
    s.once('connect', () => {
      clearTimeout(this.connectTimer);
      this.connected = true;
      this.connectedAt = Date.now();
      s.setKeepAlive(true, 30_000);
      this.pump();
    });
    s.on('error', (err) => {
      this.lastFailure ??= `${this.connected ? 'connection error' : 'cannot connect'} (${errCode(err)})`;
    });
    s.on('drain', () => this.pump());
    s.resume(); // a collector has nothing to say; discard anything it sends
    s.once('close', () => this.onClose(s));
  }

  private pump(): void {
    const s = this.socket;
    while (this.connected && s !== undefined && this.queue.length > 0) {
      const p = this.queue.shift() as Pending;
      this.written.push(p);
      const more = s.write(p.frame, (err) => this.onWritten(p, err));
      if (!more) break; // wait for 'drain'
    }
  }

  private onWritten(p: Pending, err: Error | null | undefined): void {
    if (err) return; // the close handler puts it back in the queue
    const i = this.written.indexOf(p);
    if (i < 0) return;
    this.written.splice(i, 1);
    if (this.replay > 0) {
      this.recent.push(p.frame);
      if (this.recent.length > this.replay) this.recent.shift();
    }
    p.resolve();
    this.notifyIdle();
  }

  private onClose(s: Socket): void {
    if (s !== this.socket) return;
    clearTimeout(this.connectTimer);
    const wasConnected = this.connected;
    this.socket = undefined;
    this.connected = false;
    if (this.closed) return;
    // Oldest first: the replay window, then lines whose write never completed, then the queue.
    const replayed: Pending[] = this.recent.map((frame) => ({ frame, resolve: noop, reject: noop }));
    this.queue = [...replayed, ...this.written, ...this.queue];
    this.recent = [];
    this.written = [];
    // Backoff resets only after a connection that lasted: a collector that accepts and drops at once
    // (overloaded, misconfigured TLS port) must not be hammered with the replay window every 250 ms.
    if (wasConnected && Date.now() - this.connectedAt > 10_000) this.failures = 0;
    const delay = Math.min(this.backoffMaxMs, this.backoffMinMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    const why = this.lastFailure ?? (wasConnected ? 'the collector closed the connection' : 'the connection closed before it was established');
    this.report(`${why}; ${this.queue.length} lines waiting${this.queue.length > 0 ? `, retrying in ${delay} ms` : ''}`);
    if (this.queue.length > 0) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.kick();
      }, delay);
    }
  }

  private notifyIdle(): void {
    if (this.backlog > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  async close(timeoutMs = 5000): Promise<void> {
    this.accepting = false;
    if (this.closed) return;
    if (this.backlog > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.idleWaiters.push(resolve);
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
    }
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.connectTimer);
    const left = [...this.written, ...this.queue];
    this.written = [];
    this.queue = [];
    const err = new CustodyError('UNAVAILABLE', `syslog ${this.target}: closed before the line was written`, { target: this.target });
    for (const p of left) p.reject(err);
    const s = this.socket;
    this.socket = undefined;
    this.connected = false;
    if (s !== undefined && !s.destroyed) {
      // end() sends what is buffered, then FIN; destroy if the peer does not finish within a second.
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => s.destroy(), 1000);
        s.once('close', () => (clearTimeout(t), resolve()));
        s.end();
      });
    }
  }
}

export interface UdpSyslogOptions {
  /** Default UDP_MAX_BYTES (8192). */
  readonly maxBytes?: number;
}

export class UdpSyslog extends Reporter implements SyslogTransport {
  private readonly socket: UdpSocket;
  private readonly maxBytes: number;
  private closed = false;

  constructor(
    readonly host: string,
    readonly port: number,
    opts: UdpSyslogOptions = {},
  ) {
    super(`udp://${isIPv6(host) ? `[${host}]` : host}:${port}`);
    this.maxBytes = Math.min(opts.maxBytes ?? UDP_MAX_BYTES, UDP_MAX_BYTES);
    this.socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    this.socket.on('error', (err) => void this.report(`socket error (${errCode(err)})`));
  }

  send(message: SyslogMessage): Promise<void> {
    if (this.closed) return Promise.reject(new CustodyError('UNAVAILABLE', `syslog ${this.target}: the transport is closed`, { target: this.target }));
    let bytes: Buffer;
    try {
      bytes = encodeRfc5424(message, this.maxBytes).bytes;
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      this.socket.send(bytes, this.port, this.host, (err) => (err ? reject(this.report(`send failed (${errCode(err)})`)) : resolve()));
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** A transport for a configured target (a string is parsed with parseSyslogTarget). */
export function createSyslogTransport(target: string | SyslogTarget, opts: TcpSyslogOptions & UdpSyslogOptions = {}): SyslogTransport {
  const t = typeof target === 'string' ? parseSyslogTarget(target) : target;
  return t.protocol === 'tcp' ? new TcpSyslog(t.host, t.port, opts) : new UdpSyslog(t.host, t.port, opts);
}
