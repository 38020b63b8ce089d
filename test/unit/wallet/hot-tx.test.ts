/**
 * Hot-wallet transactions: signatures checked by our verifier and, independently, by bcoin's script
 * interpreter (a dev dependency; it validates P2WPKH spends with BIP143 sighashes); the size estimate
 * against real signed transactions with 71- and 72-byte signatures; and BIP125 replacements.
 * (bcoin's own `isRBF()` is not used: it answers false for every version-2 transaction, a bcoin quirk.)
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { payments, Transaction } from 'bitcoinjs-lib';
import { hotAccountFromSeed } from '../../../src/wallet/hot-account.js';
import { bip32, bip32Network, type BIP32Interface } from '../../../src/wallet/keys.js';
import { estimateVbytes, INCREMENTAL_RELAY_SAT_PER_VB, RBF_SEQUENCE, replaceByFee, signHotTransaction, verifyHotTransaction, type HotCoin, type TxOutputSpec } from '../../../src/wallet/hot-tx.js';
import { isCustodyError } from '../../../src/errors.js';
import { bcoinVerifies } from '../../support/bcoin-verify.js';
import { hex, thrown } from '../../support/vectors.js';

// --- the hot account: a random seed, the private account node derived as keystore/hot-key.ts does ----
const seed = randomBytes(32);
const hot = hotAccountFromSeed(seed, 'regtest');
const account: BIP32Interface = bip32.fromSeed(seed, bip32Network('regtest')).deriveHardened(84).deriveHardened(1).deriveHardened(0);
/** Public side only: what the keystore records, so scripts here do not come from the signing node. */
const xpub = bip32.fromBase58(hot.xpub, bip32Network('regtest'));
const coinScript = (c: Pick<HotCoin, 'chain' | 'index'>): Uint8Array => payments.p2wpkh({ pubkey: xpub.derive(c.chain).derive(c.index).publicKey }).output as Uint8Array;

const P2WPKH = Buffer.from('0014' + '11'.repeat(20), 'hex');
const P2WSH = Buffer.from('0020' + '22'.repeat(32), 'hex');
const P2TR = Buffer.from('5120' + '33'.repeat(32), 'hex');
const P2PKH = Buffer.from('76a914' + '44'.repeat(20) + '88ac', 'hex');
const P2SH = Buffer.from('a914' + '55'.repeat(20) + '87', 'hex');
const SCRIPTS = [P2WPKH, P2WSH, P2TR, P2PKH, P2SH];

let nextIndex = 0;
function coin(value: bigint, chain: 0 | 1 = 0): HotCoin {
  return { txid: randomBytes(32).toString('hex'), vout: nextIndex % 4, value, chain, index: nextIndex++ };
}

/** bcoin's verdict on every input of `tx` spending `coins` (with the scripts derived from the xpub). */
function bcoinVerifiesHot(tx: Transaction, coins: readonly HotCoin[]): boolean {
  return bcoinVerifies(tx, coins.map((c) => ({ txid: c.txid, vout: c.vout, script: coinScript(c), value: c.value })));
}

const feeOf = (tx: Transaction, coins: readonly HotCoin[]): bigint => coins.reduce((a, c) => a + c.value, 0n) - tx.outs.reduce((a, o) => a + o.value, 0n);

t.test('the account node used for signing is the hot account hotAccountFromSeed publishes (m/84h/1h/0h)', async (t) => {
  t.equal(account.neutered().toBase58(), hot.xpub);
  t.equal(hot.path, '84h/1h/0h');
});

