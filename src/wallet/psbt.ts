/**
 * Cold sweeps as BIP174 PSBTs: what the daemon proposes (every input with `witnessUtxo`, the full previous
 * transaction as `nonWitnessUtxo`, a `bip32Derivation` per cosigner key and the `witnessScript` of a
 * multisig; outputs with their derivations; the global xpubs), and what it accepts back: signatures
 * checked one by one against the proposal's own sighashes, so nothing else in a returned file is trusted.
 * Pure: the caller brings coins, previous transactions and derivations.
 */
import { Psbt, script as bscript, Transaction } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { CustodyError } from '../errors.js';
import { base58CheckDecode } from './base58check.js';
import type { ColdDescriptor } from './descriptor.js';
import type { DerivedOutput, KeyDerivation } from './derive.js';
import { outputVbytes } from './destination.js';
import { p2wpkhScriptCode, RBF_SEQUENCE } from './hot-tx.js';

export interface SweepInput {
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
  /** The whole previous transaction (BIP174 PSBT_IN_NON_WITNESS_UTXO): lets a signer prove the amount. */
  readonly prevTx: Uint8Array;
  /** The cold output it spends, derived from the descriptor. */
  readonly out: DerivedOutput;
}

export interface SweepOutput {
  readonly value: bigint;
  /** Derived from the cold descriptor (change) or the hot account (refill): scripts and key origins. */
  readonly out: DerivedOutput;
}

export interface GlobalKey {
  readonly fingerprint: string;
  /** Account path below the master key, `h` for hardened (`48h/1h/0h/2h`). */
  readonly originPath: string;
  readonly xpub: string;
}

/** BIP174 writes hardened steps with an apostrophe (bip174 parses only that form). */
export function psbtPath(path: string): string {
  return path.replace(/h/g, "'");
}

/** `m/84'/1'/0'/0/3` or `m/84h/…` → [0x80000054, …, 0, 3]. */
export function pathSteps(path: string): number[] {
  const parts = path.split('/');
  if (parts[0] !== 'm') throw new CustodyError('PSBT_INVALID', `derivation path ${path}: does not start at m`);
  return parts.slice(1).map((p) => {
    const hard = p.endsWith("'") || p.endsWith('h');
    const n = Number(hard ? p.slice(0, -1) : p);
    if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new CustodyError('PSBT_INVALID', `derivation path ${path}: step "${p}" is not an index`);
    return hard ? n + 0x80000000 : n;
  });
}

const bip32Derivation = (keys: readonly KeyDerivation[]): Array<{ masterFingerprint: Uint8Array; pubkey: Uint8Array; path: string }> =>
  keys.map((k) => ({ masterFingerprint: Buffer.from(k.fingerprint, 'hex'), pubkey: k.pubkey, path: psbtPath(k.path) }));

/** The unsigned proposal. Input order is the caller's; outputs keep their given order. */
export function buildSweepPsbt(inputs: readonly SweepInput[], outputs: readonly SweepOutput[], globalKeys: readonly GlobalKey[]): Psbt {
  if (inputs.length === 0) throw new CustodyError('INTERNAL', 'a sweep needs at least one input');
  const psbt = new Psbt();
  psbt.setVersion(2);
  psbt.setLocktime(0);
  for (const i of inputs) {
    psbt.addInput({
      hash: i.txid,
      index: i.vout,
      sequence: RBF_SEQUENCE,
      witnessUtxo: { script: i.out.script, value: i.value },
      nonWitnessUtxo: Buffer.from(i.prevTx),
      bip32Derivation: bip32Derivation(i.out.keys),
      ...(i.out.witnessScript === undefined ? {} : { witnessScript: i.out.witnessScript }),
    });
  }
  for (const o of outputs) {
    psbt.addOutput({
      script: o.out.script,
      value: o.value,
      bip32Derivation: bip32Derivation(o.out.keys),
      ...(o.out.witnessScript === undefined ? {} : { witnessScript: o.out.witnessScript }),
    });
  }
  const xpubs = globalKeys.map((k) => {
    const raw = base58CheckDecode(k.xpub);
    if (raw === undefined || raw.length !== 78) throw new CustodyError('INTERNAL', `global xpub of ${k.fingerprint}: not a 78-byte extended key`);
    return { extendedPubkey: raw, masterFingerprint: Buffer.from(k.fingerprint, 'hex'), path: psbtPath(`m/${k.originPath}`) };
  });
  if (xpubs.length > 0) psbt.updateGlobal({ globalXpub: xpubs });
  return psbt;
}

