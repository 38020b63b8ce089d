/**
 * zeromq 6 allows one pending send() per socket; a second throws EBUSY (DESIGN §11). Every reply and
 * publication goes through this queue, which keeps exactly one send in flight.
 *
 * With `coalesce`, the queue starts sending at the end of the current event-loop turn (setImmediate)
 * instead of at the first push: messages produced in one turn (the replies of one group commit, the
 * requests a burst of replies let a client send) reach ZeroMQ back to back, so its I/O thread wakes once
 * and writes them in one batch rather than once per message.
 */
import type { Socket } from 'zeromq';

type Sendable = { send(msg: Array<Buffer | string>): Promise<void> } & Pick<Socket, 'closed'>;

export class SendQueue {
  private queue: Array<Array<Buffer | string>> = [];
  private sending = false;
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly socket: Sendable,
    private readonly onError: (err: unknown) => void = () => undefined,
    private readonly coalesce = false,
  ) {}

  push(msg: Array<Buffer | string>): void {
    this.queue.push(msg);
    if (this.sending || this.scheduled) return;
    if (this.coalesce) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        if (!this.sending) void this.drain();
      });
    } else void this.drain();
  }

  private async drain(): Promise<void> {
    this.sending = true;
    try {
      while (this.queue.length > 0 && !this.socket.closed) {
        // Take the whole batch at once: shift() per message is O(n) in the queue's length.
        const batch = this.queue;
        this.queue = [];
        for (let i = 0; i < batch.length; i++) {
          if (this.socket.closed) {
            this.queue = batch.slice(i).concat(this.queue);
            break;
          }
          try {
            await this.socket.send(batch[i] as Array<Buffer | string>);
          } catch (err) {
            this.onError(err);
          }
        }
      }
    } finally {
      this.sending = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Resolves once everything queued so far has been handed to ZeroMQ. */
  idle(): Promise<void> {
    // Not sending and nothing scheduled: the queue is empty, or the socket closed under it (never sent).
    if (!this.sending && !this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
