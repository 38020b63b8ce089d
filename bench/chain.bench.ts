/**
 * Block scanning (issue 5): the byte walker with the compact script index holding 1,000,000 watched
 * scripts, against bitcoinjs Block.fromBuffer plus a Set of hex scripts, on a mainnet-sized block
 * (~1.5 MB, ~4,000 transactions, segwit and legacy) built with bitcoinjs. No mainnet block can be
 * fetched here; the walker is cross-checked on random, real regtest and real mainnet blocks in the tests.
 * The index's memory is shown beside the heap taken by the baseline's Set of the same scripts as hex.
 */
import { randomBytes } from 'node:crypto';
import { Block, Transaction } from 'bitcoinjs-lib';
import { walkBlock } from '../src/chain/block-walker.js';
import { ScriptIndex } from '../src/chain/script-index.js';
import { UtxoSet } from '../src/service/utxo-set.js';
import { collectGarbage, type Bench, type Measure } from './harness.js';

const WATCHED = 1_000_000;
let raw: Buffer = Buffer.alloc(0);
let index: ScriptIndex | undefined;
let hexSet: Set<string> | undefined;
let coins: UtxoSet | undefined;
const COINS = 100_000;
let sink = 0;

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

/** Heap taken by the baseline's Set of 1,000,000 hex scripts, measured as it is built. */
let hexSetMB = 0;

let prepared: Promise<void> | undefined;
/** Builds the block, the index, the baseline's Set and the coin set once; yields now and then (it runs beside other preparations). */
function setup(): Promise<void> {
  prepared ??= build();
  return prepared;
}

const yieldTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function build(): Promise<void> {
  await yieldTurn();
  raw = mainnetSizedBlock();
  await yieldTurn();
  const idx = new ScriptIndex();
  // One random draw for all the hashes: P2WPKH scripts 00 14 <20 random bytes>.
  const hashes = randomBytes(20 * WATCHED);
  const script = Buffer.alloc(22);
  script[0] = 0x00;
  script[1] = 0x14;
  for (let i = 0; i < WATCHED; i++) {
    hashes.copy(script, 2, 20 * i, 20 * i + 20);
    idx.add(script, i);
    if (i % 100_000 === 99_999) await yieldTurn();
  }
  index = idx;
  // Measured in one synchronous stretch, so nothing else allocates on this heap meanwhile.
  collectGarbage();
  const before = process.memoryUsage().heapUsed;
  hexSet = new Set();
  for (let i = 0; i < WATCHED; i++) {
    hashes.copy(script, 2, 20 * i, 20 * i + 20);
    hexSet.add(script.toString('hex'));
  }
  collectGarbage();
  hexSetMB = (process.memoryUsage().heapUsed - before) / 2 ** 20;
  await yieldTurn();
  // The daemon walks with its coin set too: every input of the block is checked against it.
  coins = new UtxoSet();
  const txids = randomBytes(32 * COINS);
  for (let i = 0; i < COINS; i++) {
    coins.put({ txid: txids.toString('hex', 32 * i, 32 * i + 32), vout: i % 3, valueSats: '1000', wallet: 'cold', chain: 0, index: i, script: '', height: 1, spentBy: null, reservedBy: null });
  }
  // JIT warm-up of both walks and the baseline, so no entry's first run is its warm-up.
  for (let i = 0; i < 3; i++) {
    sink += walkBlock(raw, idx, i === 0 ? undefined : coins).outputs.length;
    sink += Block.fromBuffer(raw).transactions?.length ?? 0;
  }
}

const hexSetMemory: Measure = {
  name: 'hexSet.1M.memory',
  run: async () => hexSetMB,
};

const SECONDS = (quick: boolean): number => (quick ? 0.25 : 1.5);

function perSecond(seconds: number, fn: () => void): number {
  const start = performance.now();
  let n = 0;
  do {
    fn();
    n++;
  } while (performance.now() - start < seconds * 1000);
  return n / ((performance.now() - start) / 1000);
}

const bitcoinjsSet: Measure = {
  name: 'bitcoinjs.fromBuffer+Set',
  async run(quick) {
    const set = hexSet as Set<string>;
    return perSecond(SECONDS(quick), () => {
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
    size: (quick) => `${SECONDS(quick)} s`,
    prepare: setup,
    async run(quick) {
      const idx = index as ScriptIndex;
      const tracked = withCoins ? (coins as UtxoSet) : undefined;
      return perSecond(SECONDS(quick), () => {
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
    baseline: hexSetMemory,
    runs: 1,
    quickRuns: 1,
    size: () => '1M scripts',
    prepare: setup,
    async run() {
      return (index as ScriptIndex).bytes / 2 ** 20;
    },
    async teardown() {
      if (sink < 0) process.stderr.write('unreachable\n');
    },
  },
];
