/**
 * BIP174 interoperability of the daemon's sweep PSBTs with an independent implementation,
 * @scure/btc-signer (a dev dependency: pure JS, its own PSBT codec, BIP143 sighash and ECDSA on
 * @noble/curves; nothing shared with bitcoinjs-lib / bip174 / tiny-secp256k1). For a single-key
 * wpkh wallet (BIP84) and a 2-of-3 wsh(sortedmulti) wallet (BIP48), with BIP39's published test
 * mnemonics on regtest and made-up (but well-formed) previous transactions, no node:
 *   a. scure reads our proposal: the same inputs, outputs, amounts, previous transactions, key origins
 *      and unsigned txid;
 *   b. scure signs it (finding its keys through the bip32Derivation we wrote); our signaturesOf accepts
 *      what it returns and finalizeSweep builds the proposal's transaction; multisig cosigners sign
 *      separately and their files combine in either order;
 *   c. a PSBT scure signed and finalized (only finalScriptWitness left) imports too;
 *   d. our offline signer's PSBTs finalize and extract in scure to exactly our final transaction;
 *   e. scure signatures with another sighash type, or over another transaction, are refused;
 *   f. a scure cosigner and ours sign the same file one after the other, in either order.
 * Every final transaction is also checked by bcoin's script interpreter (a third implementation).
 */
import t from 'tap';
import * as btc from '@scure/btc-signer';
import { Psbt, script as bscript, Transaction } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { isCustodyError } from '../../../src/errors.js';
import { hotDeriver, seedKeys, signSweep, summarize, type SignerPins } from '../../../src/signer/offline.js';
import { makePins } from '../../../src/signer/pins.js';
import { combineCosigners, signerAccount, singleKeyDescriptor } from '../../../src/signer/setup.js';
import { Deriver, type KeyDerivation } from '../../../src/wallet/derive.js';
import { hotAccountFromSeed } from '../../../src/wallet/hot-account.js';
import { RBF_SEQUENCE } from '../../../src/wallet/hot-tx.js';
import { bip32, bip32Network, type BIP32Interface } from '../../../src/wallet/keys.js';
import { mnemonicToSeed, normalizeMnemonic } from '../../../src/wallet/mnemonic.js';
import {
  buildSweepPsbt,
  finalizeSweep,
  inputSigners,
  pathSteps,
  signaturesOf,
  sweepVbytes,
  unsignedTx,
  type InputSigners,
  type SweepInput,
  type SweepOutput,
  type VerifiedSignature,
} from '../../../src/wallet/psbt.js';
import { bcoinVerifies } from '../../support/bcoin-verify.js';
import { hex, thrown } from '../../support/vectors.js';

// --- keys: BIP39's published test mnemonics (never real funds) ----------------------------------------
const COLD_MNEMONICS = [
  'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about',
  'legal winner thank year wave sausage worth useful legal winner thank yellow',
  'letter advice cage absurd amount doctor acoustic avoid letter advice cage above',
];
/** The hot wallet: a fourth BIP39 vector, so it is none of the cold keys. */
const HOT_MNEMONIC = 'zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong';

const seedOf = (m: string): Buffer => mnemonicToSeed(normalizeMnemonic(Buffer.from(m)));
const seeds = COLD_MNEMONICS.map(seedOf);
const masters: BIP32Interface[] = seeds.map((s) => bip32.fromSeed(s, bip32Network('regtest')));
const hotKey = hotAccountFromSeed(seedOf(HOT_MNEMONIC), 'regtest').keyOrigin;

function at<T>(items: readonly T[], i: number): T {
  const v = items[i];
  if (v === undefined) throw new Error(`no item ${i}`);
  return v;
}

/**
 * Our bip32 node in the shape scure's signer takes for HD signing (@scure/bip32 is not installed):
 * given the master, scure picks the bip32Derivation rows with its fingerprint and derives their paths.
 */
