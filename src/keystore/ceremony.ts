/**
 * The key ceremonies that produce a keystore body: init, rekey (re-split to a new custodian set) and
 * passwd (one custodian changes their own passphrase). Each returns a new body; the caller writes it
 * with writeKeystore. Secrets handed in stay owned by the caller, who wipes them.
 */
import { randomUUID } from 'node:crypto';
import { CustodyError } from '../errors.js';
import { aeadSeal, DEFAULT_SCRYPT, MIN_PRODUCTION_SCRYPT_N, NONCE_BYTES, openWithPassphrase, sealWithPassphrase, type ScryptParams } from '../crypto/envelope.js';
import { splitSecret } from '../crypto/shamir.js';
import { wipe } from '../crypto/wipe.js';
import type { Network, RandomBytes } from '../types.js';
import { hotAccountFromSeed } from '../wallet/hot-account.js';
import { seedFromEntropy } from './seed.js';
import {
  CUSTODIAN_NAME,
  DATA_KEY_BYTES,
  ENTROPY_BYTES,
  KEYSTORE_FORMAT,
  KEYSTORE_VERSION,
  MAX_CUSTODIANS,
  orderedBody,
  seedAad,
  shareAad,
  type CustodianEntry,
  type KeystoreBody,
} from './keyfile.js';
import { UnlockSession, type UnlockOptions } from './unlock-session.js';
import { normalizePassphrase } from './passphrase-policy.js';

export interface CustodianSecret {
  readonly name: string;
  readonly passphrase: Uint8Array;
}

export interface CeremonyDeps {
  readonly random: RandomBytes;
  readonly now: () => Date;
  /** scrypt cost; below 2^17 only with `unsafeFastKdf` (tests and dev mode). */
  readonly scrypt?: ScryptParams;
  readonly unsafeFastKdf?: boolean;
}

function kdfParams(deps: CeremonyDeps): ScryptParams {
  const params = deps.scrypt ?? DEFAULT_SCRYPT;
  if (params.N < MIN_PRODUCTION_SCRYPT_N && deps.unsafeFastKdf !== true) {
    throw new CustodyError('USAGE', `scrypt N=${params.N} is below the minimum of ${MIN_PRODUCTION_SCRYPT_N}; only tests and dev mode may go lower`);
  }
  return params;
}

export function checkCustodianSet(names: readonly string[], threshold: number): void {
  if (names.length < 1 || names.length > MAX_CUSTODIANS) {
    throw new CustodyError('USAGE', `custodians: expected 1 to ${MAX_CUSTODIANS} names, got ${names.length}`);
  }
  const seen = new Set<string>();
  for (const n of names) {
    if (!CUSTODIAN_NAME.test(n)) {
      throw new CustodyError('USAGE', `custodians: "${n}" is not a valid name (lowercase letters, digits, ".", "_", "-"; at most 32)`);
    }
    if (seen.has(n)) throw new CustodyError('USAGE', `custodians: "${n}" appears twice`);
    seen.add(n);
  }
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > names.length) {
    throw new CustodyError('USAGE', `threshold: expected 1 to ${names.length} (the number of custodians), got ${threshold}`);
  }
}

/** Splits a fresh data key to `custodians`, seals each share, and encrypts `entropy` under the data key. */
async function sealBody(
  base: Pick<KeystoreBody, 'id' | 'network' | 'createdAt' | 'hot'>,
  entropy: Uint8Array,
  custodians: readonly CustodianSecret[],
  threshold: number,
  deps: CeremonyDeps,
): Promise<KeystoreBody> {
  const params = kdfParams(deps);
  const dataKey = deps.random(DATA_KEY_BYTES);
  const shares = await splitSecret(dataKey, custodians.length, threshold);
  try {
    const entries: CustodianEntry[] = [];
    for (const [i, c] of custodians.entries()) {
      const passphrase = normalizePassphrase(c.passphrase);
      try {
        const share = await sealWithPassphrase(shares[i] as Uint8Array, passphrase, shareAad(base.id, c.name, i + 1, threshold), deps.random, params);
        entries.push({ name: c.name, index: i + 1, share });
      } finally {
        wipe(passphrase);
      }
    }
    const nonce = deps.random(NONCE_BYTES);
    const header = { id: base.id, network: base.network, hot: base.hot, threshold, custodians: entries };
    const ciphertext = aeadSeal(dataKey, nonce, entropy, seedAad(header));
    return orderedBody({
      format: KEYSTORE_FORMAT,
      version: KEYSTORE_VERSION,
      id: base.id,
      network: base.network,
      createdAt: base.createdAt,
      updatedAt: deps.now().toISOString(),
      hot: base.hot,
      threshold,
      custodians: entries,
      seed: { cipher: 'aes-256-gcm', nonce: Buffer.from(nonce).toString('base64'), ciphertext: ciphertext.toString('base64') },
    });
  } finally {
    wipe(dataKey, ...shares);
  }
}

