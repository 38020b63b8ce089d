/**
 * PSBT files as they travel between the daemon, the operators and the offline signer: BIP174 §File
 * format (raw bytes starting with the magic `psbt\xff`, extension .psbt) or its base64 text (what
 * Bitcoin Core, Electrum and Sparrow also read and write). Decoding is strict: bitcoinjs-lib (bip174)
 * parses and checks the key-value maps, and every error names what was wrong.
 */
import { Psbt } from 'bitcoinjs-lib';
import { CustodyError } from '../errors.js';

/** BIP174 §Specification: the magic bytes 0x70 0x73 0x62 0x74 ("psbt") followed by the separator 0xff. */
export const PSBT_MAGIC = Uint8Array.of(0x70, 0x73, 0x62, 0x74, 0xff);

/** 4 MB: no standard PSBT of a sweep comes near this; a bigger file is refused before parsing. */
export const MAX_PSBT_BYTES = 4_000_000;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function startsWithMagic(bytes: Uint8Array): boolean {
  return bytes.length >= PSBT_MAGIC.length && PSBT_MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * The PSBT in `content` (a file's bytes: binary or base64 text). `where` names the file in errors.
 * Throws PSBT_INVALID naming the rule broken.
 */
export function decodePsbt(content: Uint8Array, where: string): Psbt {
  if (content.length > MAX_PSBT_BYTES) throw new CustodyError('PSBT_INVALID', `${where}: ${content.length} bytes is more than the ${MAX_PSBT_BYTES}-byte limit for a PSBT`);
  let bytes: Uint8Array;
  if (startsWithMagic(content)) {
    bytes = content;
  } else {
    const text = Buffer.from(content).toString('latin1').trim();
    if (text.length === 0) throw new CustodyError('PSBT_INVALID', `${where}: the file is empty`);
    if (!BASE64.test(text) || text.length % 4 !== 0) {
      throw new CustodyError('PSBT_INVALID', `${where}: neither a binary PSBT (it does not start with the magic bytes 70736274ff) nor base64 text`);
    }
    bytes = Buffer.from(text, 'base64');
    if (!startsWithMagic(bytes)) throw new CustodyError('PSBT_INVALID', `${where}: the base64 text does not decode to a PSBT (no magic bytes 70736274ff)`);
  }
  try {
    return Psbt.fromBuffer(Buffer.from(bytes));
  } catch (err) {
    throw new CustodyError('PSBT_INVALID', `${where}: not a valid PSBT (BIP174): ${(err as Error).message}`);
  }
}

/** The binary file form (BIP174 §File format). */
export function encodePsbt(psbt: Psbt): Uint8Array {
  return psbt.toBuffer();
}