interface ScureHd {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
  fingerprint: number;
  derive(path: string): ScureHd;
  deriveChild(index: number): ScureHd;
  sign(hash: Uint8Array): Uint8Array;
}
function scureHd(node: BIP32Interface): ScureHd {
  if (node.privateKey === undefined) throw new Error('a neutered node cannot sign');
  return {
    publicKey: node.publicKey,
    privateKey: node.privateKey,
    fingerprint: Buffer.from(node.fingerprint).readUInt32BE(0),
    derive: (path) => scureHd(node.derivePath(path)),
    deriveChild: (index) => scureHd(node.derive(index)),
    sign: (hash) => node.sign(hash),
  };
}

// --- the two wallets and one sweep proposal each --------------------------------------------------------

interface Wallet {
  readonly name: string;
  readonly pins: SignerPins;
  /** masters[i] holds the descriptor's key i. */
  readonly masters: readonly BIP32Interface[];
  /** The descriptor positions that sign (two of three for the multisig). */
  readonly cosigners: readonly number[];
  readonly prevTxs: readonly Transaction[];
  readonly inputs: readonly SweepInput[];
  readonly outputs: readonly SweepOutput[];
  readonly fee: bigint;
  readonly proposal: Psbt;
  /** The proposal as the daemon writes it (binary BIP174). */
  readonly bytes: Uint8Array;
  readonly tx: Transaction;
  readonly signers: readonly InputSigners[];
}

/** scure's network parameters for regtest (its TEST_NETWORK is testnet's `tb`). */
const REGTEST = { ...btc.TEST_NETWORK, bech32: 'bcrt' };
const FOREIGN_P2WPKH = Buffer.from(`0014${'11'.repeat(20)}`, 'hex');

function makeWallet(name: string, descriptor: string, walletMasters: readonly BIP32Interface[], cosigners: readonly number[]): Wallet {
  const pins = makePins('regtest', descriptor, hotKey);
  const cold = new Deriver(pins.descriptor, 'regtest');
  const hot = hotDeriver(pins.hot, 'regtest');
  const coinA = cold.derive(0, 0);
  const coinB = cold.derive(0, 3);
  // A legacy-serialized funding transaction paying a stranger and then us (we spend its vout 1) ...
  const prevA = new Transaction();
  prevA.version = 2;
  prevA.addInput(Buffer.alloc(32, 0x07), 1, 0xfffffffe);
  prevA.addOutput(FOREIGN_P2WPKH, 5_000n);
  prevA.addOutput(coinA.script, 100_000_000n);
  // ... and a segwit one with a witness, serialized with it, as a node's block gives it to the daemon.
  const prevB = new Transaction();
  prevB.version = 1;
  prevB.addInput(Buffer.alloc(32, 0x09), 0);
  prevB.setWitness(0, [Buffer.concat([Buffer.from([0x30, 0x44]), Buffer.alloc(70, 0x01)]), Buffer.concat([Buffer.from([0x02]), Buffer.alloc(32, 0x05)])]);
  prevB.addOutput(coinB.script, 50_000_000n);
  prevB.locktime = 123;
  const inputs: SweepInput[] = [
    { txid: prevA.getId(), vout: 1, value: 100_000_000n, prevTx: prevA.toBuffer(), out: coinA },
    { txid: prevB.getId(), vout: 0, value: 50_000_000n, prevTx: prevB.toBuffer(), out: coinB },
  ];
  const hotOut = hot.derive(0, 7);
  const changeOut = cold.derive(1, 2);
  const fee = BigInt(3 * sweepVbytes(pins.descriptor, inputs.length, [hotOut.script, changeOut.script]));
  const outputs: SweepOutput[] = [
    { value: 120_000_000n, out: hotOut },
    { value: 150_000_000n - 120_000_000n - fee, out: changeOut },
  ];
  const proposal = buildSweepPsbt(inputs, outputs, pins.descriptor.keys);
  return {
    name,
    pins,
    masters: walletMasters,
    cosigners,
    prevTxs: [prevA, prevB],
    inputs,
    outputs,
    fee,
    proposal,
    bytes: proposal.toBuffer(),
    tx: unsignedTx(proposal),
    signers: inputs.map((i) => inputSigners(pins.descriptor, i)),
  };
}