t.test('signHotTransaction: version 2, the coins in order with RBF sequences, the outputs as given, each input a valid P2WPKH spend', async (t) => {
  for (const n of [1, 2, 3]) {
    const coins = Array.from({ length: n }, (_, i) => coin(50_000n + BigInt(i), (i % 2) as 0 | 1));
    const outputs: TxOutputSpec[] = [{ script: P2WSH, value: 30_000n }, { script: P2PKH, value: 10_000n }];
    const tx = signHotTransaction(account, coins, outputs);
    t.equal(tx.version, 2);
    t.same(tx.ins.map((i) => [Buffer.from(i.hash).reverse().toString('hex'), i.index, i.sequence]), coins.map((c) => [c.txid, c.vout, RBF_SEQUENCE]), `${n} inputs: outpoints and sequence`);
    t.same(tx.outs.map((o) => [hex(o.script), o.value]), outputs.map((o) => [hex(o.script), o.value]));
    tx.ins.forEach((input, i) => {
      const c = coins[i] as HotCoin;
      t.equal(input.witness.length, 2, 'witness: signature and pubkey');
      t.equal(hex(input.witness[1] as Uint8Array), hex(xpub.derive(c.chain).derive(c.index).publicKey), `input ${i} is signed by the key of ${c.chain}/${c.index}`);
      t.equal(input.script.length, 0, 'native segwit: empty scriptSig');
    });
    t.ok(verifyHotTransaction(tx, coins), 'our verifier accepts it');
    t.ok(bcoinVerifiesHot(tx, coins), "bcoin's script interpreter accepts it");
  }
});

t.test('signHotTransaction: a tampered output or a wrong coin value fails verification', async (t) => {
  const coins = [coin(80_000n), coin(20_000n, 1)];
  const tx = signHotTransaction(account, coins, [{ script: P2TR, value: 90_000n }, { script: P2WPKH, value: 9_000n }]);
  t.ok(verifyHotTransaction(tx, coins) && bcoinVerifiesHot(tx, coins), 'the untouched transaction verifies');

  const moreValue = Transaction.fromBuffer(tx.toBuffer());
  (moreValue.outs[1] as { value: bigint }).value += 1n;
  t.notOk(verifyHotTransaction(moreValue, coins), 'one sat more to an output: refused by our verifier');
  t.notOk(bcoinVerifiesHot(moreValue, coins), 'and by bcoin');

  const otherScript = Transaction.fromBuffer(tx.toBuffer());
  (otherScript.outs[0] as { script: Uint8Array }).script = P2WSH;
  t.notOk(verifyHotTransaction(otherScript, coins), 'another destination script: refused');

  const wrongValue = [coins[0] as HotCoin, { ...(coins[1] as HotCoin), value: 20_001n }];
  t.notOk(verifyHotTransaction(tx, wrongValue), 'a coin claimed one sat larger than it was signed for: refused (BIP143 commits to the value)');
  t.notOk(bcoinVerifiesHot(tx, wrongValue), 'and by bcoin');

  const swapped = [coins[1] as HotCoin, coins[0] as HotCoin];
  t.notOk(verifyHotTransaction(tx, swapped), 'coins in the wrong order: refused');

  // Given the hot account xpub, the guard binds each witness key to its coin's derivation; and it checks
  // that the transaction spends exactly the coins given.
  const stranger = bip32.fromSeed(randomBytes(32), bip32Network('regtest')).deriveHardened(84).deriveHardened(1).deriveHardened(0);
  const foreign = signHotTransaction(stranger, coins, [{ script: P2TR, value: 90_000n }]);
  t.notOk(bcoinVerifiesHot(foreign, coins), 'signed by another wallet: bcoin refuses it (wrong key for the coin script)');
  t.notOk(verifyHotTransaction(foreign, coins, account.neutered()), 'and so does our guard, given the account xpub');
  t.ok(verifyHotTransaction(tx, coins, account.neutered()), 'our own transaction passes with the xpub');
  t.notOk(verifyHotTransaction(tx, []), 'no coins given for two inputs: refused, not vacuously true');
  t.notOk(verifyHotTransaction(tx, [coins[0] as HotCoin]), 'fewer coins than inputs: refused');
});

t.test('signHotTransaction refuses a transaction without inputs', async (t) => {
  const err = thrown(() => signHotTransaction(account, [], [{ script: P2WPKH, value: 1_000n }]));
  t.ok(isCustodyError(err, 'INTERNAL'));
});

