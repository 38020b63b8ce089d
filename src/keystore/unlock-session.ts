/**
 * One attempt to unlock by a quorum of custodians, each typing their own passphrase (DESIGN §2).
 *
 * - A wrong passphrase fails for that custodian only (BAD_PASSPHRASE) and does not count.
 * - The same custodian twice counts once.
 * - Partial progress expires (default 10 minutes after the first share) and can be reset; Vault's never does.
 * - Repeated failures for one custodian back off exponentially.
 * - At the threshold the data key is combined and proved by decrypting the seed (AES-GCM): a wrong
 *   combination gives UNLOCK_FAILED, never a wrong seed.
 * Attempts are serialised: scrypt shares libuv's thread pool with LevelDB (DESIGN §11).
 */
import { CustodyError } from '../errors.js';
import { aeadOpen, openWithPassphrase } from '../crypto/envelope.js';
import { combineShares } from '../crypto/shamir.js';
import { wipe } from '../crypto/wipe.js';
import type { Clock, RandomBytes } from '../types.js';
import { seedAad, shareAad, type KeystoreBody } from './keyfile.js';
import { normalizePassphrase } from './passphrase-policy.js';

export interface UnlockOptions {
  readonly clock: Clock;
  readonly random: RandomBytes;
  /** Partial progress is forgotten this long after the first accepted share. */
  readonly progressTimeoutMs: number;
  /** Consecutive failures for one custodian before backoff starts. */
  readonly backoffAfterFailures: number;
  readonly maxBackoffMs: number;
}

export const DEFAULT_UNLOCK_OPTIONS = { progressTimeoutMs: 10 * 60_000, backoffAfterFailures: 3, maxBackoffMs: 5 * 60_000 } as const;

export interface UnlockProgress {
  readonly received: number;
  readonly threshold: number;
  /** Names of the custodians whose shares are held (never the shares). */
  readonly custodians: readonly string[];
  /** Identifies this attempt, so custodians in separate rooms know they joined the same one. */
  readonly nonce: string | null;
  readonly startedAt: number | null;
  readonly expiresAt: number | null;
}

export type SubmitResult =
  | { readonly unlocked: false; readonly progress: UnlockProgress; readonly alreadyCounted: boolean }
  | { readonly unlocked: true; readonly progress: UnlockProgress; readonly entropy: Buffer };

interface Failures {
  count: number;
  blockedUntil: number;
}

export class UnlockSession {
  private readonly shares = new Map<string, Buffer>();
  private readonly failures = new Map<string, Failures>();
  private nonce: string | null = null;
  private startedAt: number | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly body: KeystoreBody,
    private readonly opts: UnlockOptions,
  ) {}

  progress(): UnlockProgress {
    this.expireIfDue();
    return {
      received: this.shares.size,
      threshold: this.body.threshold,
      custodians: [...this.shares.keys()],
      nonce: this.nonce,
      startedAt: this.startedAt,
      expiresAt: this.startedAt === null ? null : this.startedAt + this.opts.progressTimeoutMs,
    };
  }

  /** Offers one custodian's passphrase. The caller keeps ownership of `passphrase` and should wipe it. */
  submit(custodian: string, passphrase: Uint8Array): Promise<SubmitResult> {
    const run = this.queue.then(() => this.submitNow(custodian, passphrase));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Forgets all partial progress and wipes the shares held. Backoff state is kept. */
  reset(): void {
    for (const share of this.shares.values()) wipe(share);
    this.shares.clear();
    this.nonce = null;
    this.startedAt = null;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private expireIfDue(): void {
    if (this.startedAt !== null && this.opts.clock() >= this.startedAt + this.opts.progressTimeoutMs) this.reset();
  }

  private async submitNow(custodian: string, passphrase: Uint8Array): Promise<SubmitResult> {
    this.expireIfDue();
    const entry = this.body.custodians.find((c) => c.name === custodian);
    if (entry === undefined) {
      throw new CustodyError('UNKNOWN_CUSTODIAN', `no custodian named "${custodian}" in this keystore`, { custodian });
    }
    if (this.shares.has(custodian)) {
      return { unlocked: false, progress: this.progress(), alreadyCounted: true };
    }
    const now = this.opts.clock();
    const failed = this.failures.get(custodian);
    if (failed !== undefined && failed.blockedUntil > now) {
      const retryAfterSeconds = Math.ceil((failed.blockedUntil - now) / 1000);
      throw new CustodyError('UNLOCK_BACKOFF', `custodian "${custodian}": too many failed attempts; retry in ${retryAfterSeconds} s`, {
        custodian,
        retryAfterSeconds,
      });
    }

    const normalized = normalizePassphrase(passphrase);
    let share: Buffer | undefined;
    try {
      share = await openWithPassphrase(entry.share, normalized, shareAad(this.body.id, entry.name, entry.index, this.body.threshold));
    } finally {
      wipe(normalized);
    }
    if (share === undefined) {
      this.recordFailure(custodian);
      throw new CustodyError('BAD_PASSPHRASE', `custodian "${custodian}": the passphrase does not open this custodian's share`, {
        custodian,
        received: this.shares.size,
        threshold: this.body.threshold,
      });
    }
    this.failures.delete(custodian);
    if (this.shares.size === 0) this.start();
    this.shares.set(custodian, share);
    if (this.shares.size < this.body.threshold) return { unlocked: false, progress: this.progress(), alreadyCounted: false };

    const progress = this.progress();
    const entropy = await this.combineAndProve();
    return { unlocked: true, progress, entropy };
  }

  private start(): void {
    this.startedAt = this.opts.clock();
    this.nonce = Buffer.from(this.opts.random(4)).toString('hex');
    // Wipe abandoned shares on time even if nobody asks for progress again.
    this.timer = setTimeout(() => this.expireIfDue(), this.opts.progressTimeoutMs + 10);
    this.timer.unref();
  }

  private recordFailure(custodian: string): void {
    const f = this.failures.get(custodian) ?? { count: 0, blockedUntil: 0 };
    f.count++;
    if (f.count >= this.opts.backoffAfterFailures) {
      const delay = Math.min(this.opts.maxBackoffMs, 1000 * 2 ** (f.count - this.opts.backoffAfterFailures));
      f.blockedUntil = this.opts.clock() + delay;
    }
    this.failures.set(custodian, f);
  }

  /** Combines the shares held into the data key and proves it by opening the seed. Always resets. */
  private async combineAndProve(): Promise<Buffer> {
    const shares = [...this.shares.values()];
    let dataKey: Uint8Array | undefined;
    try {
      dataKey = await combineShares(shares);
      const seed = this.body.seed;
      const entropy = aeadOpen(dataKey, Buffer.from(seed.nonce, 'base64'), Buffer.from(seed.ciphertext, 'base64'), seedAad(this.body));
      if (entropy === undefined) {
        throw new CustodyError(
          'UNLOCK_FAILED',
          'the combined shares do not decrypt the hot seed: a share is wrong or the keystore header was altered; progress was reset',
          { threshold: this.body.threshold },
        );
      }
      return entropy;
    } finally {
      wipe(dataKey);
      this.reset();
    }
  }
}
