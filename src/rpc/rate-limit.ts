/**
 * Per-client request rate limiting (token bucket) and a throttle for audit lines about failures, so a
 * flood of bad requests costs the daemon little and cannot flood the audit log. Clock injected (ms).
 */
import { CustodyError } from '../errors.js';

export interface RateLimiterOptions {
  /** Sustained requests per second. */
  readonly ratePerSecond: number;
  /** Requests allowed at once after an idle period. */
  readonly burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Token bucket per client name (names are authenticated, so the map is bounded by the client list). */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly opts: RateLimiterOptions,
    private readonly clock: () => number = Date.now,
  ) {
    if (!(opts.ratePerSecond > 0) || !(opts.burst >= 1)) throw new CustodyError('INVALID_ARGUMENT', 'RateLimiter: ratePerSecond must be > 0 and burst >= 1');
  }

  /** Takes one token; false means refuse the request (RATE_LIMITED). */
  take(client: string): boolean {
    const now = this.clock();
    const b = this.buckets.get(client) ?? { tokens: this.opts.burst, at: now };
    // A clock that steps back refills nothing rather than going negative.
    const elapsed = Math.max(0, now - b.at);
    b.tokens = Math.min(this.opts.burst, b.tokens + (elapsed * this.opts.ratePerSecond) / 1000);
    b.at = now;
    this.buckets.set(client, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Drops a client's bucket (after a SIGHUP reload removed it). */
  forget(client: string): void {
    this.buckets.delete(client);
  }
}

export interface ThrottleOptions {
  /** Events let through per key per window. */
  readonly max: number;
  /** Window length (default one minute). */
  readonly windowMs?: number;
  /**
   * Keys tracked at once (default 10,000). Keys may come from attackers (addresses, unknown public
   * keys); past this, all new keys share one overflow key, so the total stays bounded either way.
   */
  readonly maxKeys?: number;
}

interface Window {
  start: number;
  count: number;
  suppressed: number;
}

export const THROTTLE_OVERFLOW_KEY = '*overflow*';

/** At most `max` events per key per fixed window; counts what it suppressed so the next line can say so. */
export class Throttle {
  private readonly windows = new Map<string, Window>();
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private lastPrune = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: ThrottleOptions) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.maxKeys = opts.maxKeys ?? 10_000;
    if (!(opts.max >= 1) || !(this.windowMs > 0) || !(this.maxKeys >= 1)) throw new CustodyError('INVALID_ARGUMENT', 'Throttle: max, windowMs and maxKeys must be positive');
  }

  allow(key: string, now: number): boolean {
    const w = this.windowFor(key, now);
    if (now - w.start >= this.windowMs || now < w.start) {
      w.start = now;
      w.count = 0;
    }
    if (w.count < this.opts.max) {
      w.count++;
      return true;
    }
    w.suppressed++;
    return false;
  }

  /** How many events for `key` were refused since the last call (then resets): "… and N more". Overflowed keys count under THROTTLE_OVERFLOW_KEY. */
  takeSuppressed(key: string): number {
    const w = this.windows.get(key);
    if (w === undefined) return 0;
    const n = w.suppressed;
    w.suppressed = 0;
    return n;
  }

  private windowFor(key: string, now: number): Window {
    const existing = this.windows.get(key);
    if (existing !== undefined) return existing;
    if (this.windows.size >= this.maxKeys) this.prune(now);
    const k = this.windows.size >= this.maxKeys ? THROTTLE_OVERFLOW_KEY : key;
    let w = this.windows.get(k);
    if (w === undefined) {
      w = { start: now, count: 0, suppressed: 0 };
      this.windows.set(k, w);
    }
    return w;
  }

  /** Forgets keys whose window ended with nothing suppressed left to report; at most once a second, so a key flood stays cheap. */
  private prune(now: number): void {
    if (now - this.lastPrune < 1000 && now >= this.lastPrune) return;
    this.lastPrune = now;
    for (const [k, w] of this.windows) if (now - w.start >= this.windowMs && w.suppressed === 0) this.windows.delete(k);
  }
}
