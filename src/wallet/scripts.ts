/**
 * Output scripts and addresses built byte by byte: what bitcoinjs `payments.p2wpkh/p2wsh/p2ms` produce,
 * without their validation objects, since these run once per issued address (tests cross-check them).
 */
import { address as baddress, crypto as bcrypto } from 'bitcoinjs-lib';

const OP_0 = 0x00;
const OP_1 = 0x51;
const OP_CHECKMULTISIG = 0xae;

/** BIP141 §P2WPKH: `OP_0 <20-byte HASH160(pubkey)>`. */
export function p2wpkhScript(pubkey: Uint8Array): Uint8Array {
  return witnessV0Script(bcrypto.hash160(pubkey));
}

/** BIP141 §P2WSH: `OP_0 <32-byte SHA256(witnessScript)>`. */
export function p2wshScript(witnessScript: Uint8Array): Uint8Array {
  return witnessV0Script(bcrypto.sha256(witnessScript));
}

export function witnessV0Script(program: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + program.length);
  out[0] = OP_0;
  out[1] = program.length;
  out.set(program, 2);
  return out;
}

/** BIP173 bech32 address of a version-0 witness program. */
export function segwitV0Address(program: Uint8Array, hrp: string): string {
  return baddress.toBech32(program, 0, hrp);
}

/** The output script of a bech32 segwit v0 address (the inverse of segwitV0Address; no network check). */
export function segwitV0ScriptOf(address: string): Uint8Array {
  const d = baddress.fromBech32(address);
  if (d.version !== 0) throw new RangeError(`${address}: not a segwit v0 address`);
  return witnessV0Script(d.data);
}

/** Lexicographic byte order of compressed public keys (BIP67), as sortedmulti() requires (BIP383). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** A small number as a script push: OP_1..OP_16, else a minimal one-byte CScriptNum (BIP383 allows k > 16). */
function pushSmallInt(n: number): number[] {
  if (n >= 1 && n <= 16) return [OP_1 + n - 1];
  if (n > 16 && n < 128) return [0x01, n];
  throw new RangeError(`multisig count ${n} out of range`);
}

/** `OP_M <pubkey>… OP_N OP_CHECKMULTISIG` with the keys sorted (BIP67), the sortedmulti() script of BIP383. */
export function sortedMultisigScript(threshold: number, pubkeys: readonly Uint8Array[]): Uint8Array {
  const sorted = [...pubkeys].sort(compareBytes);
  const bytes: number[] = pushSmallInt(threshold);
  for (const pk of sorted) {
    bytes.push(pk.length);
    for (const b of pk) bytes.push(b);
  }
  bytes.push(...pushSmallInt(sorted.length), OP_CHECKMULTISIG);
  return Uint8Array.from(bytes);
}
