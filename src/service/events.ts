/**
 * The durable event feed (DESIGN §4): every event gets the next sequence number and is written in the
 * same batch as the state change it reports; only after that batch is durable is it announced to
 * subscribers (the CURVE publisher). `since(seq)` replays from the data dir, so a subscriber that was
 * down loses nothing.
 */
import type { Clock } from '../types.js';
import type { BatchOp, Store } from '../store/db.js';
import { EVENTS } from '../store/layout.js';

export interface CustodyEvent {
  readonly seq: number;
  readonly type: string;
  readonly time: string;
  readonly data: Readonly<Record<string, unknown>>;
}

export type EventListener = (events: readonly CustodyEvent[]) => void;

export const MAX_EVENTS_PAGE = 1_000;

export class EventLog {
  private next: number;
  private readonly listeners = new Set<EventListener>();

  private constructor(
    private readonly store: Store,
    last: number,
    private readonly clock: Clock,
  ) {
    this.next = last + 1;
  }

  static async open(store: Store, clock: Clock = Date.now): Promise<EventLog> {
    // The head is the last stored event, not a separate counter, so batches can never leave it stale.
    const [last] = await store.range(EVENTS.from, EVENTS.to, 1, true);
    return new EventLog(store, last === undefined ? -1 : (JSON.parse(last[1]) as CustodyEvent).seq, clock);
  }

  /** Sequence number of the newest event (-1 when none). */
  get head(): number {
    return this.next - 1;
  }

  /** Assigns the next sequence number; the caller commits `ops` with its state change, then announces. */
  append(type: string, data: Record<string, unknown>): { event: CustodyEvent; ops: BatchOp[] } {
    const event: CustodyEvent = { seq: this.next++, type, time: new Date(this.clock()).toISOString(), data };
    return { event, ops: [{ type: 'put', key: EVENTS.record(event.seq), value: JSON.stringify(event) }] };
  }

  /** The next sequence number, to put back with rollback() if the batch being built is abandoned before its commit. */
  mark(): number {
    return this.next;
  }

  /** Forgets the events appended since `mark` (same synchronous turn, never committed), so the feed has no gap. */
  rollback(mark: number): void {
    this.next = mark;
  }

  /** Tells subscribers about events whose batch is now durable. */
  announce(events: readonly CustodyEvent[]): void {
    if (events.length === 0) return;
    for (const l of this.listeners) l(events);
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Events with seq > afterSeq, oldest first, at most `limit`. */
  async since(afterSeq: number, limit = 100): Promise<CustodyEvent[]> {
    const from = EVENTS.record(Math.max(0, afterSeq + 1));
    const rows = await this.store.range(from, EVENTS.to, Math.min(Math.max(1, limit), MAX_EVENTS_PAGE));
    return rows.map(([, v]) => JSON.parse(v) as CustodyEvent);
  }
}