t.test('estimateVbytes is never below the real vsize and at most 2 vbytes per input above it, for 1-5 inputs and 1-3 outputs', async (t) => {
  const sigLengths = new Set<number>();
  let cases = 0;
  for (let n = 1; n <= 5; n++) {
    for (let m = 1; m <= 3; m++) {
      for (let rep = 0; rep < 4; rep++) {
        const coins = Array.from({ length: n }, () => coin(100_000n));
        const outputs = Array.from({ length: m }, (_, j) => ({ script: SCRIPTS[(n + j + rep) % SCRIPTS.length] as Uint8Array, value: 1_000n }));
        const tx = signHotTransaction(account, coins, outputs);
        const est = estimateVbytes(n, outputs.map((o) => o.script));
        const real = tx.virtualSize();
        const sigs = tx.ins.map((i) => (i.witness[0] as Uint8Array).length);
        sigs.forEach((s) => sigLengths.add(s));
        if (!(real <= est && est <= real + 2 * n)) t.fail(`${n} in, ${m} out: estimate ${est}, real ${real}`);
        // Exactly: the estimate is the weight with 72-byte signatures (plus the half vbyte of segwit marker
        // and flag rounded up); each shorter signature takes its missing bytes off the witness (1 wu each).
        const expectedWeight = 4 * est - 2 - sigs.reduce((a, s) => a + (72 - s), 0);
        if (tx.weight() !== expectedWeight) t.fail(`${n} in, ${m} out: weight ${tx.weight()}, expected ${expectedWeight} from signatures ${sigs.join(',')}`);
        cases++;
      }
    }
  }
  t.equal(cases, 60);
  t.pass('every case within bounds and of the exact weight');
  // Not low-R grinding (DESIGN §11): about half the signatures are 71 bytes, so both sizes were exercised.
  t.ok(sigLengths.has(71) && sigLengths.has(72), `signature lengths seen: ${[...sigLengths].sort().join(', ')}`);
});

// --- BIP125 replacement --------------------------------------------------------------------------------

interface Original {
  coins: HotCoin[];
  payments: TxOutputSpec[];
  tx: Transaction;
  changeVout: number;
}

/** A withdrawal-like transaction: two payments and change to hot chain 1, at `rate` sat/vB. */
function original(rate: number, changeSats?: bigint): Original {
  const changeScript = coinScript({ chain: 1, index: 7 });
  const paymentsOut: TxOutputSpec[] = [{ script: P2WSH, value: 40_000n }, { script: P2PKH, value: 25_000n }];
  const est = estimateVbytes(2, [...paymentsOut.map((o) => o.script), changeScript]);
  const fee = BigInt(Math.ceil(est * rate));
  const change = changeSats ?? 30_000n;
  const total = 65_000n + change + fee;
  const coins = [coin(total - 40_000n), coin(40_000n, 1)];
  const tx = signHotTransaction(account, coins, [...paymentsOut, { script: changeScript, value: change }]);
  return { coins, payments: paymentsOut, tx, changeVout: 2 };
}

t.test('replaceByFee: same inputs, same payment outputs, change reduced by exactly the fee increase, higher fee at the new rate', async (t) => {
  const o = original(2);
  const r = replaceByFee(account, o.coins, o.tx, o.changeVout, 10);
  const tx = r.tx;
  t.not(tx.getId(), o.tx.getId(), 'a different transaction');
  t.same(tx.ins.map((i) => [hex(i.hash), i.index]), o.tx.ins.map((i) => [hex(i.hash), i.index]), 'every input kept (hash, index, order)');
  t.ok(tx.ins.every((i) => i.sequence === RBF_SEQUENCE), 'every input signals replaceability again');
  t.equal(tx.outs.length, o.tx.outs.length);
  for (let i = 0; i < o.payments.length; i++) {
    t.equal(hex(tx.outs[i]?.script as Uint8Array), hex(o.tx.outs[i]?.script as Uint8Array), `payment ${i}: same script`);
    t.equal(tx.outs[i]?.value, o.tx.outs[i]?.value, `payment ${i}: same value`);
  }
  t.equal(hex(tx.outs[2]?.script as Uint8Array), hex(o.tx.outs[2]?.script as Uint8Array), 'change goes to the same script');
  const oldFee = feeOf(o.tx, o.coins);
  const newFee = feeOf(tx, o.coins);
  t.equal((o.tx.outs[2]?.value as bigint) - (tx.outs[2]?.value as bigint), newFee - oldFee, 'change reduced by exactly the fee increase');
  t.equal(r.feeSats, newFee, 'the reported fee is the real one');
  t.equal(r.originalFeeSats, oldFee);
  t.equal(r.change.valueSats, tx.outs[2]?.value);
  t.ok(newFee > oldFee, `BIP125 rule 3: ${newFee} > ${oldFee}`);
  t.ok(newFee - oldFee >= BigInt(o.tx.virtualSize() * INCREMENTAL_RELAY_SAT_PER_VB), `rule 4: increase ${newFee - oldFee} covers the original's ${o.tx.virtualSize()} vbytes at 1 sat/vB`);
  t.ok(newFee - oldFee >= BigInt(tx.virtualSize()), "and the replacement's own size");
  t.ok(Number(newFee) >= tx.virtualSize() * 10, `pays at least 10 sat/vB on its real size (${newFee} for ${tx.virtualSize()} vB)`);
  t.ok(verifyHotTransaction(tx, o.coins), 'signatures valid by our verifier');
  t.ok(bcoinVerifiesHot(tx, o.coins), "and by bcoin's script interpreter");
});

