/**
 * The app servers' door: a ZeroMQ Router over tcp with CURVE (the ZAP handler in rpc/zap.ts admits only
 * allowlisted client keys), one JSON-RPC object per frame, many requests in flight per client.
 * Requests are handled concurrently (rpc/request-loop.ts).
 */
import { Router } from 'zeromq';
import { dispatch, type DispatchOptions } from './dispatch.js';
import { RequestLoop } from './request-loop.js';

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
  private readonly loop: RequestLoop;

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
    // Extra frames are refused by dispatch (the app socket takes exactly one).
    this.loop = new RequestLoop(this.socket, (frame, extra) => dispatch(frame, extra, opts), 'app');
  }

  async start(): Promise<string> {
    await this.socket.bind(this.opts.endpoint);
    this.loop.start();
    return this.socket.lastEndpoint ?? this.opts.endpoint;
  }

  /** Stops taking requests, lets the ones in flight finish and their replies go out, then closes. */
  close(): Promise<void> {
    return this.loop.close();
  }
}
