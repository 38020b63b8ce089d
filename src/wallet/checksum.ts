/**
 * The output-descriptor checksum of BIP380 §Checksum: a BCH code over the descriptor's characters,
 * 8 symbols in the bech32 alphabet. Transcribed from the BIP's reference Python (descsum_*).
 */

const INPUT_CHARSET = '0123456789()[],\'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#"\\ ';
const CHECKSUM_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0xf5dee51989n, 0xa9fdca3312n, 0x1bab10e32dn, 0x3706b1677an, 0x644d626ffdn] as const;
const MASK35 = 0x7ffffffffn;

/** Position of the first character outside BIP380's character set, or -1. */
export function firstInvalidDescriptorChar(desc: string): number {
  for (let i = 0; i < desc.length; i++) if (!INPUT_CHARSET.includes(desc[i] as string)) return i;
  return -1;
}

export function isChecksumCharset(text: string): boolean {
  for (const c of text) if (!CHECKSUM_CHARSET.includes(c)) return false;
  return true;
}

function polymod(symbols: readonly number[]): bigint {
  let chk = 1n;
  for (const value of symbols) {
    const top = chk >> 35n;
    chk = ((chk & MASK35) << 5n) ^ BigInt(value);
    for (let i = 0; i < 5; i++) if ((top >> BigInt(i)) & 1n) chk ^= GENERATOR[i] as bigint;
  }
  return chk;
}

/** descsum_expand: each character's position in its group of 32, and every 3 characters their group numbers. */
function expand(desc: string): number[] {
  const symbols: number[] = [];
  const groups: number[] = [];
  for (const c of desc) {
    const v = INPUT_CHARSET.indexOf(c);
    if (v < 0) throw new RangeError(`character ${JSON.stringify(c)} is outside the BIP380 character set`);
    symbols.push(v & 31);
    groups.push(v >> 5);
    if (groups.length === 3) {
      symbols.push((groups[0] as number) * 9 + (groups[1] as number) * 3 + (groups[2] as number));
      groups.length = 0;
    }
  }
  if (groups.length === 1) symbols.push(groups[0] as number);
  else if (groups.length === 2) symbols.push((groups[0] as number) * 3 + (groups[1] as number));
  return symbols;
}

/** The 8-character checksum of a descriptor given without `#…` (descsum_create). Throws RangeError on a bad character. */
export function descriptorChecksum(desc: string): string {
  const mod = polymod([...expand(desc), 0, 0, 0, 0, 0, 0, 0, 0]) ^ 1n;
  let out = '';
  for (let i = 0; i < 8; i++) out += CHECKSUM_CHARSET[Number((mod >> BigInt(5 * (7 - i))) & 31n)];
  return out;
}

/** `desc#checksum`; a checksum already present is replaced. */
export function withChecksum(desc: string): string {
  const hash = desc.indexOf('#');
  const body = hash >= 0 ? desc.slice(0, hash) : desc;
  return `${body}#${descriptorChecksum(body)}`;
}

/** descsum_check on `SCRIPT#CHECKSUM`. */
export function checksumMatches(body: string, checksum: string): boolean {
  if (checksum.length !== 8 || !isChecksumCharset(checksum) || firstInvalidDescriptorChar(body) >= 0) return false;
  const symbols = [...expand(body), ...[...checksum].map((c) => CHECKSUM_CHARSET.indexOf(c))];
  return polymod(symbols) === 1n;
}
