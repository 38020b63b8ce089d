/**
 * Defence in depth: the audit log is copied off-host (syslog, DESIGN §1) and kept forever, so a secret
 * written into it once can never be taken back. Callers should never pass one; this screen refuses
 * details that look as if they do, and says where without echoing the value (errors.ts: no secrets).
 *
 * Refused:
 * - a key, at any depth, whose name mentions a secret (passphrase, mnemonic, seed, xprv, tprv, secret,
 *   share, private): such a field has no business in a record even when its value is harmless;
 * - a string holding an extended private key (BIP32 xprv/tprv and the SLIP-132 y/z/Y/Z/u/v/U/V variants,
 *   base58check, 111 characters) anywhere in it, e.g. inside a descriptor;
 * - a string that is a WIF private key (Bitcoin Core's base58 key export: 51 or 52 characters from 5, K,
 *   L, 9 or c) as a whole token;
 * - 12 or more consecutive words of one BIP39 wordlist (12 is the shortest BIP39 mnemonic), whether as
 *   one whitespace-separated string or as consecutive strings of an array.
 * Using the real wordlists rather than "any lowercase words" keeps a free-text freeze reason from being
 * refused mid-incident: common English words (the, and, for, of, to…) are not BIP39 words, so prose
 * rarely has a run of 12.
 */
import { wordlists } from 'bip39';
import { CustodyError } from '../errors.js';

const SECRET_KEY_NAME = /passphrase|mnemonic|seed|xprv|tprv|secret|share|private/i;
const B58 = '1-9A-HJ-NP-Za-km-z';
const EXTENDED_PRIVATE = new RegExp(`[xyzYZtuvUV]prv[${B58}]{100,}`);
const WIF = new RegExp(`(?:^|[^${B58}])(?:[59][${B58}]{50}|[KLc][${B58}]{51})(?![${B58}])`);
/** BIP39: 12, 15, 18, 21 or 24 words. */
export const MNEMONIC_MIN_WORDS = 12;

// BIP39 compares words in NFKD; the package's lists hold aliases (EN, JA) of the same arrays.
const WORDLISTS: ReadonlyArray<ReadonlySet<string>> = [...new Set(Object.values(wordlists))].map(
  (list) => new Set((list as string[]).map((w) => w.normalize('NFKD'))),
);

function refuse(path: string, what: string): CustodyError {
  return new CustodyError('INTERNAL', `audit record ${path}: refused, ${what}; audit records must never hold secrets`, { field: path });
}

/** True when `words` holds MNEMONIC_MIN_WORDS or more consecutive words of one BIP39 wordlist. */
export function hasMnemonicRun(words: readonly string[]): boolean {
  if (words.length < MNEMONIC_MIN_WORDS) return false;
  const normal = words.map((w) => w.toLowerCase().normalize('NFKD'));
  for (const list of WORDLISTS) {
    let run = 0;
    for (const w of normal) {
      run = list.has(w) ? run + 1 : 0;
      if (run >= MNEMONIC_MIN_WORDS) return true;
    }
  }
  return false;
}

function screenString(s: string, path: string): void {
  if (EXTENDED_PRIVATE.test(s)) throw refuse(path, 'the value looks like an extended private key');
  if (WIF.test(s)) throw refuse(path, 'the value looks like a WIF private key');
  // \s includes the ideographic space (U+3000) that Japanese BIP39 mnemonics use between words.
  const words = s.split(/\s+/).filter((w) => w.length > 0);
  if (hasMnemonicRun(words)) throw refuse(path, 'the value looks like a BIP39 mnemonic');
}

/** Throws CustodyError INTERNAL, naming the path but not the value, when `value` looks like it holds a secret. */
export function screenSecrets(value: unknown, path = 'details'): void {
  if (typeof value === 'string') {
    screenString(value, path);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    const items = value as readonly unknown[];
    if (items.length >= MNEMONIC_MIN_WORDS && hasMnemonicRun(items.map((e) => (typeof e === 'string' ? e : '')))) {
      throw refuse(path, 'the array looks like the words of a BIP39 mnemonic');
    }
    items.forEach((e, i) => screenSecrets(e, `${path}[${i}]`));
    return;
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (SECRET_KEY_NAME.test(k)) throw refuse(`${path}.${k}`, 'the field name suggests a secret');
    screenSecrets(v, `${path}.${k}`);
  }
}
