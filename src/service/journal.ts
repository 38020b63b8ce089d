/**
 * Commits a state change together with its audit records and events, in one batch (DESIGN §3: "every
 * state change that must be atomic is one batch"; the audit record is part of it), then announces the
 * events. Services call this rather than Store.commit when an act must be on record.
 */
import type { AuditLog } from '../audit/log.js';
import type { BatchOp, Store } from '../store/db.js';
import type { CustodyEvent, EventLog } from './events.js';

export interface JournalEntry {
  readonly ops?: readonly BatchOp[];
  readonly audit?: ReadonlyArray<{ readonly actor: string; readonly action: string; readonly details?: Record<string, unknown> }>;
  readonly events?: ReadonlyArray<{ readonly type: string; readonly data: Record<string, unknown> }>;
}

export class Journal {
  constructor(
    readonly store: Store,
    readonly audit: AuditLog,
    readonly events: EventLog,
  ) {}

  /** Builds the batch synchronously (sequence numbers assigned in call order), commits, announces. */
  async commit(entry: JournalEntry): Promise<readonly CustodyEvent[]> {
    const ops: BatchOp[] = [...(entry.ops ?? [])];
    ops.push(...this.audit.appendAll(entry.audit ?? []));
    const announced: CustodyEvent[] = [];
    for (const e of entry.events ?? []) {
      const { event, ops: eventOps } = this.events.append(e.type, e.data);
      announced.push(event);
      ops.push(...eventOps);
    }
    await this.store.commit(ops);
    this.events.announce(announced);
    return announced;
  }
}
