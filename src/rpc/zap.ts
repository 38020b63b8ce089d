/**
 * ZAP handler (ZeroMQ RFC 27). Without one, a CURVE server admits any client key (libzmq asks ZAP only
 * if a handler is bound), so the daemon binds this before its CURVE sockets. It lives in the default
 * context because libzmq looks for `inproc://zeromq.zap.01` in the context of the socket doing the
 * handshake. Rejected clients never reach the application socket: their handshake fails.
 */
import { Reply } from 'zeromq';
import { CustodyError } from '../errors.js';
import { z85Encode } from './z85.js';

export const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';
const ZAP_VERSION = '1.0';

export interface ZapDenial {
  /** Z85 of the client's CURVE public key; empty for a non-CURVE handshake. */
  readonly publicKey: string;
  /** The peer's IP address as libzmq reports it. */
  readonly address: string;
  readonly domain: string;
}

export interface ZapOptions {
  /** Called for every handshake, so a reloaded allowlist applies to the next connection. Throwing denies. */
  isAllowed(publicKeyZ85: string, domain: string): boolean;
  /** Called for each refused handshake (a refused client retries: throttle what you do with this). */
  onDenied?(info: ZapDenial): void;
}

export interface ZapHandler {
  close(): Promise<void>;
}

interface ZapDecision {
  readonly status: '200' | '400' | '500';
  readonly text: string;
  readonly denial?: ZapDenial;
}

/**
 * Decides one request from its frames (RFC 27 §"Request"): version, request id, domain, address,
 * identity, mechanism, credentials… Only CURVE with one 32-byte credential can be allowed.
 */
export function decideZap(frames: readonly Buffer[], isAllowed: ZapOptions['isAllowed']): ZapDecision {
  if (frames.length < 6 || frames[0]!.toString('latin1') !== ZAP_VERSION) return { status: '500', text: 'malformed ZAP request' };
  const domain = frames[2]!.toString('utf8');
  const address = frames[3]!.toString('utf8');
  const mechanism = frames[5]!.toString('latin1');
  const credentials = frames.slice(6);
  if (mechanism !== 'CURVE') return { status: '400', text: 'only CURVE clients are admitted', denial: { publicKey: '', address, domain } };
  if (credentials.length !== 1 || credentials[0]!.length !== 32) return { status: '500', text: 'malformed CURVE credentials' };
  const publicKey = z85Encode(credentials[0]!);
  let allowed = false;
  try {
    allowed = isAllowed(publicKey, domain) === true;
  } catch {
    // A broken allowlist must not admit anyone (fail closed).
    return { status: '500', text: 'allowlist error', denial: { publicKey, address, domain } };
  }
  return allowed ? { status: '200', text: 'OK' } : { status: '400', text: 'client key not allowed', denial: { publicKey, address, domain } };
}

/** How long a bind waits for a just-closed handler's endpoint to be released. */
const REBIND_WAIT_MS = 100;

/**
 * A closed socket's inproc endpoint is released by libzmq's reaper thread a moment later (and
 * zeromq.js cannot unbind inproc), so a handler started right after another closed may find it taken.
 * Retry for a short while, sleeping the JS thread (the reaper runs on its own); a handler that is
 * really still running keeps the endpoint and the bind fails after REBIND_WAIT_MS.
 */
function bindReleasedEndpoint(socket: Reply): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; ; waited++) {
    try {
      socket.bindSync(ZAP_ENDPOINT);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || waited >= REBIND_WAIT_MS) throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

/**
 * Binds the handler synchronously, so no CURVE socket created after this call can handshake before
 * the allowlist is in force. Throws if another handler already holds the endpoint.
 */
export function startZapHandler(opts: ZapOptions): ZapHandler {
  const socket = new Reply({ linger: 0 });
  try {
    bindReleasedEndpoint(socket);
  } catch (err) {
    socket.close();
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new CustodyError('INTERNAL', `cannot bind the ZAP handler at ${ZAP_ENDPOINT} (${code}); is another one running in this process?`);
  }
  let closing = false;
  const loop = (async (): Promise<void> => {
    while (!closing) {
      let frames: Buffer[];
      try {
        frames = await socket.receive();
      } catch {
        return; // the socket was closed
      }
      const decision = decideZap(frames, opts.isAllowed);
      const requestId = frames[1] ?? Buffer.alloc(0);
      try {
        // A Reply socket alternates receive/send, so at most one send is ever pending (DESIGN §11).
        await socket.send([ZAP_VERSION, requestId, decision.status, decision.text, '', '']);
      } catch {
        return;
      }
      if (decision.denial !== undefined && opts.onDenied !== undefined) {
        try {
          opts.onDenied(decision.denial);
        } catch {
          /* an audit hook failure must not stop the handler, which would stall every handshake */
        }
      }
    }
  })();
  return {
    /** Close the daemon's CURVE sockets first: once the endpoint is gone libzmq admits any key again. */
    async close(): Promise<void> {
      if (closing) return loop;
      closing = true;
      socket.close();
      await loop;
    },
  };
}
