/**
 * Prometheus metrics (issue 8 item 6), on a registry of their own (never prom-client's global one).
 *
 * Every label value comes from a fixed set, so no address, account, txid, client name or other
 * free-form text can ever reach a scrape: methods from the daemon's method table (given to the
 * constructor: service/ does not import rpc/), codes from ERROR_CODES plus "OK", doors app|admin,
 * wallets hot|cold, velocity windows named by the configuration, alert types from an allowlist (or a
 * fixed pattern with a cap). Anything else is counted under "(other)" (or, for gauges, left out).
 *
 * Gauges are read from the sources at scrape time (prom-client collect functions); a source that
 * throws fails the scrape, and the next scrape reads it again.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CustodyError, ERROR_CODES } from '../errors.js';

/** Satoshis as the services hold them (bigint) or as documents carry them (number); exported as numbers (< 2^53). */
export type MetricSats = number | bigint;

/** Read at every scrape. Shaped so that the daemon can pass its services' own views (see main.ts wiring). */
export interface MetricsSources {
  /** ChainTracking.balances(), or null without a chain. `reservedSats` (hot) is exported when present. */
  balances(): {
    readonly hot: { readonly confirmedSats: MetricSats; readonly unconfirmedSats: MetricSats; readonly reservedSats?: MetricSats };
    readonly cold: { readonly confirmedSats: MetricSats; readonly unconfirmedSats: MetricSats };
  } | null;
  /** ChainTracking.status() (a FollowerStatus), or null without a chain. */
  chain(): { readonly height: number | null; readonly nodeHeight: number | null; readonly state: string } | null;
  /** The global use of each rolling withdrawal window (Withdrawals.velocity().windows), or null without [withdrawals]. */
  velocity(): ReadonlyArray<{ readonly name: string; readonly usedSats: MetricSats; readonly limitSats: MetricSats | null }> | null;
  frozen(): boolean;
  locked(): boolean;
  /** Audit records appended and not yet shipped (AuditSink.status().waiting), or null without a sink. */
  auditShippedLag(): number | null;
  /** EventLog.head: the newest event's sequence number (-1 when none). */
  eventsHead(): number;
}

export interface MetricsOptions {
  /** The RPC method names (Object.keys(METHODS) from rpc/methods.ts); any other name is counted as "(other)". */
  readonly methods: readonly string[];
  /** Alert event types to count. Without it, types matching ALERT_TYPE_PATTERN are counted, at most MAX_ALERT_TYPES of them. */
  readonly alertTypes?: readonly string[];
  /** Velocity window names from the configuration; without it, any name of the configuration's form is exported. */
  readonly windows?: readonly string[];
  /** Node.js process metrics (CPU, memory, event loop, GC) under the `custody_` prefix; default true. */
  readonly processMetrics?: boolean;
}

export type Door = 'app' | 'admin';

/** The one value that stands for any name outside a label's fixed set. */
export const OTHER = '(other)';
/** What rpc/dispatch.ts reports as the method of a frame that did not decode. */
export const UNDECODED = '(undecoded)';
export const ALERT_TYPE_PATTERN = /^alert\.[a-z_]{1,40}$/;
export const MAX_ALERT_TYPES = 50;
/** The configuration's rule for window names (config/schema.ts). */
const WINDOW_NAME = /^[A-Za-z0-9_-]{1,16}$/;
/** Method names as the method table spells them; a table entry of another form is refused at construction. */
const METHOD_NAME = /^[a-z][A-Za-z0-9_.]{0,63}$/;

/** 0.1 ms … 5 s (seconds): the RPC methods run from in-memory reads to signing and a node round trip. */
export const LATENCY_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export const METRIC_NAMES = {
  requests: 'custody_rpc_requests_total',
  duration: 'custody_rpc_request_duration_seconds',
  balance: 'custody_balance_sats',
  velocityUsed: 'custody_velocity_used_sats',
  velocityLimit: 'custody_velocity_limit_sats',
  tipHeight: 'custody_chain_tip_height',
  nodeHeight: 'custody_chain_node_height',
  lag: 'custody_chain_lag_blocks',
  connected: 'custody_chain_connected',
  frozen: 'custody_frozen',
  locked: 'custody_locked',
  auditUnshipped: 'custody_audit_unshipped_records',
  eventsHead: 'custody_events_head',
  alerts: 'custody_alerts_total',
} as const;

