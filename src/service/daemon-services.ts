/** The services one daemon runs, composed once in main.ts and handed to the RPC servers. */
import type { Network } from '../types.js';
import type { AuditLog } from '../audit/log.js';
import { verifyAudit } from '../audit/log.js';
import type { Keystore } from '../keystore/keystore.js';
import type { Store } from '../store/db.js';
import type { DepositAddresses } from './deposits.js';
import type { EventLog } from './events.js';
import type { Journal } from './journal.js';
import type { Operator } from './operator.js';
import type { ChainTracking } from './chain-tracking.js';
import type { Withdrawals } from './withdrawals.js';
import type { Payouts } from './payouts.js';
import type { Sweeps } from './sweeps.js';
import type { AuditSink } from './audit-sink.js';
import { statusDocument, type StatusDocument } from './status.js';

export class DaemonServices {
  /** Set by main.ts when RPC is configured: applies a re-read client list (SIGHUP). */
  reloadHook: ((config: import('../config/schema.js').Config) => Promise<void>) | undefined;
  /** Set by main.ts when [audit] syslog is configured. */
  auditSink: AuditSink | null = null;

  constructor(
    readonly version: string,
    readonly network: Network,
    readonly store: Store,
    readonly journal: Journal,
    readonly audit: AuditLog,
    readonly events: EventLog,
    readonly keystore: Keystore,
    readonly operator: Operator,
    readonly deposits: DepositAddresses,
    /** Null when no [chain] is configured. */
    readonly chain: ChainTracking | null,
    /** Null without [chain] and one of [withdrawals] or [hot] (then withdrawal.* and sweep.* answer WITHDRAWALS_DISABLED). */
    readonly payments: { readonly withdrawals: Withdrawals; readonly payouts: Payouts; readonly sweeps: Sweeps } | null = null,
    private readonly startedAt: number = Date.now(),
  ) {}

  status(): StatusDocument {
    return statusDocument({ ...this, startedAt: this.startedAt }, Date.now());
  }

  verifyAudit(): ReturnType<typeof verifyAudit> {
    return verifyAudit(this.store);
  }
}
