/**
 * Base58Check (the encoding of BIP32 extended keys, BIP32 §Serialization format), small and local so the
 * parser can read and rewrite version bytes (SLIP-132) without depending on a transitive package.
 */
import { crypto as bcrypto } from 'bitcoinjs-lib';

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const INDEX = new Map<string, number>([...ALPHABET].map((c, i) => [c, i]));

export function isBase58(text: string): boolean {
  for (const c of text) if (!INDEX.has(c)) return false;
  return true;
}

/** Payload of a Base58Check string, or undefined when the characters or the 4-byte checksum are wrong. */
export function base58CheckDecode(text: string): Uint8Array | undefined {
  if (text.length === 0 || !isBase58(text)) return undefined;
  const bytes: number[] = [];
  for (const c of text) {
    let carry = INDEX.get(c) as number;
    for (let i = 0; i < bytes.length; i++) {
      carry += (bytes[i] as number) * 58;
      bytes[i] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  for (const c of text) {
    if (c !== '1') break;
    bytes.push(0);
  }
  const raw = Uint8Array.from(bytes.reverse());
  if (raw.length < 4) return undefined;
  const payload = raw.subarray(0, raw.length - 4);
  const check = bcrypto.hash256(payload);
  for (let i = 0; i < 4; i++) if (raw[payload.length + i] !== check[i]) return undefined;
  return payload;
}

export function base58CheckEncode(payload: Uint8Array): string {
  const check = bcrypto.hash256(payload).subarray(0, 4);
  const raw = new Uint8Array(payload.length + 4);
  raw.set(payload);
  raw.set(check, payload.length);
  const digits: number[] = [];
  for (const byte of raw) {
    let carry = byte;
    for (let i = 0; i < digits.length; i++) {
      carry += (digits[i] as number) << 8;
      digits[i] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = (carry / 58) | 0;
    }
  }
  let out = '';
  for (const byte of raw) {
    if (byte !== 0) break;
    out += '1';
  }
  for (let i = digits.length - 1; i >= 0; i--) out += ALPHABET[digits[i] as number];
  return out;
}
