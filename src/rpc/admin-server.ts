/**
 * The operators' door: a ZeroMQ Router on an ipc:// socket in a directory of mode 0700 (DESIGN §4), so
 * only the daemon's own user (and root) can connect. No CURVE: file permissions are the authorisation,
 * and requests name the operator for the audit log. Secrets (unlock passphrases) travel in a second
 * frame as raw bytes, never in the JSON, so the daemon can wipe them.
 *
 * Optionally a second, remote door on tcp ([admin] tcpEndpoint): CURVE with its own ZAP domain, which
 * admits only [[operators]] keys, and a per-request authenticator as on the app door (rpc/auth.ts), so
 * the operator named in the audit log is the one whose key signed the request, never a claimed name.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { Router } from 'zeromq';
import { CustodyError } from '../errors.js';
import { dispatch, type DispatchOptions } from './dispatch.js';
import { RequestLoop } from './request-loop.js';

export const ADMIN_ZAP_DOMAIN = 'custody-admin';

export interface AdminServerOptions extends Omit<DispatchOptions, 'authenticate' | 'allow'> {
  /** ipc:///path/to/admin.sock, or tcp://HOST:PORT with `curve` (the remote door). */
  readonly endpoint: string;
  /** The remote door only: the admin server's CURVE secret key; dispatch's operatorAuth names the caller. */
  readonly curve?: { readonly serverSecretKey: string };
}

export function ipcPath(endpoint: string): string {
  if (!endpoint.startsWith('ipc://')) throw new CustodyError('CONFIG_INVALID', `admin.endpoint: expected ipc:///path/to/admin.sock, got "${endpoint}"`);
  return endpoint.slice('ipc://'.length);
}

/** Creates the socket's directory 0700 (or checks an existing one is not open to others) and clears a stale socket. */
export function prepareIpcDirectory(endpoint: string): string {
  const path = ipcPath(endpoint);
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const mode = statSync(dir).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new CustodyError('CONFIG_INVALID', `admin.endpoint: the directory ${dir} has mode ${mode.toString(8)}; it must be 0700 so only the daemon's user can reach the admin socket`);
  }
  // A socket file left by a crashed daemon would make bind fail; the data dir lock already proves we are the only daemon.
  if (existsSync(path) && lstatSync(path).isSocket()) unlinkSync(path);
  return path;
}

export class AdminServer {
  private readonly socket: Router;
  private readonly loop: RequestLoop;
  private readonly remote: boolean;

  constructor(private readonly opts: AdminServerOptions) {
    const remote = opts.endpoint.startsWith('tcp://');
    this.remote = remote;
    // Fail closed: a tcp door without CURVE and per-request authentication would let anyone on the network act as an operator.
    if (remote && (opts.curve === undefined || opts.operatorAuth === undefined)) throw new CustodyError('CONFIG_INVALID', 'admin.tcpEndpoint: the remote admin door needs a server key and operator keys');
    this.socket = remote
      ? new Router({ curveServer: true, curveSecretKey: opts.curve?.serverSecretKey ?? '', zapDomain: ADMIN_ZAP_DOMAIN, linger: 0, maxMessageSize: 1024 * 1024 })
      : new Router({ linger: 0, maxMessageSize: 1024 * 1024 });
    this.loop = new RequestLoop(this.socket, (frame, secrets) => dispatch(frame, secrets, opts), 'admin');
  }

  async start(): Promise<string> {
    if (this.remote) {
      await this.socket.bind(this.opts.endpoint);
      this.loop.start();
      return this.socket.lastEndpoint ?? this.opts.endpoint;
    }
    const path = prepareIpcDirectory(this.opts.endpoint);
    await this.socket.bind(this.opts.endpoint);
    chmodSync(path, 0o600);
    this.loop.start();
    return this.opts.endpoint;
  }

  async close(): Promise<void> {
    await this.loop.close();
    if (this.remote) return; // no socket file to remove
    try {
      unlinkSync(ipcPath(this.opts.endpoint));
    } catch {
      /* already gone */
    }
  }
}
