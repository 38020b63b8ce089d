/**
 * Z85 (ZeroMQ RFC 32): the text form of CURVE keys. zeromq.js hands keys out as Z85 strings but has no
 * encoder/decoder, and the request authenticator needs the raw 32 bytes for X25519.
 * Strict both ways: encode takes a multiple of 4 bytes, decode a multiple of 5 characters from the
 * alphabet, and a group whose value overflows 32 bits is refused rather than wrapped.
 */
import { CustodyError } from '../errors.js';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

/** Character code → digit value, -1 for characters outside the alphabet. */
const DIGITS: Int16Array = (() => {
  const table = new Int16Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) table[ALPHABET.charCodeAt(i)] = i;
  return table;
})();

export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) {
    throw new CustodyError('INVALID_ARGUMENT', `z85: input is ${bytes.length} bytes; Z85 encodes a multiple of 4 bytes (RFC 32)`);
  }
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    // Big-endian 32-bit value; multiply instead of << so it stays unsigned.
    let value = ((bytes[i]! * 256 + bytes[i + 1]!) * 256 + bytes[i + 2]!) * 256 + bytes[i + 3]!;
    let group = '';
    for (let j = 0; j < 5; j++) {
      group = ALPHABET[value % 85]! + group;
      value = Math.floor(value / 85);
    }
    out += group;
  }
  return out;
}

export function z85Decode(text: string): Uint8Array {
  if (text.length % 5 !== 0) {
    throw new CustodyError('INVALID_ARGUMENT', `z85: input is ${text.length} characters; Z85 decodes a multiple of 5 characters (RFC 32)`);
  }
  const out = new Uint8Array((text.length / 5) * 4);
  for (let i = 0, o = 0; i < text.length; i += 5, o += 4) {
    let value = 0;
    for (let j = 0; j < 5; j++) {
      const code = text.charCodeAt(i + j);
      const digit = code < 128 ? DIGITS[code]! : -1;
      if (digit < 0) throw new CustodyError('INVALID_ARGUMENT', `z85: character ${i + j + 1} is not in the Z85 alphabet (RFC 32)`);
      value = value * 85 + digit;
    }
    if (value > 0xffffffff) throw new CustodyError('INVALID_ARGUMENT', `z85: the group at character ${i + 1} exceeds 32 bits`);
    out[o] = value >>> 24;
    out[o + 1] = (value >>> 16) & 0xff;
    out[o + 2] = (value >>> 8) & 0xff;
    out[o + 3] = value & 0xff;
  }
  return out;
}
