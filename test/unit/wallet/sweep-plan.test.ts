/**
 * Cold sweep plans (wallet/sweep-plan.ts): which coins, the fee and the change, to the satoshi, for a
 * single-key and a 2-of-3 multisig cold wallet; and the size model behind them (wallet/psbt.ts) against
 * real transactions: proposed with buildSweepPsbt, signed by the offline signer with BIP39's published
 * test mnemonics, finalized by finalizeSweep, and checked by bcoin's script interpreter.
 */
import t, { type Test } from 'tap';
import { Transaction } from 'bitcoinjs-lib';
import { isCustodyError, type CustodyError, type ErrorCode } from '../../../src/errors.js';
import { seedKeys, signSweep, summarize, type SignerPins } from '../../../src/signer/offline.js';
import { makePins } from '../../../src/signer/pins.js';
import { combineCosigners, signerAccount, singleKeyDescriptor } from '../../../src/signer/setup.js';
import { Deriver } from '../../../src/wallet/derive.js';
import { parseDescriptor, type ColdDescriptor } from '../../../src/wallet/descriptor.js';
import { hotAccountFromSeed } from '../../../src/wallet/hot-account.js';
import { bip32, bip32Network } from '../../../src/wallet/keys.js';
import { mnemonicToSeed, normalizeMnemonic } from '../../../src/wallet/mnemonic.js';
import { buildSweepPsbt, coldInputVbytes, finalizeSweep, inputSigners, signaturesOf, sweepVbytes, unsignedTx, type SweepInput, type VerifiedSignature } from '../../../src/wallet/psbt.js';
import { planSweep, type PlanCoin, type SweepPlan, type SweepPlanRequest } from '../../../src/wallet/sweep-plan.js';
import { bcoinVerifies } from '../../support/bcoin-verify.js';
import { thrown } from '../../support/vectors.js';


// --- wallets from BIP39's published test mnemonics (never real funds) --------------------------------
const ABANDON = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
const LEGAL = 'legal winner thank year wave sausage worth useful legal winner thank yellow';
const LETTER = 'letter advice cage absurd amount doctor acoustic avoid letter advice cage above';
const ZOO = 'zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong';

const seedOf = (m: string): Uint8Array => mnemonicToSeed(normalizeMnemonic(Buffer.from(m)));
const masterOf = (m: string) => bip32.fromSeed(seedOf(m), bip32Network('regtest'));

const hotAccount = hotAccountFromSeed(seedOf(ZOO), 'regtest');
const hot = new Deriver(parseDescriptor(`wpkh(${hotAccount.keyOrigin}/<0;1>/*)`, { network: 'regtest' }), 'regtest');

interface Wallet {
  readonly name: string;
  readonly descriptor: ColdDescriptor;
  readonly cold: Deriver;
  readonly pins: SignerPins;
  /** The cosigners that sign in the real-size test (a threshold of them). */
  readonly signers: readonly string[];
  /** vbytes of one input, derived by hand from BIP141 (72-byte signatures with their sighash byte). */
  readonly inputVbytes: number;
  /** The change script's vbytes and Bitcoin Core dust threshold. */
  readonly changeVbytes: number;
  readonly changeDust: bigint;
}

function wallet(name: string, canonical: string, signers: readonly string[], inputVbytes: number, changeVbytes: number, changeDust: bigint): Wallet {
  const descriptor = parseDescriptor(canonical, { network: 'regtest' });
  return { name, descriptor, cold: new Deriver(descriptor, 'regtest'), pins: makePins('regtest', canonical, hotAccount.keyOrigin), signers, inputVbytes, changeVbytes, changeDust };
}

