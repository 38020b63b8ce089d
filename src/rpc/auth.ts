/**
 * RPC authentication (DESIGN §4). The ZAP handler (zap.ts) admits only allowlisted CURVE keys, but
 * zeromq.js does not tell the server which key sent a message, so each request also proves its sender:
 *
 *   K   = HKDF-SHA256(ikm = X25519(client secret, server public) = X25519(server secret, client public),
 *                     salt = "custody-rpc-v1", info = client public ‖ server public, 32 bytes)   (RFC 5869, RFC 7748)
 *   mac = HMAC-SHA256(K, "custody-rpc-v1\n" client "\n" ts "\n" nonce "\n" method "\n" JSON(id) "\n" JSON(params ?? null))
 *
 * Only the holder of the client's secret key (or the server) can compute K, so a client with a valid
 * key cannot act as another client; ts bounds a captured request's life, the nonce cache forbids replay
 * inside that window. JSON(x) is JSON.stringify of the parsed value, so both sides must MAC the
 * request as parsed from (or about to be serialised to) the frame, before any schema transformation.
 */
import * as crypto from 'node:crypto';
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { CustodyError } from '../errors.js';
import { CLIENT_NAME_PATTERN } from './curve-keys.js';
import { x25519, x25519PrivateKey, x25519PublicKey } from './x25519.js';
import { z85Decode } from './z85.js';

export { startZapHandler, ZAP_ENDPOINT, type ZapDenial, type ZapHandler, type ZapOptions } from './zap.js';
export { RateLimiter, Throttle, type RateLimiterOptions, type ThrottleOptions } from './rate-limit.js';

export const AUTH_DOMAIN = 'custody-rpc-v1';
export const DEFAULT_AUTH_WINDOW_MS = 30_000;
/** Live nonces kept per client: about 6,700 requests/s sustained over a 30 s window, far above any app server. */
export const DEFAULT_MAX_NONCES = 200_000;
const MAC_KEY_BYTES = 32;
const NONCE_BYTES = 16;

export interface RequestAuth {
  readonly client: string;
  /** Milliseconds since the epoch, on the client's clock. */
  readonly ts: number;
  /** 32 lowercase hex characters (16 random bytes). */
  readonly nonce: string;
  /** 64 lowercase hex characters. */
  readonly mac: string;
}

export interface SignableRequest {
  readonly client: string;
  readonly method: string;
  readonly id: unknown;
  readonly params?: unknown;
}

export interface VerifiableRequest {
  readonly method: string;
  readonly id: unknown;
  readonly params?: unknown;
  readonly auth: unknown;
}

/**
 * The per-client MAC key. On a client: secretKey = its own, peerPublicKey = the server's; on the
 * server the other way round. Keys are Z85; the caller's own public key must match its secret key.
 */
export function deriveClientKey(keys: { secretKey: string; peerPublicKey: string; clientPublicKey: string; serverPublicKey: string }): Buffer {
  const decode = (z85: string, field: string): Uint8Array => {
    try {
      return z85Decode(z85);
    } catch {
      throw new CustodyError('KEY_FILE', `${field}: not a Z85 key`);
    }
  };
  const clientPub = decode(keys.clientPublicKey, 'clientPublicKey');
  const serverPub = decode(keys.serverPublicKey, 'serverPublicKey');
  const peerPub = decode(keys.peerPublicKey, 'peerPublicKey');
  const peerIsServer = Buffer.from(peerPub).equals(serverPub);
  if (!peerIsServer && !Buffer.from(peerPub).equals(clientPub)) {
    throw new CustodyError('KEY_FILE', 'peerPublicKey: must be clientPublicKey or serverPublicKey');
  }
  const ownPub = peerIsServer ? clientPub : serverPub;
  const secret = decode(keys.secretKey, 'secretKey');
  try {
    const shared = x25519(x25519PrivateKey(secret, ownPub), x25519PublicKey(peerPub));
    try {
      const info = Buffer.concat([clientPub, serverPub]);
      return Buffer.from(hkdfSync('sha256', shared, AUTH_DOMAIN, info, MAC_KEY_BYTES));
    } finally {
      shared.fill(0);
    }
  } finally {
    secret.fill(0);
  }
}

