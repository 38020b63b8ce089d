/**
 * A request/reply channel over a ZeroMQ Dealer: many requests in flight, replies matched by id,
 * a timeout per request, one send at a time (zeromq 6 allows one pending send per socket).
 * ZeroMQ reconnects by itself; a request lost in a disconnect times out (TIMEOUT), and because every
 * creating request carries a requestId, retrying it is safe.
 */
import { Dealer } from 'zeromq';
import { CustodyError } from '../errors.js';
import { decodeResponse, responseError, type RequestId } from '../rpc/protocol.js';
import { SendQueue } from '../rpc/send-queue.js';

interface Waiting {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
  readonly method: string;
  /** performance.now() after which the request fails with TIMEOUT. */
  readonly deadline: number;
}

export class RpcChannel {
  /**
   * In insertion order, which is deadline order (every request gets the same timeout), so one timer for
   * the oldest entry serves them all: a reply costs a Map delete instead of a clearTimeout.
   */
  private readonly pending = new Map<RequestId, Waiting>();
  private readonly queue: SendQueue;
  private readonly loop: Promise<void>;
  private timer: NodeJS.Timeout | undefined;
  private nextId = 1;

  constructor(
    private readonly socket: Dealer,
    private readonly timeoutMs: number,
  ) {
    this.queue = new SendQueue(socket, undefined, true);
    this.loop = this.receive();
  }

  newId(): number {
    return this.nextId++;
  }

  /** Sends the frames (JSON first) and resolves with the result or rejects with the daemon's CustodyError. */
  request(id: RequestId, frames: Array<Buffer | string>, method: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method, deadline: performance.now() + this.timeoutMs });
      this.timer ??= setTimeout(() => this.expire(), this.timeoutMs);
      this.queue.push(frames);
    });
  }

  /** Fails every request past its deadline, then waits for the next one's. */
  private expire(): void {
    this.timer = undefined;
    const now = performance.now();
    for (const [id, w] of this.pending) {
      if (w.deadline > now) {
        this.timer = setTimeout(() => this.expire(), Math.max(1, Math.ceil(w.deadline - now)));
        return;
      }
      this.pending.delete(id);
      w.reject(new CustodyError('TIMEOUT', `${w.method}: no reply within ${this.timeoutMs} ms (is custodyd running and this client allowed?)`));
    }
  }

  private async receive(): Promise<void> {
    try {
      // receive() directly rather than the socket's async iterator: one promise per reply instead of three.
      while (!this.socket.closed) {
        const [frame] = await this.socket.receive();
        if (frame === undefined) continue;
        let res;
        try {
          res = decodeResponse(frame);
        } catch {
          continue; // not ours to understand; the request will time out
        }
        if (res.id === null) continue;
        const w = this.pending.get(res.id);
        if (w === undefined) continue;
        this.pending.delete(res.id);
        if ('error' in res) w.reject(responseError(res.error));
        else w.resolve(res.result);
      }
    } catch (err) {
      if (!this.socket.closed) throw err;
    }
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const [id, w] of this.pending) {
      w.reject(new CustodyError('UNAVAILABLE', 'the client was closed'));
      this.pending.delete(id);
    }
    this.socket.close();
    await this.loop.catch(() => undefined);
  }
}