function singleKeyWallet(): Wallet {
  const seed = at(seeds, 0);
  return makeWallet('wpkh (BIP84, m/84h/1h/0h)', singleKeyDescriptor(signerAccount(seed, 'regtest', 'single', 0)), [at(masters, 0)], [0]);
}

function multisigWallet(): Wallet {
  const accounts = seeds.map((s) => signerAccount(s, 'regtest', 'multisig', 0));
  const descriptor = combineCosigners(2, accounts.map((a) => a.keyOrigin), 'regtest').canonical;
  return makeWallet('2-of-3 wsh(sortedmulti) (BIP48, m/48h/1h/0h/2h)', descriptor, masters, [0, 2]);
}

const WALLETS: readonly Wallet[] = [singleKeyWallet(), multisigWallet()];

// --- helpers ---------------------------------------------------------------------------------------------

/** Every signature each input has across `files`, verified against the proposal, one per key (as sweeps.ts imports). */
function collect(w: Wallet, files: ReadonlyArray<{ readonly name: string; readonly psbt: Psbt }>): VerifiedSignature[][] {
  const out = w.signers.map((): VerifiedSignature[] => []);
  for (const f of files) {
    w.signers.forEach((s, i) => {
      const list = at(out, i);
      for (const sig of signaturesOf(f.psbt, i, w.tx, s, f.name)) if (!list.some((x) => hex(x.pubkey) === hex(sig.pubkey))) list.push(sig);
    });
  }
  return out;
}

/** The pubkeys (sorted hex) of the given descriptor positions at input `i`. */
const expectedSigners = (w: Wallet, i: number, positions: readonly number[]): string[] => positions.map((p) => hex(at(at(w.inputs, i).out.keys, p).pubkey)).sort();
const signersOf = (sigs: readonly VerifiedSignature[]): string[] => sigs.map((s) => hex(s.pubkey)).sort();

/** bcoin's verdict on every input of `tx`, spending the wallet's made-up previous outputs. */
function bcoinVerifiesSweep(w: Wallet, tx: Transaction): boolean {
  return bcoinVerifies(
    tx,
    w.inputs.map((input, i) => {
      const prevOut = at(at(w.prevTxs, i).outs, input.vout);
      return { txid: input.txid, vout: input.vout, script: prevOut.script, value: prevOut.value };
    }),
  );
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : `nothing thrown (${String(err)})`);

/** scure's reading of a PSBT; strictPrevoutValidation makes it prove every amount from nonWitnessUtxo before signing. */
const scure = (bytes: Uint8Array): btc.Transaction => btc.Transaction.fromPSBT(bytes, { strictPrevoutValidation: true });

/** The child private key of descriptor position `pos` for input `i`, derived by our bip32 from the seed. */
function childKey(w: Wallet, i: number, pos: number): Uint8Array {
  const k = at(w.pins.descriptor.keys, pos);
  const input = at(w.inputs, i);
  const node = at(w.masters, pos).derivePath(`m/${k.originPath.replace(/h/g, "'")}`).derive(input.out.chain).derive(input.out.index);
  if (node.privateKey === undefined) throw new Error('no private key');
  return node.privateKey;
}

/** Our expectations of a bip32Derivation list, as scure decodes it: pubkey, fingerprint as a number, path as steps. */
const derivations = (keys: readonly KeyDerivation[]): Array<[string, number, number[]]> =>
  keys.map((k): [string, number, number[]] => [hex(k.pubkey), Buffer.from(k.fingerprint, 'hex').readUInt32BE(0), pathSteps(k.path)]).sort((a, b) => a[0].localeCompare(b[0]));
