/**
 * t-of-n secret splitting over GF(2^8), a thin wrapper over the audited `shamir-secret-sharing`.
 * Each share is the secret's length plus one byte (the x coordinate, last).
 * Threshold 1 (dev mode, a single custodian) is plain copies: the library requires t >= 2.
 */
import { combine, split } from 'shamir-secret-sharing';

export const MAX_SHARES = 255;

// The library checks `value.constructor === Uint8Array`, so Node Buffers must be copied into plain arrays.
function plain(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

export async function splitSecret(secret: Uint8Array, shares: number, threshold: number): Promise<Uint8Array[]> {
  if (!Number.isInteger(shares) || shares < 1 || shares > MAX_SHARES) throw new RangeError(`shares must be 1 to ${MAX_SHARES}, got ${shares}`);
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > shares) {
    throw new RangeError(`threshold must be 1 to ${shares}, got ${threshold}`);
  }
  if (secret.length === 0) throw new RangeError('secret must not be empty');
  if (threshold === 1) {
    return Array.from({ length: shares }, (_, i) => {
      const share = new Uint8Array(secret.length + 1);
      share.set(secret);
      share[secret.length] = i + 1;
      return share;
    });
  }
  const input = plain(secret);
  try {
    return await split(input, shares, threshold);
  } finally {
    input.fill(0);
  }
}

/** Combines exactly `threshold` distinct shares. A wrong share yields a wrong secret, not an error: callers prove the result by AEAD. */
export async function combineShares(shares: readonly Uint8Array[]): Promise<Uint8Array> {
  if (shares.length === 0) throw new RangeError('no shares to combine');
  const first = shares[0] as Uint8Array;
  if (shares.length === 1) return first.slice(0, first.length - 1);
  const copies = shares.map(plain);
  try {
    return await combine(copies);
  } finally {
    for (const c of copies) c.fill(0);
  }
}
