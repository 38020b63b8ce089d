/**
 * The offline signer's checks (signer/offline.ts), on PSBTs built by the daemon's own buildSweepPsbt and
 * then altered the way a lying coordinator would: every output proven hot, cold change, cold receive or
 * UNKNOWN; inputs whose amount or script cannot be proven refused by index; sighash types and fee caps;
 * the text a custodian reads; which seed may sign, and which keys it signs with in a 2-of-3.
 * Keys come from BIP39's published test mnemonics (never real funds), on regtest.
 */
import t, { type Test } from 'tap';
import { Psbt, Transaction } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { isCustodyError } from '../../../src/errors.js';
import { formatSummary, seedKeys, signSweep, summarize, type SignerPins, type Summary } from '../../../src/signer/offline.js';
import { makePins } from '../../../src/signer/pins.js';
import { combineCosigners, signerAccount, singleKeyDescriptor } from '../../../src/signer/setup.js';
import { Deriver, type DerivedOutput } from '../../../src/wallet/derive.js';
import { formatDescriptor, parseDescriptor, withChecksum, type ColdDescriptor } from '../../../src/wallet/descriptor.js';
import { hotAccountFromSeed } from '../../../src/wallet/hot-account.js';
import { bip32, bip32Network, type BIP32Interface } from '../../../src/wallet/keys.js';
import { mnemonicToSeed, normalizeMnemonic } from '../../../src/wallet/mnemonic.js';
import { buildSweepPsbt, unsignedTx, type SweepInput, type SweepOutput } from '../../../src/wallet/psbt.js';
import { hex, thrown } from '../../support/vectors.js';

const ABANDON = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
const LEGAL = 'legal winner thank year wave sausage worth useful legal winner thank yellow';
const LETTER = 'letter advice cage absurd amount doctor acoustic avoid letter advice cage above';
/** The hot wallet's seed: its own, as makePins insists. */
const ZOO = 'zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong';

const seedOf = (m: string, passphrase = ''): Uint8Array => mnemonicToSeed(normalizeMnemonic(Buffer.from(m)), Buffer.from(passphrase));
const masters = new Map<string, BIP32Interface>();
function masterOf(m: string, passphrase = ''): BIP32Interface {
  const key = `${m}\n${passphrase}`;
  const known = masters.get(key);
  if (known !== undefined) return known;
  const master = bip32.fromSeed(seedOf(m, passphrase), bip32Network('regtest'));
  masters.set(key, master);
  return master;
}

const hotAccount = hotAccountFromSeed(seedOf(ZOO), 'regtest');
const hot = new Deriver(parseDescriptor(`wpkh(${hotAccount.keyOrigin}/<0;1>/*)`, { network: 'regtest' }), 'regtest');
/** Someone else's wallet: what a thief's output or a foreign input looks like. */
const foreign = new Deriver(parseDescriptor(singleKeyDescriptor(signerAccount(seedOf(LEGAL), 'regtest', 'single', 0)), { network: 'regtest' }), 'regtest');

interface Wallet {
  readonly name: string;
  readonly canonical: string;
  readonly descriptor: ColdDescriptor;
  readonly cold: Deriver;
  readonly pins: SignerPins;
  /** By hand: 11 + 2 inputs + a P2WPKH hot output (31) + the change output (31 or 43). */
  readonly baseVbytes: number;
  readonly label: string;
}

function wallet(name: string, canonical: string, baseVbytes: number, label: string): Wallet {
  const descriptor = parseDescriptor(canonical, { network: 'regtest' });
  return { name, canonical, descriptor, cold: new Deriver(descriptor, 'regtest'), pins: makePins('regtest', canonical, hotAccount.keyOrigin), baseVbytes, label };
}

const SINGLE = wallet('wpkh', singleKeyDescriptor(signerAccount(seedOf(ABANDON), 'regtest', 'single', 0)), 11 + 2 * 68 + 31 + 31, 'single key');
const COSIGNERS = [ABANDON, LEGAL, LETTER];
const MULTI = wallet('2-of-3', combineCosigners(2, COSIGNERS.map((m) => signerAccount(seedOf(m), 'regtest', 'multisig', 0).keyOrigin), 'regtest').canonical, 11 + 2 * 105 + 31 + 43, '2 of 3 multisig');
const WALLETS = [SINGLE, MULTI];

