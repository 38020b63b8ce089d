/**
 * Walks a serialized block (BIP144 segwit serialization) as bytes: it reads every output script and
 * every spent outpoint, asks the caller's watch sets about them, and hashes a transaction (its txid,
 * double SHA-256 of the non-witness serialization) only when it touches us. No objects are built for
 * the thousands of transactions that do not (DESIGN §5: block parsing is on the hot path).
 */
import { createHash } from 'node:crypto';
import { CustodyError } from '../errors.js';

/**
 * Output scripts the daemon watches (cold deposit and change, hot): the script is bytes[start, end) of
 * the block (no copy is made for the thousands that do not match). Returns a caller-chosen tag, or undefined.
 */
export interface ScriptWatch {
  lookup(bytes: Uint8Array, start: number, end: number): number | undefined;
}

/** Outpoints the daemon tracks (its UTXOs): the previous txid is bytes[at, at + 32), internal byte order. */
export interface OutpointWatch {
  has(bytes: Uint8Array, at: number, vout: number): boolean;
}

export interface WalkedOutput {
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
  readonly script: Uint8Array;
  readonly tag: number;
}

export interface WalkedSpend {
  readonly txid: string;
  readonly vin: number;
  readonly prevTxid: string;
  readonly prevVout: number;
}

export interface WalkedBlock {
  /** Block hash, display (reversed) hex, as RPC shows it. */
  readonly hash: string;
  readonly prevHash: string;
  readonly txCount: number;
  readonly outputs: WalkedOutput[];
  readonly spends: WalkedSpend[];
}

const NO_OUTPOINTS: OutpointWatch = { has: () => false };

function malformed(at: number, what: string): CustodyError {
  return new CustodyError('BLOCK_INVALID', `block: ${what} at byte ${at}`, { at });
}

function sha256d(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return createHash('sha256').update(h.digest()).digest();
}

/** Display hex (reversed), as txids and block hashes are shown by RPC. */
function displayHex(internal: Uint8Array): string {
  return Buffer.from(internal).reverse().toString('hex');
}

export function walkBlock(raw: Uint8Array, scripts: ScriptWatch, outpoints: OutpointWatch = NO_OUTPOINTS): WalkedBlock {
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const end = buf.length;
  let pos = 0;
  const need = (n: number, what: string): void => {
    if (pos + n > end) throw malformed(pos, `truncated ${what}`);
  };
  const varint = (what: string): number => {
    need(1, what);
    const first = buf[pos++] as number;
    if (first < 0xfd) return first;
    if (first === 0xfd) {
      need(2, what);
      const v = buf.readUInt16LE(pos);
      pos += 2;
      return v;
    }
    if (first === 0xfe) {
      need(4, what);
      const v = buf.readUInt32LE(pos);
      pos += 4;
      return v;
    }
    need(8, what);
    const v = buf.readBigUInt64LE(pos);
    pos += 8;
    if (v > BigInt(end)) throw malformed(pos - 9, `${what} count too large`);
    return Number(v);
  };

  need(80, 'header');
  const hash = displayHex(sha256d(buf.subarray(0, 80)));
  const prevHash = displayHex(buf.subarray(4, 36));
  pos = 80;
  const txCount = varint('transaction count');
  if (txCount === 0) throw malformed(80, 'a block without transactions');
  const outputs: WalkedOutput[] = [];
  const spends: WalkedSpend[] = [];
  const tracking = outpoints !== NO_OUTPOINTS;
  // Outputs matched earlier in this block: a later transaction of the same block may spend them, and
  // the caller's set cannot know them yet. Keyed by display txid; a 4-byte prefix set keeps the check cheap.
  const local = new Map<string, Set<number>>();
  const localPrefixes = new Set<number>();

  for (let t = 0; t < txCount; t++) {
    const txStart = pos;
    need(4, 'version');
    pos += 4;
    let segwit = false;
    if (pos + 1 < end && buf[pos] === 0x00 && buf[pos + 1] === 0x01) {
      segwit = true; // BIP144 marker and flag
      pos += 2;
    }
    const bodyStart = pos; // from the input count to the end of the outputs: part of the txid
    const nin = varint('input count');
    let spent: Array<{ vin: number; prev: Uint8Array; vout: number }> | null = null; // allocated on a first match only
    for (let i = 0; i < nin; i++) {
      need(36, 'outpoint');
      const vout = buf.readUInt32LE(pos + 32);
      if (tracking && (outpoints.has(buf, pos, vout) || (localPrefixes.size > 0 && spendsLocal(buf, pos, vout, local, localPrefixes)))) {
        spent ??= [];
        spent.push({ vin: i, prev: buf.subarray(pos, pos + 32), vout });
      }
      pos += 36;
      const len = pos < end && buf[pos]! < 0xfd ? buf[pos++]! : varint('scriptSig length');
      need(len + 4, 'scriptSig and sequence');
      pos += len + 4;
    }
    const nout = varint('output count');
    const matched: Array<{ vout: number; value: bigint; script: Uint8Array; tag: number }> = [];
    for (let o = 0; o < nout; o++) {
      need(8, 'output value');
      const valueAt = pos;
      pos += 8;
      const len = pos < end && buf[pos]! < 0xfd ? buf[pos++]! : varint('script length');
      need(len, 'output script');
      const tag = scripts.lookup(buf, pos, pos + len);
      if (tag !== undefined) matched.push({ vout: o, value: buf.readBigUInt64LE(valueAt), script: Uint8Array.from(buf.subarray(pos, pos + len)), tag });
      pos += len;
    }
    const bodyEnd = pos;
    if (segwit) {
      for (let i = 0; i < nin; i++) {
        const items = pos < end && buf[pos]! < 0xfd ? buf[pos++]! : varint('witness item count');
        for (let k = 0; k < items; k++) {
          const len = pos < end && buf[pos]! < 0xfd ? buf[pos++]! : varint('witness item length');
          if (pos + len > end) throw malformed(pos, 'truncated witness item');
          pos += len;
        }
      }
    }
    need(4, 'locktime');
    const lockAt = pos;
    pos += 4;
    if (matched.length === 0 && spent === null) continue;
    const txid = displayHex(
      segwit ? sha256d(buf.subarray(txStart, txStart + 4), buf.subarray(bodyStart, bodyEnd), buf.subarray(lockAt, lockAt + 4)) : sha256d(buf.subarray(txStart, pos)),
    );
    for (const m of matched) outputs.push({ txid, vout: m.vout, value: m.value, script: m.script, tag: m.tag });
    if (tracking && matched.length > 0) {
      local.set(txid, new Set(matched.map((m) => m.vout)));
      localPrefixes.add(Buffer.from(txid.slice(56, 64), 'hex').reverse().readUInt32LE(0) & 0x3fffffff);
    }
    for (const s of spent ?? []) spends.push({ txid, vin: s.vin, prevTxid: displayHex(s.prev), prevVout: s.vout });
  }
  if (pos !== end) throw malformed(pos, `${end - pos} bytes after the last transaction`);
  return { hash, prevHash, txCount, outputs, spends };
}