const scureDerivations = (rows: ReadonlyArray<readonly [Uint8Array, { readonly fingerprint: number; readonly path: readonly number[] }]> | undefined): Array<[string, number, number[]]> =>
  (rows ?? []).map(([pk, d]): [string, number, number[]] => [hex(pk), d.fingerprint, [...d.path]]).sort((a, b) => a[0].localeCompare(b[0]));

/** The partial signatures an input of a scure PSBT holds, by pubkey (hex → signature hex). */
function scurePartialSigs(tx: btc.Transaction, i: number): Map<string, string> {
  return new Map((tx.getInput(i).partialSig ?? []).map(([pk, sig]): [string, string] => [hex(pk), hex(sig)]));
}

/** scure's signatures for the cosigner at descriptor position `pos`: through HD derivation of the master, or per-input private keys. */
function scureSign(w: Wallet, pos: number, how: 'hd' | 'private-key', bytes: Uint8Array = w.bytes): Uint8Array {
  const s = scure(bytes);
  if (how === 'hd') {
    const n = s.sign(scureHd(at(w.masters, pos)));
    if (n !== w.inputs.length) throw new Error(`scure signed ${n} inputs of ${w.inputs.length}`);
  } else {
    w.inputs.forEach((_, i) => {
      if (!s.signIdx(childKey(w, i, pos), i)) throw new Error(`scure did not sign input ${i}`);
    });
  }
  return s.toPSBT();
}

// --- a. scure reads our proposal --------------------------------------------------------------------

t.test('a. scure parses our proposal: inputs, previous transactions, outputs, amounts, key origins and txid', async (t) => {
  for (const w of WALLETS) {
    t.test(w.name, async (t) => {
      const s = btc.Transaction.fromPSBT(w.bytes);
      t.equal(s.id, w.tx.getId(), 'scure computes the same unsigned txid');
      t.equal(hex(s.unsignedTx), hex(Buffer.from(w.proposal.data.globalMap.unsignedTx.toBuffer())), 'and the same unsigned transaction bytes');
      t.equal(s.version, 2);
      t.equal(s.lockTime, 0);
      t.equal(s.fee, w.fee, `fee ${w.fee} sats, from the amounts scure reads`);
      t.equal(s.inputsLength, w.inputs.length);
      w.inputs.forEach((input, i) => {
        const got = s.getInput(i);
        t.equal(hex(got.txid ?? new Uint8Array(0)), input.txid, `input ${i}: outpoint txid`);
        t.equal(got.index, input.vout, `input ${i}: outpoint vout`);
        t.equal(got.sequence, RBF_SEQUENCE, `input ${i}: BIP125 sequence`);
        t.equal(got.witnessUtxo?.amount, input.value, `input ${i}: witnessUtxo amount`);
        t.equal(hex(got.witnessUtxo?.script ?? new Uint8Array(0)), hex(input.out.script), `input ${i}: witnessUtxo script`);
        t.ok(got.nonWitnessUtxo !== undefined, `input ${i}: nonWitnessUtxo present`);
        if (got.nonWitnessUtxo !== undefined) {
          t.equal(hex(btc.RawTx.encode(got.nonWitnessUtxo)), hex(input.prevTx), `input ${i}: scure re-encodes the previous transaction byte for byte`);
          const spent = at(got.nonWitnessUtxo.outputs, input.vout);
          t.equal(spent.amount, input.value, `input ${i}: the previous transaction proves the amount`);
        }
        t.same(scureDerivations(got.bip32Derivation), derivations(input.out.keys), `input ${i}: bip32Derivation (pubkeys, fingerprints, paths)`);
        t.equal(got.bip32Derivation?.length, w.pins.descriptor.keys.length, `input ${i}: one derivation per descriptor key`);
        t.equal(got.witnessScript === undefined ? undefined : hex(got.witnessScript), input.out.witnessScript === undefined ? undefined : hex(input.out.witnessScript), `input ${i}: witnessScript`);
        const type = btc.getInputType(got);
        t.equal(type.txType, 'segwit', `input ${i}: scure classifies it as segwit v0`);
        if (w.pins.descriptor.kind === 'wpkh') {
          t.equal(type.type, 'wpkh');
        } else {
          t.equal(type.type, 'wsh-ms', `input ${i}: a P2WSH multisig to scure`);
          if (type.last.type === 'ms') {
            t.equal(type.last.m, 2, 'scure reads the threshold from the witness script');
            t.same(type.last.pubkeys.map(hex), input.out.keys.map((k) => hex(k.pubkey)).sort(), 'and its keys, BIP67-sorted');
          } else {
            t.fail(`input ${i}: scure sees a ${type.last.type} witness script`);
          }
        }
      });
      t.equal(s.outputsLength, w.outputs.length);
      w.outputs.forEach((output, o) => {
        const got = s.getOutput(o);
        t.equal(got.amount, output.value, `output ${o}: amount`);
        t.equal(hex(got.script ?? new Uint8Array(0)), hex(output.out.script), `output ${o}: script`);
        t.equal(s.getOutputAddress(o, REGTEST), output.out.address, `output ${o}: scure's address for it is ours`);
        t.same(scureDerivations(got.bip32Derivation), derivations(output.out.keys), `output ${o}: bip32Derivation`);
        t.equal(got.witnessScript === undefined ? undefined : hex(got.witnessScript), output.out.witnessScript === undefined ? undefined : hex(output.out.witnessScript), `output ${o}: witnessScript`);
      });
    });
  }
});