// --- proposals ------------------------------------------------------------------------------------------

/** A fake funding transaction (nonWitnessUtxo needs only its bytes): `tag` makes its txid unique. */
function fundingTx(tag: number, outs: ReadonlyArray<{ script: Uint8Array; value: bigint }>): Transaction {
  const tx = new Transaction();
  tx.version = 2;
  tx.addInput(new Uint8Array(32).fill(tag), 0, 0xfffffffd);
  for (const o of outs) tx.addOutput(o.script, o.value);
  return tx;
}

/** Cold inputs at receive 0/0 (1,000,000 sats) and 0/1 (500,000 sats), both outputs of one funding transaction. */
function coldInputs(w: Wallet): SweepInput[] {
  const outs = [w.cold.derive(0, 0), w.cold.derive(0, 1)];
  const values = [1_000_000n, 500_000n];
  const parent = fundingTx(1, outs.map((o, i) => ({ script: o.script, value: values[i] as bigint })));
  return outs.map((out, vout) => ({ txid: parent.getId(), vout, value: values[vout] as bigint, prevTx: parent.toBuffer(), out }));
}

/** A refill as the daemon proposes it: 1,200,000 to hot 0/5, change to cold 1/3, a fee of `fee`. */
function refillOutputs(w: Wallet, fee = 3_000n): SweepOutput[] {
  return [
    { value: 1_200_000n, out: hot.derive(0, 5) },
    { value: 1_500_000n - 1_200_000n - fee, out: w.cold.derive(1, 3) },
  ];
}

/** An output that is not ours, claiming the key path `claim` (or nothing). */
function stranger(index: number, claim?: DerivedOutput): DerivedOutput {
  return { ...foreign.derive(0, index), keys: claim === undefined ? [] : claim.keys };
}

const propose = (w: Wallet, outputs: readonly SweepOutput[] = refillOutputs(w), inputs: readonly SweepInput[] = coldInputs(w)): Psbt => buildSweepPsbt(inputs, outputs, w.descriptor.keys);

const outpointOf = (i: SweepInput): string => `${i.txid}:${i.vout}`;
const partialSigs = (psbt: Psbt): number[] => psbt.data.inputs.map((i) => i.partialSig?.length ?? 0);

/** `signSweep` refuses with SIGNER_REFUSED and adds nothing to the PSBT. */
function signingRefused(t: Test, psbt: Psbt, summary: Summary, w: Wallet, label: string): void {
  const before = partialSigs(psbt);
  const err = thrown(() => signSweep(psbt, summary, w.pins, seedKeys(masterOf(ABANDON), w.pins)));
  t.ok(isCustodyError(err, 'SIGNER_REFUSED') && err.message.startsWith('refusing to sign: '), `${label}: signSweep refuses`);
  t.same(partialSigs(psbt), before, `${label}: no signature was added`);
}

// --- a clean proposal -----------------------------------------------------------------------------------

t.test('a clean refill: inputs verified at their paths, hot and change outputs proven, the fee from the descriptor\'s size', async (t) => {
  for (const w of WALLETS) {
    const inputs = coldInputs(w);
    const psbt = propose(w, refillOutputs(w), inputs);
    const s = summarize(psbt, w.pins);
    t.equal(s.txid, unsignedTx(psbt).getId(), `${w.name}: txid`);
    t.same(s.inputs.map((i) => [i.outpoint, i.amountSats, i.path, i.chain, i.addressIndex, i.verified, i.note]), [
      [outpointOf(inputs[0]!), 1_000_000n, '0/0', 0, 0, true, 'cold, verified: derives from your descriptor at 0/0'],
      [outpointOf(inputs[1]!), 500_000n, '0/1', 0, 1, true, 'cold, verified: derives from your descriptor at 0/1'],
    ], `${w.name}: inputs`);
    t.same(s.outputs.map((o) => [o.kind, o.amountSats, o.address]), [
      ['hot', 1_200_000n, hot.derive(0, 5).address],
      ['cold-change', 297_000n, w.cold.derive(1, 3).address],
    ], `${w.name}: outputs`);
    t.equal(s.inSats, 1_500_000n);
    t.equal(s.outSats, 1_497_000n);
    t.equal(s.feeSats, 3_000n, `${w.name}: inputs − outputs`);
    t.equal(s.vbytes, w.baseVbytes, `${w.name}: vbytes`);
    t.equal(s.feeRate, 3_000 / w.baseVbytes, `${w.name}: fee rate`);
    t.equal(s.movedSats, 1_200_000n, `${w.name}: what leaves the cold wallet`);
    t.equal(s.feeShare, 3_000 / 1_200_000);
    t.same(s.warnings, [], `${w.name}: no warnings`);
    t.same(s.refusals, [], `${w.name}: nothing to refuse`);
    t.equal(s.unknownOutputs, 0);
  }
});

