/**
 * What the offline signer proves before it signs (DESIGN §6, issue 7). It trusts nothing in the PSBT
 * that it can check itself: every input must spend a script that derives from the pinned cold
 * descriptor at the path the PSBT claims, with an amount proven by the full previous transaction (the
 * segwit v0 fee attack); every output is the hot wallet (derived from the pinned hot xpub), the cold
 * wallet (derived from the descriptor), or UNKNOWN. Signers that believe a PSBT's own derivation claims
 * lose change to a lying coordinator; here a claim only says where to look, the derivation decides.
 * Pure: no I/O (the CLI reads files and the mnemonic, and prints).
 */
import { address as baddress, Psbt, Transaction } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { CustodyError } from '../errors.js';
import type { Network } from '../types.js';
import { keyOrigin, parseDescriptor, type ColdDescriptor, type ColdKey } from '../wallet/descriptor.js';
import { Deriver, type Chain, type DerivedOutput } from '../wallet/derive.js';
import { btcNetwork } from '../wallet/destination.js';
import { fingerprintHex, type BIP32Interface } from '../wallet/keys.js';
import { pathSteps, sweepVbytes, unsignedTx } from '../wallet/psbt.js';

/** What `custody-signer pin` fixed on this machine: nothing a PSBT says can change these. */
export interface SignerPins {
  readonly network: Network;
  readonly descriptor: ColdDescriptor;
  /** The hot wallet's account key with origin, `[fp/84h/1h/0h]tpub…`. */
  readonly hot: ColdKey;
  readonly maxFeeSats: bigint;
  readonly maxFeeRate: number;
}

export interface InputLine {
  readonly index: number;
  readonly outpoint: string;
  readonly amountSats: bigint | null;
  /** `0/5` below the descriptor's account keys, when verified. */
  readonly path: string | null;
  readonly chain: Chain | null;
  readonly addressIndex: number | null;
  readonly verified: boolean;
  readonly note: string;
}

export type OutputKind = 'hot' | 'cold-change' | 'cold-receive' | 'unknown';

export interface OutputLine {
  readonly index: number;
  readonly address: string;
  readonly amountSats: bigint;
  readonly kind: OutputKind;
  readonly note: string;
}

