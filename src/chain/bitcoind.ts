/**
 * JSON-RPC client for Bitcoin Core and Core-compatible nodes (DESIGN §5): HTTP Basic auth from a
 * user/password or Core's cookie file, a timeout per call, and retries with exponential backoff when the
 * node cannot be reached (never when it answered: an RPC error is the node's answer). Errors are typed:
 * CHAIN_UNAVAILABLE, CHAIN_AUTH, CHAIN_RPC (with the node's code).
 */
import { readFileSync } from 'node:fs';
import { CustodyError } from '../errors.js';
import type { ChainBackend, ChainInfo } from './backend.js';

export type BitcoindAuth = { readonly user: string; readonly password: string } | { readonly cookieFile: string };

export interface BitcoindOptions {
  /** http://127.0.0.1:8332/ */
  readonly url: string;
  readonly auth: BitcoindAuth;
  /** Per attempt (default 10 s). */
  readonly timeoutMs?: number;
  /** Extra attempts when the node is unreachable (default 3), waiting 100 ms, 200 ms, 400 ms, … */
  readonly retries?: number;
  readonly backoffMs?: number;
}

const HEX = /^[0-9a-f]*$/i;
const HASH = /^[0-9a-f]{64}$/i;

export class BitcoindClient implements ChainBackend {
  private nextId = 1;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;

  constructor(private readonly opts: BitcoindOptions) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.retries = opts.retries ?? 3;
    this.backoffMs = opts.backoffMs ?? 100;
  }

  /** Read per call: Core rewrites the cookie at every restart. */
  private authorization(): string {
    let credentials: string;
    if ('cookieFile' in this.opts.auth) {
      try {
        credentials = readFileSync(this.opts.auth.cookieFile, 'utf8').trim();
      } catch (err) {
        throw new CustodyError('CHAIN_AUTH', `${this.opts.auth.cookieFile}: cannot read the node's cookie file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    } else credentials = `${this.opts.auth.user}:${this.opts.auth.password}`;
    return `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
  }

  /** One JSON-RPC call; unreachable-node failures are retried, answers (including errors) are not. */
  async call<T>(method: string, params: readonly unknown[] = []): Promise<T> {
    let lastError: unknown;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, this.backoffMs * 2 ** (attempt - 1)));
      let res: Response;
      try {
        res = await fetch(this.opts.url, {
          method: 'POST',
          headers: { authorization: this.authorization(), 'content-type': 'application/json' },
          body: JSON.stringify({ jsonrpc: '1.0', id: this.nextId++, method, params }),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (err) {
        if (err instanceof CustodyError) throw err;
        lastError = err;
        continue;
      }
      if (res.status === 401 || res.status === 403) throw new CustodyError('CHAIN_AUTH', `${method}: the node refused the RPC credentials (HTTP ${res.status})`);
      let body: { result?: unknown; error?: { code?: number; message?: string } | null };
      try {
        body = (await res.json()) as typeof body;
      } catch {
        throw new CustodyError('CHAIN_RPC', `${method}: the node answered HTTP ${res.status} without a JSON-RPC body`, { method, http: res.status });
      }
      // Core reports RPC errors with HTTP 500/404, bcoin with 200: the body decides.
      if (body.error !== null && body.error !== undefined) {
        throw new CustodyError('CHAIN_RPC', `${method}: ${body.error.message ?? 'error'} (node code ${body.error.code ?? '?'})`, { method, rpcCode: body.error.code ?? null });
      }
      return body.result as T;
    }
    const why = lastError instanceof Error ? ((lastError.cause as { code?: string } | undefined)?.code ?? lastError.name) : String(lastError);
    throw new CustodyError('CHAIN_UNAVAILABLE', `${method}: cannot reach the node at ${this.opts.url} after ${this.retries + 1} attempts (${why})`, { method });
  }

  async getBlockchainInfo(): Promise<ChainInfo> {
    const r = await this.call<{ chain: string; blocks: number; bestblockhash: string }>('getblockchaininfo');
    return { chain: r.chain, blocks: r.blocks, bestBlockHash: r.bestblockhash };
  }

  getBlockCount(): Promise<number> {
    return this.call<number>('getblockcount');
  }

  getBestBlockHash(): Promise<string> {
    return this.call<string>('getbestblockhash');
  }

  getBlockHash(height: number): Promise<string> {
    return this.call<string>('getblockhash', [height]);
  }

  async getBlockRaw(hash: string): Promise<Uint8Array> {
    if (!HASH.test(hash)) throw new CustodyError('INVALID_ARGUMENT', `hash: expected 64 hex characters, got "${hash.slice(0, 80)}"`);
    // Verbosity false: the raw block, parsed by us (block-walker); `2` is not served by every node.
    return hexBytes(await this.call<string>('getblock', [hash, false]), 'getblock');
  }

  getRawMempool(): Promise<string[]> {
    return this.call<string[]>('getrawmempool');
  }

  async getRawTransaction(txid: string): Promise<Uint8Array> {
    if (!HASH.test(txid)) throw new CustodyError('INVALID_ARGUMENT', `txid: expected 64 hex characters, got "${txid.slice(0, 80)}"`);
    return hexBytes(await this.call<string>('getrawtransaction', [txid, false]), 'getrawtransaction');
  }

  sendRawTransaction(tx: Uint8Array): Promise<string> {
    return this.call<string>('sendrawtransaction', [Buffer.from(tx).toString('hex')]);
  }

  async estimateSmartFee(targetBlocks: number): Promise<number | null> {
    // Core answers {feerate: BTC/kvB}; bcoin answers {fee: -1} when it has no estimate.
    const r = await this.call<{ feerate?: number; fee?: number; errors?: string[] }>('estimatesmartfee', [targetBlocks]);
    const btcPerKvB = r.feerate ?? (r.fee !== undefined && r.fee > 0 ? r.fee : undefined);
    if (btcPerKvB === undefined || !(btcPerKvB > 0)) return null;
    // BTC/kvB → sat/vB: x 1e8 / 1000. The node gives a decimal; round up to a whole sat/vB.
    return Math.ceil(Math.round(btcPerKvB * 1e8) / 1000);
  }

  /** Regtest only (tests and dev mode). */
  generateToAddress(blocks: number, address: string): Promise<string[]> {
    return this.call<string[]>('generatetoaddress', [blocks, address]);
  }
}

function hexBytes(hex: string, method: string): Uint8Array {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !HEX.test(hex)) throw new CustodyError('CHAIN_RPC', `${method}: the node did not return hex`);
  return Buffer.from(hex, 'hex');
}