// --- b. scure signs, we import ----------------------------------------------------------------------

t.test('b. scure signs our proposal; signaturesOf accepts its signatures and finalizeSweep builds the proposal', async (t) => {
  const single = at(WALLETS, 0);
  t.test(single.name, async (t) => {
    const signed = scureSign(single, 0, 'hd');
    const byKey = scureSign(single, 0, 'private-key');
    t.equal(hex(signed), hex(byKey), 'scure signs the same through our key origins (HD) as with the keys handed to it (RFC6979)');
    const returned = Psbt.fromBuffer(Buffer.from(signed));
    t.ok(returned.validateSignaturesOfAllInputs((pk, hash, sig) => ecc.verify(hash, pk, sig)), 'bitcoinjs verifies every signature scure wrote');
    const sigs = collect(single, [{ name: 'scure.psbt', psbt: returned }]);
    sigs.forEach((list, i) => {
      t.same(signersOf(list), expectedSigners(single, i, [0]), `input ${i}: one verified signature, by the input's key`);
      t.equal(hex(at(list, 0).signature), scurePartialSigs(scure(signed), i).get(hex(at(list, 0).pubkey)), `input ${i}: exactly the bytes scure wrote`);
    });
    const final = finalizeSweep(single.proposal, sigs, single.signers);
    t.equal(final.getId(), single.tx.getId(), 'the final txid is the proposal\'s unsigned txid');
    t.ok(bcoinVerifiesSweep(single, final), 'bcoin\'s script interpreter accepts every input');
    const broken = final.clone();
    const sig = Buffer.from(at(at(broken.ins, 1).witness, 0));
    sig[10] = (sig[10] as number) ^ 0x01;
    broken.setWitness(1, [sig, at(at(broken.ins, 1).witness, 1)]);
    t.notOk(bcoinVerifiesSweep(single, broken), 'and refuses the same transaction with one signature bit flipped');
    const scureFinal = scure(signed);
    scureFinal.finalize();
    t.equal(hex(scureFinal.extract()), final.toHex(), 'scure finalizes the same PSBT to the same transaction, byte for byte');
  });

  const multi = at(WALLETS, 1);
  t.test(multi.name, async (t) => {
    const [a, c] = [0, 2] as const;
    // Two cosigners, each on their own machine: one signing through HD derivation, one with the child keys.
    const byA = scureSign(multi, a, 'hd');
    const byC = scureSign(multi, c, 'private-key');
    const fileA = { name: 'cosigner-a.psbt', bytes: byA, psbt: Psbt.fromBuffer(Buffer.from(byA)) };
    const fileC = { name: 'cosigner-c.psbt', bytes: byC, psbt: Psbt.fromBuffer(Buffer.from(byC)) };
    for (const f of [fileA, fileC]) t.ok(f.psbt.validateSignaturesOfAllInputs((pk, hash, sig) => ecc.verify(hash, pk, sig)), `${f.name}: bitcoinjs verifies its signatures`);
    const alone = collect(multi, [fileA]);
    alone.forEach((list, i) => t.same(signersOf(list), expectedSigners(multi, i, [a]), `input ${i}: cosigner A's file alone holds A's signature only`));
    t.ok(thrown(() => finalizeSweep(multi.proposal, alone, multi.signers)) instanceof Error, 'one signature of two does not finalize');
    let firstHex: string | undefined;
    for (const files of [[fileA, fileC], [fileC, fileA]]) {
      const order = files.map((f) => f.name).join(' + ');
      const sigs = collect(multi, files);
      sigs.forEach((list, i) => t.same(signersOf(list), expectedSigners(multi, i, [a, c]), `${order}: input ${i} has A's and C's verified signatures`));
      const final = finalizeSweep(multi.proposal, sigs, multi.signers);
      t.equal(final.getId(), multi.tx.getId(), `${order}: the final txid is the proposal's unsigned txid`);
      final.ins.forEach((input, i) => {
        t.equal(input.witness.length, 4, `${order}: input ${i}: empty, two signatures, witness script`);
        t.equal(hex(at(input.witness, 3)), hex(at(multi.inputs, i).out.witnessScript ?? new Uint8Array(0)));
      });
      t.ok(bcoinVerifiesSweep(multi, final), `${order}: bcoin's script interpreter accepts every input (signatures in CHECKMULTISIG order)`);
      firstHex ??= final.toHex();
      t.equal(final.toHex(), firstHex, `${order}: the same transaction whichever file comes first`);
      // scure combines the same two files and finalizes them: the same transaction.
      const combined = scure(btc.PSBTCombine(files.map((f) => f.bytes)));
      combined.finalize();
      t.equal(hex(combined.extract()), final.toHex(), `${order}: scure's combine + finalize gives the same transaction, byte for byte`);
    }
  });
});

