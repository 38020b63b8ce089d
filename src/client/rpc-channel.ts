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
  readonly timer: NodeJS.Timeout;
}

export class RpcChannel {
  private readonly pending = new Map<RequestId, Waiting>();
  private readonly queue: SendQueue;
  private readonly loop: Promise<void>;
  private nextId = 1;

  constructor(
    private readonly socket: Dealer,
    private readonly timeoutMs: number,
  ) {
    this.queue = new SendQueue(socket);
    this.loop = this.receive();
  }

  newId(): number {
    return this.nextId++;
  }

  /** Sends the frames (JSON first) and resolves with the result or rejects with the daemon's CustodyError. */
  request(id: RequestId, frames: Array<Buffer | string>, method: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new CustodyError('TIMEOUT', `${method}: no reply within ${this.timeoutMs} ms (is custodyd running and this client allowed?)`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.queue.push(frames);
    });
  }

  private async receive(): Promise<void> {
    try {
      for await (const [frame] of this.socket) {
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
        clearTimeout(w.timer);
        if ('error' in res) w.reject(responseError(res.error));
        else w.resolve(res.result);
      }
    } catch (err) {
      if (!this.socket.closed) throw err;
    }
  }

  async close(): Promise<void> {
    for (const [id, w] of this.pending) {
      clearTimeout(w.timer);
      w.reject(new CustodyError('UNAVAILABLE', 'the client was closed'));
      this.pending.delete(id);
    }
    this.socket.close();
    await this.loop.catch(() => undefined);
  }
}
