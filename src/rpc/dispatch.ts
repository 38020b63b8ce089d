/**
 * One request's path through a server, shared by the app and admin sockets:
 * decode → (app: authenticate, role, rate limit; remote admin: operatorAuth) → method → params → service → reply.
 * Any failure becomes a JSON-RPC error with a stable code; the daemon keeps serving.
 */
import { CustodyError } from '../errors.js';
import type { DaemonServices } from '../service/daemon-services.js';
import { METHODS, parseParams, roleAllows, type CallContext, type MethodSpec, type Role } from './methods.js';
import { DecodeError, decodeRequest, encodeResponseText, encodeResultText, errorBody, peekId, type RequestId, type RpcRequest } from './protocol.js';

export interface AppCaller {
  readonly name: string;
  readonly roles: readonly Role[];
}

export type Authenticate = (req: RpcRequest) => AppCaller;

export interface DispatchOptions {
  readonly services: DaemonServices;
  readonly maxFrameBytes: number;
  /** App socket: verifies the authenticator and returns the caller; admin socket: undefined. */
  readonly authenticate?: Authenticate;
  /**
   * Remote admin door (tcp + CURVE): verifies the authenticator and returns the operator's name, which
   * the key proves; the request's own `operator` member is then ignored. Local (ipc) admin socket: undefined.
   */
  readonly operatorAuth?: (req: RpcRequest) => string;
  /** App socket: token bucket per client. */
  readonly allow?: (client: string) => boolean;
  /** Called with each finished request, for metrics and logs (never with params). */
  readonly onDone?: (info: { method: string; code: string; ms: number; caller: string }) => void;
}

export async function dispatch(frame: Buffer, secrets: readonly Buffer[], opts: DispatchOptions): Promise<string> {
  const started = performance.now();
  let id: RequestId | null = null;
  let method = '(undecoded)';
  let caller = 'unknown';
  try {
    const req = decodeRequest(frame, opts.maxFrameBytes);
    id = req.id;
    method = req.method;
    let ctx: CallContext;
    if (opts.authenticate) {
      if (req.operator !== undefined) throw new CustodyError('INVALID_REQUEST', 'operator: only the admin socket takes an operator');
      if (secrets.length > 0) throw new CustodyError('INVALID_REQUEST', 'frames: the app socket takes exactly one frame per request');
      let client: AppCaller;
      try {
        client = opts.authenticate(req);
      } catch (err) {
        if (err instanceof CustodyError) throw err;
        throw new CustodyError('UNAUTHENTICATED', 'auth: the request could not be checked (malformed)');
      }
      caller = `client:${client.name}`;
      if (!roleAllows(client.roles, req.method)) {
        throw new CustodyError('FORBIDDEN', `${req.method}: client "${client.name}" (roles ${client.roles.join(', ') || 'none'}) may not call this method`, {
          method: req.method,
        });
      }
      if (opts.allow && !opts.allow(client.name)) throw new CustodyError('RATE_LIMITED', `client "${client.name}": over its request rate; retry later`);
      const spec = lookup(req.method, false);
      ctx = { actor: caller, scope: client.name, secrets, roles: client.roles };
      const params = parseParams(req.method, spec, req.params);
      const result = await spec.handler(opts.services, params, ctx);
      opts.onDone?.({ method, code: 'OK', ms: performance.now() - started, caller });
      return encodeResultText(req.id, result);
    }
    if (opts.operatorAuth !== undefined) {
      let name: string;
      try {
        name = opts.operatorAuth(req);
      } catch (err) {
        if (err instanceof CustodyError) throw err;
        throw new CustodyError('UNAUTHENTICATED', 'auth: the request could not be checked (malformed)');
      }
      caller = `operator:${name}`;
    } else {
      if (req.auth !== undefined) throw new CustodyError('INVALID_REQUEST', 'auth: the admin socket is authorised by file permissions, not authenticators');
      caller = `operator:${req.operator ?? 'unknown'}`;
    }
    const spec = lookup(req.method, true);
    ctx = { actor: caller, scope: 'admin', secrets };
    const params = parseParams(req.method, spec, req.params);
    const result = await spec.handler(opts.services, params, ctx);
    opts.onDone?.({ method, code: 'OK', ms: performance.now() - started, caller });
    return encodeResultText(req.id, result);
  } catch (err) {
    if (err instanceof DecodeError) id = err.id;
    const body = errorBody(err);
    opts.onDone?.({ method, code: body.data.code, ms: performance.now() - started, caller });
    if (body.data.code === 'INTERNAL' && !(err instanceof CustodyError)) {
      // The client gets "internal error"; the log gets what went wrong (messages carry no secrets).
      process.stderr.write(`custodyd: internal error in ${method}: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    return encodeResponseText({ jsonrpc: '2.0', id, error: body });
  } finally {
    for (const s of secrets) s.fill(0);
  }
}

/** The reply to a request that arrives while the daemon is stopping. */
export function shuttingDown(frame: Buffer): string {
  let id: RequestId | null = null;
  try {
    id = peekId(JSON.parse(frame.toString('utf8')));
  } catch {
    /* no id to echo */
  }
  return encodeResponseText({ jsonrpc: '2.0', id, error: errorBody(new CustodyError('UNAVAILABLE', 'the daemon is shutting down; retry with the same requestId')) });
}

function lookup(method: string, admin: boolean): MethodSpec {
  const spec = Object.hasOwn(METHODS, method) ? METHODS[method] : undefined;
  if (spec === undefined || !(admin ? spec.admin : spec.app)) {
    throw new CustodyError('METHOD_NOT_FOUND', `${method}: no such method on the ${admin ? 'admin' : 'app'} socket`, { method });
  }
  return spec;
}
