/**
 * What the `custody` CLI uses to talk to the daemon's admin socket (ipc://, mode 0700 directory).
 * Requests name the operator (the login name) for the audit log; secrets go in extra frames as bytes.
 *
 * Remote mode (tcp://, the daemon's [admin] tcpEndpoint): CURVE with an operator key pair, and each
 * request signed like an app client's (rpc/auth.ts), so the daemon learns the operator from the key;
 * no `operator` member is sent. Secrets still go in extra frames, encrypted by CURVE.
 */
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { Dealer } from 'zeromq';
import { CustodyError } from '../errors.js';
import { deriveClientKey, RequestSigner } from '../rpc/auth.js';
import { readKeyPairFile, type CurveKeyPair } from '../rpc/curve-keys.js';
import { RpcChannel } from './rpc-channel.js';

export interface RemoteAdminOptions {
  /** The daemon's admin CURVE public key (Z85). */
  readonly serverPublicKey: string;
  /** The operator's key pair file from `custody keys operator NAME` (mode 0600) … */
  readonly keyFile?: string;
  /** … or the key pair and name directly. */
  readonly keys?: CurveKeyPair & { readonly name: string };
}

export class AdminClient {
  private readonly channel: RpcChannel;
  readonly operator: string;
  private readonly signer: RequestSigner | undefined;
  /** Nonces as in CustodyClient: a random per-instance prefix and a counter. */
  private readonly noncePrefix = randomBytes(8).toString('hex');
  private nonceCounter = 0;

  constructor(endpoint: string, opts: { timeoutMs?: number; operator?: string; remote?: RemoteAdminOptions } = {}) {
    if (endpoint.startsWith('tcp://')) {
      const remote = opts.remote;
      if (remote === undefined) throw new CustodyError('INVALID_ARGUMENT', `${endpoint}: a tcp admin endpoint needs the server's public key and an operator key`);
      let keys: CurveKeyPair & { name: string };
      if (remote.keys !== undefined) keys = { ...remote.keys };
      else if (remote.keyFile !== undefined) {
        const file = readKeyPairFile(remote.keyFile);
        if (file.kind !== 'operator') throw new CustodyError('KEY_FILE', `${remote.keyFile}: a ${file.kind} key file, expected an operator's (custody keys operator NAME)`);
        keys = { name: file.name, publicKey: file.publicKey, secretKey: file.secretKey };
      } else throw new CustodyError('INVALID_ARGUMENT', 'AdminClient: give remote.keyFile or remote.keys');
      const macKey = deriveClientKey({ secretKey: keys.secretKey, peerPublicKey: remote.serverPublicKey, clientPublicKey: keys.publicKey, serverPublicKey: remote.serverPublicKey });
      this.signer = new RequestSigner(macKey, keys.name);
      macKey.fill(0);
      this.operator = keys.name;
      const socket = new Dealer({ curveServerKey: remote.serverPublicKey, curvePublicKey: keys.publicKey, curveSecretKey: keys.secretKey, linger: 0 });
      socket.connect(endpoint);
      this.channel = new RpcChannel(socket, opts.timeoutMs ?? 15_000);
      return;
    }
    const socket = new Dealer({ linger: 0 });
    socket.connect(endpoint);
    this.channel = new RpcChannel(socket, opts.timeoutMs ?? 15_000);
    this.operator = (opts.operator ?? safeLogin()).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64) || 'unknown';
  }

  call(method: string, params?: Record<string, unknown>, secrets: Buffer[] = []): Promise<unknown> {
    const id = this.channel.newId();
    const frame =
      this.signer === undefined
        ? JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }), operator: this.operator })
        : this.signer.frame(method, id, params, Date.now(), this.noncePrefix + (this.nonceCounter++).toString(16).padStart(16, '0'));
    return this.channel.request(id, [frame, ...secrets], method);
  }

  close(): Promise<void> {
    this.signer?.wipe();
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