// --- outputs ----------------------------------------------------------------------------------------------

t.test('outputs are classified by derivation: hot, cold change, cold receive, UNKNOWN with and without a false claim', async (t) => {
  for (const w of WALLETS) {
    const outputs: SweepOutput[] = [
      { value: 1_000_000n, out: hot.derive(0, 5) },
      { value: 200_000n, out: w.cold.derive(1, 3) },
      { value: 100_000n, out: w.cold.derive(0, 7) },
      { value: 60_000n, out: stranger(0) },
      { value: 40_000n, out: stranger(1, hot.derive(0, 6)) },
      { value: 30_000n, out: stranger(2, w.cold.derive(1, 4)) },
      { value: 20_000n, out: hot.derive(1, 2) },
      { value: 47_000n, out: { ...w.cold.derive(1, 8), keys: w.cold.derive(1, 9).keys } },
    ];
    const psbt = propose(w, outputs);
    const s = summarize(psbt, w.pins);
    const claimed = 'UNKNOWN, not yours (it claims a key path, but the script does not derive from it)';
    t.same(s.outputs.map((o) => [o.index, o.kind, o.note]), [
      [0, 'hot', 'hot wallet, verified: derives from the pinned hot xpub at 0/5'],
      [1, 'cold-change', 'cold change, verified: derives from your descriptor at 1/3'],
      [2, 'cold-receive', 'cold receive address, verified: derives from your descriptor at 0/7'],
      [3, 'unknown', 'UNKNOWN, not yours'],
      [4, 'unknown', claimed],
      [5, 'unknown', claimed],
      [6, 'hot', 'hot wallet, verified: derives from the pinned hot xpub at 1/2'],
      [7, 'unknown', claimed],
    ], `${w.name}: kinds and notes`);
    t.same(s.outputs.map((o) => o.address), outputs.map((o) => o.out.address), `${w.name}: addresses, as the daemon derives them`);
    t.same(s.outputs.map((o) => o.amountSats), outputs.map((o) => o.value));
    t.equal(s.unknownOutputs, 4, `${w.name}: four unknown outputs`);
    t.equal(s.feeSats, 3_000n);
    t.equal(s.movedSats, 1_000_000n + 60_000n + 40_000n + 30_000n + 20_000n + 47_000n, `${w.name}: moved = hot + unknown`);
    t.same(s.warnings, ['4 outputs pay an address that is neither the hot wallet nor your cold wallet'], `${w.name}: warning`);
    const named = [3, 4, 5, 7].map((i) => `${i} (${outputs[i]!.out.address})`).join(', ');
    t.same(s.refusals, [`outputs ${named}: UNKNOWN destination, not yours (pass --allow-unknown-outputs only if you meant to pay it)`], `${w.name}: one refusal naming every unknown output`);
    signingRefused(t, psbt, s, w, w.name);
  }
});