export interface Summary {
  readonly txid: string;
  readonly inputs: readonly InputLine[];
  readonly outputs: readonly OutputLine[];
  readonly inSats: bigint;
  readonly outSats: bigint;
  readonly feeSats: bigint;
  /** Estimated from the descriptor (72-byte signatures): what the signed transaction will weigh. */
  readonly vbytes: number;
  readonly feeRate: number;
  /** What leaves the cold wallet (to hot or unknown outputs); for a consolidation, all it moves. */
  readonly movedSats: bigint;
  readonly feeShare: number;
  readonly warnings: readonly string[];
  /** Why `sign` would refuse (empty when it would sign); unknown outputs are listed apart. */
  readonly refusals: readonly string[];
  readonly unknownOutputs: number;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && hex(a) === hex(b);

/** The hot wallet as a descriptor, so the same Deriver proves hot outputs. */
export function hotDeriver(hot: ColdKey, network: Network): Deriver {
  return new Deriver(parseDescriptor(`wpkh(${keyOrigin(hot)}/<0;1>/*)`, { network }), network);
}

interface Claim {
  readonly chain: Chain;
  readonly index: number;
}

/**
 * Where a bip32Derivation claims the script sits below one of `keys`: the key's origin path followed by
 * chain (0 or 1) and an unhardened index. Only a hint: the caller derives and compares scripts.
 */
function claims(derivations: ReadonlyArray<{ masterFingerprint: Uint8Array; path: string }> | undefined, keys: readonly ColdKey[]): Claim[] {
  const out: Claim[] = [];
  for (const d of derivations ?? []) {
    const fp = hex(d.masterFingerprint);
    let steps: number[];
    try {
      steps = pathSteps(d.path);
    } catch {
      continue;
    }
    for (const k of keys) {
      if (k.fingerprint !== fp) continue;
      const origin = pathSteps(`m${k.originPath === '' ? '' : `/${k.originPath}`}`);
      if (steps.length !== origin.length + 2 || !origin.every((s, i) => steps[i] === s)) continue;
      const chain = steps[origin.length] as number;
      const index = steps[origin.length + 1] as number;
      if ((chain === 0 || chain === 1) && index < 0x80000000 && !out.some((c) => c.chain === chain && c.index === index)) out.push({ chain, index });
    }
  }
  return out;
}

function matching(deriver: Deriver, script: Uint8Array, candidates: readonly Claim[]): DerivedOutput | undefined {
  for (const c of candidates) {
    const d = deriver.derive(c.chain, c.index);
    if (same(d.script, script)) return d;
  }
  return undefined;
}

function addressOf(script: Uint8Array, network: Network): string {
  try {
    return baddress.fromOutputScript(script, btcNetwork(network));
  } catch {
    return `script ${hex(script)}`;
  }
}

const btc = (sats: bigint): string => {
  const whole = sats / 100_000_000n;
  const frac = (sats % 100_000_000n).toString().padStart(8, '0');
  return `${whole}.${frac} BTC`;
};

export function summarize(psbt: Psbt, pins: SignerPins, opts: { allowUnknownOutputs?: boolean } = {}): Summary {
  const tx = unsignedTx(psbt);
  const cold = new Deriver(pins.descriptor, pins.network);
  const hot = hotDeriver(pins.hot, pins.network);
  const warnings: string[] = [];
  const refusals: string[] = [];
  const inputs: InputLine[] = tx.ins.map((txIn, index) => {
    const data = psbt.data.inputs[index];
    const prevTxid = hex(Buffer.from(txIn.hash).reverse());
    const outpoint = `${prevTxid}:${txIn.index}`;
    const fail = (note: string, amount: bigint | null = null): InputLine => {
      refusals.push(`input ${index} (${outpoint}): ${note}`);
      return { index, outpoint, amountSats: amount, path: null, chain: null, addressIndex: null, verified: false, note };
    };
    if (data === undefined || data.witnessUtxo === undefined) return fail('no witnessUtxo: not a segwit input of this wallet');
    const amount = data.witnessUtxo.value;
    if (data.sighashType !== undefined && data.sighashType !== Transaction.SIGHASH_ALL) {
      warnings.push(`input ${index} asks for sighash type ${data.sighashType}, not SIGHASH_ALL: such a signature would not commit to the whole transaction`);
      refusals.push(`input ${index}: sighash type ${data.sighashType} (only SIGHASH_ALL is signed)`);
    }
    if (data.nonWitnessUtxo === undefined) return fail('no previous transaction (nonWitnessUtxo): its amount cannot be proven', amount);
    const prev = Transaction.fromBuffer(Buffer.from(data.nonWitnessUtxo));
    const spent = prev.outs[txIn.index];
    if (prev.getId() !== prevTxid || spent === undefined) return fail('the previous transaction given is not the one this input spends', amount);
    if (spent.value !== amount || !same(spent.script, data.witnessUtxo.script)) return fail('witnessUtxo disagrees with the previous transaction (amount or script)', amount);
    const derived = matching(cold, data.witnessUtxo.script, claims(data.bip32Derivation, pins.descriptor.keys));
    if (derived === undefined) return fail('UNKNOWN: its script does not derive from your descriptor at the path the PSBT claims', amount);
    if (derived.witnessScript !== undefined && (data.witnessScript === undefined || !same(data.witnessScript, derived.witnessScript))) {
      return fail('its witnessScript is not the descriptor\'s multisig script', amount);
    }
    const path = `${derived.chain}/${derived.index}`;
    return { index, outpoint, amountSats: amount, path, chain: derived.chain, addressIndex: derived.index, verified: true, note: `cold, verified: derives from your descriptor at ${path}` };
  });
  const outputs: OutputLine[] = tx.outs.map((o, index) => {
    const data = psbt.data.outputs[index];
    const address = addressOf(o.script, pins.network);
    const h = matching(hot, o.script, claims(data?.bip32Derivation, [pins.hot]));
    if (h !== undefined) return { index, address, amountSats: o.value, kind: 'hot', note: `hot wallet, verified: derives from the pinned hot xpub at ${h.chain}/${h.index}` };
    const c = matching(cold, o.script, claims(data?.bip32Derivation, pins.descriptor.keys));
    if (c !== undefined) {
      return c.chain === 1
        ? { index, address, amountSats: o.value, kind: 'cold-change', note: `cold change, verified: derives from your descriptor at 1/${c.index}` }
        : { index, address, amountSats: o.value, kind: 'cold-receive', note: `cold receive address, verified: derives from your descriptor at 0/${c.index}` };
    }
    const claimed = (data?.bip32Derivation ?? []).length > 0;
    return { index, address, amountSats: o.value, kind: 'unknown', note: `UNKNOWN, not yours${claimed ? ' (it claims a key path, but the script does not derive from it)' : ''}` };
  });
  const inSats = inputs.reduce((a, i) => a + (i.amountSats ?? 0n), 0n);
  const outSats = outputs.reduce((a, o) => a + o.amountSats, 0n);
  const feeSats = inSats - outSats;
  const vbytes = sweepVbytes(pins.descriptor, tx.ins.length, tx.outs.map((o) => o.script));
  const feeRate = Number(feeSats) / vbytes;
  const leaving = outputs.filter((o) => o.kind === 'hot' || o.kind === 'unknown').reduce((a, o) => a + o.amountSats, 0n);
  const movedSats = leaving > 0n ? leaving : outSats;
  const feeShare = movedSats > 0n ? Number(feeSats) / Number(movedSats) : 0;
  const unknownOutputs = outputs.filter((o) => o.kind === 'unknown').length;
  if (unknownOutputs > 0) {
    warnings.push(`${unknownOutputs} output${unknownOutputs === 1 ? ' pays' : 's pay'} an address that is neither the hot wallet nor your cold wallet`);
    if (opts.allowUnknownOutputs !== true) refusals.push(`output${unknownOutputs === 1 ? '' : 's'} ${outputs.filter((o) => o.kind === 'unknown').map((o) => `${o.index} (${o.address})`).join(', ')}: UNKNOWN destination, not yours (pass --allow-unknown-outputs only if you meant to pay it)`);
  }
  if (feeSats < 0n) refusals.push(`the outputs (${btc(outSats)}) exceed the inputs (${btc(inSats)})`);
  if (feeSats > pins.maxFeeSats) {
    warnings.push(`fee ${feeSats} sats is above the cap of ${pins.maxFeeSats} sats`);
    refusals.push(`fee ${feeSats} sats is above the pinned cap of ${pins.maxFeeSats} sats`);
  }
  if (feeRate > pins.maxFeeRate) {
    warnings.push(`fee rate ${feeRate.toFixed(1)} sat/vB is above the cap of ${pins.maxFeeRate} sat/vB`);
    refusals.push(`fee rate ${feeRate.toFixed(1)} sat/vB is above the pinned cap of ${pins.maxFeeRate} sat/vB`);
  }
  if (feeShare > 0.01) warnings.push(`the fee is ${(feeShare * 100).toFixed(2)} % of the amount moved`);
  return { txid: tx.getId(), inputs, outputs, inSats, outSats, feeSats, vbytes, feeRate, movedSats, feeShare, warnings, refusals, unknownOutputs };
}

/** The summary as a custodian reads it: every amount in BTC and sats, every output said for what it is. */
export function formatSummary(s: Summary, pins: SignerPins): string {
  const lines: string[] = [];
  const sats = (v: bigint): string => `${btc(v)} (${v.toLocaleString('en-US')} sats)`;
  lines.push(`Transaction ${s.txid} on ${pins.network}`, `Cold wallet: ${pins.descriptor.kind === 'wpkh' ? 'single key' : `${pins.descriptor.threshold} of ${pins.descriptor.keys.length} multisig`} (descriptor checksum ${pins.descriptor.checksum})`, '');
  lines.push(`Inputs (${s.inputs.length}), spending ${sats(s.inSats)}:`);
  for (const i of s.inputs) lines.push(`  #${i.index}  ${i.amountSats === null ? '?' : sats(i.amountSats)}  ${i.outpoint}`, `       ${i.note}`);
  lines.push('', `Outputs (${s.outputs.length}):`);
  for (const o of s.outputs) lines.push(`  #${o.index}  ${sats(o.amountSats)}  ${o.address}`, `       ${o.note}`);
  lines.push('', `Fee: ${sats(s.feeSats)}, about ${s.feeRate.toFixed(1)} sat/vB over ~${s.vbytes} vB once signed`, `     ${(s.feeShare * 100).toFixed(3)} % of the ${sats(s.movedSats)} moved`);
  lines.push(`Caps pinned on this signer: fee at most ${pins.maxFeeSats.toLocaleString('en-US')} sats and ${pins.maxFeeRate} sat/vB`);
  if (s.warnings.length > 0) lines.push('', 'WARNINGS:', ...s.warnings.map((w) => `  ! ${w}`));
  if (s.refusals.length > 0) lines.push('', 'This signer will NOT sign it:', ...s.refusals.map((r) => `  x ${r}`));
  return lines.join('\n');
}

export interface SeedKeys {
  readonly fingerprint: string;
  /** The descriptor positions this seed holds, with their account nodes. */
  readonly accounts: ReadonlyArray<{ readonly account: BIP32Interface; readonly position: number }>;
}

/**
 * Which of the descriptor's keys this seed holds: its master fingerprint must be a key's fingerprint AND
 * the account key it derives at that key's origin path must be the descriptor's xpub (a fingerprint alone
 * is 32 bits and says nothing about a wrong BIP39 passphrase on another account).
 */
export function seedKeys(master: BIP32Interface, pins: SignerPins): SeedKeys {
  const fingerprint = fingerprintHex(master);
  const mine = pins.descriptor.keys.map((k, position) => ({ k, position })).filter(({ k }) => k.fingerprint === fingerprint);
  if (mine.length === 0) {
    throw new CustodyError('SIGNER_REFUSED', `this mnemonic's master fingerprint ${fingerprint} is not a key of the pinned descriptor (${pins.descriptor.keys.map((k) => k.fingerprint).join(', ')}); wrong words or passphrase?`);
  }
  const accounts = mine.map(({ k, position }) => {
    const account = master.derivePath(`m${k.originPath === '' ? '' : `/${k.originPath.replace(/h/g, "'")}`}`);
    if (account.neutered().toBase58() !== k.xpub) {
      throw new CustodyError('SIGNER_REFUSED', `the key this mnemonic derives at ${k.originPath} is not the descriptor's key with fingerprint ${fingerprint}: wrong passphrase, or another account?`);
    }
    return { account, position };
  });
  return { fingerprint, accounts };
}

/**
 * Signs every input with the keys this seed holds among the descriptor's, after checking each derived
 * key is the one the descriptor has at that input's path. Returns how many signatures were added.
 */
export function signSweep(psbt: Psbt, summary: Summary, pins: SignerPins, keys: SeedKeys): number {
  if (summary.refusals.length > 0) throw new CustodyError('SIGNER_REFUSED', `refusing to sign: ${summary.refusals.join('; ')}`);
  const cold = new Deriver(pins.descriptor, pins.network);
  let signed = 0;
  for (const input of summary.inputs) {
    if (input.chain === null || input.addressIndex === null) continue;
    const expected = cold.pubkeys(input.chain, input.addressIndex);
    for (const { account, position } of keys.accounts) {
      const child = account.derive(input.chain).derive(input.addressIndex);
      if (!same(child.publicKey, expected[position] as Uint8Array)) throw new CustodyError('INTERNAL', `input ${input.index}: derived key differs from the descriptor's`);
      psbt.signInput(input.index, { publicKey: child.publicKey, sign: (hash: Uint8Array) => child.sign(hash) }, [Transaction.SIGHASH_ALL]);
      if (!psbt.validateSignaturesOfInput(input.index, (pk, msghash, sig) => ecc.verify(msghash, pk, sig), child.publicKey)) {
        throw new CustodyError('INTERNAL', `input ${input.index}: the signature just made does not verify`);
      }
      signed++;
    }
  }
  return signed;
}
