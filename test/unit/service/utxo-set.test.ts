import t from 'tap';
import { randomBytes } from 'node:crypto';
import { UtxoSet, type UtxoRecord } from '../../../src/service/utxo-set.js';

const coin = (txid: string, vout: number): UtxoRecord => ({ txid, vout, valueSats: '1000', wallet: 'cold', chain: 0, index: 0, script: '0014', height: 1, spentBy: null, reservedBy: null });

/** The outpoint as a block's input holds it: the txid in internal (reversed) byte order, at some offset. */
function input(txid: string): { bytes: Buffer; at: number } {
  const bytes = Buffer.concat([randomBytes(7), Buffer.from(txid, 'hex').reverse(), randomBytes(5)]);
  return { bytes, at: 7 };
}

const has = (set: UtxoSet, txid: string, vout: number): boolean => {
  const { bytes, at } = input(txid);
  return set.has(bytes, at, vout);
};

t.test('has() finds live coins by the bytes of an input, and nothing else', async (t) => {
  const set = new UtxoSet();
  const txids = Array.from({ length: 5_000 }, () => randomBytes(32).toString('hex'));
  txids.forEach((txid, i) => set.put(coin(txid, i % 3)));
  t.equal(txids.filter((txid, i) => !has(set, txid, i % 3)).length, 0, 'every coin found');
  t.equal(txids.filter((txid, i) => has(set, txid, (i % 3) + 1)).length, 0, 'another output of the same transaction is not a coin');
  let stray = 0;
  for (let i = 0; i < 20_000; i++) if (has(set, randomBytes(32).toString('hex'), 0)) stray++;
  t.equal(stray, 0, 'random outpoints are not coins');
});

t.test('removing a coin does not hide another whose txid shares its prefix', async (t) => {
  const set = new UtxoSet();
  // The same last 6 display digits = the same first 3 internal bytes: the filter's bucket.
  const a = `${randomBytes(29).toString('hex')}abcdef`;
  const b = `${randomBytes(29).toString('hex')}abcdef`;
  set.put(coin(a, 0));
  set.put(coin(b, 1));
  set.put(coin(a, 0)); // a replaced record is not counted twice
  set.remove(a, 0);
  t.notOk(has(set, a, 0), 'the removed coin is gone');
  t.ok(has(set, b, 1), 'the other coin of the bucket is still found');
  set.remove(b, 1);
  t.notOk(has(set, b, 1));
  set.remove(b, 1); // removing twice does not drive the count below zero
  set.put(coin(b, 1));
  t.ok(has(set, b, 1), 'a coin added again after its bucket emptied is found');
  t.equal(set.size, 1);
});

t.test('a coin spent in a block leaves the set; one spent in the mempool stays', async (t) => {
  const set = new UtxoSet();
  const txid = randomBytes(32).toString('hex');
  set.put(coin(txid, 0));
  set.put({ ...coin(txid, 0), spentBy: { txid: randomBytes(32).toString('hex'), height: null } });
  t.ok(has(set, txid, 0), 'spent in the mempool: still watched');
  set.put({ ...coin(txid, 0), spentBy: { txid: randomBytes(32).toString('hex'), height: 5 } });
  t.notOk(has(set, txid, 0), 'spent in a block: gone');
  t.equal(set.size, 0);
});