t.test('allowUnknownOutputs lifts only the unknown-output refusal', async (t) => {
  for (const w of WALLETS) {
    const outputs: SweepOutput[] = [...refillOutputs(w, 13_000n), { value: 10_000n, out: stranger(0, hot.derive(0, 9)) }];
    const psbt = propose(w, outputs);
    const refused = summarize(psbt, w.pins);
    t.same(refused.refusals, [`output 2 (${outputs[2]!.out.address}): UNKNOWN destination, not yours (pass --allow-unknown-outputs only if you meant to pay it)`], `${w.name}: refused without the flag`);
    const allowed = summarize(psbt, w.pins, { allowUnknownOutputs: true });
    t.same(allowed.refusals, [], `${w.name}: nothing refused with the flag`);
    t.same(allowed.warnings, ['1 output pays an address that is neither the hot wallet nor your cold wallet'], `${w.name}: still warned`);
    t.equal(allowed.outputs[2]?.kind, 'unknown', `${w.name}: still called unknown`);
    t.equal(allowed.unknownOutputs, 1);
    t.equal(signSweep(psbt, allowed, w.pins, seedKeys(masterOf(ABANDON), w.pins)), 2, `${w.name}: signs with the flag`);

    // With a fee cap also broken, the flag leaves that refusal in place.
    const capped = makePins('regtest', w.canonical, hotAccount.keyOrigin, 2_999n, 200);
    const both = summarize(propose(w, outputs), capped, { allowUnknownOutputs: true });
    t.same(both.refusals, ['fee 3000 sats is above the pinned cap of 2999 sats'], `${w.name}: the fee refusal stays`);
    t.equal(summarize(propose(w, outputs), capped).refusals.length, 2, `${w.name}: both without the flag`);
  }
});

// --- inputs -----------------------------------------------------------------------------------------------

/** A copy of `p` whose input `index` has no nonWitnessUtxo (bitcoinjs will not delete one in place). */
function withoutPrevTx(p: Psbt, index: number): Psbt {
  const out = new Psbt();
  out.setVersion(p.version);
  out.setLocktime(p.locktime);
  p.txInputs.forEach((i, k) => {
    const d = p.data.inputs[k]!;
    out.addInput({
      hash: i.hash,
      index: i.index,
      sequence: i.sequence ?? 0xffffffff,
      witnessUtxo: d.witnessUtxo!,
      bip32Derivation: d.bip32Derivation ?? [],
      ...(k === index ? {} : { nonWitnessUtxo: d.nonWitnessUtxo! }),
      ...(d.witnessScript === undefined ? {} : { witnessScript: d.witnessScript }),
    });
  });
  p.txOutputs.forEach((o, k) => out.addOutput({ script: o.script, value: o.value, bip32Derivation: p.data.outputs[k]?.bip32Derivation ?? [] }));
  return out;
}

interface InputCase {
  readonly label: string;
  readonly only?: string;
  /** Alters input 1 of a fresh proposal, before or after it is built. */
  readonly input?: (w: Wallet, i: SweepInput) => SweepInput;
  readonly psbt?: (p: Psbt) => Psbt;
  readonly note: string;
}

const INPUT_CASES: readonly InputCase[] = [
  {
    label: 'nonWitnessUtxo missing',
    psbt: (p) => withoutPrevTx(p, 1),
    note: 'no previous transaction (nonWitnessUtxo): its amount cannot be proven',
  },
  {
    label: 'nonWitnessUtxo is another transaction',
    input: (w, i) => ({ ...i, prevTx: fundingTx(2, [w.cold.derive(0, 0), w.cold.derive(0, 1)].map((o) => ({ script: o.script, value: i.value }))).toBuffer() }),
    note: 'the previous transaction given is not the one this input spends',
  },
  {
    label: 'the outpoint\'s vout is past the previous transaction\'s outputs',
    input: (_w, i) => ({ ...i, vout: 5 }),
    note: 'the previous transaction given is not the one this input spends',
  },
  {
    label: 'witnessUtxo claims one satoshi more than the previous transaction pays',
    input: (_w, i) => ({ ...i, value: i.value + 1n }),
    note: 'witnessUtxo disagrees with the previous transaction (amount or script)',
  },
  {
    label: 'witnessUtxo claims another of our scripts than the previous transaction pays',
    input: (w, i) => ({ ...i, out: w.cold.derive(0, 2) }),
    note: 'witnessUtxo disagrees with the previous transaction (amount or script)',
  },
  {
    label: 'a lying bip32Derivation: our script at 0/1, claimed at 0/2',
    input: (w, i) => ({ ...i, out: { ...i.out, keys: w.cold.derive(0, 2).keys } }),
    note: 'UNKNOWN: its script does not derive from your descriptor at the path the PSBT claims',
  },
  {
    label: 'a claim on change: our script at 0/1, claimed at 1/1',
    input: (w, i) => ({ ...i, out: { ...i.out, keys: w.cold.derive(1, 1).keys } }),
    note: 'UNKNOWN: its script does not derive from your descriptor at the path the PSBT claims',
  },
  {
    label: 'a foreign script claiming our path 0/1',
    input: (w, i) => {
      const out = { ...foreign.derive(0, 3), keys: w.cold.derive(0, 1).keys };
      const parent = fundingTx(3, [{ script: out.script, value: i.value }]);
      return { ...i, txid: parent.getId(), vout: 0, prevTx: parent.toBuffer(), out };
    },
    note: 'UNKNOWN: its script does not derive from your descriptor at the path the PSBT claims',
  },
  {
    label: 'no derivation at all',
    input: (_w, i) => ({ ...i, out: { ...i.out, keys: [] } }),
    note: 'UNKNOWN: its script does not derive from your descriptor at the path the PSBT claims',
  },
  {
    label: 'the multisig\'s witnessScript is another address\'s',
    only: '2-of-3',
    input: (w, i) => ({ ...i, out: { ...i.out, witnessScript: w.cold.derive(0, 2).witnessScript as Uint8Array } }),
    note: 'its witnessScript is not the descriptor\'s multisig script',
  },
];

