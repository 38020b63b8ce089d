/**
 * Hot-wallet transactions: every input is a P2WPKH coin of the hot BIP84 account, so sizes are known
 * exactly (signatures sized at 72 bytes, DESIGN §11) and signing is a raw bitcoinjs Transaction with
 * tiny-secp256k1, not a Psbt (which is ~75 % validation overhead on this path).
 * Pure: keys and coins come in, a signed transaction comes out.
 */
import { crypto as bcrypto, script as bscript, Transaction } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { CustodyError } from '../errors.js';
import type { BIP32Interface } from './keys.js';
import { outputVbytes } from './destination.js';

export interface HotCoin {
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
  readonly chain: 0 | 1;
  readonly index: number;
}

export interface TxOutputSpec {
  readonly script: Uint8Array;
  readonly value: bigint;
}

/** BIP141: 10.5 vbytes of version, counts, locktime and segwit marker; 68 per P2WPKH input with a 72-byte signature. */
const TX_OVERHEAD_VBYTES = 11;
const P2WPKH_INPUT_VBYTES = 68;

export function estimateVbytes(inputs: number, outputs: readonly Uint8Array[]): number {
  return TX_OVERHEAD_VBYTES + inputs * P2WPKH_INPUT_VBYTES + outputs.reduce((a, s) => a + outputVbytes(s), 0);
}

/**
 * Opt-in RBF (BIP125): sequence below 0xfffffffe, so the transaction can be replaced where the node allows
 * it; the same transaction is re-broadcast otherwise (CPFP bumps it).
 */
export const RBF_SEQUENCE = 0xfffffffd;

/**
 * BIP143: the scriptCode of a P2WPKH input is OP_DUP OP_HASH160 <20-byte key hash> OP_EQUALVERIFY
 * OP_CHECKSIG. Built by hand: bitcoinjs' payments.p2pkh validates far more than this needs, per input.
 */
export function p2wpkhScriptCode(pubkey: Uint8Array): Uint8Array {
  const out = new Uint8Array(25);
  out.set([0x76, 0xa9, 0x14]);
  out.set(bcrypto.hash160(pubkey), 3);
  out.set([0x88, 0xac], 23);
  return out;
}

/**
 * Signs a transaction spending hot coins. `account` is the hot BIP84 account node (m/84h/coin/0h);
 * `chains`, its chain nodes 0 and 1 when the caller keeps them (one derivation per input instead of two).
 */
export function signHotTransaction(account: BIP32Interface, coins: readonly HotCoin[], outputs: readonly TxOutputSpec[], chains?: readonly [BIP32Interface, BIP32Interface]): Transaction {
  if (coins.length === 0) throw new CustodyError('INTERNAL', 'a transaction needs at least one input');
  const tx = new Transaction();
  tx.version = 2;
  for (const c of coins) tx.addInput(Buffer.from(c.txid, 'hex').reverse(), c.vout, RBF_SEQUENCE);
  for (const o of outputs) tx.addOutput(o.script, o.value);
  coins.forEach((c, i) => {
    const child = (chains?.[c.chain] ?? account.derive(c.chain)).derive(c.index);
    const privateKey = child.privateKey;
    if (privateKey === undefined) throw new CustodyError('WALLET_LOCKED', 'the hot account has no private key');
    const pubkey = child.publicKey;
    const scriptCode = p2wpkhScriptCode(pubkey);
    const hash = tx.hashForWitnessV0(i, scriptCode, c.value, Transaction.SIGHASH_ALL);
    const signature = bscript.signature.encode(ecc.sign(hash, privateKey), Transaction.SIGHASH_ALL);
    tx.setWitness(i, [signature, pubkey]);
  });
  return tx;
}

/**
 * Checks the transaction spends exactly these coins, in order, and that every input's signature is valid
 * for its coin's value AND made by the key of its coin (derived from `accountPublic`, the hot account
 * xpub, when given; otherwise the key must at least hash to the coin's P2WPKH program when `scripts` are
 * given). A guard before broadcast and for replacements.
 */