const SINGLE = wallet(
  'wpkh',
  singleKeyDescriptor(signerAccount(seedOf(ABANDON), 'regtest', 'single', 0)),
  [ABANDON],
  // 41 outside the witness (outpoint 36, empty scriptSig 1, sequence 4); witness: count 1, signature 1+72, key 1+33 = 108 WU → 27
  68,
  31,
  294n,
);
const MULTI = wallet(
  '2-of-3 wsh(sortedmulti)',
  combineCosigners(2, [ABANDON, LEGAL, LETTER].map((m) => signerAccount(seedOf(m), 'regtest', 'multisig', 0).keyOrigin), 'regtest').canonical,
  [ABANDON, LETTER],
  // 41 + ceil((count 1 + empty 1 + 2 × (1+72) + script length 1 + script 3+3×34) / 4) = 41 + ceil(254 / 4)
  105,
  43,
  330n,
);
const WALLETS = [SINGLE, MULTI];

/** The refill destination: a hot P2WPKH address (31 vbytes as an output, dust 294). */
const HOT_SCRIPT = hot.derive(0, 0).script;
const HOT_VBYTES = 31;
const OVERHEAD = 11;

const feeAt = (vbytes: number, rate: number): bigint => BigInt(Math.ceil(vbytes * rate));
const coinsOf = (values: readonly bigint[]): PlanCoin[] => values.map((value, i) => ({ id: `c${i}`, value }));
const total = (coins: readonly PlanCoin[]): bigint => coins.reduce((a, c) => a + c.value, 0n);

type RefillRequest = Extract<SweepPlanRequest, { kind: 'refill' }>;
type ConsolidateRequest = Extract<SweepPlanRequest, { kind: 'consolidate' }>;

function refill(w: Wallet, values: readonly bigint[], amountSats: bigint, feeRate: number, maxFeeSats = 10_000_000n): RefillRequest {
  return { kind: 'refill', coins: coinsOf(values), descriptor: w.descriptor, feeRate, maxFeeSats, amountSats, destination: HOT_SCRIPT, changeScript: w.cold.derive(1, 0).script };
}

function consolidate(w: Wallet, values: readonly bigint[], maxInputs: number, feeRate: number, maxFeeSats = 10_000_000n): ConsolidateRequest {
  return { kind: 'consolidate', coins: coinsOf(values), descriptor: w.descriptor, feeRate, maxFeeSats, maxInputs, destination: w.cold.derive(1, 0).script };
}

/** The CustodyError `fn` throws with `code`; fails the test (and returns undefined) otherwise. */
function refusal(t: Test, fn: () => unknown, code: ErrorCode, label: string): CustodyError | undefined {
  const err = thrown(fn);
  if (!isCustodyError(err, code)) {
    t.fail(`${label}: expected ${code}, got ${err === undefined ? 'a plan' : String(err)}`);
    return undefined;
  }
  t.pass(`${label}: ${code}`);
  return err;
}

/** Inputs pay the outputs and the fee to the satoshi. */
function balances(t: Test, plan: SweepPlan, amountSats: bigint, label: string): void {
  t.equal(total(plan.coins), amountSats + plan.feeSats + (plan.changeSats ?? 0n), `${label}: inputs = outputs + fee`);
}

// --- sizes --------------------------------------------------------------------------------------------

t.test('coldInputVbytes and sweepVbytes follow BIP141 weights for both descriptor kinds', async (t) => {
  for (const w of WALLETS) {
    t.equal(coldInputVbytes(w.descriptor), w.inputVbytes, `${w.name}: one input`);
    for (const n of [1, 2, 7]) {
      t.equal(sweepVbytes(w.descriptor, n, [HOT_SCRIPT, w.cold.derive(1, 0).script]), OVERHEAD + n * w.inputVbytes + HOT_VBYTES + w.changeVbytes, `${w.name}: ${n} inputs, hot and change outputs`);
      t.equal(sweepVbytes(w.descriptor, n, [HOT_SCRIPT]), OVERHEAD + n * w.inputVbytes + HOT_VBYTES, `${w.name}: ${n} inputs, one output`);
    }
  }
  // 3-of-5: 41 + ceil((1 + 1 + 3×73 + 1 + 173) / 4) = 41 + 99
  const five = [ABANDON, LEGAL, LETTER, ZOO, 'legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal will'];
  const threeOfFive = combineCosigners(3, five.map((m) => signerAccount(seedOf(m), 'regtest', 'multisig', 0).keyOrigin), 'regtest');
  t.equal(coldInputVbytes(threeOfFive), 140, '3-of-5');
});