t.test('an input whose amount or script cannot be proven is refused by index and outpoint', async (t) => {
  for (const w of WALLETS) {
    for (const c of INPUT_CASES) {
      if (c.only !== undefined && c.only !== w.name) continue;
      const label = `${w.name}: ${c.label}`;
      const inputs = coldInputs(w);
      inputs[1] = c.input === undefined ? inputs[1]! : c.input(w, inputs[1]!);
      const proposed = propose(w, refillOutputs(w), inputs);
      const psbt = c.psbt === undefined ? proposed : c.psbt(proposed);
      const s = summarize(psbt, w.pins);
      t.same(s.refusals, [`input 1 (${outpointOf(inputs[1]!)}): ${c.note}`], `${label}: refused, naming input 1`);
      t.equal(s.inputs[1]?.verified, false, `${label}: input 1 not verified`);
      t.equal(s.inputs[1]?.path, null, `${label}: no path`);
      t.equal(s.inputs[1]?.note, c.note);
      t.equal(s.inputs[0]?.verified, true, `${label}: input 0 still verified`);
      signingRefused(t, psbt, s, w, label);
    }
  }
});

t.test('a sighash type other than SIGHASH_ALL: warned and refused; SIGHASH_ALL written out is fine', async (t) => {
  const cases = [
    { type: Transaction.SIGHASH_NONE, name: 'NONE' },
    { type: Transaction.SIGHASH_SINGLE, name: 'SINGLE' },
    { type: Transaction.SIGHASH_ALL | Transaction.SIGHASH_ANYONECANPAY, name: 'ALL|ANYONECANPAY' },
    { type: Transaction.SIGHASH_NONE | Transaction.SIGHASH_ANYONECANPAY, name: 'NONE|ANYONECANPAY' },
  ];
  for (const w of WALLETS) {
    for (const c of cases) {
      const psbt = propose(w);
      psbt.updateInput(0, { sighashType: c.type });
      const s = summarize(psbt, w.pins);
      const label = `${w.name}: ${c.name}`;
      t.same(s.warnings, [`input 0 asks for sighash type ${c.type}, not SIGHASH_ALL: such a signature would not commit to the whole transaction`], `${label}: warned`);
      t.same(s.refusals, [`input 0: sighash type ${c.type} (only SIGHASH_ALL is signed)`], `${label}: refused`);
      t.equal(s.inputs[0]?.verified, true, `${label}: the input itself is ours`);
      signingRefused(t, psbt, s, w, label);
    }
    const all = propose(w);
    all.updateInput(1, { sighashType: Transaction.SIGHASH_ALL });
    const s = summarize(all, w.pins);
    t.same([s.warnings, s.refusals], [[], []], `${w.name}: an explicit SIGHASH_ALL is neither warned nor refused`);
    t.equal(signSweep(all, s, w.pins, seedKeys(masterOf(ABANDON), w.pins)), 2, `${w.name}: and signed`);
  }
});

