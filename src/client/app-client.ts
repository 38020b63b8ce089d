/**
 * What app servers import: a typed client for custodyd's app API over ZeroMQ with CURVE, each request
 * signed with the client's authenticator (rpc/auth.ts), and an event subscription that replays what it
 * missed so no event is lost or repeated.
 *
 *   const custody = new CustodyClient({ endpoint: 'tcp://wallet:7010', serverPublicKey, keyFile: '/etc/app/custody-client.key' });
 *   const { address } = await custody.newAddress({ requestId: 'order-42', account: 'customer-7' });
 */
import { randomBytes } from 'node:crypto';
import { Dealer, Subscriber } from 'zeromq';
import { CustodyError } from '../errors.js';
import { deriveClientKey, RequestSigner } from '../rpc/auth.js';
import { readKeyPairFile, type CurveKeyPair } from '../rpc/curve-keys.js';
import type { CustodyEvent } from '../service/events.js';
import type { StatusDocument } from '../service/status.js';
import type { DepositView } from '../service/ledger.js';
import { EventSequencer } from './event-sequencer.js';
import { RpcChannel } from './rpc-channel.js';

export interface CustodyClientOptions {
  /** tcp://HOST:PORT of the daemon's app socket. */
  readonly endpoint: string;
  /** The daemon's CURVE public key (Z85), from `custody keys server`. */
  readonly serverPublicKey: string;
  /** The client's key pair file from `custody keys client NAME` (mode 0600) … */
  readonly keyFile?: string;
  /** … or the key pair and name directly. */
  readonly keys?: CurveKeyPair & { readonly name: string };
  /** Per-request timeout (default 10 s). */
  readonly timeoutMs?: number;
}

export interface NewAddressParams {
  readonly requestId: string;
  readonly account: string;
  readonly label?: string;
}

export interface DepositAddress {
  readonly address: string;
  readonly index: number;
  readonly path: string;
  readonly account: string;
  readonly label?: string;
  readonly created: boolean;
}

export class CustodyClient {
  readonly name: string;
  private readonly channel: RpcChannel;
  private readonly signer: RequestSigner;
  private readonly keys: CurveKeyPair;
  /** Nonces are a random per-instance prefix and a counter: unique without a CSPRNG call per request. */
  private readonly noncePrefix = randomBytes(8).toString('hex');
  private nonceCounter = 0;

  constructor(private readonly opts: CustodyClientOptions) {
    let keys: CurveKeyPair & { name: string };
    if (opts.keys !== undefined) keys = { ...opts.keys };
    else if (opts.keyFile !== undefined) {
      const file = readKeyPairFile(opts.keyFile);
      if (file.kind !== 'client') throw new CustodyError('KEY_FILE', `${opts.keyFile}: a ${file.kind} key file, expected a client's`);
      keys = { name: file.name, publicKey: file.publicKey, secretKey: file.secretKey };
    } else throw new CustodyError('INVALID_ARGUMENT', 'CustodyClient: give keyFile or keys');
    this.name = keys.name;
    this.keys = keys;
    const macKey = deriveClientKey({ secretKey: keys.secretKey, peerPublicKey: opts.serverPublicKey, clientPublicKey: keys.publicKey, serverPublicKey: opts.serverPublicKey });
    this.signer = new RequestSigner(macKey, keys.name);
    macKey.fill(0);
    const socket = new Dealer({ curveServerKey: opts.serverPublicKey, curvePublicKey: keys.publicKey, curveSecretKey: keys.secretKey, linger: 0, sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 });
    socket.connect(opts.endpoint);
    this.channel = new RpcChannel(socket, opts.timeoutMs ?? 10_000);
  }

  /** Any app method by name (for methods without a typed wrapper yet). */
  call(method: string, params?: Record<string, unknown>): Promise<unknown> {
    const id = this.channel.newId();
    const frame = this.signer.frame(method, id, params, Date.now(), this.nextNonce());
    return this.channel.request(id, [frame], method);
  }

  /** 16 hex digits of prefix, 16 of counter (2^53 requests before it would repeat: never). */
  private nextNonce(): string {
    return this.noncePrefix + (this.nonceCounter++).toString(16).padStart(16, '0');
  }

  newAddress(p: NewAddressParams): Promise<DepositAddress> {
    return this.call('deposit.newAddress', { ...p }) as Promise<DepositAddress>;
  }

  lookupAddress(address: string): Promise<(Omit<DepositAddress, 'created'> & { issuedAt: string }) | null> {
    return this.call('deposit.lookup', { address }) as Promise<(Omit<DepositAddress, 'created'> & { issuedAt: string }) | null>;
  }

  /**
   * Deposits by the sequence number of their last change: pass the returned lastSeq as sinceSeq to
   * page on, or to pick up only what changed since (seen, confirmed, reorged).
   */
  listDeposits(p: { account?: string; sinceSeq?: number; limit?: number } = {}): Promise<{ deposits: DepositView[]; lastSeq: number }> {
    return this.call('deposit.list', { ...p }) as Promise<{ deposits: DepositView[]; lastSeq: number }>;
  }

  status(): Promise<StatusDocument> {
    return this.call('status') as Promise<StatusDocument>;
  }

  eventsSince(seq: number, limit = 100): Promise<{ events: CustodyEvent[]; head: number }> {
    return this.call('events.since', { seq, limit }) as Promise<{ events: CustodyEvent[]; head: number }>;
  }

  /**
   * Delivers every event after `afterSeq`, in order, exactly once: subscribes to the live feed first,
   * then replays from the store up to what the feed has delivered, dropping duplicates by seq.
   */
  subscribe(eventsEndpoint: string, afterSeq: number, onEvent: (e: CustodyEvent) => void): { close(): Promise<void> } {
    const sub = new Subscriber({ curveServerKey: this.opts.serverPublicKey, curvePublicKey: this.keys.publicKey, curveSecretKey: this.keys.secretKey, linger: 0 });
    sub.connect(eventsEndpoint);
    sub.subscribe();
    const sequencer = new EventSequencer(afterSeq, async (seq, limit) => (await this.eventsSince(seq, limit)).events, onEvent);
    const loop = (async () => {
      try {
        for await (const [, body] of sub) {
          if (body === undefined) continue;
          sequencer.live(JSON.parse(body.toString('utf8')) as CustodyEvent);
        }
      } catch (err) {
        if (!sub.closed) throw err;
      }
    })();
    void sequencer.catchUp();
    return {
      close: async () => {
        sequencer.close();
        sub.close();
        await loop.catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    this.signer.wipe();
    await this.channel.close();
  }
}