// --- refill --------------------------------------------------------------------------------------------

t.test('refill takes the largest coins first and stops as soon as they pay the amount and the fee', async (t) => {
  const values = [100_000n, 5_000_000n, 300_000n, 2_000_000n, 1_000_000n];
  const cases: Array<{ amount: bigint; ids: string[] }> = [
    { amount: 4_000_000n, ids: ['c1'] },
    { amount: 6_000_000n, ids: ['c1', 'c3'] },
    { amount: 7_500_000n, ids: ['c1', 'c3', 'c4'] },
    { amount: 8_200_000n, ids: ['c1', 'c3', 'c4', 'c2'] },
  ];
  for (const w of WALLETS) {
    for (const c of cases) {
      const plan = planSweep(refill(w, values, c.amount, 3));
      const label = `${w.name}, ${c.amount} sats`;
      t.same(plan.coins.map((k) => k.id), c.ids, `${label}: coins`);
      t.not(plan.changeSats, null, `${label}: with change`);
      t.equal(plan.vbytes, OVERHEAD + c.ids.length * w.inputVbytes + HOT_VBYTES + w.changeVbytes, `${label}: vbytes with change`);
      t.equal(plan.feeSats, feeAt(plan.vbytes, 3), `${label}: fee = ceil(vbytes × rate)`);
      balances(t, plan, c.amount, label);
    }
  }
});

t.test('refill change: kept at the dust threshold, dropped into the fee one satoshi below it', async (t) => {
  const amount = 1_000_000n;
  for (const w of WALLETS) {
    for (const rate of [1, 2.5, 7.3]) {
      const withChange = OVERHEAD + w.inputVbytes + HOT_VBYTES + w.changeVbytes;
      const without = OVERHEAD + w.inputVbytes + HOT_VBYTES;
      const label = `${w.name} at ${rate} sat/vB`;

      const atDust = planSweep(refill(w, [amount + feeAt(withChange, rate) + w.changeDust], amount, rate));
      t.equal(atDust.changeSats, w.changeDust, `${label}: change of exactly ${w.changeDust} is kept`);
      t.equal(atDust.feeSats, feeAt(withChange, rate), `${label}: fee = ceil(${withChange} × ${rate})`);
      t.equal(atDust.vbytes, withChange);
      balances(t, atDust, amount, `${label}, at dust`);

      const coin = amount + feeAt(withChange, rate) + w.changeDust - 1n;
      const below = planSweep(refill(w, [coin], amount, rate));
      t.equal(below.changeSats, null, `${label}: change of ${w.changeDust - 1n} is dropped`);
      t.equal(below.feeSats, coin - amount, `${label}: the would-be change goes to the fee`);
      t.equal(below.vbytes, without, `${label}: sized without the change output`);
      t.ok(below.feeSats >= feeAt(without, rate), `${label}: still at least the rate`);
      balances(t, below, amount, `${label}, below dust`);

      const exact = planSweep(refill(w, [amount + feeAt(without, rate)], amount, rate));
      t.equal(exact.changeSats, null, `${label}: exactly amount + fee, no change`);
      t.equal(exact.feeSats, feeAt(without, rate));
      balances(t, exact, amount, `${label}, exact`);
    }
  }
});

t.test('refill short of funds: SWEEP_FUNDS with what was needed and what there is', async (t) => {
  const amount = 1_000_000n;
  for (const w of WALLETS) {
    const rate = 4;
    const cases: Array<{ values: bigint[]; label: string }> = [
      { values: [amount + feeAt(OVERHEAD + w.inputVbytes + HOT_VBYTES, rate) - 1n], label: 'one coin a satoshi short of amount + fee' },
      { values: [600_000n, 400_000n], label: 'two coins that make the amount but not the fee' },
      { values: [], label: 'no coins at all' },
    ];
    for (const c of cases) {
      const n = Math.max(1, c.values.length);
      const err = refusal(t, () => planSweep(refill(w, c.values, amount, rate)), 'SWEEP_FUNDS', `${w.name}: ${c.label}`);
      if (err === undefined) continue;
      const available = c.values.reduce((a, v) => a + v, 0n);
      t.equal(err.details?.['availableSats'], Number(available), `${w.name}: ${c.label}: availableSats`);
      t.equal(err.details?.['neededSats'], Number(amount + feeAt(OVERHEAD + n * w.inputVbytes + HOT_VBYTES, rate)), `${w.name}: ${c.label}: neededSats`);
      t.equal(err.details?.['field'], 'amountSats');
      t.match(err.message, new RegExp(`has ${available} sats in ${c.values.length} confirmed coin`));
    }
  }
});

