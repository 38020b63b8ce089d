/**
 * What the `custody` CLI uses to talk to the daemon's admin socket (ipc://, mode 0700 directory).
 * Requests name the operator (the login name) for the audit log; secrets go in extra frames as bytes.
 */
import { userInfo } from 'node:os';
import { Dealer } from 'zeromq';
import { RpcChannel } from './rpc-channel.js';

export class AdminClient {
  private readonly channel: RpcChannel;
  readonly operator: string;

  constructor(endpoint: string, opts: { timeoutMs?: number; operator?: string } = {}) {
    const socket = new Dealer({ linger: 0 });
    socket.connect(endpoint);
    this.channel = new RpcChannel(socket, opts.timeoutMs ?? 15_000);
    this.operator = (opts.operator ?? safeLogin()).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64) || 'unknown';
  }

  call(method: string, params?: Record<string, unknown>, secrets: Buffer[] = []): Promise<unknown> {
    const id = this.channel.newId();
    const frame = JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }), operator: this.operator });
    return this.channel.request(id, [frame, ...secrets], method);
  }

  close(): Promise<void> {
    return this.channel.close();
  }
}

function safeLogin(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
