/** The one status document: what `custody status` shows operators and `status` returns to clients. */
import type { Network } from '../types.js';
import type { AuditLog } from '../audit/log.js';
import type { Keystore } from '../keystore/keystore.js';
import type { DepositAddresses } from './deposits.js';
import type { EventLog } from './events.js';
import type { FreezeState, Operator } from './operator.js';
import type { ChainStatus, ChainTracking } from './chain-tracking.js';
import type { Withdrawals } from './withdrawals.js';
import type { AuditSink, AuditSinkStatus } from './audit-sink.js';

export interface StatusDocument {
  readonly version: string;
  readonly network: Network;
  readonly wallet: {
    readonly state: 'locked' | 'unlocked';
    readonly unlockedAt: string | null;
    readonly unlock: { readonly received: number; readonly threshold: number; readonly custodians: readonly string[]; readonly nonce: string | null; readonly expiresAt: string | null };
  };
  readonly frozen: FreezeState | null;
  readonly deposits: { readonly highestIssued: number; readonly highestUsed: number; readonly recoveryGap: number; readonly gapWarning: string | null; readonly pooled: number };
  /** `disabled` when no [chain] is configured: deposits are issued but not tracked. */
  readonly chain: ChainStatus | { readonly state: 'disabled' };
  /** Integer satoshis (JSON numbers); null without a chain. Unconfirmed coins are not in `confirmedSats`. */
  readonly balances: {
    readonly hot: { readonly confirmedSats: number; readonly unconfirmedSats: number; readonly reservedSats: number; readonly coins: number };
    readonly cold: { readonly confirmedSats: number; readonly unconfirmedSats: number; readonly coins: number };
  } | null;
  /**
   * Null without [withdrawals]. worstCase24hSats: the most a fully compromised app tier could move in the
   * next 24 h = min(hot balance, what the global rolling limits still allow).
   */
  readonly withdrawals: {
    readonly waiting: number;
    readonly worstCase24hSats: number;
    readonly allowance24hSats: number | null;
    readonly windows: ReadonlyArray<{ readonly name: string; readonly seconds: number; readonly usedSats: number; readonly limitSats: number | null; readonly remainingSats: number | null }>;
  } | null;
  readonly events: { readonly head: number };
  readonly audit: { readonly head: { readonly seq: number; readonly hash: string }; readonly sink: AuditSinkStatus | null };
  readonly uptimeSeconds: number;
}

export interface StatusSources {
  readonly version: string;
  readonly network: Network;
  readonly keystore: Keystore;
  readonly operator: Operator;
  readonly deposits: DepositAddresses;
  readonly events: EventLog;
  readonly audit: AuditLog;
  readonly chain: ChainTracking | null;
  readonly payments: { readonly withdrawals: Withdrawals } | null;
  readonly auditSink: AuditSink | null;
  readonly startedAt: number;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function statusDocument(s: StatusSources, now: number): StatusDocument {
  const ks = s.keystore.status();
  const gap = s.deposits.gap();
  return {
    version: s.version,
    network: s.network,
    wallet: {
      state: ks.state,
      unlockedAt: iso(ks.unlockedAt),
      unlock: {
        received: ks.progress.received,
        threshold: ks.progress.threshold,
        custodians: ks.progress.custodians,
        nonce: ks.progress.nonce,
        expiresAt: iso(ks.progress.expiresAt),
      },
    },
    frozen: s.operator.frozen,
    deposits: { highestIssued: gap.highestIssued, highestUsed: gap.highestUsed, recoveryGap: gap.gap, gapWarning: gap.warning, pooled: s.deposits.pooled },
    chain: s.chain === null ? { state: 'disabled' } : s.chain.status(),
    balances: s.chain === null ? null : balancesDocument(s.chain),
    withdrawals: s.payments === null || s.chain === null ? null : withdrawalsDocument(s.payments.withdrawals, s.chain),
    events: { head: s.events.head },
    audit: { head: s.audit.head(), sink: s.auditSink?.status() ?? null },
    uptimeSeconds: Math.floor((now - s.startedAt) / 1000),
  };
}

function balancesDocument(chain: ChainTracking): NonNullable<StatusDocument['balances']> {
  const b = chain.balances();
  return {
    hot: { confirmedSats: Number(b.hot.confirmedSats), unconfirmedSats: Number(b.hot.unconfirmedSats), reservedSats: Number(b.hot.reservedSats), coins: b.hot.coins },
    cold: { confirmedSats: Number(b.cold.confirmedSats), unconfirmedSats: Number(b.cold.unconfirmedSats), coins: b.cold.coins },
  };
}

function withdrawalsDocument(w: Withdrawals, chain: ChainTracking): NonNullable<StatusDocument['withdrawals']> {
  const b = chain.balances();
  const v = w.velocity(b.hot.confirmedSats + b.hot.unconfirmedSats);
  const n = (x: bigint | null): number | null => (x === null ? null : Number(x));
  return {
    waiting: w.waitingCount,
    worstCase24hSats: Number(v.worstCase24hSats),
    allowance24hSats: n(v.allowance24hSats),
    windows: v.windows.map((u) => ({ name: u.name, seconds: u.seconds, usedSats: Number(u.globalUsedSats), limitSats: n(u.globalLimitSats), remainingSats: n(u.globalRemainingSats) })),
  };
}
