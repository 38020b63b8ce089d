/**
 * X25519 on raw 32-byte CURVE keys through node:crypto (RFC 7748; CurveZMQ uses the same curve, so a
 * zeromq key pair is an X25519 key pair). Node imports raw OKP keys only as JWK.
 */
import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';
import { CustodyError } from '../errors.js';

export const X25519_KEY_BYTES = 32;

const b64url = (raw: Uint8Array): string => Buffer.from(raw).toString('base64url');

function checkLength(raw: Uint8Array, what: string): void {
  if (raw.length !== X25519_KEY_BYTES) throw new CustodyError('KEY_FILE', `${what}: expected ${X25519_KEY_BYTES} bytes, got ${raw.length}`);
}

export function x25519PublicKey(publicRaw: Uint8Array): KeyObject {
  checkLength(publicRaw, 'public key');
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(publicRaw) }, format: 'jwk' });
}

/**
 * Imports a secret key and proves it belongs to `claimedPublicRaw`. JWK wants `x` beside `d`; Node
 * currently does not check that they match, so we derive the public key from `d` and compare: a key
 * file whose halves disagree would otherwise give a MAC key the other side can never reproduce.
 */
export function x25519PrivateKey(secretRaw: Uint8Array, claimedPublicRaw: Uint8Array): KeyObject {
  checkLength(secretRaw, 'secret key');
  checkLength(claimedPublicRaw, 'public key');
  let key: KeyObject;
  let derived: string | undefined;
  try {
    key = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64url(secretRaw), x: b64url(claimedPublicRaw) }, format: 'jwk' });
    derived = createPublicKey(key).export({ format: 'jwk' }).x;
  } catch {
    throw new CustodyError('KEY_FILE', 'the secret key does not match its public key');
  }
  if (derived !== b64url(claimedPublicRaw)) throw new CustodyError('KEY_FILE', 'the secret key does not match its public key');
  return key;
}

/** The shared secret; refuses an all-zero result (a low-order peer key, RFC 7748 §6.1). */
export function x25519(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey });
  } catch {
    throw new CustodyError('KEY_FILE', 'X25519 with this peer public key failed (low-order point?)');
  }
  if (shared.every((b) => b === 0)) throw new CustodyError('KEY_FILE', 'X25519 with this peer public key gave the all-zero secret (low-order point)');
  return shared;
}