/** The exact bytes under the MAC (see the module comment). `id` absent and `id: null` are the same. */
export function macInput(client: string, ts: number, nonce: string, method: string, id: unknown, params: unknown): Buffer {
  return Buffer.from(macText(client, ts, nonce, method, id, params), 'utf8');
}

function computeMac(key: Uint8Array, input: Buffer | string): Buffer {
  return createHmac('sha256', key).update(input).digest();
}

/** macInput as a string: hashed without first copying it into a Buffer (the hot path of every request). */
function macText(client: string, ts: number, nonce: string, method: string, id: unknown, params: unknown): string {
  return `${AUTH_DOMAIN}\n${client}\n${ts}\n${nonce}\n${method}\n${JSON.stringify(id ?? null)}\n${JSON.stringify(params ?? null)}`;
}

/** Client side: the `auth` member for one request. `now` is ms since the epoch. */
export function signRequest(key: Uint8Array, req: SignableRequest, now: number, randomBytes: (n: number) => Uint8Array): RequestAuth {
  const nonce = Buffer.from(randomBytes(NONCE_BYTES)).toString('hex');
  if (nonce.length !== NONCE_BYTES * 2) throw new CustodyError('INTERNAL', 'randomBytes returned the wrong length');
  const ts = Math.floor(now);
  const mac = computeMac(key, macText(req.client, ts, nonce, req.method, req.id, req.params)).toString('hex');
  return { client: req.client, ts, nonce, mac };
}

/**
 * Client side, for one client key: whole request frames in one pass, the same bytes as JSON.stringify of
 * {jsonrpc, id, method, params?, auth: signRequest(…)}, but params serialised once for both the MAC and
 * the frame, and the MAC computed from the key's precomputed pads (MacKey).
 */
export class RequestSigner {
  private readonly key: MacKey;
  private readonly clientJson: string;

  constructor(
    key: Uint8Array,
    private readonly client: string,
  ) {
    this.key = new MacKey(key);
    this.clientJson = JSON.stringify(client);
  }

  /** `nonce`: 32 lowercase hex characters, never repeated inside the daemon's window. `now`: ms since the epoch. */
  frame(method: string, id: number | string, params: unknown, now: number, nonce: string): string {
    if (!NONCE_RE.test(nonce)) throw new CustodyError('INTERNAL', 'RequestSigner: the nonce must be 32 lowercase hex characters');
    const ts = Math.floor(now);
    const idJson = JSON.stringify(id);
    const paramsJson = params === undefined ? undefined : (JSON.stringify(params) as string | undefined);
    const mac = this.key.mac(`${AUTH_DOMAIN}\n${this.client}\n${ts}\n${nonce}\n${method}\n${idJson}\n${paramsJson ?? 'null'}`).toString('hex');
    const front = `{"jsonrpc":"2.0","id":${idJson},"method":${JSON.stringify(method)},`;
    return `${front}${paramsJson === undefined ? '' : `"params":${paramsJson},`}"auth":{"client":${this.clientJson},"ts":${ts},"nonce":"${nonce}","mac":"${mac}"}}`;
  }

  wipe(): void {
    this.key.wipe();
  }
}

export interface RequestVerifierOptions {
  /** How far a request's ts may be from the daemon's clock, either way (default 30 s). */
  readonly windowMs?: number;
  /** Live nonces per client before its requests are refused with RATE_LIMITED (default 200,000). */
  readonly maxNonces?: number;
}

const AUTH_KEYS = ['client', 'ts', 'nonce', 'mac'];
const NONCE_RE = /^[0-9a-f]{32}$/;
const MAC_RE = /^[0-9a-f]{64}$/;

function unauthenticated(message: string): CustodyError {
  return new CustodyError('UNAUTHENTICATED', message);
}