// --- c. scure signs and finalizes, we import -------------------------------------------------------

t.test('c. a PSBT scure signed and finalized (finalScriptWitness only) is accepted by signaturesOf', async (t) => {
  for (const w of WALLETS) {
    t.test(w.name, async (t) => {
      const parts = w.cosigners.map((pos) => scureSign(w, pos, 'hd'));
      const s = scure(btc.PSBTCombine(parts));
      s.finalize();
      const finalized = Psbt.fromBuffer(Buffer.from(s.toPSBT()));
      finalized.data.inputs.forEach((input, i) => {
        t.ok(input.finalScriptWitness !== undefined, `input ${i}: finalScriptWitness present`);
        t.equal(input.partialSig, undefined, `input ${i}: partial signatures removed (BIP174 finalizer)`);
      });
      const sigs = collect(w, [{ name: 'scure-final.psbt', psbt: finalized }]);
      sigs.forEach((list, i) => t.same(signersOf(list), expectedSigners(w, i, w.cosigners), `input ${i}: the witness signatures verify and are attributed to their keys`));
      const final = finalizeSweep(w.proposal, sigs, w.signers);
      t.equal(final.getId(), w.tx.getId());
      t.equal(final.toHex(), hex(s.extract()), 'our transaction from the recovered signatures is scure\'s, byte for byte');
      t.ok(bcoinVerifiesSweep(w, final), 'bcoin accepts it');
    });
  }
});

// --- d. our signer signs, scure finalizes ----------------------------------------------------------