t.test('refill below the destination\'s dust limit: AMOUNT_INVALID; at the limit it plans', async (t) => {
  for (const w of WALLETS) {
    const coins = [5_000_000n];
    const err = refusal(t, () => planSweep(refill(w, coins, 293n, 1)), 'AMOUNT_INVALID', `${w.name}: 293 sats to P2WPKH`);
    t.match(err?.message ?? '', /amountSats: 293 is below the dust limit of 294 sats/);
    t.equal(planSweep(refill(w, coins, 294n, 1)).changeSats !== null, true, `${w.name}: 294 sats to P2WPKH plans`);
    // A P2WSH destination (here the multisig's own receive script) has the 330-sat limit.
    const toWsh = { ...refill(w, coins, 329n, 1), destination: MULTI.cold.derive(0, 0).script };
    refusal(t, () => planSweep(toWsh), 'AMOUNT_INVALID', `${w.name}: 329 sats to P2WSH`);
    t.equal(planSweep({ ...toWsh, amountSats: 330n }).coins.length, 1, `${w.name}: 330 sats to P2WSH plans`);
  }
});

t.test('a fee above maxFeeSats: INVALID_ARGUMENT naming feeRate; at the cap it plans', async (t) => {
  for (const w of WALLETS) {
    const rate = 20;
    const fee = feeAt(OVERHEAD + 2 * w.inputVbytes + HOT_VBYTES + w.changeVbytes, rate);
    const values = [1_000_000n, 1_000_000n];
    t.equal(planSweep(refill(w, values, 1_500_000n, rate, fee)).feeSats, fee, `${w.name}: refill with a fee exactly at the cap`);
    const err = refusal(t, () => planSweep(refill(w, values, 1_500_000n, rate, fee - 1n)), 'INVALID_ARGUMENT', `${w.name}: refill one satoshi over the cap`);
    t.match(err?.message ?? '', new RegExp(`^feeRate: a fee of ${fee} sats \\(2 inputs at ${rate} sat/vB\\) is above sweeps.maxFeeSats ${fee - 1n}`));
    t.equal(err?.details?.['field'], 'feeRate');
    t.equal(err?.details?.['feeSats'], Number(fee));

    // Dust dropped into the fee counts against the cap too: the cap is on what the transaction pays.
    const without = feeAt(OVERHEAD + w.inputVbytes + HOT_VBYTES, rate);
    const withChange = feeAt(OVERHEAD + w.inputVbytes + HOT_VBYTES + w.changeVbytes, rate);
    const coin = 1_000_000n + withChange + w.changeDust - 1n;
    refusal(t, () => planSweep(refill(w, [coin], 1_000_000n, rate, without)), 'INVALID_ARGUMENT', `${w.name}: dust dropped into the fee crosses the cap`);

    const cFee = feeAt(OVERHEAD + 3 * w.inputVbytes + w.changeVbytes, rate);
    t.equal(planSweep(consolidate(w, [10_000n, 20_000n, 30_000n], 5, rate, cFee)).feeSats, cFee, `${w.name}: consolidation at the cap`);
    refusal(t, () => planSweep(consolidate(w, [10_000n, 20_000n, 30_000n], 5, rate, cFee - 1n)), 'INVALID_ARGUMENT', `${w.name}: consolidation over the cap`);
  }
});

// --- consolidate ----------------------------------------------------------------------------------------

