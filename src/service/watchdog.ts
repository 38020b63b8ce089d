/**
 * Being told, and containing it (issue 8): alerts on the event feed (and, through the audit sink's
 * syslog, off the host) for what an operator must look at, and the automatic freeze on the triggers an
 * incident write-up keeps naming: a client hammering the policy, a deep reorg, a tip gone stale, the
 * audit sink down, a burst of failed unlock attempts. A freeze stops signing and new withdrawals at once;
 * deposits keep being tracked; only an operator unfreezes. Each trigger is off unless configured.
 */
import type { Clock } from '../types.js';
import type { Store } from '../store/db.js';
import type { CustodyEvent, EventLog } from './events.js';
import type { Operator } from './operator.js';

export interface AutoFreezeTriggers {
  /** Policy rejections from one client within policyRejectionsMinutes. */
  readonly policyRejections?: number;
  readonly policyRejectionsMinutes: number;
  /** A reorganisation that rolls back more blocks than this. */
  readonly reorgDepth?: number;
  /** The daemon's tip unchanged (no block, or the node unreachable) for longer than this. */
  readonly tipStaleSeconds?: number;
  /** The audit sink unreachable (with records waiting) for longer than this. */
  readonly auditSinkDownSeconds?: number;
  /** Failed unlock attempts (any custodian) within failedUnlocksMinutes. */
  readonly failedUnlocks?: number;
  readonly failedUnlocksMinutes: number;
}

export interface AlertThresholds {
  /** alert.tip_stale after this long without a new tip. */
  readonly tipStaleSeconds: number;
  /** alert.velocity when a global window is used above this share of its limit. */
  readonly velocityWarnPercent: number;
  /** alert.auth_failures when this many authentication failures arrive within a minute. */
  readonly authFailuresPerMinute: number;
  /** alert.policy_rejections when one client is refused this many times within 10 minutes. */
  readonly policyRejectionsPer10Minutes: number;
}

export interface WatchSources {
  readonly chain: () => { state: string; hash: string | null; height: number | null } | null;
  readonly velocity: () => Array<{ name: string; usedSats: bigint; limitSats: bigint | null }>;
}

export interface WatchdogOptions {
  readonly alerts: AlertThresholds;
  readonly freeze: AutoFreezeTriggers;
  readonly clock?: Clock;
  readonly log?: (line: string) => void;
  /** Every alert raised, after it is on the feed (metrics count them). */
  readonly onAlert?: (type: string) => void;
}

/** Timestamps within a sliding window, per key. */
class Burst {
  private readonly hits = new Map<string, number[]>();
  constructor(private readonly windowMs: number) {}
  add(key: string, now: number): number {
    const list = (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs);
    list.push(now);
    this.hits.set(key, list);
    return list.length;
  }
  clear(key: string): void {
    this.hits.delete(key);
  }
}

export class Watchdog {
  private readonly clock: Clock;
  private readonly lastAlert = new Map<string, number>();
  private readonly policy: Burst;
  private readonly policyAlerts = new Burst(600_000);
  private readonly unlocks: Burst;
  private readonly auth = new Burst(60_000);
  private tip: { hash: string | null; since: number } | null = null;
  private ticker: NodeJS.Timeout | undefined;
  private freezing = false;

  constructor(
    private readonly store: Store,
    private readonly events: EventLog,
    private readonly operator: Operator,
    private readonly sources: WatchSources,
    private readonly opts: WatchdogOptions,
  ) {
    this.clock = opts.clock ?? Date.now;
    this.policy = new Burst(opts.freeze.policyRejectionsMinutes * 60_000);
    this.unlocks = new Burst(opts.freeze.failedUnlocksMinutes * 60_000);
  }

  start(): void {
    this.ticker = setInterval(() => this.check(), 1_000);
    this.ticker.unref();
  }

  stop(): void {
    if (this.ticker !== undefined) clearInterval(this.ticker);
  }

  /** A request refused by policy (POLICY_* codes) from `client`. */
  policyRejected(client: string, code: string): void {
    const now = this.clock();
    if (this.policyAlerts.add(client, now) === this.opts.alerts.policyRejectionsPer10Minutes) this.alert('alert.policy_rejections', { client, code, count: this.opts.alerts.policyRejectionsPer10Minutes, minutes: 10 });
    const limit = this.opts.freeze.policyRejections;
    if (limit !== undefined && this.policy.add(client, now) >= limit) {
      this.policy.clear(client);
      this.autoFreeze(`${limit} policy rejections within ${this.opts.freeze.policyRejectionsMinutes} min from client ${client} (last: ${code})`);
    }
  }

