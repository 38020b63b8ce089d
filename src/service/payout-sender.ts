/**
 * Handing our signed transactions to the node (service/payouts.ts decides when): a first send right after
 * the batch that keeps one is durable, and re-sends of one the node's mempool does not show, at most every
 * RESEND_AFTER_MS. A node that keeps refusing (a fee below its minimum, a conflicting spend, a policy) is
 * reported after NOT_ACCEPTED_AFTER_RESENDS re-sends rather than asked again in silence for ever.
 */
import type { ChainBackend } from '../chain/backend.js';
import type { Clock } from '../types.js';
import type { PayoutRecord } from './payout-records.js';

/** A transaction missing from the node's mempool is sent again at most this often. */
const RESEND_AFTER_MS = 2_000;
/** Re-sends after which a transaction the node will not keep is reported: ~10 s. */
const NOT_ACCEPTED_AFTER_RESENDS = 5;

export interface NotAccepted {
  readonly txid: string;
  readonly resends: number;
  /** The node's last answer to a send, if it refused out loud (some nodes answer a txid regardless). */
  readonly lastError: string | null;
}

export class PayoutSender {
  private readonly sentAt = new Map<string, number>();
  private readonly resends = new Map<string, number>();
  private readonly errors = new Map<string, string>();

  constructor(
    private readonly backend: ChainBackend,
    private readonly clock: Clock,
    private readonly opts: { log?: (line: string) => void; afterSend?: () => void; notAccepted: (n: NotAccepted) => void },
  ) {}

  /** Hands the signed bytes to the node; whatever the node answers, the reconciliation decides what it means. */
  async send(p: PayoutRecord): Promise<void> {
    this.sentAt.set(p.txid, this.clock());
    try {
      await this.backend.sendRawTransaction(Buffer.from(p.hex, 'hex'));
      this.errors.delete(p.txid);
      this.opts.afterSend?.();
    } catch (err) {
      // Unreachable, refused, already known.
      this.errors.set(p.txid, (err as Error).message.slice(0, 300));
      this.opts.log?.(`payouts: sending ${p.txid}: ${(err as Error).message}`);
    }
  }

  /** A reconciliation found it missing from the node's mempool: sent again unless it was just sent. */
  resend(p: PayoutRecord): void {
    // One just handed to the node may not be in a mempool read a moment before: not sent twice at once.
    if ((this.sentAt.get(p.txid) ?? -Infinity) > this.clock() - RESEND_AFTER_MS) return;
    const n = (this.resends.get(p.txid) ?? 0) + 1;
    this.resends.set(p.txid, n);
    if (n === NOT_ACCEPTED_AFTER_RESENDS) this.opts.notAccepted({ txid: p.txid, resends: n, lastError: this.errors.get(p.txid) ?? null });
    void this.send(p);
  }

  /** The node's mempool shows it: re-sends start counting again from zero. */
  accepted(txid: string): void {
    this.resends.delete(txid);
  }

  /** No longer followed (failed, or deep enough): nothing kept about it. */
  forget(txid: string): void {
    this.sentAt.delete(txid);
    this.resends.delete(txid);
    this.errors.delete(txid);
  }
}