t.test('consolidate takes the smallest coins first, up to maxInputs, into one output of sum − fee', async (t) => {
  const values = [5_000_000n, 100_000n, 300_000n, 2_000_000n, 200_000n];
  const cases: Array<{ maxInputs: number; ids: string[] }> = [
    { maxInputs: 2, ids: ['c1', 'c4'] },
    { maxInputs: 3, ids: ['c1', 'c4', 'c2'] },
    { maxInputs: 5, ids: ['c1', 'c4', 'c2', 'c3', 'c0'] },
    { maxInputs: 50, ids: ['c1', 'c4', 'c2', 'c3', 'c0'] },
  ];
  for (const w of WALLETS) {
    for (const c of cases) {
      const rate = 1.7;
      const plan = planSweep(consolidate(w, values, c.maxInputs, rate));
      const label = `${w.name}, maxInputs ${c.maxInputs}`;
      t.same(plan.coins.map((k) => k.id), c.ids, `${label}: coins`);
      const vbytes = OVERHEAD + c.ids.length * w.inputVbytes + w.changeVbytes;
      t.equal(plan.vbytes, vbytes, `${label}: vbytes`);
      t.equal(plan.feeSats, feeAt(vbytes, rate), `${label}: fee = ceil(vbytes × rate)`);
      t.equal(plan.changeSats, total(plan.coins) - plan.feeSats, `${label}: one output of sum − fee`);
      balances(t, plan, 0n, label);
    }
  }
});

t.test('consolidate needs at least two coins that can pay their fee', async (t) => {
  for (const w of WALLETS) {
    for (const c of [
      { values: [], maxInputs: 10, label: 'no coins' },
      { values: [1_000_000n], maxInputs: 10, label: 'one coin' },
      { values: [1_000_000n, 2_000_000n, 3_000_000n], maxInputs: 1, label: 'maxInputs 1' },
    ]) {
      const err = refusal(t, () => planSweep(consolidate(w, c.values, c.maxInputs, 2)), 'SWEEP_FUNDS', `${w.name}: ${c.label}`);
      t.match(err?.message ?? '', /at least 2 are needed/, `${w.name}: ${c.label}: says why`);
    }
    const fee = feeAt(OVERHEAD + 2 * w.inputVbytes + w.changeVbytes, 2);
    // Two coins worth the fee and one satoshi short of dust on top: refused; with that satoshi: planned.
    const short = [fee, w.changeDust - 1n];
    const err = refusal(t, () => planSweep(consolidate(w, short, 10, 2)), 'SWEEP_FUNDS', `${w.name}: coins that cannot pay the fee`);
    t.match(err?.message ?? '', new RegExp(`cannot pay a fee of ${fee} sats`));
    t.equal(planSweep(consolidate(w, [fee, w.changeDust], 10, 2)).changeSats, w.changeDust, `${w.name}: an output of exactly dust is planned`);
  }
});

