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
 * - a string holding a WIF private key (Bitcoin Core's base58 key export) as a whole token: 51 or 52
 *   base58 characters from 5, K, L, 9 or c whose base58check checksum holds, with the mainnet or test
 *   version byte and a 32-byte key (plus the 0x01 compression flag). The checksum matters: hex is mostly
 *   base58 characters, and a txid whose zeros cut out a 51-character run from 5 or 9, or a 52-character
 *   run from c, looked like a key; the payout naming it was refused, requeued and refused again, for ever,
 *   and no withdrawal behind it was signed (seen about once in 5,000 transactions);
 * - 12 or more consecutive words of one BIP39 wordlist (12 is the shortest BIP39 mnemonic), whether as
 *   one whitespace-separated string or as consecutive strings of an array.
 * Using the real wordlists rather than "any lowercase words" keeps a free-text freeze reason from being
 * refused mid-incident: common English words (the, and, for, of, to…) are not BIP39 words, so prose
 * rarely has a run of 12.
 */
import { wordlists } from 'bip39';
import bs58check from 'bs58check';
import { CustodyError } from '../errors.js';

const SECRET_KEY_NAME = /passphrase|mnemonic|seed|xprv|tprv|secret|share|private/i;
const B58 = '1-9A-HJ-NP-Za-km-z';
const EXTENDED_PRIVATE = new RegExp(`[xyzYZtuvUV]prv[${B58}]{100,}`);
/** Whole base58 tokens, candidates for a WIF key by length and first character (checked by isWif). */
const B58_TOKEN = new RegExp(`[${B58}]{51,52}`, 'g');
const B58_CHAR = new RegExp(`[${B58}]`);
const WIF_VERSIONS: ReadonlySet<number> = new Set([0x80, 0xef]);

/** A WIF private key: version byte, 32-byte key, optional 0x01 (compressed), valid base58check checksum. */
function isWif(token: string): boolean {
  const first = token[0];
  if (token.length === 51 ? first !== '5' && first !== '9' : first !== 'K' && first !== 'L' && first !== 'c') return false;
  const payload = bs58check.decodeUnsafe(token);
  if (payload === undefined || !WIF_VERSIONS.has(payload[0] as number)) return false;
  return payload.length === 33 || (payload.length === 34 && payload[33] === 0x01);
}

function holdsWif(s: string): boolean {
  for (const m of s.matchAll(B58_TOKEN)) {
    const at = m.index;
    const end = at + m[0].length;
    // A whole token: not part of a longer base58 run (the regex takes at most 52 characters of one).
    if (at > 0 && B58_CHAR.test(s[at - 1] as string)) continue;
    if (end < s.length && B58_CHAR.test(s[end] as string)) continue;
    if (isWif(m[0])) return true;
  }
  return false;
}
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
  if (holdsWif(s)) throw refuse(path, 'the value looks like a WIF private key');
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

/**
 * True when a client's value would be refused in an audit record. Services check the fields a request
 * puts in the audit log (its requestId) up front, so one request is refused with INVALID_ARGUMENT instead
 * of its whole group commit failing for every client in it.
 */
export function looksSecret(value: string): boolean {
  try {
    screenString(value, 'value');
    return false;
  } catch {
    return true;
  }
}