  /** A failed authentication (unknown key, bad authenticator, replay). */
  authFailed(who: string): void {
    if (this.auth.add('all', this.clock()) === this.opts.alerts.authFailuresPerMinute) this.alert('alert.auth_failures', { count: this.opts.alerts.authFailuresPerMinute, seconds: 60, last: who });
  }

  /** A failed unlock attempt (wrong passphrase, unknown custodian, shares that do not decrypt). */
  unlockFailed(custodian: string, code: string): void {
    const now = this.clock();
    this.alert('alert.unlock_failed', { custodian, code }, 0);
    const limit = this.opts.freeze.failedUnlocks;
    if (limit !== undefined && this.unlocks.add('all', now) >= limit) {
      this.unlocks.clear('all');
      this.autoFreeze(`${limit} failed unlock attempts within ${this.opts.freeze.failedUnlocksMinutes} min (last: ${custodian}, ${code})`);
    }
  }

  /** The follower rolled back `depth` blocks to `forkHeight`. */
  reorganised(depth: number, forkHeight: number | null): void {
    if (depth >= 2) this.alert('alert.reorg', { depth, forkHeight }, 0);
    const limit = this.opts.freeze.reorgDepth;
    if (limit !== undefined && depth > limit) this.autoFreeze(`a reorganisation rolled back ${depth} blocks (deeper than ${limit}) to height ${forkHeight ?? 'none'}`);
  }

  /** The audit sink has been down this long (from the sink's own check). */
  auditSinkDown(downForMs: number): void {
    const limit = this.opts.freeze.auditSinkDownSeconds;
    if (limit !== undefined && downForMs > limit * 1000) this.autoFreeze(`the audit sink has been unreachable for ${Math.round(downForMs / 1000)} s (more than ${limit} s)`);
  }

  private check(): void {
    const now = this.clock();
    const chain = this.sources.chain();
    if (chain !== null) {
      if (this.tip === null || this.tip.hash !== chain.hash) this.tip = { hash: chain.hash, since: now };
      const stale = (now - this.tip.since) / 1000;
      if (chain.state === 'disconnected') this.alert('alert.node_disconnected', { state: chain.state, height: chain.height });
      if (stale > this.opts.alerts.tipStaleSeconds) this.alert('alert.tip_stale', { height: chain.height, seconds: Math.round(stale), state: chain.state });
      const limit = this.opts.freeze.tipStaleSeconds;
      if (limit !== undefined && stale > limit) {
        this.tip = { hash: chain.hash, since: now }; // once per stale period, not every second
        this.autoFreeze(`the tip has not moved for ${Math.round(stale)} s (more than ${limit} s; chain ${chain.state} at height ${chain.height ?? 'none'})`);
      }
    }
    for (const w of this.sources.velocity()) {
      if (w.limitSats === null || w.limitSats === 0n) continue;
      const percent = Number((w.usedSats * 10_000n) / w.limitSats) / 100;
      if (percent > this.opts.alerts.velocityWarnPercent) this.alert(`alert.velocity`, { window: w.name, usedSats: Number(w.usedSats), limitSats: Number(w.limitSats), percent }, 3_600_000);
    }
  }

  /** Freezes as "system" (audited, on the feed) unless already frozen; a freeze never waits on another. */
  private autoFreeze(reason: string): void {
    if (this.operator.frozen !== null || this.freezing) return;
    this.freezing = true;
    this.opts.log?.(`AUTOMATIC FREEZE: ${reason}`);
    this.alert('alert.auto_freeze', { reason }, 0);
    void this.operator
      .freeze('system', `automatic: ${reason}`)
      .catch((err: unknown) => this.opts.log?.(`automatic freeze failed: ${(err as Error).message}`))
      .finally(() => (this.freezing = false));
  }

  /** An alert event, at most once per `everyMs` per type (0: every time). */
  alert(type: string, data: Record<string, unknown>, everyMs = 600_000): void {
    const now = this.clock();
    if (everyMs > 0 && (this.lastAlert.get(type) ?? -Infinity) > now - everyMs) return;
    this.lastAlert.set(type, now);
    this.opts.log?.(`${type}: ${JSON.stringify(data)}`);
    const { event, ops } = this.events.append(type, data);
    void this.store.commit(ops).then(() => {
      this.events.announce([event as CustodyEvent]);
      this.opts.onAlert?.(type);
    }, () => undefined);
  }
}