t.test('d. our offline signer signs; scure loads, finalizes and extracts exactly our final transaction', async (t) => {
  for (const w of WALLETS) {
    t.test(w.name, async (t) => {
      const files = w.cosigners.map((pos) => {
        const psbt = Psbt.fromBuffer(Buffer.from(w.bytes));
        const summary = summarize(psbt, w.pins);
        t.same(summary.refusals, [], `cosigner ${pos}: the summary has no refusal`);
        t.same(summary.outputs.map((o) => o.kind), ['hot', 'cold-change']);
        const n = signSweep(psbt, summary, w.pins, seedKeys(at(w.masters, pos), w.pins));
        t.equal(n, w.inputs.length, `cosigner ${pos}: signed every input`);
        return { name: `ours-${pos}.psbt`, psbt, bytes: psbt.toBuffer() };
      });
      // Each of our files alone is a valid PSBT to scure, its signatures where BIP174 puts them.
      for (const f of files) {
        const s = scure(f.bytes);
        t.equal(s.id, w.tx.getId(), `${f.name}: scure reads the same transaction`);
        w.inputs.forEach((_, i) => t.equal(scurePartialSigs(s, i).size, 1, `${f.name}: input ${i} has one partial signature to scure`));
      }
      const ours = finalizeSweep(w.proposal, collect(w, files), w.signers);
      t.ok(bcoinVerifiesSweep(w, ours), 'bcoin accepts our final transaction');
      for (const order of [files, [...files].reverse()]) {
        const [first, ...rest] = order.map((f) => scure(f.bytes));
        if (first === undefined) throw new Error('no file');
        for (const other of rest) first.combine(other);
        first.finalize();
        t.equal(hex(first.extract()), ours.toHex(), `scure (${order.map((f) => f.name).join(' + ')}): finalize + extract = our finalizeSweep, byte for byte`);
      }
      // RFC6979 on both sides: scure's own signatures over the same proposal make the same transaction.
      const s = scure(btc.PSBTCombine(w.cosigners.map((pos) => scureSign(w, pos, 'private-key'))));
      s.finalize();
      t.equal(hex(s.extract()), ours.toHex(), 'scure signing the proposal itself produces the identical transaction (same BIP143 sighash, same nonce)');
    });
  }
});

// --- e. what must be refused ---------------------------------------------------------------------