/** Checks the shape of `auth` before anything else looks at it (strict: unknown members refused). */
function parseAuth(auth: unknown): RequestAuth {
  if (typeof auth !== 'object' || auth === null || Array.isArray(auth)) throw unauthenticated('auth: missing or not an object');
  const rec = auth as Record<string, unknown>;
  for (const k of Object.keys(rec)) if (!AUTH_KEYS.includes(k)) throw unauthenticated(`auth: unknown member ${JSON.stringify(k.slice(0, 32))}`);
  const { client, ts, nonce, mac } = rec;
  if (typeof client !== 'string' || !CLIENT_NAME_PATTERN.test(client)) throw unauthenticated(`auth.client: expected a client name matching ${CLIENT_NAME_PATTERN.source}`);
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) throw unauthenticated('auth.ts: expected milliseconds since the epoch (a non-negative integer)');
  if (typeof nonce !== 'string' || !NONCE_RE.test(nonce)) throw unauthenticated('auth.nonce: expected 32 lowercase hex characters');
  if (typeof mac !== 'string' || !MAC_RE.test(mac)) throw unauthenticated('auth.mac: expected 64 lowercase hex characters');
  return { client, ts, nonce, mac };
}

/**
 * Nonces seen from one client, in arrival order, each kept until its ts leaves the window (ts + window).
 * Pruning walks from the oldest arrival; an entry behind a longer-lived one waits at most one more window.
 */
class NonceCache {
  private readonly seen = new Map<string, number>();
  private lastSweep = 0;

  get size(): number {
    return this.seen.size;
  }

  has(nonce: string): boolean {
    return this.seen.has(nonce);
  }

  add(nonce: string, expiresAt: number): void {
    this.seen.set(nonce, expiresAt);
  }

  pruneFront(now: number): void {
    for (const [nonce, expiresAt] of this.seen) {
      if (expiresAt >= now) return;
      this.seen.delete(nonce);
    }
  }

  /** Full pass, at most once a second, for when the front is held up by a long-lived entry. */
  sweep(now: number): void {
    if (now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    for (const [nonce, expiresAt] of this.seen) if (expiresAt < now) this.seen.delete(nonce);
  }
}

/** crypto.hash (one-shot, the digest looked up once per process) is in Node ≥ 20.12; older ones use createHmac. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'buffer') => Buffer }).hash;
const SHA256_BLOCK = 64;
/** Message bytes MacKey hashes without allocating; longer messages (rare, up to a 64 KiB frame) go through createHmac. */
const MAC_SCRATCH = 8 * 1024;

/**
 * HMAC-SHA256 (RFC 2104) under one client's key, as two one-shot SHA-256 calls over the key's inner and
 * outer pad blocks, computed once: SHA-256((K ⊕ opad) ‖ SHA-256((K ⊕ ipad) ‖ m)). createHmac costs a
 * digest lookup under a lock and a native object per call, about half of verifying a request.
 * The pads are as secret as the key: wipe() zeroes them with it.
 */
class MacKey {
  private readonly key: Buffer;
  /** K ⊕ ipad, then room for the message. */
  private readonly inner = Buffer.alloc(SHA256_BLOCK + MAC_SCRATCH);
  /** K ⊕ opad, then the inner hash. */
  private readonly outer = Buffer.alloc(SHA256_BLOCK + 32);
  /** The MAC a request claims, decoded here instead of into a new Buffer. */
  readonly claimed = Buffer.alloc(32);

  constructor(key: Uint8Array) {
    this.key = Buffer.from(key); // our own copy: the caller may wipe theirs
    for (let i = 0; i < SHA256_BLOCK; i++) {
      const k = this.key[i] ?? 0; // keys are 32 bytes, shorter than a block: zero-padded (RFC 2104 §2)
      this.inner[i] = k ^ 0x36;
      this.outer[i] = k ^ 0x5c;
    }
  }

  mac(text: string): Buffer {
    // text.length UTF-16 units are at most 3 UTF-8 bytes each: longer text might not fit the scratch space.
    if (oneShotHash === undefined || text.length * 3 > MAC_SCRATCH) return computeMac(this.key, text);
    const n = this.inner.write(text, SHA256_BLOCK, 'utf8');
    oneShotHash('sha256', this.inner.subarray(0, SHA256_BLOCK + n), 'buffer').copy(this.outer, SHA256_BLOCK);
    return oneShotHash('sha256', this.outer, 'buffer');
  }