/** The transaction a PSBT would become, without signatures: its txid names a sweep (segwit: final txid too). */
export function unsignedTx(psbt: Psbt): Transaction {
  return Transaction.fromBuffer(Buffer.from(psbt.data.globalMap.unsignedTx.toBuffer()));
}

// --- sizes ------------------------------------------------------------------------------------

const varintLength = (n: number): number => (n < 0xfd ? 1 : n <= 0xffff ? 3 : 5);

/**
 * vbytes of one input spending the descriptor (BIP141 weight / 4): 41 bytes outside the witness; the
 * witness holds one 72-byte signature per required key (DESIGN §11: not low-R), and for a multisig the
 * empty element CHECKMULTISIG consumes and the witness script.
 */
export function coldInputVbytes(desc: ColdDescriptor): number {
  if (desc.kind === 'wpkh') return 68;
  const scriptLength = 3 + 34 * desc.keys.length;
  const witness = 1 + 1 + desc.threshold * 73 + varintLength(scriptLength) + scriptLength;
  return 41 + Math.ceil(witness / 4);
}

/** Version, counts, locktime, and the segwit marker and flag (10.5 vbytes, rounded up). */
const TX_OVERHEAD_VBYTES = 11;

export function sweepVbytes(desc: ColdDescriptor, inputs: number, outputScripts: readonly Uint8Array[]): number {
  return TX_OVERHEAD_VBYTES + inputs * coldInputVbytes(desc) + outputScripts.reduce((a, s) => a + outputVbytes(s), 0);
}

// --- accepting signatures back --------------------------------------------------------------

/** What one input of the proposal needs: the keys that may sign it and how many signatures. */
export interface InputSigners {
  readonly keys: readonly KeyDerivation[];
  readonly required: number;
  /** BIP143 scriptCode: the witness script of a multisig, the P2PKH form of the key for wpkh. */
  readonly scriptCode: Uint8Array;
  readonly value: bigint;
}

export function inputSigners(desc: ColdDescriptor, input: SweepInput | { readonly out: DerivedOutput; readonly value: bigint }): InputSigners {
  const out = input.out;
  if (desc.kind === 'wpkh') return { keys: out.keys, required: 1, scriptCode: p2wpkhScriptCode((out.keys[0] as KeyDerivation).pubkey), value: input.value };
  if (out.witnessScript === undefined) throw new CustodyError('INTERNAL', 'a multisig input without its witness script');
  return { keys: out.keys, required: desc.threshold, scriptCode: out.witnessScript, value: input.value };
}

