/**
 * BIP39 mnemonics for the offline signer: words from entropy, validation that names the first bad word
 * by position (never by value: a typo of a secret word is still mostly the secret), and the seed.
 * Works on byte buffers where it can so callers can wipe them; randomness comes from the caller.
 */
import { createHash, pbkdf2Sync } from 'node:crypto';
import { wordlists } from 'bip39';
import { CustodyError } from '../errors.js';

const ENGLISH: readonly string[] = wordlists['english'] as string[];
const INDEX = new Map<string, number>(ENGLISH.map((w, i) => [w, i]));
const WORD_COUNTS = [12, 15, 18, 21, 24];

/** BIP39 §Generating the mnemonic: entropy (16..32 bytes, multiple of 4) → words joined by single spaces. */
export function mnemonicFromEntropy(entropy: Uint8Array): Buffer {
  if (entropy.length < 16 || entropy.length > 32 || entropy.length % 4 !== 0) throw new RangeError('BIP39 entropy must be 16 to 32 bytes, a multiple of 4');
  const hash = createHash('sha256').update(entropy).digest();
  const bits = entropy.length * 8 + entropy.length / 4;
  const words: string[] = [];
  for (let i = 0; i < bits; i += 11) words.push(ENGLISH[readBits(entropy, hash, i, 11)] as string);
  hash.fill(0);
  // Written word by word into one buffer: the sentence never exists as a (wipe-proof) string.
  const out = Buffer.alloc(words.reduce((n, w) => n + w.length, 0) + words.length - 1);
  let off = 0;
  words.forEach((w, i) => {
    if (i > 0) out[off++] = 0x20;
    off += out.write(w, off, 'ascii');
  });
  words.length = 0;
  return out;
}

/** Bits [start, start+n) of entropy || hash, big-endian. */
function readBits(entropy: Uint8Array, hash: Uint8Array, start: number, n: number): number {
  let v = 0;
  for (let b = start; b < start + n; b++) {
    const byte = b >> 3 < entropy.length ? (entropy[b >> 3] as number) : (hash[(b >> 3) - entropy.length] as number);
    v = (v << 1) | ((byte >> (7 - (b & 7))) & 1);
  }
  return v;
}

/**
 * Validates a typed or restored mnemonic (BIP39 §Generating the mnemonic, checksum) and returns it
 * normalised: lower case, single spaces. Throws MNEMONIC_INVALID naming the word position or the rule.
 */
export function normalizeMnemonic(input: Uint8Array): Buffer {
  const words = Buffer.from(input).toString('utf8').trim().toLowerCase().split(/\s+/).filter((w) => w.length > 0);
  if (!WORD_COUNTS.includes(words.length)) {
    throw new CustodyError('MNEMONIC_INVALID', `mnemonic: has ${words.length} word${words.length === 1 ? '' : 's'}; BIP39 mnemonics have 12, 15, 18, 21 or 24`, { words: words.length });
  }
  const indices: number[] = [];
  for (let i = 0; i < words.length; i++) {
    const idx = INDEX.get(words[i] as string);
    if (idx === undefined) {
      throw new CustodyError('MNEMONIC_INVALID', `mnemonic: word ${i + 1} is not in the BIP39 English wordlist`, { position: i + 1 });
    }
    indices.push(idx);
  }
  const totalBits = words.length * 11;
  const checksumBits = totalBits / 33;
  const entropy = new Uint8Array((totalBits - checksumBits) / 8);
  for (let bit = 0; bit < entropy.length * 8; bit++) {
    if (((indices[Math.floor(bit / 11)] as number) >> (10 - (bit % 11))) & 1) entropy[bit >> 3] = (entropy[bit >> 3] as number) | (0x80 >> (bit & 7));
  }
  const hash = createHash('sha256').update(entropy).digest();
  const expected = (hash[0] as number) >> (8 - checksumBits);
  const last = indices[indices.length - 1] as number;
  const got = last & ((1 << checksumBits) - 1);
  entropy.fill(0);
  hash.fill(0);
  if (expected !== got) {
    throw new CustodyError('MNEMONIC_INVALID', 'mnemonic: the BIP39 checksum does not match; a word is wrong or out of order');
  }
  return Buffer.from(words.join(' '), 'utf8');
}

/** BIP39 §From mnemonic to seed: PBKDF2-HMAC-SHA512, 2048 rounds, salt "mnemonic" + NFKD(passphrase). */
export function mnemonicToSeed(mnemonic: Uint8Array, passphrase: Uint8Array = new Uint8Array(0)): Buffer {
  const salt = Buffer.from(`mnemonic${Buffer.from(passphrase).toString('utf8').normalize('NFKD')}`, 'utf8');
  const seed = pbkdf2Sync(mnemonic, salt, 2048, 64, 'sha512');
  salt.fill(0);
  return seed;
}