// --- fees -------------------------------------------------------------------------------------------------

t.test('the pinned fee caps: a fee or fee rate above them is refused, naming the cap; at them it is not', async (t) => {
  for (const w of WALLETS) {
    const rate = 3_000 / w.baseVbytes;
    const cases = [
      { maxFeeSats: 2_999n, maxFeeRate: 200, warning: 'fee 3000 sats is above the cap of 2999 sats', refusal: 'fee 3000 sats is above the pinned cap of 2999 sats' },
      { maxFeeSats: 3_000n, maxFeeRate: 200 },
      { maxFeeSats: 1_000_000n, maxFeeRate: Math.floor(rate), warning: `fee rate ${rate.toFixed(1)} sat/vB is above the cap of ${Math.floor(rate)} sat/vB`, refusal: `fee rate ${rate.toFixed(1)} sat/vB is above the pinned cap of ${Math.floor(rate)} sat/vB` },
      { maxFeeSats: 1_000_000n, maxFeeRate: rate },
      { maxFeeSats: 1_000_000n, maxFeeRate: Math.ceil(rate) },
    ];
    for (const c of cases) {
      const pins = makePins('regtest', w.canonical, hotAccount.keyOrigin, c.maxFeeSats, c.maxFeeRate);
      const psbt = propose(w);
      const s = summarize(psbt, pins);
      const label = `${w.name}: a fee of 3000 sats (${rate.toFixed(2)} sat/vB) under caps of ${c.maxFeeSats} sats and ${c.maxFeeRate} sat/vB`;
      t.same(s.refusals, c.refusal === undefined ? [] : [c.refusal], `${label}: refusals`);
      t.same(s.warnings, c.warning === undefined ? [] : [c.warning], `${label}: warnings`);
      if (c.refusal !== undefined) signingRefused(t, psbt, s, { ...w, pins }, label);
    }
  }
});

t.test('outputs above the inputs are refused', async (t) => {
  const w = SINGLE;
  const psbt = propose(w, [{ value: 1_500_001n, out: hot.derive(0, 5) }]);
  const s = summarize(psbt, w.pins);
  t.equal(s.feeSats, -1n);
  t.same(s.refusals, ['the outputs (0.01500001 BTC) exceed the inputs (0.01500000 BTC)']);
});

t.test('the fee share: warned only above 1 % of what leaves the cold wallet', async (t) => {
  for (const w of WALLETS) {
    for (const fee of [9_999n, 10_000n, 10_001n, 24_000n]) {
      const outputs: SweepOutput[] = [{ value: 1_000_000n, out: hot.derive(0, 5) }, { value: 500_000n - fee, out: w.cold.derive(1, 3) }];
      const s = summarize(propose(w, outputs), w.pins);
      const share = Number(fee) / 1_000_000;
      t.equal(s.feeShare, share, `${w.name}: fee ${fee}: share`);
      t.same(s.warnings, share > 0.01 ? [`the fee is ${(share * 100).toFixed(2)} % of the amount moved`] : [], `${w.name}: fee ${fee}: ${share > 0.01 ? 'warned' : 'not warned'}`);
      t.same(s.refusals, [], `${w.name}: fee ${fee}: a warning, not a refusal`);
    }
    // A consolidation moves everything it spends: its share is of the whole output.
    const s = summarize(propose(w, [{ value: 1_480_000n, out: w.cold.derive(1, 3) }]), w.pins);
    t.equal(s.movedSats, 1_480_000n, `${w.name}: consolidation moves its whole output`);
    t.same(s.warnings, [`the fee is ${(20_000 / 1_480_000 * 100).toFixed(2)} % of the amount moved`], `${w.name}: consolidation at 1.35 % warned`);
  }
});

// --- what the custodian reads ------------------------------------------------------------------------------

