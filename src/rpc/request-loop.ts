/**
 * The receive side both doors share: read [routing id, frame, …extra frames] from a Router, handle each
 * request concurrently, send replies through one queue, and close gracefully (requests that arrive while
 * closing are answered UNAVAILABLE; those in flight finish and are answered first).
 */
import type { Router } from 'zeromq';
import { shuttingDown } from './dispatch.js';
import { SendQueue } from './send-queue.js';

export type Handler = (frame: Buffer, extra: Buffer[]) => Promise<Buffer | string>;

/** The extra frames of a one-frame message (shared: nothing writes to an empty array). */
const NO_FRAMES: Buffer[] = [];

export class RequestLoop {
  private readonly replies: SendQueue;
  private loop: Promise<void> | undefined;
  private inFlight = 0;
  private drained: Array<() => void> = [];
  private closing = false;

  constructor(
    private readonly socket: Router,
    private readonly handle: Handler,
    private readonly name: string,
  ) {
    this.replies = new SendQueue(socket, undefined, true);
  }

  start(): void {
    this.loop = this.receive();
  }

  private async receive(): Promise<void> {
    try {
      // receive() directly rather than the socket's async iterator (three promises per message instead of
      // one); a receive pending when the socket closes fails with EAGAIN, caught below as the normal end.
      while (!this.socket.closed) {
        const msg = await this.socket.receive();
        const routing = msg[0];
        const frame = msg[1];
        if (routing === undefined || frame === undefined) continue;
        const extra = msg.length > 2 ? msg.slice(2) : NO_FRAMES;
        if (this.closing) {
          this.replies.push([routing, shuttingDown(frame)]);
          continue;
        }
        this.inFlight++;
        void this.handle(frame, extra).then((reply) => {
          this.replies.push([routing, reply]);
          if (--this.inFlight === 0) for (const d of this.drained.splice(0)) d();
        });
      }
    } catch (err) {
      // The loop must never die silently while the socket is open: clients would go unanswered.
      if (!this.socket.closed) {
        process.stderr.write(`custodyd: ${this.name} socket receive failed: ${(err as Error).message}; restarting the loop\n`);
        this.loop = this.receive();
      }
    }
  }

  /** (Unbinding instead would make the pending receive fail with EBUSY.) */
  async close(): Promise<void> {
    if (this.socket.closed) return;
    this.closing = true;
    if (this.inFlight > 0) await new Promise<void>((r) => this.drained.push(r));
    await this.replies.idle();
    this.socket.close();
    await this.loop?.catch(() => undefined);
  }
}