const sats = (v: MetricSats): number => (typeof v === 'bigint' ? Number(v) : v);
const finite = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

export class Metrics {
  readonly registry: Registry;
  private readonly methods: ReadonlySet<string>;
  private readonly codes: ReadonlySet<string>;
  private readonly alertTypes: ReadonlySet<string> | null;
  private readonly windows: ReadonlySet<string> | null;
  /** Alert types seen under the pattern rule (bounded by MAX_ALERT_TYPES). */
  private readonly seenAlerts = new Set<string>();
  private readonly requests: Counter<'door' | 'method' | 'code'>;
  private readonly duration: Histogram<'door' | 'method'>;
  private readonly alerts: Counter<'type'>;

  constructor(sources: MetricsSources, opts: MetricsOptions) {
    for (const m of opts.methods) {
      if (!METHOD_NAME.test(m)) throw new CustodyError('INVALID_ARGUMENT', `metrics.methods: "${m.slice(0, 64)}" is not a method name`);
    }
    for (const a of opts.alertTypes ?? []) {
      if (!ALERT_TYPE_PATTERN.test(a)) throw new CustodyError('INVALID_ARGUMENT', `metrics.alertTypes: "${a.slice(0, 64)}" is not of the form alert.name`);
    }
    for (const w of opts.windows ?? []) {
      if (!WINDOW_NAME.test(w)) throw new CustodyError('INVALID_ARGUMENT', `metrics.windows: "${w.slice(0, 64)}" is not a window name`);
    }
    this.methods = new Set(opts.methods);
    this.codes = new Set([...Object.keys(ERROR_CODES), 'OK']);
    this.alertTypes = opts.alertTypes === undefined ? null : new Set(opts.alertTypes);
    this.windows = opts.windows === undefined ? null : new Set(opts.windows);

    const registry = new Registry();
    this.registry = registry;
    const registers = [registry];
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'custody_' });

    this.requests = new Counter({
      name: METRIC_NAMES.requests,
      help: 'RPC requests answered, by door (app or admin socket), method and result code (OK or an error code).',
      labelNames: ['door', 'method', 'code'] as const,
      registers,
    });
    this.duration = new Histogram({
      name: METRIC_NAMES.duration,
      help: 'RPC request latency from frame received to reply encoded, by door and method.',
      labelNames: ['door', 'method'] as const,
      buckets: [...LATENCY_BUCKETS],
      registers,
    });
    this.alerts = new Counter({ name: METRIC_NAMES.alerts, help: 'Alert events raised, by type.', labelNames: ['type'] as const, registers });
    for (const a of this.alertTypes ?? []) this.alerts.inc({ type: a }, 0);

    new Gauge({
      name: METRIC_NAMES.balance,
      help: 'Wallet balance in satoshis, by wallet (hot or cold) and state (confirmed, unconfirmed; reserved for hot). Absent without a chain.',
      labelNames: ['wallet', 'state'] as const,
      registers,
      collect(this: Gauge<'wallet' | 'state'>) {
        const b = sources.balances();
        this.reset();
        if (b === null) return;
        this.set({ wallet: 'hot', state: 'confirmed' }, sats(b.hot.confirmedSats));
        this.set({ wallet: 'hot', state: 'unconfirmed' }, sats(b.hot.unconfirmedSats));
        if (b.hot.reservedSats !== undefined) this.set({ wallet: 'hot', state: 'reserved' }, sats(b.hot.reservedSats));
        this.set({ wallet: 'cold', state: 'confirmed' }, sats(b.cold.confirmedSats));
        this.set({ wallet: 'cold', state: 'unconfirmed' }, sats(b.cold.unconfirmedSats));
      },
    });

    const windowOk = (name: string): boolean => WINDOW_NAME.test(name) && (this.windows === null || this.windows.has(name));
    new Gauge({
      name: METRIC_NAMES.velocityUsed,
      help: 'Satoshis withdrawn (approved) within each rolling velocity window, all clients together.',
      labelNames: ['window'] as const,
      registers,
      collect(this: Gauge<'window'>) {
        const v = sources.velocity();
        this.reset();
        for (const w of v ?? []) if (windowOk(w.name)) this.set({ window: w.name }, sats(w.usedSats));
      },
    });
    new Gauge({
      name: METRIC_NAMES.velocityLimit,
      help: 'The global limit of each rolling velocity window in satoshis (absent for windows with only per-client limits).',
      labelNames: ['window'] as const,
      registers,
      collect(this: Gauge<'window'>) {
        const v = sources.velocity();
        this.reset();
        for (const w of v ?? []) if (w.limitSats !== null && windowOk(w.name)) this.set({ window: w.name }, sats(w.limitSats));
      },
    });

    /** An unlabelled gauge read from the source at scrape time; null leaves it out of the scrape. */
    const gauge = (name: string, help: string, read: () => number | null): void => {
      new Gauge({
        name,
        help,
        registers,
        collect(this: Gauge) {
          const v = read();
          if (finite(v)) this.set(v);
          else this.remove();
        },
      });
    };
    gauge(METRIC_NAMES.tipHeight, 'Height of the last block the daemon applied (absent without a chain or before the first block).', () => sources.chain()?.height ?? null);
    gauge(METRIC_NAMES.nodeHeight, "The node's best height at the last poll (absent without a chain or before the first answer).", () => sources.chain()?.nodeHeight ?? null);
    gauge(METRIC_NAMES.lag, "Blocks the daemon is behind the node's tip (absent unless both heights are known).", () => {
      const c = sources.chain();
      return c === null || !finite(c.height) || !finite(c.nodeHeight) ? null : Math.max(0, c.nodeHeight - c.height);
    });
    gauge(METRIC_NAMES.connected, '1 when the chain follower is connected to the node, else 0 (absent without a chain).', () => {
      const c = sources.chain();
      return c === null ? null : c.state === 'connected' ? 1 : 0;
    });
    gauge(METRIC_NAMES.frozen, '1 while an operator freeze is in force, else 0.', () => (sources.frozen() ? 1 : 0));
    gauge(METRIC_NAMES.locked, '1 while the hot wallet is locked, else 0.', () => (sources.locked() ? 1 : 0));
    gauge(METRIC_NAMES.auditUnshipped, 'Audit records appended and not yet delivered to the audit sink (absent without a sink).', () => sources.auditShippedLag());
    gauge(METRIC_NAMES.eventsHead, "The event feed's newest sequence number (-1 when empty).", () => sources.eventsHead());
  }

  /** The exposition format's content type, for the HTTP reply. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The scrape: every metric read now. Rejects when a source throws. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** One finished request, exactly as rpc/dispatch.ts reports it in onDone. `caller` is never a label. */
  observeRequest(info: { method: string; code: string; ms: number; caller: string }, door: Door): void {
    const d: Door = door === 'admin' ? 'admin' : 'app';
    const method = this.methods.has(info.method) || info.method === UNDECODED ? info.method : OTHER;
    const code = this.codes.has(info.code) ? info.code : OTHER;
    this.requests.inc({ door: d, method, code });
    if (Number.isFinite(info.ms) && info.ms >= 0) this.duration.observe({ door: d, method }, info.ms / 1000);
  }

  /** One alert event (its type, e.g. "alert.hot_low"). */
  alert(type: string): void {
    let label = OTHER;
    if (this.alertTypes !== null) {
      if (this.alertTypes.has(type)) label = type;
    } else if (ALERT_TYPE_PATTERN.test(type) && (this.seenAlerts.has(type) || this.seenAlerts.size < MAX_ALERT_TYPES)) {
      this.seenAlerts.add(type);
      label = type;
    }
    this.alerts.inc({ type: label });
  }
}