t.test('replaceByFee at no higher rate still meets rule 4 (the increase pays for the replacement at the incremental rate)', async (t) => {
  const o = original(5);
  for (const rate of [1, 5]) {
    const r = replaceByFee(account, o.coins, o.tx, o.changeVout, rate);
    const delta = feeOf(r.tx, o.coins) - feeOf(o.tx, o.coins);
    t.ok(delta >= BigInt(o.tx.virtualSize()) && delta >= BigInt(r.tx.virtualSize()), `at ${rate} sat/vB the increase is ${delta} (sizes ${o.tx.virtualSize()} and ${r.tx.virtualSize()})`);
    t.ok(delta <= BigInt(r.vbytes), 'and no more than the estimated size: rule 4 decides, nothing is overpaid');
    t.ok(verifyHotTransaction(r.tx, o.coins) && bcoinVerifiesHot(r.tx, o.coins));
  }
  const higher = replaceByFee(account, o.coins, o.tx, o.changeVout, 5, { incrementalRelayFeeRate: 3 });
  t.ok(feeOf(higher.tx, o.coins) - feeOf(o.tx, o.coins) >= BigInt(o.tx.virtualSize() * 3), 'a node with a higher incremental relay fee is honoured');
});

t.test('replaceByFee of a replacement bumps again; evicted descendants are paid for too (rule 3 over all originals)', async (t) => {
  const o = original(2);
  const first = replaceByFee(account, o.coins, o.tx, o.changeVout, 4);
  const second = replaceByFee(account, o.coins, first.tx, o.changeVout, 4);
  t.ok(feeOf(second.tx, o.coins) - feeOf(first.tx, o.coins) >= BigInt(first.tx.virtualSize()), 'the second bump also pays rule 4 over the first');
  t.ok(bcoinVerifiesHot(second.tx, o.coins));
  const child = 700n;
  const withChild = replaceByFee(account, o.coins, o.tx, o.changeVout, 2, { evictedDescendantFeeSats: child });
  t.ok(feeOf(withChild.tx, o.coins) >= feeOf(o.tx, o.coins) + child + BigInt(o.tx.virtualSize()), 'pays the original, its evicted child, and its own bandwidth');
});

t.test('replaceByFee refuses without a change output, naming the reason', async (t) => {
  const coins = [coin(100_000n)];
  const tx = signHotTransaction(account, coins, [{ script: P2WSH, value: 99_000n }]);
  const err = thrown(() => replaceByFee(account, coins, tx, null, 10));
  t.ok(isCustodyError(err, 'INVALID_ARGUMENT') && /no change output/.test(err.message), String(err));
  t.ok(isCustodyError(thrown(() => replaceByFee(account, coins, tx, 1, 10)), 'INVALID_ARGUMENT'), 'a change vout past the outputs');
  t.ok(isCustodyError(thrown(() => replaceByFee(account, coins, tx, 0, 10)), 'INVALID_ARGUMENT'), 'a payment (P2WSH) named as change');
});