t.test('a feeRate that is not a positive finite number is refused for both kinds', async (t) => {
  for (const rate of [0, -0, -1, -0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    for (const req of [refill(SINGLE, [5_000_000n], 1_000_000n, rate), consolidate(MULTI, [5_000_000n, 1_000_000n], 5, rate)]) {
      const err = refusal(t, () => planSweep(req), 'INVALID_ARGUMENT', `${req.kind} at ${rate} sat/vB`);
      t.equal(err?.details?.['field'], 'feeRate');
      t.match(err?.message ?? '', /^feeRate: .* must be a positive number of sat\/vB$/);
    }
  }
  t.equal(planSweep(refill(SINGLE, [5_000_000n], 1_000_000n, 0.1)).feeSats, feeAt(OVERHEAD + 68 + 31 + 31, 0.1), 'a fractional rate below 1 is a rate');
});

// --- the size model against real signed transactions ------------------------------------------------

/** A funding transaction paying `value` to each script: a fake parent, as nonWitnessUtxo needs only its bytes. */
function fundingTx(tag: number, outs: ReadonlyArray<{ script: Uint8Array; value: bigint }>): Transaction {
  const tx = new Transaction();
  tx.version = 2;
  tx.addInput(new Uint8Array(32).fill(tag), tag, 0xfffffffd);
  for (const o of outs) tx.addOutput(o.script, o.value);
  return tx;
}

t.test('the estimate is never below the signed transaction\'s vsize, and at most 2 vbytes per input above it', async (t) => {
  const rate = 5;
  for (const w of WALLETS) {
    for (const n of [1, 2, 3, 5]) {
      const label = `${w.name}, ${n} input${n === 1 ? '' : 's'}`;
      // n coins of 1,000,000 at receive indexes 0..n-1, spread over two funding transactions.
      const outs = Array.from({ length: n }, (_, i) => w.cold.derive(0, i));
      const parents = [0, 1].map((k) => fundingTx(k + 1, outs.filter((_, i) => i % 2 === k).map((o) => ({ script: o.script, value: 1_000_000n }))));
      const inputs: SweepInput[] = outs.map((out, i) => {
        const parent = parents[i % 2] as Transaction;
        return { txid: parent.getId(), vout: Math.floor(i / 2), value: 1_000_000n, prevTx: parent.toBuffer(), out };
      });
      const amount = BigInt(n) * 1_000_000n - 60_000n;
      const plan = planSweep({ ...refill(w, inputs.map((i) => i.value), amount, rate), changeScript: w.cold.derive(1, 4).script });
      t.equal(plan.coins.length, n, `${label}: the plan spends every coin`);
      t.not(plan.changeSats, null, `${label}: with change`);
      const chosen = plan.coins.map((c) => inputs[Number(c.id.slice(1))] as SweepInput);
      const proposal = buildSweepPsbt(chosen, [
        { value: amount, out: hot.derive(0, 0) },
        { value: plan.changeSats ?? 0n, out: w.cold.derive(1, 4) },
      ], w.descriptor.keys);

      // Each cosigner signs its own copy, as on separate machines; the daemon takes verified signatures only.
      const tx = unsignedTx(proposal);
      const signers = chosen.map((i) => inputSigners(w.descriptor, i));
      const sigs: VerifiedSignature[][] = chosen.map(() => []);
      for (const mnemonic of w.signers) {
        const copy = proposal.clone();
        const summary = summarize(copy, w.pins);
        t.same(summary.refusals, [], `${label}: the signer accepts the proposal`);
        t.equal(signSweep(copy, summary, w.pins, seedKeys(masterOf(mnemonic), w.pins)), n, `${label}: one signature per input`);
        chosen.forEach((_, i) => (sigs[i] as VerifiedSignature[]).push(...signaturesOf(copy, i, tx, signers[i]!, 'signed copy')));
      }
      t.same(sigs.map((s) => s.length), chosen.map(() => w.signers.length), `${label}: every signature verifies`);
      const final = finalizeSweep(proposal, sigs, signers);

      const estimate = sweepVbytes(w.descriptor, n, final.outs.map((o) => o.script));
      const real = final.virtualSize();
      t.equal(estimate, plan.vbytes, `${label}: the plan's vbytes are the estimate`);
      t.ok(estimate >= real, `${label}: estimate ${estimate} ≥ real ${real}`);
      t.ok(estimate - real <= 2 * n, `${label}: estimate ${estimate} at most ${2 * n} above real ${real}`);
      t.ok(Number(plan.feeSats) / real >= rate, `${label}: the real fee rate is at least ${rate} sat/vB`);
      t.equal(chosen.reduce((a, i) => a + i.value, 0n), final.outs.reduce((a, o) => a + o.value, 0n) + plan.feeSats, `${label}: inputs = outputs + fee`);
      t.ok(final.ins.every((i) => i.witness.length === (w.descriptor.kind === 'wpkh' ? 2 : 4)), `${label}: witness stacks of the descriptor's shape`);

      t.ok(bcoinVerifies(final, chosen.map((i) => ({ txid: i.txid, vout: i.vout, script: i.out.script, value: i.value }))), `${label}: bcoin verifies every input`);
    }
  }
});