export function verifyHotTransaction(tx: Transaction, coins: readonly HotCoin[], accountPublic?: BIP32Interface): boolean {
  if (coins.length === 0 || coins.length !== tx.ins.length) return false;
  return coins.every((c, i) => {
    const input = tx.ins[i];
    if (input === undefined || Buffer.from(input.hash).reverse().toString('hex') !== c.txid || input.index !== c.vout) return false;
    const [sig, pubkey] = input.witness;
    if (sig === undefined || pubkey === undefined) return false;
    if (accountPublic !== undefined && Buffer.compare(Buffer.from(accountPublic.derive(c.chain).derive(c.index).publicKey), Buffer.from(pubkey)) !== 0) return false;
    const decoded = bscript.signature.decode(sig);
    const scriptCode = p2wpkhScriptCode(pubkey);
    return ecc.verify(tx.hashForWitnessV0(i, scriptCode, c.value, decoded.hashType), pubkey, decoded.signature);
  });
}

/** BIP125 rule 4's default rate: Bitcoin Core's `-incrementalrelayfee` of 1 sat/vB (newer releases default lower, so 1 is safe). */
export const INCREMENTAL_RELAY_SAT_PER_VB = 1;
/** Smallest change kept: P2WPKH dust (Bitcoin Core GetDustThreshold at 3 sat/vB), as service/payouts.ts uses. */
const P2WPKH_DUST = 294n;

export interface ReplaceByFeeOptions {
  /** Rule 4's rate in sat/vB; default INCREMENTAL_RELAY_SAT_PER_VB. */
  readonly incrementalRelayFeeRate?: number;
  /** Fees of the original's unconfirmed descendants (e.g. a CPFP child of its change) that the replacement evicts too. */
  readonly evictedDescendantFeeSats?: bigint;
  /** Refuse a replacement paying more than this in total. */
  readonly maxFeeSats?: bigint;
}

export interface Replacement {
  readonly tx: Transaction;
  readonly feeSats: bigint;
  readonly originalFeeSats: bigint;
  /** Size the fee was computed for: the estimate (72-byte signatures), never below the real size. */
  readonly vbytes: number;
  readonly change: { readonly vout: number; readonly valueSats: bigint };
}

/**
 * A BIP125 replacement of a hot transaction that pays more fee: the same coins in the same order (so it
 * conflicts with the original on every input and pays no one new), every payment output byte-identical,
 * and the extra fee taken out of the change output only. Refused (INVALID_ARGUMENT) when there is no
 * change, or the change would fall below P2WPKH dust. Pure: keys, coins and the original come in.
 *
 * The fee is the largest of:
 * - what `newFeeRate` asks for the replacement's size;
 * - BIP125 rule 3: an absolute fee strictly higher than the original's (plus any descendants it evicts);
 * - BIP125 rule 4: that plus the replacement's own bandwidth at the incremental relay rate. Rule 4 names
 *   the replacement's size; we use the larger of it and the original's real vsize (they differ only by
 *   signature lengths), so either reading of the rule holds.
 * Rule 1 (the original signals) is checked; rule 2 (no new unconfirmed inputs) holds because the inputs
 * are the original's; every input of the replacement signals again (RBF_SEQUENCE), so it can be bumped too.
 */
