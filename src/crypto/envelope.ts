/**
 * Passphrase envelopes: scrypt (RFC 7914) stretches a custodian's passphrase into an AES-256-GCM key
 * that seals a small secret, with associated data binding the ciphertext to its context (keystore id,
 * custodian name and index). Pure: randomness comes in from the caller; node:crypto does no I/O.
 */
import { createCipheriv, createDecipheriv, scrypt as scryptCb } from 'node:crypto';
import type { RandomBytes } from '../types.js';
import { wipe } from './wipe.js';

export interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** DESIGN §2: N = 2^17, r = 8, p = 1 costs ~0.4 s and 128 MiB per guess on this class of machine. */
export const DEFAULT_SCRYPT: ScryptParams = Object.freeze({ N: 2 ** 17, r: 8, p: 1 });
/** Below this a stolen keystore is too cheap to attack; only tests and dev mode go lower, by a loud opt-in. */
export const MIN_PRODUCTION_SCRYPT_N = 2 ** 17;
/** Bounds that a file is allowed to ask for, so a hostile file cannot make us allocate gigabytes. */
export const SCRYPT_LIMITS = Object.freeze({ minLogN: 10, maxLogN: 22, maxR: 32, maxP: 16 });

export const SALT_BYTES = 16;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const KEY_BYTES = 32;

export interface Sealed {
  readonly kdf: 'scrypt';
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: string; // base64
  readonly nonce: string; // base64
  readonly ciphertext: string; // base64, GCM tag appended
}

/** Returns the reason the parameters are unacceptable, or undefined when they are fine. */
export function checkScryptParams(params: ScryptParams): string | undefined {
  const { N, r, p } = params;
  const logN = Math.log2(N);
  if (!Number.isInteger(N) || !Number.isInteger(logN) || logN < SCRYPT_LIMITS.minLogN || logN > SCRYPT_LIMITS.maxLogN) {
    return `scrypt N must be a power of two from 2^${SCRYPT_LIMITS.minLogN} to 2^${SCRYPT_LIMITS.maxLogN}, got ${N}`;
  }
  if (!Number.isInteger(r) || r < 1 || r > SCRYPT_LIMITS.maxR) return `scrypt r must be 1 to ${SCRYPT_LIMITS.maxR}, got ${r}`;
  if (!Number.isInteger(p) || p < 1 || p > SCRYPT_LIMITS.maxP) return `scrypt p must be 1 to ${SCRYPT_LIMITS.maxP}, got ${p}`;
  return undefined;
}

/** scrypt needs 128·N·r bytes; Node's default maxmem (32 MiB) refuses N = 2^17, r = 8 (DESIGN §11). */
export function deriveKey(passphrase: Uint8Array, salt: Uint8Array, params: ScryptParams): Promise<Buffer> {
  const problem = checkScryptParams(params);
  if (problem !== undefined) return Promise.reject(new RangeError(problem));
  const maxmem = 128 * params.N * params.r * (params.p + 1) + 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    scryptCb(passphrase, salt, KEY_BYTES, { N: params.N, r: params.r, p: params.p, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

export function aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** Returns the plaintext, or undefined when the key, nonce, ciphertext or associated data is wrong. */
export function aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer | undefined {
  if (sealed.length < TAG_BYTES || nonce.length !== NONCE_BYTES || key.length !== KEY_BYTES) return undefined;
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const head = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
  try {
    const tail = decipher.final();
    const out = Buffer.concat([head, tail]);
    wipe(head, tail);
    return out;
  } catch {
    wipe(head); // unauthenticated plaintext never leaves this function
    return undefined;
  }
}

export async function sealWithPassphrase(
  plaintext: Uint8Array,
  passphrase: Uint8Array,
  aad: Uint8Array,
  random: RandomBytes,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<Sealed> {
  const salt = random(SALT_BYTES);
  const nonce = random(NONCE_BYTES);
  const key = await deriveKey(passphrase, salt, params);
  try {
    const ciphertext = aeadSeal(key, nonce, plaintext, aad);
    return {
      kdf: 'scrypt',
      N: params.N,
      r: params.r,
      p: params.p,
      salt: Buffer.from(salt).toString('base64'),
      nonce: Buffer.from(nonce).toString('base64'),
      ciphertext: ciphertext.toString('base64'),
    };
  } finally {
    wipe(key);
  }
}

/** Returns the plaintext, or undefined when the passphrase (or anything sealed with it) is wrong. */
export async function openWithPassphrase(sealed: Sealed, passphrase: Uint8Array, aad: Uint8Array): Promise<Buffer | undefined> {
  const key = await deriveKey(passphrase, Buffer.from(sealed.salt, 'base64'), sealed);
  try {
    return aeadOpen(key, Buffer.from(sealed.nonce, 'base64'), Buffer.from(sealed.ciphertext, 'base64'), aad);
  } finally {
    wipe(key);
  }
}
