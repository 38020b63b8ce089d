/**
 * selectCoins over random coin sets (fast-check): what it picks covers the outputs and the fee, it answers
 * null exactly when the coins cannot, and it never picks a coin twice. The reference model below is
 * written from the sizes, not from coinselect: a P2WPKH input is 68 vbytes, an output 9 + script bytes,
 * and coinselect counts 10 vbytes of transaction overhead (version, counts, locktime; it ignores the
 * segwit marker and flag, which estimateVbytes rounds up to 11: selectCoins asks for one vbyte more).
 */
import t from 'tap';
import fc from 'fast-check';
import { selectCoins, type Candidate } from '../../../src/wallet/coinselect.js';
import { estimateVbytes } from '../../../src/wallet/hot-tx.js';

const P2WPKH = Buffer.from('0014' + '11'.repeat(20), 'hex');
const P2WSH = Buffer.from('0020' + '22'.repeat(32), 'hex');
const P2PKH = Buffer.from('76a914' + '44'.repeat(20) + '88ac', 'hex');
const P2SH = Buffer.from('a914' + '55'.repeat(20) + '87', 'hex');
const SCRIPTS = [P2WPKH, P2WSH, P2PKH, P2SH];

const INPUT_VB = 68;
const COINSELECT_OVERHEAD_VB = 10;
const outputsVb = (scripts: readonly Uint8Array[]): number => scripts.reduce((a, s) => a + 9 + s.length, 0);
/** Fee of a transaction with `inputs` P2WPKH inputs and these outputs (no change), at a whole sat/vB rate. */
const feeFor = (inputs: number, scripts: readonly Uint8Array[], rate: number): bigint => BigInt(rate * (COINSELECT_OVERHEAD_VB + inputs * INPUT_VB + outputsVb(scripts)));

const arbCase = fc.record({
  values: fc.array(fc.bigInt({ min: 1n, max: 2_000_000n }), { minLength: 0, maxLength: 12 }),
  scripts: fc.array(fc.constantFrom(...SCRIPTS), { minLength: 1, maxLength: 3 }),
  totalOut: fc.bigInt({ min: 1n, max: 6_000_000n }),
  feeRate: fc.oneof(fc.integer({ min: 1, max: 60 }), fc.double({ min: 1, max: 60, noNaN: true })),
});

const coinsOf = (values: readonly bigint[]): Candidate[] => values.map((value, i) => ({ id: `c${i}`, value }));

t.test('selectCoins (property): what it picks is distinct coins of the set, covering the outputs plus the fee for those inputs', async (t) => {
  let picked = 0;
  fc.assert(
    fc.property(arbCase, ({ values, scripts, totalOut, feeRate }) => {
      const coins = coinsOf(values);
      const r = selectCoins(coins, scripts, totalOut, feeRate);
      if (r === null) return true;
      picked++;
      const ids = new Set(r.inputs);
      if (ids.size !== r.inputs.length) return false; // a coin twice
      const chosen = r.inputs.map((id) => coins.find((c) => c.id === id));
      if (chosen.some((c) => c === undefined) || chosen.length === 0) return false;
      const sum = chosen.reduce((a, c) => a + (c as Candidate).value, 0n);
      return sum >= totalOut + feeFor(chosen.length, scripts, Math.ceil(feeRate));
    }),
    { numRuns: 500 },
  );
  t.ok(picked > 100, `the generator exercises selections (${picked} of 500 picked coins)`);
});

t.test('selectCoins (property): null exactly when even every coin worth spending cannot pay the outputs and their fee', async (t) => {
  let nulls = 0;
  fc.assert(
    fc.property(arbCase, ({ values, scripts, totalOut, feeRate }) => {
      const rate = Math.ceil(feeRate);
      // A coin is worth spending when it is worth at least its own input's fee; the best any selection can
      // do is all of those together.
      const surplus = values.reduce((a, v) => a + (v - BigInt(rate * INPUT_VB) >= 0n ? v - BigInt(rate * INPUT_VB) : 0n), 0n);
      const affordable = surplus >= totalOut + feeFor(0, scripts, rate);
      const r = selectCoins(coinsOf(values), scripts, totalOut, feeRate);
      if (r === null) nulls++;
      return (r !== null) === affordable;
    }),
    { numRuns: 500 },
  );
  t.ok(nulls > 50, `the generator exercises shortfalls (${nulls} of 500)`);
});

t.test('selectCoins never picks the same coin twice, even among many coins of equal value', async (t) => {
  const coins = Array.from({ length: 50 }, (_, i) => ({ id: `same${i}`, value: 10_000n }));
  const r = selectCoins(coins, [P2WPKH], 300_000n, 5);
  t.ok(r !== null);
  t.equal(new Set(r?.inputs).size, r?.inputs.length, 'distinct');
  t.ok((r?.inputs.length ?? 0) >= 31, `needs at least 31 coins of 10,000 for 300,000 plus fees (${r?.inputs.length})`);
});

t.test('selectCoins returns null for no coins and when the coins together are short', async (t) => {
  t.equal(selectCoins([], [P2WPKH], 1_000n, 1), null, 'no coins');
  t.equal(selectCoins(coinsOf([500n, 400n]), [P2WPKH], 1_000n, 1), null, 'less than the amount');
  // Exactly the amount and fee of a one-input transaction as payouts sizes it (11 + 68 + 31 = 110 vbytes
  // at 2 sat/vB): enough; one sat less: short.
  t.same(selectCoins(coinsOf([10_000n + 220n]), [P2WPKH], 10_000n, 2), { inputs: ['c0'] });
  t.equal(selectCoins(coinsOf([10_000n + 219n]), [P2WPKH], 10_000n, 2), null);
  t.equal(selectCoins(coinsOf([100n, 100n, 100n]), [P2WPKH], 1n, 2), null, 'coins worth less than their own input fee do not help');
});

t.test('selectCoins rounds a fractional fee rate up, never down', async (t) => {
  t.same(selectCoins(coinsOf([10_000n + 220n]), [P2WPKH], 10_000n, 1.01), { inputs: ['c0'] }, 'enough at 2 sat/vB');
  t.equal(selectCoins(coinsOf([10_000n + 219n]), [P2WPKH], 10_000n, 1.01), null, '1.01 sat/vB is sized as 2');
});

// coinselect counts 10 vbytes of overhead, estimateVbytes (which payouts.ts sizes the transaction with) 11:
// selectCoins asks for one vbyte's fee more, so what it picks always covers the fee payouts requires.
t.test('selectCoins covers the fee as estimateVbytes sizes the transaction', async (t) => {
  const r = selectCoins(coinsOf([10_000n + 218n]), [P2WPKH], 10_000n, 2);
  const need = 10_000n + BigInt(2 * estimateVbytes(1, [P2WPKH]));
  t.ok(r === null || 10_218n >= need, `picked ${r?.inputs.join(',')} worth 10,218 sats; payouts needs ${need}`);
});
