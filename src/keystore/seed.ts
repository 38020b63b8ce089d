/**
 * The hot seed: 256 bits of entropy shown to humans as 24 BIP39 words, stretched to the 64-byte BIP32
 * seed with PBKDF2-HMAC-SHA512 (2048 rounds, salt "mnemonic", BIP39 §"From mnemonic to seed").
 * The keystore stores the entropy; the words are built as bytes, not a string, so they can be wiped
 * (English words are already NFKD-normalised, so the bytes are what BIP39 hashes).
 */
import { createHash, pbkdf2Sync } from 'node:crypto';
import { wordlists } from 'bip39';
import { wipe } from '../crypto/wipe.js';

const ENGLISH: readonly string[] = wordlists['english'] as string[];

/** Word indices of a mnemonic (BIP39: entropy || first ENT/32 bits of SHA-256, in 11-bit groups). */
function wordIndices(entropy: Uint8Array): number[] {
  if (entropy.length < 16 || entropy.length > 32 || entropy.length % 4 !== 0) throw new RangeError('BIP39 entropy must be 16..32 bytes, a multiple of 4');
  const hash = createHash('sha256').update(entropy).digest();
  const bits = entropy.length * 8 + entropy.length / 4;
  const all = Buffer.concat([entropy, hash.subarray(0, 1)]);
  const indices: number[] = [];
  for (let i = 0; i < bits; i += 11) {
    let v = 0;
    for (let b = 0; b < 11; b++) {
      const bit = i + b;
      v = (v << 1) | ((((all[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1));
    }
    indices.push(v);
  }
  wipe(all, hash);
  return indices;
}

/** The mnemonic sentence as UTF-8 bytes ("word word …"). Wipe it when done. */
export function mnemonicBytes(entropy: Uint8Array): Buffer {
  const words = wordIndices(entropy).map((i) => ENGLISH[i] as string);
  const out = Buffer.alloc(words.reduce((n, w) => n + w.length, 0) + words.length - 1);
  let off = 0;
  words.forEach((w, i) => {
    if (i > 0) out[off++] = 0x20;
    off += out.write(w, off, 'ascii');
  });
  words.length = 0;
  return out;
}

/** BIP39 seed of the mnemonic for `entropy`, with an empty BIP39 passphrase. Wipe it when done. */
export function seedFromEntropy(entropy: Uint8Array): Buffer {
  const words = mnemonicBytes(entropy);
  try {
    return pbkdf2Sync(words, 'mnemonic', 2048, 64, 'sha512');
  } finally {
    wipe(words);
  }
}
