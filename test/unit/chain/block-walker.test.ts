/**
 * The byte walker against bitcoinjs' full parser on randomized blocks (legacy and segwit transactions,
 * every varint width), plus truncation and trailing-garbage refusal. Real blocks from a regtest node are
 * walked in test/integration/bitcoind-client.test.ts.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Block, Transaction } from 'bitcoinjs-lib';
import { txidOf, walkBlock, walkTransaction, type OutpointWatch, type ScriptWatch } from '../../../src/chain/block-walker.js';
import { seededPrng } from '../../support/prng.js';

const prng = seededPrng();
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function randomTx(segwit: boolean, watched: Uint8Array[], spent: Array<[Uint8Array, number]>): Transaction {
  const tx = new Transaction();
  tx.version = 2;
  const nin = prng.int(1, 4);
  for (let i = 0; i < nin; i++) {
    const useTracked = spent.length > 0 && prng.chance(0.2);
    const [prev, vout] = useTracked ? prng.pick(spent) : [randomBytes(32), prng.int(0, 300)];
    // scriptSig sizes cross the 0xfd varint boundary now and then.
    tx.addInput(Buffer.from(prev), vout, 0xfffffffe, prng.bytes(prng.chance(0.05) ? prng.int(253, 600) : prng.int(0, 107)));
    if (segwit) tx.setWitness(i, Array.from({ length: prng.int(0, 3) }, () => prng.bytes(prng.chance(0.05) ? 300 : prng.int(0, 72))));
  }
  const nout = prng.chance(0.02) ? 260 : prng.int(1, 5); // 260 outputs: a 0xfd varint count
  for (let o = 0; o < nout; o++) {
    const script = watched.length > 0 && prng.chance(0.1) ? prng.pick(watched) : prng.bytes(prng.pick([22, 34, 23, 25]));
    tx.addOutput(Buffer.from(script), BigInt(prng.int(0, 2 ** 31)) * 1000n);
  }
  tx.locktime = prng.int(0, 500_000);
  if (segwit && !tx.hasWitnesses()) tx.setWitness(0, [Buffer.from([1])]);
  return tx;
}

function randomBlock(watched: Uint8Array[], spent: Array<[Uint8Array, number]>): Block {
  const block = new Block();
  block.version = 0x20000000;
  block.prevHash = randomBytes(32);
  block.merkleRoot = randomBytes(32);
  block.timestamp = 1_700_000_000;
  block.bits = 0x207fffff;
  block.nonce = prng.int(0, 2 ** 31);
  block.transactions = Array.from({ length: prng.int(1, 40) }, () => randomTx(prng.chance(0.6), watched, spent));
  return block;
}

t.test('matches bitcoinjs on 300 random blocks: every watched output and tracked spend, with txids', async (t) => {
  const watched = Array.from({ length: 20 }, () => prng.bytes(22));
  const index = new Map(watched.map((s, i) => [hex(s), i]));
  const scripts: ScriptWatch = { lookup: (b, s, e) => index.get(hex(b.subarray(s, e))) };
  const tracked: Array<[Uint8Array, number]> = Array.from({ length: 20 }, () => [randomBytes(32), prng.int(0, 5)]);
  const trackedSet = new Set(tracked.map(([p, v]) => `${hex(p)}:${v}`));
  const outpoints: OutpointWatch = { has: (b, at, v) => trackedSet.has(`${hex(b.subarray(at, at + 32))}:${v}`) };
  let outs = 0;
  let spends = 0;
  for (let b = 0; b < 300; b++) {
    const block = randomBlock(watched, tracked);
    const raw = block.toBuffer();
    const walked = walkBlock(raw, scripts, outpoints);
    const parsed = Block.fromBuffer(raw);
    const expectOuts: string[] = [];
    const expectSpends: string[] = [];
    for (const tx of parsed.transactions ?? []) {
      tx.outs.forEach((o, vout) => {
        const tag = index.get(hex(o.script));
        if (tag !== undefined) expectOuts.push(`${tx.getId()}:${vout}:${o.value}:${tag}`);
      });
      tx.ins.forEach((i, vin) => {
        if (trackedSet.has(`${hex(i.hash)}:${i.index}`)) expectSpends.push(`${tx.getId()}:${vin}:${Buffer.from(i.hash).reverse().toString('hex')}:${i.index}`);
      });
    }
    const gotOuts = walked.outputs.map((o) => `${o.txid}:${o.vout}:${o.value}:${o.tag}`);
    const gotSpends = walked.spends.map((s) => `${s.txid}:${s.vin}:${s.prevTxid}:${s.prevVout}`);
    if (JSON.stringify(gotOuts) !== JSON.stringify(expectOuts) || JSON.stringify(gotSpends) !== JSON.stringify(expectSpends)) {
      t.fail(`block ${b} differs (seed ${prng.seed})`);
      return;
    }
    if (walked.hash !== parsed.getId() || walked.txCount !== parsed.transactions?.length) t.fail(`block ${b}: header or count differs`);
    outs += gotOuts.length;
    spends += gotSpends.length;
  }
  t.ok(outs > 100 && spends > 20, `compared ${outs} watched outputs and ${spends} tracked spends (seed ${prng.seed})`);
});

t.test('a truncated block, trailing bytes or an empty block are BLOCK_INVALID, never a crash', async (t) => {
  const raw = randomBlock([], []).toBuffer();
  const scripts: ScriptWatch = { lookup: () => undefined };
  let refused = 0;
  for (let len = 0; len < raw.length; len += Math.max(1, Math.floor(raw.length / 400))) {
    try {
      walkBlock(raw.subarray(0, len), scripts);
    } catch (err) {
      if ((err as { code?: string }).code === 'BLOCK_INVALID') refused++;
      else t.fail(`truncated to ${len}: ${String(err)}`);
    }
  }
  t.ok(refused > 300, `${refused} truncations refused`);
  t.throws(() => walkBlock(Buffer.concat([raw, Buffer.from([0])]), scripts), { code: 'BLOCK_INVALID', message: /1 bytes after the last transaction/ });
  t.throws(() => walkBlock(Buffer.concat([raw.subarray(0, 80), Buffer.from([0])]), scripts), { code: 'BLOCK_INVALID', message: /without transactions/ });
});

t.test('a transaction spending an output matched earlier in the same block is reported as a spend', async (t) => {
  const ours = prng.bytes(22);
  const scripts: ScriptWatch = { lookup: (b, s, e) => (Buffer.from(b.subarray(s, e)).equals(ours) ? 1 : undefined) };
  const nothingTracked: OutpointWatch = { has: () => false };
  const parent = new Transaction();
  parent.addInput(randomBytes(32), 0);
  parent.addOutput(Buffer.from(prng.bytes(22)), 1n);
  parent.addOutput(Buffer.from(ours), 5_000n);
  const child = new Transaction();
  child.addInput(Buffer.from(parent.getHash()), 1);
  child.addInput(Buffer.from(parent.getHash()), 0); // spends an output that is not ours: not reported
  child.addOutput(Buffer.from(prng.bytes(22)), 4_000n);
  const block = new Block();
  block.version = 0x20000000;
  block.prevHash = randomBytes(32);
  block.merkleRoot = randomBytes(32);
  block.timestamp = 1_700_000_000;
  block.bits = 0x207fffff;
  block.transactions = [parent, child];
  const walked = walkBlock(block.toBuffer(), scripts, nothingTracked);
  t.same(walked.outputs.map((o) => [o.txid, o.vout]), [[parent.getId(), 1]]);
  t.same(walked.spends, [{ txid: child.getId(), vin: 0, prevTxid: parent.getId(), prevVout: 1 }]);
  t.same(walkBlock(block.toBuffer(), scripts).spends, [], 'without an outpoint watch, spends are not tracked at all');
});

t.test('walkTransaction reads one mempool transaction the same way; txidOf strips the witness; bad bytes are TX_INVALID', async (t) => {
  const ours = prng.bytes(34);
  const scripts: ScriptWatch = { lookup: (b, s, e) => (Buffer.from(b.subarray(s, e)).equals(ours) ? 7 : undefined) };
  const tx = new Transaction();
  tx.version = 2;
  tx.addInput(randomBytes(32), 3);
  tx.setWitness(0, [prng.bytes(72), prng.bytes(33)]);
  tx.addOutput(Buffer.from(ours), 12_345n);
  const raw = tx.toBuffer();
  const w = walkTransaction(raw, scripts);
  t.equal(w.txid, tx.getId());
  t.same(w.outputs.map((o) => [o.vout, o.value, o.tag]), [[0, 12_345n, 7]]);
  t.equal(txidOf(raw), tx.getId(), 'the txid, not the wtxid');
  t.equal(walkTransaction(raw, { lookup: () => undefined }).txid, tx.getId(), 'a transaction that does not touch us still has its txid');
  t.throws(() => walkTransaction(raw.subarray(0, raw.length - 2), scripts), { code: 'TX_INVALID', message: /^transaction: truncated locktime at byte \d+$/ });
  t.throws(() => walkTransaction(Buffer.concat([raw, Buffer.from([0])]), scripts), { code: 'TX_INVALID', message: /1 bytes after the last transaction/ });
});