t.test('e. scure signatures with another sighash type, or over another transaction, are refused', async (t) => {
  const types: ReadonlyArray<[string, number]> = [['SIGHASH_NONE', btc.SigHash.NONE], ['SIGHASH_ALL|ANYONECANPAY', btc.SigHash.ALL_ANYONECANPAY]];
  for (const w of WALLETS) {
    for (const [label, type] of types) {
      t.test(`${w.name}: ${label}`, async (t) => {
        const s = scure(w.bytes);
        s.updateInput(0, { sighashType: type });
        t.ok(s.signIdx(childKey(w, 0, at(w.cosigners, 0)), 0, [type]), `scure signs input 0 with ${label}`);
        const returned = Psbt.fromBuffer(Buffer.from(s.toPSBT()));
        const partial = at(returned.data.inputs[0]?.partialSig ?? [], 0);
        t.equal(partial.signature[partial.signature.length - 1], type, `the signature ends in sighash byte ${type}`);
        // A genuine signature of its kind: it verifies against the BIP143 hash of that sighash type.
        const signers = at(w.signers, 0);
        const own = w.tx.hashForWitnessV0(0, signers.scriptCode, signers.value, type);
        t.ok(ecc.verify(own, partial.pubkey, bscript.signature.decode(partial.signature).signature), `it is valid for ${label}`);
        const err = thrown(() => signaturesOf(returned, 0, w.tx, signers, 'other-sighash.psbt'));
        t.ok(isCustodyError(err, 'SWEEP_SIGNATURES'), 'refused with SWEEP_SIGNATURES');
        t.match(messageOf(err), new RegExp(`other-sighash\\.psbt: input 0: signature with sighash type ${type}; only SIGHASH_ALL \\(1\\) is accepted`));
        t.equal(isCustodyError(err) ? err.details?.['sighashType'] : undefined, type);
      });
    }

    t.test(`${w.name}: signed over another transaction (output 0 changed by 1,000 sats)`, async (t) => {
      const s = scure(w.bytes);
      const out0 = at(w.outputs, 0);
      s.updateOutput(0, { amount: out0.value - 1_000n });
      t.not(s.id, w.tx.getId(), 'it is another transaction');
      for (const pos of w.cosigners) s.sign(scureHd(at(w.masters, pos)));
      const bytes = s.toPSBT();
      const returned = Psbt.fromBuffer(Buffer.from(bytes));
      t.ok(returned.validateSignaturesOfAllInputs((pk, hash, sig) => ecc.verify(hash, pk, sig)), 'its signatures are valid for the transaction they sign');
      w.inputs.forEach((_, i) => {
        const err = thrown(() => signaturesOf(returned, i, w.tx, at(w.signers, i), 'altered.psbt'));
        t.ok(isCustodyError(err, 'SWEEP_SIGNATURES'), `input ${i}: refused with SWEEP_SIGNATURES`);
        t.match(messageOf(err), new RegExp(`altered\\.psbt: input ${i}: the signature by \\[[0-9a-f]{8}\\] m/\\S+ does not verify against the proposed transaction`));
      });
      // Finalized by scure: the witness signatures verify against nothing of ours, so none is taken.
      s.finalize();
      const finalized = Psbt.fromBuffer(Buffer.from(s.toPSBT()));
      w.inputs.forEach((_, i) => t.same(signaturesOf(finalized, i, w.tx, at(w.signers, i), 'altered-final.psbt'), [], `input ${i}: the finalized altered file yields no signature`));
    });
  }
});


// --- f. mixed cosigners ----------------------------------------------------------------------------

t.test('f. 2-of-3 with one cosigner on scure and one on our signer, on the same file in either order', async (t) => {
  const w = at(WALLETS, 1);
  const [a, c] = [0, 2] as const;
  const ours = (bytes: Uint8Array, pos: number): Uint8Array => {
    const psbt = Psbt.fromBuffer(Buffer.from(bytes));
    const summary = summarize(psbt, w.pins);
    t.same(summary.refusals, [], `our signer (key ${pos}) finds nothing to refuse in the file it was handed`);
    t.equal(signSweep(psbt, summary, w.pins, seedKeys(at(w.masters, pos), w.pins)), w.inputs.length);
    return psbt.toBuffer();
  };
  // scure first (its re-serialized PSBT goes through our summarize and signSweep), then ours first.
  const scureThenOurs = ours(scureSign(w, a, 'hd'), c);
  const oursThenScure = scureSign(w, a, 'hd', ours(w.bytes, c));
  let expected: string | undefined;
  for (const [label, bytes] of [['scure, then ours', scureThenOurs], ['ours, then scure', oursThenScure]] as const) {
    const sigs = collect(w, [{ name: `${label}.psbt`, psbt: Psbt.fromBuffer(Buffer.from(bytes)) }]);
    sigs.forEach((list, i) => t.same(signersOf(list), expectedSigners(w, i, [a, c]), `${label}: input ${i} carries both signatures`));
    const final = finalizeSweep(w.proposal, sigs, w.signers);
    t.equal(final.getId(), w.tx.getId(), `${label}: the proposal's txid`);
    t.ok(bcoinVerifiesSweep(w, final), `${label}: bcoin accepts it`);
    const s = scure(bytes);
    s.finalize();
    t.equal(hex(s.extract()), final.toHex(), `${label}: scure finalizes the file to the same transaction`);
    expected ??= final.toHex();
    t.equal(final.toHex(), expected, `${label}: the same transaction either way`);
  }
});