export interface VerifiedSignature {
  readonly input: number;
  readonly pubkey: Uint8Array;
  /** DER signature with its sighash byte, as it goes into the witness. */
  readonly signature: Uint8Array;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/**
 * The signatures a returned PSBT carries for input `index` (partial signatures, or the witness of a
 * signer that already finalized), each verified against the proposal's sighash (SIGHASH_ALL only) and
 * a key the proposal expects. Anything else in the returned input is ignored: the proposal is the truth.
 */
export function signaturesOf(returned: Psbt, index: number, tx: Transaction, signers: InputSigners, where: string): VerifiedSignature[] {
  const data = returned.data.inputs[index];
  if (data === undefined) throw new CustodyError('SWEEP_MISMATCH', `${where}: input ${index} is missing`);
  const candidates: Array<{ pubkey?: Uint8Array; signature: Uint8Array }> = (data.partialSig ?? []).map((p) => ({ pubkey: p.pubkey, signature: p.signature }));
  if (data.finalScriptWitness !== undefined) {
    for (const item of witnessItems(data.finalScriptWitness)) if (item.length >= 9 && item.length <= 73 && item[0] === 0x30) candidates.push({ signature: item });
  }
  const hash = tx.hashForWitnessV0(index, signers.scriptCode, signers.value, Transaction.SIGHASH_ALL);
  const found: VerifiedSignature[] = [];
  for (const c of candidates) {
    let decoded: { signature: Uint8Array; hashType: number };
    try {
      decoded = bscript.signature.decode(c.signature);
    } catch {
      throw new CustodyError('SWEEP_SIGNATURES', `${where}: input ${index}: a signature is not DER-encoded`, { input: index });
    }
    if (decoded.hashType !== Transaction.SIGHASH_ALL) {
      throw new CustodyError('SWEEP_SIGNATURES', `${where}: input ${index}: signature with sighash type ${decoded.hashType}; only SIGHASH_ALL (1) is accepted`, { input: index, sighashType: decoded.hashType });
    }
    const keys = c.pubkey === undefined ? signers.keys : signers.keys.filter((k) => hex(k.pubkey) === hex(c.pubkey as Uint8Array));
    if (keys.length === 0) throw new CustodyError('SWEEP_SIGNATURES', `${where}: input ${index}: a signature by key ${hex(c.pubkey as Uint8Array)}, which is not a key of this input`, { input: index });
    // strict: a high-S signature is valid by consensus but not relayed (BIP146 LOW_S policy): refuse it here,
    // not after the sweep is recorded and then never leaves the node.
    const key = keys.find((k) => ecc.verify(hash, k.pubkey, decoded.signature, true));
    if (key === undefined) {
      if (c.pubkey === undefined) continue; // a witness item that only looked like a signature
      throw new CustodyError('SWEEP_SIGNATURES', `${where}: input ${index}: the signature by ${keyName(keys[0] as KeyDerivation)} does not verify against the proposed transaction`, { input: index });
    }
    if (!found.some((f) => hex(f.pubkey) === hex(key.pubkey))) found.push({ input: index, pubkey: key.pubkey, signature: c.signature });
  }
  return found;
}

export const keyName = (k: KeyDerivation): string => `[${k.fingerprint}] ${psbtPath(k.path)}`;

/** The items of a serialized witness stack (BIP141): a count, then each item with its length. */
function witnessItems(witness: Uint8Array): Uint8Array[] {
  const items: Uint8Array[] = [];
  let pos = 0;
  const readVarint = (): number => {
    const first = witness[pos++];
    if (first === undefined) throw new CustodyError('PSBT_INVALID', 'finalScriptWitness: truncated');
    if (first < 0xfd) return first;
    const size = first === 0xfd ? 2 : first === 0xfe ? 4 : 8;
    let n = 0;
    for (let i = 0; i < size; i++) n += (witness[pos + i] ?? 0) * 2 ** (8 * i);
    pos += size;
    return n;
  };
  const count = readVarint();
  for (let i = 0; i < count; i++) {
    const len = readVarint();
    if (pos + len > witness.length) throw new CustodyError('PSBT_INVALID', 'finalScriptWitness: an item runs past the end');
    items.push(witness.subarray(pos, pos + len));
    pos += len;
  }
  return items;
}

/**
 * The final transaction: the proposal with `required` verified signatures per input (the first ones in
 * descriptor key order), finalized by bitcoinjs-lib, which orders a multisig's signatures by the witness
 * script's keys as CHECKMULTISIG needs.
 */
export function finalizeSweep(proposal: Psbt, signatures: readonly (readonly VerifiedSignature[])[], signers: readonly InputSigners[]): Transaction {
  const psbt = proposal.clone();
  signers.forEach((s, i) => {
    const sigs = signatures[i] ?? [];
    const order = (pk: Uint8Array): number => s.keys.findIndex((k) => hex(k.pubkey) === hex(pk));
    const chosen = [...sigs].sort((a, b) => order(a.pubkey) - order(b.pubkey)).slice(0, s.required);
    psbt.updateInput(i, { partialSig: chosen.map((c) => ({ pubkey: c.pubkey, signature: c.signature })) });
  });
  psbt.finalizeAllInputs();
  return psbt.extractTransaction(true);
}
