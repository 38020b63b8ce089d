/**
 * zeromq 6 allows one pending send() per socket; a second throws EBUSY (DESIGN §11). Every reply and
 * publication goes through this queue, which keeps exactly one send in flight.
 */
import type { Socket } from 'zeromq';

type Sendable = { send(msg: Array<Buffer | string>): Promise<void> } & Pick<Socket, 'closed'>;

export class SendQueue {
  private readonly queue: Array<Array<Buffer | string>> = [];
  private sending = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly socket: Sendable,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  push(msg: Array<Buffer | string>): void {
    this.queue.push(msg);
    if (!this.sending) void this.drain();
  }

  private async drain(): Promise<void> {
    this.sending = true;
    try {
      while (this.queue.length > 0 && !this.socket.closed) {
        const msg = this.queue.shift() as Array<Buffer | string>;
        try {
          await this.socket.send(msg);
        } catch (err) {
          this.onError(err);
        }
      }
    } finally {
      this.sending = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Resolves once everything queued so far has been handed to ZeroMQ. */
  idle(): Promise<void> {
    if (!this.sending && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