  wipe(): void {
    this.key.fill(0);
    this.inner.fill(0);
    this.outer.fill(0);
  }
}

/** Server side: checks a request's authenticator and returns the client it proves. */
export class RequestVerifier {
  private keys = new Map<string, MacKey>();
  private nonces = new Map<string, NonceCache>();
  private readonly windowMs: number;
  private readonly maxNonces: number;
  private lastPrune = 0;

  constructor(
    clients: ReadonlyMap<string, Uint8Array>,
    opts: RequestVerifierOptions = {},
    private readonly clock: () => number = Date.now,
  ) {
    this.windowMs = opts.windowMs ?? DEFAULT_AUTH_WINDOW_MS;
    this.maxNonces = opts.maxNonces ?? DEFAULT_MAX_NONCES;
    if (!(this.windowMs > 0) || !(this.maxNonces > 0)) throw new CustodyError('INVALID_ARGUMENT', 'RequestVerifier: windowMs and maxNonces must be positive');
    this.replaceClients(clients);
  }

  /**
   * Installs a new client set (SIGHUP reload). Nonce caches of clients that remain are kept, so a
   * request accepted before the reload cannot be replayed after it.
   */
  replaceClients(clients: ReadonlyMap<string, Uint8Array>): void {
    const keys = new Map<string, MacKey>();
    for (const [name, key] of clients) {
      if (key.length !== MAC_KEY_BYTES) throw new CustodyError('INVALID_ARGUMENT', `client ${JSON.stringify(name)}: MAC key must be ${MAC_KEY_BYTES} bytes`);
      keys.set(name, new MacKey(key));
    }
    for (const old of this.keys.values()) old.wipe();
    this.keys = keys;
    for (const name of [...this.nonces.keys()]) if (!keys.has(name)) this.nonces.delete(name);
  }

  /**
   * Returns the authenticated client name, or throws UNAUTHENTICATED (unknown client, malformed auth,
   * ts outside the window, wrong MAC), REPLAYED (nonce seen inside the window) or RATE_LIMITED (too
   * many live nonces). The MAC is checked before the nonce cache is touched, so forged requests cannot
   * fill it.
   */
  verify(req: VerifiableRequest): string {
    const auth = parseAuth(req.auth);
    const key = this.keys.get(auth.client);
    if (key === undefined) throw unauthenticated(`auth.client: no client named ${JSON.stringify(auth.client)}`);
    const now = this.clock();
    const skew = auth.ts - now;
    if (Math.abs(skew) > this.windowMs) {
      throw unauthenticated(`auth.ts: ${Math.abs(skew)} ms ${skew < 0 ? 'behind' : 'ahead of'} the daemon's clock, outside the ${this.windowMs} ms window`);
    }
    const expected = key.mac(macText(auth.client, auth.ts, auth.nonce, req.method, req.id, req.params));
    key.claimed.write(auth.mac, 'hex'); // 64 hex digits (parseAuth checked): exactly 32 bytes
    if (!timingSafeEqual(expected, key.claimed)) {
      throw unauthenticated('auth.mac: does not match this client\'s key and the request (method, id, params, ts, nonce)');
    }
    this.pruneAll(now);
    let cache = this.nonces.get(auth.client);
    if (cache === undefined) {
      cache = new NonceCache();
      this.nonces.set(auth.client, cache);
    }
    cache.pruneFront(now);
    if (cache.has(auth.nonce)) throw new CustodyError('REPLAYED', 'auth.nonce: this request was already received');
    if (cache.size >= this.maxNonces) {
      cache.sweep(now);
      if (cache.size >= this.maxNonces) throw new CustodyError('RATE_LIMITED', `more than ${this.maxNonces} requests inside the ${this.windowMs} ms window`);
    }
    cache.add(auth.nonce, auth.ts + this.windowMs);
    return auth.client;
  }

  /** Live nonces held for a client (for tests and status). */
  nonceCount(client: string): number {
    return this.nonces.get(client)?.size ?? 0;
  }

  /** Idle clients' caches are pruned once a window, so their memory is returned too. */
  private pruneAll(now: number): void {
    if (now - this.lastPrune < this.windowMs) return;
    this.lastPrune = now;
    for (const cache of this.nonces.values()) cache.pruneFront(now);
  }
}
