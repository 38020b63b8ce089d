/**
 * Deposit records (d!…): their shape, the view clients get, the feed ordered by the event that last
 * changed each one (deposit.list), and the events that report each change. service/ledger.ts decides
 * the changes; this module turns them into rows and events.
 */
import type { BatchOp, Store } from '../store/db.js';
import { DEPOSITS } from '../store/layout.js';
import type { CustodyEvent, EventLog } from './events.js';

export type DepositState = 'seen' | 'confirmed' | 'reorged';

/** One deposit as stored. A deposit is one output: several outputs to one address are several deposits. */
export interface DepositRecord {
  readonly txid: string;
  readonly vout: number;
  readonly address: string;
  /** The account the address was issued to; null for an address paid before it was issued (still pooled). */
  readonly account: string | null;
  readonly index: number;
  readonly amountSats: string;
  readonly height: number | null;
  readonly blockHash: string | null;
  readonly state: DepositState;
  readonly seenAt: string;
  readonly confirmedAt: string | null;
  /** Sequence number of the event that last changed it (deposit.list sinceSeq). */
  readonly seq: number;
}

/** A deposit as clients see it: amounts as JSON numbers (always < 2^53 sats), confirmations counted now. */
export interface DepositView {
  readonly txid: string;
  readonly vout: number;
  readonly address: string;
  readonly account: string | null;
  readonly index: number;
  readonly amountSats: number;
  readonly height: number | null;
  readonly blockHash: string | null;
  readonly confirmations: number;
  readonly state: DepositState;
  readonly seenAt: string;
  readonly confirmedAt: string | null;
  readonly seq: number;
}

/** A change to report: the deposit it concerns and anything the event adds (reorg reason, …). */
export interface PendingEvent {
  readonly type: 'deposit.seen' | 'deposit.confirmed' | 'deposit.reorged';
  readonly data: Record<string, unknown>;
  readonly depositKey: string;
}

/** Deposits by the sequence number of their last change, oldest change first (a feed that can resume). */
export async function listDeposits(
  store: Store,
  view: (d: DepositRecord) => DepositView,
  opts: { account?: string; sinceSeq?: number; limit?: number } = {},
): Promise<{ deposits: DepositView[]; lastSeq: number }> {
  const limit = Math.min(Math.max(1, opts.limit ?? 100), 1_000);
  const out: DepositView[] = [];
  let from = DEPOSITS.bySeq(Math.max(0, (opts.sinceSeq ?? -1) + 1));
  let lastSeq = opts.sinceSeq ?? -1;
  for (;;) {
    const page = await store.range(from, DEPOSITS.bySeqTo, 500);
    const records = await store.getMany(page.map(([, key]) => key));
    for (let i = 0; i < page.length; i++) {
      const v = records[i];
      if (v === undefined) continue;
      const d = JSON.parse(v) as DepositRecord;
      lastSeq = d.seq;
      if (opts.account === undefined || d.account === opts.account) out.push(view(d));
      if (out.length >= limit) return { deposits: out, lastSeq };
    }
    if (page.length < 500) return { deposits: out, lastSeq };
    from = `${(page[page.length - 1] as [string, string])[0]}\u0000`;
  }
}

/**
 * Gives each event its sequence number and each changed deposit the seq of its last event, and adds
 * the rows: the deposit, its seq index entry (replacing the old one), the events.
 */
export function stampDepositEvents(
  log: EventLog,
  touched: Map<string, DepositRecord>,
  pending: readonly PendingEvent[],
  tipHeight: number,
  ops: BatchOp[],
): { events: CustodyEvent[]; records: Map<string, DepositRecord> } {
  const events: CustodyEvent[] = [];
  const lastSeq = new Map<string, number>();
  for (const p of pending) {
    const key = p.depositKey;
    const d = touched.get(key) as DepositRecord;
    const state = p.type === 'deposit.seen' ? 'seen' : p.type === 'deposit.confirmed' ? 'confirmed' : 'reorged';
    const height = p.type === 'deposit.reorged' ? null : d.height;
    const { event, ops: eventOps } = log.append(p.type, {
      txid: d.txid,
      vout: d.vout,
      address: d.address,
      account: d.account,
      index: d.index,
      amountSats: Number(d.amountSats),
      state,
      height,
      confirmations: height === null ? 0 : Math.max(0, tipHeight - height + 1),
      ...p.data,
    });
    events.push(event);
    ops.push(...eventOps);
    lastSeq.set(key, event.seq);
  }
  const records = new Map<string, DepositRecord>();
  for (const [key, d] of touched) {
    const seq = lastSeq.get(key) ?? d.seq;
    const record = { ...d, seq };
    records.set(key, record);
    ops.push({ type: 'put', key, value: JSON.stringify(record) });
    if (seq !== d.seq) {
      if (d.seq >= 0) ops.push({ type: 'del', key: DEPOSITS.bySeq(d.seq) });
      ops.push({ type: 'put', key: DEPOSITS.bySeq(seq), value: key });
    }
  }
  return { events, records };
}
