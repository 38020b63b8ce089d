/**
 * The operators' door: a ZeroMQ Router on an ipc:// socket in a directory of mode 0700 (DESIGN §4), so
 * only the daemon's own user (and root) can connect. No CURVE: file permissions are the authorisation,
 * and requests name the operator for the audit log. Secrets (unlock passphrases) travel in a second
 * frame as raw bytes, never in the JSON, so the daemon can wipe them.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { Router } from 'zeromq';
import { CustodyError } from '../errors.js';
import { dispatch, type DispatchOptions } from './dispatch.js';
import { SendQueue } from './send-queue.js';

export interface AdminServerOptions extends Omit<DispatchOptions, 'authenticate' | 'allow'> {
  /** ipc:///path/to/admin.sock */
  readonly endpoint: string;
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
  private readonly socket = new Router({ linger: 0, maxMessageSize: 1024 * 1024 });
  private readonly replies = new SendQueue(this.socket);
  private loop: Promise<void> | undefined;
  private inFlight = 0;
  private drained: Array<() => void> = [];

  constructor(private readonly opts: AdminServerOptions) {}

  async start(): Promise<string> {
    const path = prepareIpcDirectory(this.opts.endpoint);
    await this.socket.bind(this.opts.endpoint);
    chmodSync(path, 0o600);
    this.loop = this.receive();
    return this.opts.endpoint;
  }

  private async receive(): Promise<void> {
    try {
      for await (const [routing, frame, ...secrets] of this.socket) {
        if (routing === undefined || frame === undefined) continue;
        this.inFlight++;
        void dispatch(frame, secrets, this.opts).then((reply) => {
          this.replies.push([routing, reply]);
          if (--this.inFlight === 0) for (const d of this.drained.splice(0)) d();
        });
      }
    } catch (err) {
      if (!this.socket.closed) {
        process.stderr.write(`custodyd: admin socket receive failed: ${(err as Error).message}; restarting the loop\n`);
        this.loop = this.receive();
      }
    }
  }

  async close(): Promise<void> {
    if (this.socket.closed) return;
    if (this.inFlight > 0) await new Promise<void>((r) => this.drained.push(r));
    await this.replies.idle();
    this.socket.close();
    await this.loop?.catch(() => undefined);
    try {
      unlinkSync(ipcPath(this.opts.endpoint));
    } catch {
      /* already gone */
    }
  }
}
