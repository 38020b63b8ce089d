/** A bare CURVE Dealer with a test client's keys, for sending hand-made frames to the daemon. */
import { Dealer } from 'zeromq';
import { randomBytes } from 'node:crypto';
import { deriveClientKey, signRequest } from '../../src/rpc/auth.js';
import type { DaemonFixture } from './daemon.js';

export class RawDealer {
  readonly socket: Dealer;
  private readonly macKey: Buffer;

  constructor(
    f: DaemonFixture,
    readonly name: string,
  ) {
    const c = f.clients[name]!;
    this.socket = new Dealer({ curveServerKey: f.serverPublicKey, curvePublicKey: c.keys.publicKey, curveSecretKey: c.keys.secretKey, linger: 0, receiveTimeout: 3_000 });
    this.socket.connect(f.appEndpoint);
    this.macKey = deriveClientKey({ secretKey: c.keys.secretKey, peerPublicKey: f.serverPublicKey, clientPublicKey: c.keys.publicKey, serverPublicKey: f.serverPublicKey });
  }

  /** A correctly signed request frame (as the client library would send it), or with `claim` another client's name. */
  signed(method: string, params: unknown, id: number | string, claim = this.name): string {
    const auth = signRequest(this.macKey, { client: claim, method, id, params }, Date.now(), (n) => randomBytes(n));
    return JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }), auth });
  }

  async send(...frames: Array<Buffer | string>): Promise<void> {
    await this.socket.send(frames);
  }

  /** The next reply as parsed JSON (throws on the 3 s receive timeout). */
  async reply(): Promise<{ id: unknown; result?: unknown; error?: { code: number; message: string; data: { code: string; details?: Record<string, unknown> } } }> {
    const [frame] = await this.socket.receive();
    return JSON.parse(frame!.toString('utf8')) as never;
  }

  close(): void {
    this.socket.close();
  }
}
