/**
 * What operators do through the admin socket: unlock (custodian by custodian), lock, freeze and unfreeze.
 * Every attempt is audited, success or failure, before the reply; freezing is durable across restarts.
 */
import { CustodyError, isCustodyError } from '../errors.js';
import type { Clock } from '../types.js';
import type { Keystore, UnlockOutcome } from '../keystore/keystore.js';
import type { UnlockProgress } from '../keystore/unlock-session.js';
import { OPERATOR } from '../store/layout.js';
import type { Journal } from './journal.js';
import { screenSecrets } from '../audit/screen.js';

export interface FreezeState {
  readonly reason: string;
  readonly by: string;
  readonly at: string;
}

const REASON = /^[^\u0000-\u001f\u007f]{1,500}$/;

export class Operator {
  private frozenState: FreezeState | null;

  private constructor(
    private readonly journal: Journal,
    private readonly keystore: Keystore,
    private readonly clock: Clock,
    frozen: FreezeState | null,
  ) {
    this.frozenState = frozen;
  }

  static async open(journal: Journal, keystore: Keystore, clock: Clock = Date.now): Promise<Operator> {
    const frozen = await journal.store.get(OPERATOR.frozen);
    return new Operator(journal, keystore, clock, frozen === undefined ? null : (JSON.parse(frozen) as FreezeState));
  }

  get frozen(): FreezeState | null {
    return this.frozenState;
  }

  unlockStatus(): { state: 'locked' | 'unlocked'; unlockedAt: number | null; progress: UnlockProgress } {
    return this.keystore.status();
  }

  /** Told of each failed unlock attempt (the watchdog counts them). */
  onUnlockFailure: ((custodian: string, code: string) => void) | undefined;

  /** One custodian's passphrase. The caller wipes `passphrase` afterwards; it is never logged or audited. */
  async submitUnlock(operator: string, custodian: string, passphrase: Uint8Array): Promise<UnlockOutcome> {
    const actor = `custodian:${custodian}`;
    let outcome: UnlockOutcome;
    try {
      outcome = await this.keystore.submit(custodian, passphrase);
    } catch (err) {
      const result = isCustodyError(err) ? err.code.toLowerCase() : 'internal';
      await this.journal.commit({
        audit: [{ actor: isCustodyError(err, 'UNKNOWN_CUSTODIAN') ? `operator:${operator}` : actor, action: 'unlock.submit', details: { via: operator, result } }],
        events: isCustodyError(err, 'UNLOCK_FAILED') ? [{ type: 'wallet.unlock_failed', data: { reason: 'shares did not decrypt the seed' } }] : [],
      });
      if (isCustodyError(err, 'BAD_PASSPHRASE') || isCustodyError(err, 'UNKNOWN_CUSTODIAN') || isCustodyError(err, 'UNLOCK_FAILED')) this.onUnlockFailure?.(custodian, err.code);
      throw err;
    }
    const { progress } = outcome;
    const result = outcome.state === 'unlocked' ? 'unlocked' : outcome.alreadyCounted ? 'already_counted' : 'accepted';
    await this.journal.commit({
      audit: [{ actor, action: 'unlock.submit', details: { via: operator, result, received: progress.received, threshold: progress.threshold } }],
      events:
        outcome.state === 'unlocked'
          ? [{ type: 'wallet.unlocked', data: { threshold: progress.threshold } }]
          : [{ type: 'wallet.unlock_progress', data: { received: progress.received, threshold: progress.threshold } }],
    });
    return outcome;
  }

  async resetUnlock(operator: string): Promise<void> {
    this.keystore.resetUnlock();
    await this.journal.commit({ audit: [{ actor: `operator:${operator}`, action: 'unlock.reset' }] });
  }

  async lock(operator: string, why = 'operator'): Promise<void> {
    const was = this.keystore.state;
    this.keystore.lock();
    await this.journal.commit({
      audit: [{ actor: operator === 'system' ? 'system' : `operator:${operator}`, action: 'lock', details: { was, why } }],
      events: was === 'unlocked' ? [{ type: 'wallet.locked', data: { why } }] : [],
    });
  }

  async freeze(operator: string, reason: string): Promise<FreezeState> {
    if (typeof reason !== 'string' || !REASON.test(reason)) {
      throw new CustodyError('INVALID_PARAMS', 'reason: expected 1 to 500 printable characters saying why', { field: 'reason' });
    }
    // A freeze must never fail in an incident: if the free-text reason trips the audit log's secret
    // screen (say, twelve words that happen to be BIP39 words), freeze anyway and withhold the text.
    let recorded = reason;
    try {
      screenSecrets(reason, 'reason');
    } catch {
      recorded = '[reason withheld: it looked like a secret to the audit screen]';
    }
    const state: FreezeState = { reason: recorded, by: operator, at: new Date(this.clock()).toISOString() };
    await this.journal.commit({
      ops: [{ type: 'put', key: OPERATOR.frozen, value: JSON.stringify(state) }],
      audit: [{ actor: operator === 'system' ? 'system' : `operator:${operator}`, action: 'freeze', details: { reason: recorded } }],
      events: [{ type: 'daemon.frozen', data: { reason: recorded, by: operator } }],
    });
    this.frozenState = state;
    return state;
  }

  async unfreeze(operator: string): Promise<void> {
    const was = this.frozenState;
    await this.journal.commit({
      ops: [{ type: 'del', key: OPERATOR.frozen }],
      audit: [{ actor: `operator:${operator}`, action: 'unfreeze', details: { wasFrozen: was !== null } }],
      events: was === null ? [] : [{ type: 'daemon.unfrozen', data: { by: operator } }],
    });
    this.frozenState = null;
  }
}
