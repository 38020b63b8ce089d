/**
 * Hot-wallet transactions: every input is a P2WPKH coin of the hot BIP84 account, so sizes are known
 * exactly (signatures sized at 72 bytes, DESIGN §11) and signing is a raw bitcoinjs Transaction with
 * tiny-secp256k1, not a Psbt (which is ~75 % validation overhead on this path).
 * Pure: keys and coins come in, a signed transaction comes out.
 */
import { crypto as bcrypto, payments, script as bscript, Transaction } from 'bitcoinjs-lib';
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

/** Signs a transaction spending hot coins. `account` is the hot BIP84 account node (m/84h/coin/0h). */
export function signHotTransaction(account: BIP32Interface, coins: readonly HotCoin[], outputs: readonly TxOutputSpec[]): Transaction {
  if (coins.length === 0) throw new CustodyError('INTERNAL', 'a transaction needs at least one input');
  const tx = new Transaction();
  tx.version = 2;
  for (const c of coins) tx.addInput(Buffer.from(c.txid, 'hex').reverse(), c.vout, RBF_SEQUENCE);
  for (const o of outputs) tx.addOutput(o.script, o.value);
  coins.forEach((c, i) => {
    const child = account.derive(c.chain).derive(c.index);
    const privateKey = child.privateKey;
    if (privateKey === undefined) throw new CustodyError('WALLET_LOCKED', 'the hot account has no private key');
    const pubkey = child.publicKey;
    const scriptCode = payments.p2pkh({ hash: bcrypto.hash160(pubkey) }).output as Uint8Array;
    const hash = tx.hashForWitnessV0(i, scriptCode, c.value, Transaction.SIGHASH_ALL);
    const signature = bscript.signature.encode(ecc.sign(hash, privateKey), Transaction.SIGHASH_ALL);
    tx.setWitness(i, [signature, pubkey]);
  });
  return tx;
}

/** Checks every input's signature against its coin (tests of replacements, and a guard before broadcast). */
export function verifyHotTransaction(tx: Transaction, coins: readonly HotCoin[]): boolean {
  return coins.every((c, i) => {
    const [sig, pubkey] = tx.ins[i]?.witness ?? [];
    if (sig === undefined || pubkey === undefined) return false;
    const decoded = bscript.signature.decode(sig);
    const scriptCode = payments.p2pkh({ hash: bcrypto.hash160(pubkey) }).output as Uint8Array;
    return ecc.verify(tx.hashForWitnessV0(i, scriptCode, c.value, decoded.hashType), pubkey, decoded.signature);
  });
}
