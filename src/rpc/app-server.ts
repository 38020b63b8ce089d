/**
 * The app servers' door: a ZeroMQ Router over tcp with CURVE (the ZAP handler in rpc/zap.ts admits only
 * allowlisted client keys), one JSON-RPC object per frame, many requests in flight per client.
 * Requests are handled concurrently; replies leave through one send queue.
 */
import { Router } from 'zeromq';
import { dispatch, shuttingDown, type DispatchOptions } from './dispatch.js';
import { SendQueue } from './send-queue.js';

export const APP_ZAP_DOMAIN = 'custody-app';
/** Transport cap far above the protocol limit, so an oversized frame gets FRAME_TOO_LARGE instead of a dropped connection. */
const TRANSPORT_MAX_BYTES = 4 * 1024 * 1024;

export interface AppServerOptions extends Omit<DispatchOptions, 'authenticate'> {
  readonly endpoint: string;
  readonly serverSecretKey: string;
  readonly authenticate: NonNullable<DispatchOptions['authenticate']>;
}

export class AppServer {
  private readonly socket: Router;
  private readonly replies: SendQueue;
  private loop: Promise<void> | undefined;
  private inFlight = 0;
  private drained: Array<() => void> = [];
  private closing = false;

  constructor(private readonly opts: AppServerOptions) {
    this.socket = new Router({
      curveServer: true,
      curveSecretKey: opts.serverSecretKey,
      zapDomain: APP_ZAP_DOMAIN,
      linger: 0,
      maxMessageSize: TRANSPORT_MAX_BYTES,
      sendHighWaterMark: 100_000,
      receiveHighWaterMark: 100_000,
    });
    this.replies = new SendQueue(this.socket);
  }

  async start(): Promise<string> {
    await this.socket.bind(this.opts.endpoint);
    this.loop = this.receive();
    return this.socket.lastEndpoint ?? this.opts.endpoint;
  }

  private async receive(): Promise<void> {
    try {
      for await (const [routing, frame, ...rest] of this.socket) {
        if (routing === undefined || frame === undefined) continue;
        if (this.closing) {
          this.replies.push([routing, shuttingDown(frame)]);
          continue;
        }
        this.inFlight++;
        // Extra frames are refused by dispatch (the app socket takes exactly one).
        void dispatch(frame, rest, this.opts).then((reply) => {
          this.replies.push([routing, reply]);
          if (--this.inFlight === 0) for (const d of this.drained.splice(0)) d();
        });
      }
    } catch (err) {
      // The loop must never die silently while the socket is open: that would leave clients unanswered.
      if (!this.socket.closed) {
        process.stderr.write(`custodyd: app socket receive failed: ${(err as Error).message}; restarting the loop\n`);
        this.loop = this.receive();
      }
    }
  }

  /**
   * Stops taking requests (new ones are answered UNAVAILABLE), lets the ones in flight finish and their
   * replies go out, then closes. (Unbinding instead would make the pending receive fail with EBUSY.)
   */
  async close(): Promise<void> {
    if (this.socket.closed) return;
    this.closing = true;
    if (this.inFlight > 0) await new Promise<void>((r) => this.drained.push(r));
    await this.replies.idle();
    this.socket.close();
    await this.loop?.catch(() => undefined);
  }
}