function spendsLocal(buf: Buffer, at: number, vout: number, local: ReadonlyMap<string, ReadonlySet<number>>, prefixes: ReadonlySet<number>): boolean {
  if (!prefixes.has(buf.readUInt32LE(at) & 0x3fffffff)) return false;
  return local.get(displayHex(buf.subarray(at, at + 32)))?.has(vout) ?? false;
}

export interface WalkedTransaction {
  readonly txid: string;
  readonly outputs: WalkedOutput[];
  readonly spends: WalkedSpend[];
}

const EMPTY_HEADER = new Uint8Array(81);
EMPTY_HEADER[80] = 1; // one transaction

function asBlock(raw: Uint8Array): Uint8Array {
  const framed = new Uint8Array(EMPTY_HEADER.length + raw.length);
  framed.set(EMPTY_HEADER);
  framed.set(raw, EMPTY_HEADER.length);
  return framed;
}

function walkOne(raw: Uint8Array, scripts: ScriptWatch, outpoints: OutpointWatch): WalkedBlock {
  try {
    return walkBlock(asBlock(raw), scripts, outpoints);
  } catch (err) {
    if (!(err instanceof CustodyError)) throw err;
    const at = typeof err.details?.['at'] === 'number' ? (err.details['at'] as number) - EMPTY_HEADER.length : 0;
    throw new CustodyError('TX_INVALID', err.message.replace(/^block: /, 'transaction: ').replace(/at byte \d+$/, `at byte ${at}`), { at });
  }
}

/**
 * Walks one serialized transaction (from the mempool) as a one-transaction block: the same code reads
 * it, so a transaction is matched identically before and after it is mined.
 */
export function walkTransaction(raw: Uint8Array, scripts: ScriptWatch, outpoints: OutpointWatch = NO_OUTPOINTS): WalkedTransaction {
  const walked = walkOne(raw, scripts, outpoints);
  const txid = walked.outputs[0]?.txid ?? walked.spends[0]?.txid ?? txidOf(raw);
  return { txid, outputs: walked.outputs, spends: walked.spends };
}

const EVERY_SCRIPT: ScriptWatch = { lookup: () => 0 };

/** The txid of a serialized transaction (witness stripped). */
export function txidOf(raw: Uint8Array): string {
  const first = walkOne(raw, EVERY_SCRIPT, NO_OUTPOINTS).outputs[0];
  if (first === undefined) throw new CustodyError('TX_INVALID', 'transaction: no outputs');
  return first.txid;
}