t.test('formatSummary shows every input and output with its note, amounts in BTC and sats, and why it will not sign', async (t) => {
  for (const w of WALLETS) {
    const outputs: SweepOutput[] = [
      { value: 120_000_000n, out: hot.derive(0, 5) },
      { value: 29_000_000n, out: w.cold.derive(1, 3) },
      { value: 997_000n, out: stranger(0, hot.derive(0, 6)) },
    ];
    const parent = fundingTx(4, [{ script: w.cold.derive(0, 0).script, value: 150_000_000n }]);
    const inputs: SweepInput[] = [{ txid: parent.getId(), vout: 0, value: 150_000_000n, prevTx: parent.toBuffer(), out: w.cold.derive(0, 0) }];
    const s = summarize(propose(w, outputs, inputs), w.pins);
    const text = formatSummary(s, w.pins);
    const has = (needle: string, what: string): void => {
      t.ok(text.includes(needle), `${w.name}: shows ${what}: ${needle}`);
    };
    has(`Transaction ${s.txid} on regtest`, 'the txid and network');
    has(`Cold wallet: ${w.label} (descriptor checksum ${w.descriptor.checksum})`, 'the cold wallet');
    has('1.50000000 BTC (150,000,000 sats)', 'the input amount');
    has(`${parent.getId()}:0`, 'the outpoint');
    has('cold, verified: derives from your descriptor at 0/0', 'the input note');
    for (const o of s.outputs) {
      has(o.address, `output ${o.index}'s address`);
      has(o.note, `output ${o.index}'s note`);
    }
    has('1.20000000 BTC (120,000,000 sats)', 'the hot amount');
    has('0.29000000 BTC (29,000,000 sats)', 'the change');
    has('0.00997000 BTC (997,000 sats)', 'the unknown amount');
    has('Fee: 0.00003000 BTC (3,000 sats)', 'the fee');
    has(`~${s.vbytes} vB once signed`, 'the size');
    has('Caps pinned on this signer: fee at most 1,000,000 sats and 200 sat/vB', 'the caps');
    has('WARNINGS:\n  ! 1 output pays an address that is neither', 'the warning');
    has(`This signer will NOT sign it:\n  x output 2 (${outputs[2]!.out.address}): UNKNOWN destination`, 'the refusal');

    const clean = formatSummary(summarize(propose(w), w.pins), w.pins);
    t.notOk(clean.includes('WARNINGS') || clean.includes('NOT sign'), `${w.name}: a clean proposal shows no warnings and no refusal`);
    t.ok(clean.includes('0.00297000 BTC (297,000 sats)  ' + w.cold.derive(1, 3).address), `${w.name}: amount and address on one line`);
  }
});

// --- which seed signs --------------------------------------------------------------------------------------

t.test('seedKeys: the right mnemonic finds its positions in the descriptor', async (t) => {
  const single = seedKeys(masterOf(ABANDON), SINGLE.pins);
  t.equal(single.fingerprint, '73c5da0a');
  t.same(single.accounts.map((a) => [a.position, a.account.neutered().toBase58()]), [[0, SINGLE.descriptor.keys[0]?.xpub]]);
  COSIGNERS.forEach((m, position) => {
    const k = seedKeys(masterOf(m), MULTI.pins);
    t.equal(k.fingerprint, MULTI.descriptor.keys[position]?.fingerprint, `cosigner ${position}: fingerprint`);
    t.same(k.accounts.map((a) => [a.position, a.account.neutered().toBase58()]), [[position, MULTI.descriptor.keys[position]?.xpub]], `cosigner ${position}: its own position only`);
  });
});

t.test('seedKeys refuses a seed that is not a key of the descriptor, naming its fingerprint', async (t) => {
  const cases = [
    { label: 'another mnemonic', w: SINGLE, master: masterOf(LEGAL) },
    { label: 'the right words with a BIP39 passphrase', w: SINGLE, master: masterOf(ABANDON, 'TREZOR') },
    { label: 'the hot wallet\'s seed', w: MULTI, master: masterOf(ZOO) },
    { label: 'a cosigner\'s words with a BIP39 passphrase', w: MULTI, master: masterOf(LETTER, 'TREZOR') },
  ];
  for (const c of cases) {
    const fp = Buffer.from(c.master.fingerprint).toString('hex');
    t.notOk(c.w.descriptor.keys.some((k) => k.fingerprint === fp), `${c.label}: a fingerprint of its own`);
    const err = thrown(() => seedKeys(c.master, c.w.pins));
    t.ok(isCustodyError(err, 'SIGNER_REFUSED'), `${c.label}: SIGNER_REFUSED`);
    t.match(String((err as Error).message), new RegExp(`master fingerprint ${fp} is not a key of the pinned descriptor \\(${c.w.descriptor.keys.map((k) => k.fingerprint).join(', ')}\\)`), `${c.label}: names both fingerprints`);
  }
});