export function replaceByFee(
  account: BIP32Interface,
  coins: readonly HotCoin[],
  original: Transaction,
  changeVout: number | null,
  newFeeRate: number,
  opts: ReplaceByFeeOptions = {},
): Replacement {
  const incremental = opts.incrementalRelayFeeRate ?? INCREMENTAL_RELAY_SAT_PER_VB;
  if (!Number.isFinite(newFeeRate) || newFeeRate <= 0) throw new CustodyError('INVALID_ARGUMENT', `newFeeRate: ${newFeeRate} is not a positive fee rate in sat/vB`, { field: 'newFeeRate' });
  if (!Number.isFinite(incremental) || incremental < 0) throw new CustodyError('INVALID_ARGUMENT', `incrementalRelayFeeRate: ${incremental} is not a fee rate in sat/vB`, { field: 'incrementalRelayFeeRate' });
  if (changeVout === null) {
    throw new CustodyError('INVALID_ARGUMENT', `transaction ${original.getId()} has no change output to take a higher fee from; it cannot be replaced by fee (bump it by CPFP or wait)`, { field: 'changeVout' });
  }
  const changeOut = original.outs[changeVout];
  if (!Number.isInteger(changeVout) || changeOut === undefined) {
    throw new CustodyError('INVALID_ARGUMENT', `changeVout: ${changeVout} is not an output of ${original.getId()} (it has ${original.outs.length})`, { field: 'changeVout' });
  }
  const cs = changeOut.script;
  if (!(cs.length === 22 && cs[0] === 0x00 && cs[1] === 0x14)) throw new CustodyError('INVALID_ARGUMENT', `changeVout: output ${changeVout} is not P2WPKH hot change`, { field: 'changeVout' });
  // Same coins, same order: the replacement spends exactly the original's outpoints.
  if (coins.length !== original.ins.length || coins.length === 0) {
    throw new CustodyError('INVALID_ARGUMENT', `coins: ${coins.length} given for a transaction with ${original.ins.length} inputs`, { field: 'coins' });
  }
  coins.forEach((c, i) => {
    const input = original.ins[i];
    if (input === undefined || Buffer.from(input.hash).reverse().toString('hex') !== c.txid || input.index !== c.vout) {
      throw new CustodyError('INVALID_ARGUMENT', `coins: coin ${i} (${c.txid}:${c.vout}) is not input ${i} of ${original.getId()}`, { field: 'coins' });
    }
  });
  // BIP125 rule 1: the original must signal (explicitly: some input's sequence below 0xfffffffe).
  if (!original.ins.some((i) => i.sequence < 0xfffffffe)) {
    throw new CustodyError('INVALID_ARGUMENT', `transaction ${original.getId()} does not signal replaceability (BIP125 rule 1)`, { field: 'original' });
  }
  // The coins' values are committed to by the original's BIP143 signatures, so this proves them (the fee
  // below depends on them); the pubkey check proves each input was signed by the key of that coin's path.
  coins.forEach((c, i) => {
    const pubkey = original.ins[i]?.witness[1];
    if (pubkey === undefined || Buffer.compare(Buffer.from(pubkey), Buffer.from(account.derive(c.chain).derive(c.index).publicKey)) !== 0) {
      throw new CustodyError('INVALID_ARGUMENT', `coins: input ${i} of ${original.getId()} is not signed by the hot key at ${c.chain}/${c.index}`, { field: 'coins' });
    }
  });
  if (!verifyHotTransaction(original, coins)) {
    throw new CustodyError('INVALID_ARGUMENT', `coins: the signatures of ${original.getId()} do not verify against these coins (wrong value)`, { field: 'coins' });
  }
  const totalIn = coins.reduce((a, c) => a + c.value, 0n);
  const totalOut = original.outs.reduce((a, o) => a + o.value, 0n);
  const originalFee = totalIn - totalOut;
  if (originalFee <= 0n) throw new CustodyError('INVALID_ARGUMENT', `coins: they hold ${totalIn} sats but ${original.getId()} pays out ${totalOut}`, { field: 'coins' });

  const vbytes = estimateVbytes(coins.length, original.outs.map((o) => o.script));
  const replaced = originalFee + (opts.evictedDescendantFeeSats ?? 0n);
  const atRate = BigInt(Math.ceil(vbytes * newFeeRate));
  const rule4 = replaced + BigInt(Math.ceil(Math.max(vbytes, original.virtualSize()) * incremental));
  const rule3 = replaced + 1n;
  const fee = [atRate, rule4, rule3].reduce((a, b) => (b > a ? b : a));
  const delta = fee - originalFee;
  const changeValue = changeOut.value - delta;
  if (changeValue < P2WPKH_DUST) {
    throw new CustodyError(
      'INVALID_ARGUMENT',
      `change output ${changeVout} of ${original.getId()} holds ${changeOut.value} sats; a fee of ${fee} sats (${delta} more) would leave ${changeValue}, below the ${P2WPKH_DUST}-sat dust limit`,
      { field: 'newFeeRate', changeSats: Number(changeOut.value), feeSats: Number(fee) },
    );
  }
  if (opts.maxFeeSats !== undefined && fee > opts.maxFeeSats) {
    throw new CustodyError('INVALID_ARGUMENT', `newFeeRate: the replacement would pay ${fee} sats, above the ${opts.maxFeeSats}-sat fee cap`, { field: 'newFeeRate', feeSats: Number(fee), maxFeeSats: Number(opts.maxFeeSats) });
  }
  const outputs = original.outs.map((o, i) => ({ script: o.script, value: i === changeVout ? changeValue : o.value }));
  const tx = signHotTransaction(account, coins, outputs);
  return { tx, feeSats: fee, originalFeeSats: originalFee, vbytes, change: { vout: changeVout, valueSats: changeValue } };
}
