/**
 * Every event after a starting seq, in order, exactly once, from two sources: the live feed (fast, but it
 * can drop or reorder: a slow joiner, a reconnect, a full queue) and the daemon's store (complete, read by
 * pages). Live events are delivered while they follow on; a gap is filled from the store before going on.
 */
import type { CustodyEvent } from '../service/events.js';

export type FetchSince = (afterSeq: number, limit: number) => Promise<readonly CustodyEvent[]>;

const PAGE = 1_000;

export class EventSequencer {
  private last: number;
  private readonly held: CustodyEvent[] = [];
  private replaying = false;
  private closed = false;

  constructor(
    afterSeq: number,
    private readonly fetchSince: FetchSince,
    private readonly onEvent: (e: CustodyEvent) => void,
    private readonly retryMs = (round: number): number => Math.min(1_000, 10 * 2 ** round),
  ) {
    this.last = afterSeq;
  }

  /** The seq of the last event delivered. */
  get delivered(): number {
    return this.last;
  }

  /** An event from the live feed. */
  live(e: CustodyEvent): void {
    if (this.replaying) this.held.push(e);
    else this.deliver(e);
  }

  close(): void {
    this.closed = true;
  }

  private deliver(e: CustodyEvent): void {
    if (e.seq <= this.last) return;
    if (e.seq > this.last + 1) {
      this.held.push(e);
      if (!this.replaying) void this.catchUp();
      return;
    }
    this.last = e.seq;
    this.onEvent(e);
  }

  /** Reads the store from the last delivered seq, then delivers what the live feed brought meanwhile. */
  async catchUp(): Promise<void> {
    if (this.replaying) return;
    this.replaying = true;
    try {
      for (let round = 0; !this.closed; round++) {
        for (;;) {
          let page: readonly CustodyEvent[];
          try {
            page = await this.fetchSince(this.last, PAGE);
          } catch {
            // The daemon did not answer (restarting, unreachable): ask again after a while, never give up.
            page = [];
            await new Promise((r) => setTimeout(r, this.retryMs(round++)));
            if (this.closed) return;
            continue;
          }
          for (const e of page) {
            // The store holds events in sequence order, so one missing below a stored one never will be (a
            // number taken by a batch that failed): step over it rather than wait for it for ever.
            if (e.seq > this.last + 1) this.last = e.seq - 1;
            this.deliver(e);
          }
          if (page.length < PAGE) break;
        }
        const held = this.held.splice(0).sort((a, b) => a.seq - b.seq);
        for (const e of held) this.deliver(e);
        // A gap left (the live feed ran ahead of the page just read): read again now, rather than leave
        // the events behind it undelivered until some later event happens to arrive.
        if (this.held.length === 0) break;
        await new Promise((r) => setTimeout(r, this.retryMs(round)));
      }
    } finally {
      this.replaying = false;
    }
  }
}
