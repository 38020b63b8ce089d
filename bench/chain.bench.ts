/**
 * Block scanning (issue 5): the byte walker with the compact script index holding 1,000,000 watched
 * scripts, against bitcoinjs Block.fromBuffer plus a Set of hex scripts, on a mainnet-sized block
 * (~1.5 MB, ~4,000 transactions, segwit and legacy) built with bitcoinjs. No mainnet block can be
 * fetched here; the walker is cross-checked on random, real regtest and real mainnet blocks in the tests.
 */
import { randomBytes } from 'node:crypto';
import { Block, Transaction } from 'bitcoinjs-lib';
import { walkBlock } from '../src/chain/block-walker.js';
import { ScriptIndex } from '../src/chain/script-index.js';
import { UtxoSet } from '../src/service/utxo-set.js';
import type { Bench, Measure } from './harness.js';

const WATCHED = 1_000_000;
let raw: Buffer = Buffer.alloc(0);
let index: ScriptIndex | undefined;
let hexSet: Set<string> | undefined;
let coins: UtxoSet | undefined;
const COINS = 100_000;

function mainnetSizedBlock(): Buffer {
  const block = new Block();
  block.version = 0x20000000;
  block.prevHash = randomBytes(32);
  block.merkleRoot = randomBytes(32);
  block.timestamp = 1_700_000_000;
  block.bits = 0x17034219;
  block.nonce = 0;
  const txs: Transaction[] = [];
  for (let i = 0; i < 4_000; i++) {
    const tx = new Transaction();
    tx.version = 2;
    const segwit = i % 4 !== 0;
    for (let k = 0; k < 2; k++) {
      tx.addInput(randomBytes(32), k, 0xfffffffd, segwit ? Buffer.alloc(0) : randomBytes(107));
      if (segwit) tx.setWitness(k, [randomBytes(72), randomBytes(33)]);
    }
    for (let k = 0; k < 2 + (i % 2); k++) tx.addOutput(Buffer.concat([Buffer.from([0x00, 0x14]), randomBytes(20)]), 10_000n + BigInt(i));
    txs.push(tx);
  }
  block.transactions = txs;
  return Buffer.from(block.toBuffer());
}

async function setup(): Promise<void> {
  if (index !== undefined) return;
  raw = mainnetSizedBlock();
  index = new ScriptIndex();
  hexSet = new Set();
  const script = Buffer.alloc(22);
  script[0] = 0x00;
  script[1] = 0x14;
  for (let i = 0; i < WATCHED; i++) {
    randomBytes(20).copy(script, 2);
    index.add(script, i);
    hexSet.add(script.toString('hex'));
  }
  // The daemon walks with its coin set too: every input of the block is checked against it.
  coins = new UtxoSet();
  for (let i = 0; i < COINS; i++) {
    coins.put({ txid: randomBytes(32).toString('hex'), vout: i % 3, valueSats: '1000', wallet: 'cold', chain: 0, index: i, script: '', height: 1, spentBy: null, reservedBy: null });
  }
}

function perSecond(seconds: number, fn: () => void): number {
  const start = performance.now();
  let n = 0;
  do {
    fn();
    n++;
  } while (performance.now() - start < seconds * 1000);
  return n / ((performance.now() - start) / 1000);
}

let sink = 0;
const bitcoinjsSet: Measure = {
  name: 'bitcoinjs.fromBuffer+Set',
  async run(quick) {
    const set = hexSet as Set<string>;
    return perSecond(quick ? 0.5 : 1.5, () => {
      for (const tx of Block.fromBuffer(raw).transactions ?? []) for (const o of tx.outs) if (set.has(Buffer.from(o.script).toString('hex'))) sink++;
    });
  },
};

/** Walks the mainnet-sized block against the 1M-script index, with or without the daemon's coin set. */
function walkBench(name: string, withCoins: boolean): Bench {
  return {
    name,
    unit: 'blocks/s',
    goals: [
      { op: '>=', value: 100 },
      { op: 'ratio>=', value: 5 },
    ],
    baseline: bitcoinjsSet,
    runs: 3,
    setup,
    async run(quick) {
      const idx = index as ScriptIndex;
      const tracked = withCoins ? (coins as UtxoSet) : undefined;
      return perSecond(quick ? 0.5 : 1.5, () => {
        const w = walkBlock(raw, idx, tracked);
        sink += w.outputs.length + w.spends.length;
      });
    },
  };
}

export const chainBenches: Bench[] = [
  walkBench('chain.walk.1MScripts', false),
  // As the daemon runs it: 1,000,000 scripts and 100,000 tracked coins, every input looked up.
  walkBench('chain.walk.1MScripts.100kCoins', true),
  {
    name: 'chain.scriptIndex.1M.memory',
    unit: 'MB',
    goals: [{ op: '<=', value: 150 }],
    runs: 1,
    quickRuns: 1,
    setup,
    async run() {
      return (index as ScriptIndex).bytes / 2 ** 20;
    },
    async teardown() {
      if (sink < 0) process.stderr.write('unreachable\n');
    },
  },
];