t.test('seedKeys refuses the right fingerprint when the account key differs (another account or a tampered xpub)', async (t) => {
  // The descriptor claims abandon's fingerprint at 84h/1h/0h, but its xpub is abandon's account 1.
  const other = signerAccount(seedOf(ABANDON), 'regtest', 'single', 1);
  const canonical = withChecksum(formatDescriptor('wpkh', 1, [{ fingerprint: '73c5da0a', originPath: '84h/1h/0h', xpub: other.xpub }]));
  const pins = makePins('regtest', canonical, hotAccount.keyOrigin);
  const err = thrown(() => seedKeys(masterOf(ABANDON), pins));
  t.ok(isCustodyError(err, 'SIGNER_REFUSED'), 'SIGNER_REFUSED');
  t.match(String((err as Error).message), /the key this mnemonic derives at 84h\/1h\/0h is not the descriptor's key with fingerprint 73c5da0a/);
});

t.test('2-of-3: each cosigner signs with its own key only; signatures grow 1 then 2 per input and verify', async (t) => {
  const w = MULTI;
  const psbt = propose(w);
  const s = summarize(psbt, w.pins);
  t.same(s.refusals, []);
  const keyAt = (input: number, position: number): string => hex(w.cold.pubkeys(0, input)[position] as Uint8Array);
  const signedBy = (): string[][] => psbt.data.inputs.map((i) => (i.partialSig ?? []).map((p) => hex(p.pubkey)).sort());
  t.same(partialSigs(psbt), [0, 0], 'unsigned');

  t.equal(signSweep(psbt, s, w.pins, seedKeys(masterOf(ABANDON), w.pins)), 2, 'the first cosigner signs both inputs');
  t.same(partialSigs(psbt), [1, 1], 'one signature per input');
  t.same(signedBy(), [[keyAt(0, 0)], [keyAt(1, 0)]], 'with the first cosigner\'s keys at 0/0 and 0/1');

  t.equal(signSweep(psbt, s, w.pins, seedKeys(masterOf(LETTER), w.pins)), 2, 'the third cosigner signs both inputs');
  t.same(partialSigs(psbt), [2, 2], 'two signatures per input');
  t.same(signedBy(), [[keyAt(0, 0), keyAt(0, 2)].sort(), [keyAt(1, 0), keyAt(1, 2)].sort()], 'the first and third cosigners\' keys, never the second\'s');
  for (const i of [0, 1]) {
    t.ok(psbt.validateSignaturesOfInput(i, (pk, msghash, sig) => ecc.verify(msghash, pk, sig)), `input ${i}: every signature verifies`);
    t.same(psbt.data.inputs[i]?.partialSig?.map((p) => p.signature[p.signature.length - 1]), [Transaction.SIGHASH_ALL, Transaction.SIGHASH_ALL], `input ${i}: SIGHASH_ALL`);
  }
  psbt.finalizeAllInputs();
  t.equal(psbt.extractTransaction().ins[0]?.witness.length, 4, 'two of three finalize: empty, two signatures, the script');
});

t.test('single key: the seed signs every input once', async (t) => {
  const w = SINGLE;
  const psbt = propose(w);
  const s = summarize(psbt, w.pins);
  t.equal(signSweep(psbt, s, w.pins, seedKeys(masterOf(ABANDON), w.pins)), 2);
  t.same(psbt.data.inputs.map((i) => (i.partialSig ?? []).map((p) => hex(p.pubkey))), [[hex(w.cold.pubkeys(0, 0)[0] as Uint8Array)], [hex(w.cold.pubkeys(0, 1)[0] as Uint8Array)]]);
  t.ok(psbt.validateSignaturesOfInput(0, (pk, msghash, sig) => ecc.verify(msghash, pk, sig)) && psbt.validateSignaturesOfInput(1, (pk, msghash, sig) => ecc.verify(msghash, pk, sig)), 'the signatures verify');
});