t.test('replaceByFee refuses when the change would fall below the 294-sat dust limit, and accepts exactly 294', async (t) => {
  // At 20 sat/vB the rate decides the fee, which depends only on the transaction's shape: find the
  // increase with ample change, then build originals whose change leaves exactly 294 and 293.
  const probe = original(2);
  const delta = feeOf(replaceByFee(account, probe.coins, probe.tx, probe.changeVout, 20).tx, probe.coins) - feeOf(probe.tx, probe.coins);
  const exact = original(2, 294n + delta);
  const ok = replaceByFee(account, exact.coins, exact.tx, exact.changeVout, 20);
  t.equal(ok.tx.outs[2]?.value, 294n, 'change left at exactly the dust limit');
  t.ok(bcoinVerifiesHot(ok.tx, exact.coins));
  const short = original(2, 293n + delta);
  const err = thrown(() => replaceByFee(account, short.coins, short.tx, short.changeVout, 20));
  t.ok(isCustodyError(err, 'INVALID_ARGUMENT') && /dust/.test(err.message) && /\b293\b/.test(err.message), String(err));
  const tiny = original(2, 300n);
  t.ok(isCustodyError(thrown(() => replaceByFee(account, tiny.coins, tiny.tx, tiny.changeVout, 2)), 'INVALID_ARGUMENT'), 'even rule 4 alone cannot be paid from 300 sats of change');
});

t.test('replaceByFee refuses coins that are not the original inputs, a non-signalling original, and a fee above the cap', async (t) => {
  const o = original(2);
  const [a, b] = o.coins as [HotCoin, HotCoin];
  t.ok(isCustodyError(thrown(() => replaceByFee(account, [b, a], o.tx, o.changeVout, 10)), 'INVALID_ARGUMENT'), 'coins in another order');
  t.ok(isCustodyError(thrown(() => replaceByFee(account, [a], o.tx, o.changeVout, 10)), 'INVALID_ARGUMENT'), 'a coin missing');
  const lie = thrown(() => replaceByFee(account, [a, { ...b, value: b.value + 1_000n }], o.tx, o.changeVout, 10));
  t.ok(isCustodyError(lie, 'INVALID_ARGUMENT') && /do not verify/.test(lie.message), 'a coin value the original did not sign for (it would misstate the fee)');
  const wrongPath = thrown(() => replaceByFee(account, [a, { ...b, index: b.index + 1 }], o.tx, o.changeVout, 10));
  t.ok(isCustodyError(wrongPath, 'INVALID_ARGUMENT') && /not signed by the hot key/.test(wrongPath.message), 'a coin whose derivation path is not the key that signed it');
  const stranger = bip32.fromSeed(randomBytes(32), bip32Network('regtest')).deriveHardened(84).deriveHardened(1).deriveHardened(0);
  t.ok(isCustodyError(thrown(() => replaceByFee(stranger, o.coins, o.tx, o.changeVout, 10)), 'INVALID_ARGUMENT'), 'another wallet’s account cannot replace it');
  const final = Transaction.fromBuffer(o.tx.toBuffer());
  final.ins.forEach((i) => (i.sequence = 0xffffffff));
  const rule1 = thrown(() => replaceByFee(account, o.coins, final, o.changeVout, 10));
  t.ok(isCustodyError(rule1, 'INVALID_ARGUMENT') && /rule 1/.test(rule1.message), 'an original that does not signal');
  const capped = thrown(() => replaceByFee(account, o.coins, o.tx, o.changeVout, 10, { maxFeeSats: 1_000n }));
  t.ok(isCustodyError(capped, 'INVALID_ARGUMENT') && /fee cap/.test(capped.message), 'above maxFeeSats');
  for (const rate of [0, -1, Number.NaN]) t.ok(isCustodyError(thrown(() => replaceByFee(account, o.coins, o.tx, o.changeVout, rate)), 'INVALID_ARGUMENT'), `fee rate ${rate}`);
});