/**
 * A new keystore with a fresh 256-bit hot seed. Returns the entropy too, so the caller can show the
 * paper backup once (--show-backup); the caller must wipe it.
 */
export async function createKeystore(
  opts: { network: Network; threshold: number; custodians: readonly CustodianSecret[] },
  deps: CeremonyDeps,
): Promise<{ body: KeystoreBody; entropy: Buffer }> {
  checkCustodianSet(
    opts.custodians.map((c) => c.name),
    opts.threshold,
  );
  const entropy = Buffer.from(deps.random(ENTROPY_BYTES));
  if (entropy.length !== ENTROPY_BYTES) throw new RangeError('random source returned the wrong length');
  try {
    const seed = seedFromEntropy(entropy);
    let hot;
    try {
      hot = hotAccountFromSeed(seed, opts.network);
    } finally {
      wipe(seed);
    }
    const now = deps.now().toISOString();
    const body = await sealBody(
      { id: randomUUID({ disableEntropyCache: true }), network: opts.network, createdAt: now, hot: { fingerprint: hot.fingerprint, path: hot.path, xpub: hot.xpub } },
      entropy,
      opts.custodians,
      opts.threshold,
      deps,
    );
    return { body, entropy };
  } catch (err) {
    wipe(entropy);
    throw err;
  }
}

/** Recovers the hot seed entropy with `custodians` (at least the threshold), proving every passphrase. */
export async function recoverEntropy(
  body: KeystoreBody,
  custodians: readonly CustodianSecret[],
  opts: Pick<UnlockOptions, 'clock' | 'random'>,
): Promise<Buffer> {
  if (custodians.length < body.threshold) {
    throw new CustodyError('NOT_ENOUGH_CUSTODIANS', `${custodians.length} custodian(s) given; this keystore needs ${body.threshold}`, {
      given: custodians.length,
      threshold: body.threshold,
    });
  }
  const session = new UnlockSession(body, { ...opts, progressTimeoutMs: 60 * 60_000, backoffAfterFailures: 1_000, maxBackoffMs: 1 });
  try {
    for (const c of custodians) {
      const r = await session.submit(c.name, c.passphrase);
      if (r.unlocked) return r.entropy;
      if (r.alreadyCounted) throw new CustodyError('USAGE', `custodian "${c.name}" is named twice`);
    }
    throw new CustodyError('NOT_ENOUGH_CUSTODIANS', 'the given custodians did not reach the threshold');
  } finally {
    session.reset();
  }
}

/** Re-splits to a new custodian set and threshold with a new data key; the seed and keystore id stay. */
export async function rekeyKeystore(
  body: KeystoreBody,
  current: readonly CustodianSecret[],
  next: { threshold: number; custodians: readonly CustodianSecret[] },
  deps: CeremonyDeps,
): Promise<KeystoreBody> {
  checkCustodianSet(
    next.custodians.map((c) => c.name),
    next.threshold,
  );
  const entropy = await recoverEntropy(body, current, { clock: () => deps.now().getTime(), random: deps.random });
  try {
    return await sealBody(body, entropy, next.custodians, next.threshold, deps);
  } finally {
    wipe(entropy);
  }
}

/** One custodian re-seals their own share under a new passphrase. Nothing else in the file changes. */
export async function changePassphrase(
  body: KeystoreBody,
  custodian: string,
  oldPassphrase: Uint8Array,
  newPassphrase: Uint8Array,
  deps: CeremonyDeps,
): Promise<KeystoreBody> {
  const entry = body.custodians.find((c) => c.name === custodian);
  if (entry === undefined) throw new CustodyError('UNKNOWN_CUSTODIAN', `no custodian named "${custodian}" in this keystore`, { custodian });
  const aad = shareAad(body.id, entry.name, entry.index, body.threshold);
  const oldNorm = normalizePassphrase(oldPassphrase);
  const newNorm = normalizePassphrase(newPassphrase);
  let share: Buffer | undefined;
  try {
    share = await openWithPassphrase(entry.share, oldNorm, aad);
    if (share === undefined) {
      throw new CustodyError('BAD_PASSPHRASE', `custodian "${custodian}": the current passphrase does not open this custodian's share`, { custodian });
    }
    const sealed = await sealWithPassphrase(share, newNorm, aad, deps.random, kdfParams(deps));
    return orderedBody({
      ...body,
      updatedAt: deps.now().toISOString(),
      custodians: body.custodians.map((c) => (c.name === custodian ? { name: c.name, index: c.index, share: sealed } : c)),
    });
  } finally {
    wipe(share, oldNorm, newNorm);
  }
}
