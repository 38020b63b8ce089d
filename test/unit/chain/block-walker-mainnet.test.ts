/**
 * The byte walker on real Bitcoin mainnet blocks (test/fixtures/mainnet-blocks.json, with provenance),
 * against bitcoinjs' full parser: legacy blocks from 2009–2010 (P2PK, P2PKH, in-block spend chains) and
 * segwit block 542213 (witness coinbase, P2SH-P2WPKH). Each block first proves it is genuine (id, proof
 * of work within the mainnet limit, merkle root and witness commitment), then is walked with a watch
 * set of its own output scripts and outpoints it really spends.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { Block, type Transaction } from 'bitcoinjs-lib';
import { walkBlock, type OutpointWatch, type ScriptWatch, type WalkedBlock } from '../../../src/chain/block-walker.js';
import { CustodyError } from '../../../src/errors.js';
import { fixture, hex, thrown } from '../../support/vectors.js';

interface MainnetBlock {
  id: string;
  height?: number;
  description: string;
  hex: string;
}

const { provenance, blocks } = fixture<{ provenance: string; blocks: MainnetBlock[] }>('mainnet-blocks.json');

/** Display (RPC) hex of an internal-order hash. */
const display = (internal: Uint8Array): string => Buffer.from(internal).reverse().toString('hex');
const toBig = (b: Uint8Array): bigint => BigInt(`0x${hex(b)}`);
const sha256d = (b: Uint8Array): Buffer => createHash('sha256').update(createHash('sha256').update(b).digest()).digest();
/** Mainnet proof-of-work limit (nBits 0x1d00ffff), as the largest target a mainnet header may claim. */
const MAINNET_POW_LIMIT = toBig(Block.calculateTarget(0x1d00ffff));
/** An output script no fixture block pays: P2WSH of 32 0xee bytes (asserted absent below). */
const ABSENT_SCRIPT = Uint8Array.from([0x00, 0x20, ...new Array<number>(32).fill(0xee)]);
const ABSENT_TAG = 999;

function txsOf(block: Block): Transaction[] {
  const txs = block.transactions;
  if (txs === undefined) throw new Error('bitcoinjs parsed no transactions');
  return txs;
}

const isCoinbase = (tx: Transaction): boolean => tx.ins.length === 1 && tx.ins[0] !== undefined && tx.ins[0].hash.every((b) => b === 0) && tx.ins[0].index === 0xffffffff;

t.test('the fixture names its provenance and holds genuine mainnet blocks', async (t) => {
  t.match(provenance, /mainnet/i);
  t.match(provenance, /bitcoin\/bitcoin/);
  t.match(provenance, /bitcoinjs/);
  t.ok(blocks.length >= 5, `${blocks.length} blocks`);
  t.ok(
    blocks.some((b) => txsOf(Block.fromHex(b.hex)).length >= 7 && !Block.fromHex(b.hex).hasWitness()),
    'a pre-segwit block with several transactions',
  );
  t.ok(
    blocks.some((b) => txsOf(Block.fromHex(b.hex)).some((tx) => tx.hasWitnesses() && !isCoinbase(tx))),
    'a segwit block with a witness spend',
  );
  for (const b of blocks) {
    const parsed = Block.fromHex(b.hex);
    t.equal(parsed.getId(), b.id, `${b.id}: id is the header hash`);
    t.ok(parsed.checkProofOfWork(), `${b.id}: hash meets the target of its bits`);
    t.ok(toBig(Block.calculateTarget(parsed.bits)) <= MAINNET_POW_LIMIT, `${b.id}: target within the mainnet limit`);
    t.ok(parsed.checkTxRoots(), `${b.id}: merkle root${parsed.hasWitnessCommit() ? ' and witness commitment' : ''} match the transactions`);
    t.equal(parsed.toHex(), b.hex, `${b.id}: bitcoinjs re-serializes the same bytes`);
  }
});

for (const fx of blocks) {
  t.test(`mainnet block ${fx.id}${fx.height === undefined ? '' : ` (height ${fx.height})`}`, async (t) => {
    const raw = Uint8Array.from(Buffer.from(fx.hex, 'hex'));
    const parsed = Block.fromBuffer(raw);
    const txs = txsOf(parsed);
    if (fx.height !== undefined && fx.height > 0) {
      // BIP34: the coinbase scriptSig starts with the height, a sanity check of the stated height.
      const sig = txs[0]?.ins[0]?.script ?? new Uint8Array();
      const n = sig[0] ?? 0;
      t.equal(Number(BigInt(`0x${display(sig.subarray(1, 1 + n)) || '0'}`)), fx.height, 'coinbase commits to the stated height');
    }

    // Watch every 3rd output of the block (counting across transactions), the first output of every
    // witness transaction, and one script that is in no block. Tags tell the scripts apart.
    const tags = new Map<string, number>([[hex(ABSENT_SCRIPT), ABSENT_TAG]]);
    let nth = 0;
    for (const tx of txs) {
      tx.outs.forEach((o, vout) => {
        const pick = nth++ % 3 === 0 || (vout === 0 && tx.hasWitnesses());
        if (pick && !tags.has(hex(o.script))) tags.set(hex(o.script), tags.size);
      });
    }
    t.notOk(
      txs.some((tx) => tx.outs.some((o) => hex(o.script) === hex(ABSENT_SCRIPT))),
      'the absent script really is in no output of this block',
    );
    const looked: string[] = [];
    const scripts: ScriptWatch = {
      lookup: (b, s, e) => {
        const key = hex(b.subarray(s, e));
        looked.push(key);
        return tags.get(key);
      },
    };

    // Track outpoints the block really spends: every 2nd non-coinbase input, plus the first input of
    // every witness spend, plus a decoy (a spent txid with an output index nobody spends).
    const tracked = new Set<string>();
    let decoy: string | undefined;
    let k = 0;
    for (const tx of txs) {
      if (isCoinbase(tx)) continue;
      tx.ins.forEach((i, vin) => {
        if (k++ % 2 === 0 || (vin === 0 && tx.hasWitnesses())) tracked.add(`${hex(i.hash)}:${i.index}`);
        decoy ??= `${hex(i.hash)}:${i.index + 7777}`;
      });
    }
    if (decoy !== undefined) tracked.add(decoy);
    const asked: string[] = [];
    const outpoints: OutpointWatch = {
      has: (b, at, vout) => {
        const key = `${hex(b.subarray(at, at + 32))}:${vout}`;
        asked.push(key);
        return tracked.has(key);
      },
    };

    const walked: WalkedBlock = walkBlock(raw, scripts, outpoints);

    t.equal(walked.hash, parsed.getId(), 'block hash');
    t.equal(walked.hash, fx.id, 'block hash is the fixture id');
    t.equal(walked.prevHash, display(parsed.prevHash ?? new Uint8Array(32)), 'previous block hash');
    t.equal(walked.txCount, txs.length, `txCount ${txs.length}`);
    t.same(
      looked,
      txs.flatMap((tx) => tx.outs.map((o) => hex(o.script))),
      'the walker asked about every output script, in order, with exactly its bytes',
    );
    t.same(
      asked,
      txs.flatMap((tx) => tx.ins.map((i) => `${hex(i.hash)}:${i.index}`)),
      'the walker asked about every spent outpoint, in order',
    );

    const expectOuts = txs.flatMap((tx) =>
      tx.outs.flatMap((o, vout) => {
        const tag = tags.get(hex(o.script));
        return tag === undefined ? [] : [{ txid: tx.getId(), vout, value: o.value, script: hex(o.script), tag }];
      }),
    );
    const gotOuts = walked.outputs.map((o) => ({ txid: o.txid, vout: o.vout, value: o.value, script: hex(o.script), tag: o.tag }));
    t.ok(expectOuts.length >= Math.ceil(nth / 3), `${expectOuts.length} watched outputs of ${nth}`);
    t.same(gotOuts, expectOuts, 'exactly the watched outputs: txid, vout, value, script and tag');
    t.ok(
      walked.outputs.every((o) => typeof o.value === 'bigint'),
      'values are bigint',
    );
    t.notOk(
      walked.outputs.some((o) => o.tag === ABSENT_TAG),
      'the script in no block never matches',
    );

    // A spend is reported when its outpoint is tracked, or when it spends a watched output of an earlier
    // transaction in the same block (the caller cannot know those yet).
    const matchedEarlier = new Set<string>();
    const expectSpends = txs.flatMap((tx) => {
      const spends = tx.ins.flatMap((i, vin) =>
        tracked.has(`${hex(i.hash)}:${i.index}`) || matchedEarlier.has(`${display(i.hash)}:${i.index}`) ? [{ txid: tx.getId(), vin, prevTxid: display(i.hash), prevVout: i.index }] : [],
      );
      tx.outs.forEach((o, vout) => {
        if (tags.has(hex(o.script))) matchedEarlier.add(`${tx.getId()}:${vout}`);
      });
      return spends;
    });
    t.same(walked.spends, expectSpends, `exactly the ${expectSpends.length} tracked spends: txid, vin, prevTxid, prevVout`);
    if (txs.length > 1) t.ok(expectSpends.length > 0, 'the block spends tracked outpoints');
    if (decoy !== undefined) {
      const [prev, vout] = decoy.split(':') as [string, string];
      t.notOk(
        walked.spends.some((s) => s.prevTxid === display(Buffer.from(prev, 'hex')) && s.prevVout === Number(vout)),
        'an unspent index of a spent txid is not reported',
      );
    }

    // Segwit transactions are reported under their txid (non-witness hash), never their wtxid.
    const reported = new Set([...walked.outputs.map((o) => o.txid), ...walked.spends.map((s) => s.txid)]);
    const witnessTxs = txs.filter((tx) => tx.hasWitnesses());
    for (const tx of witnessTxs) {
      // The hash of the full (witness) serialization; bitcoinjs reports a coinbase wtxid as zero, so hash it here.
      const wtxid = display(sha256d(tx.toBuffer()));
      if (!isCoinbase(tx)) t.equal(wtxid, display(tx.getHash(true)), 'wtxid agrees with bitcoinjs');
      t.not(tx.getId(), wtxid, 'txid and wtxid differ for a witness transaction');
      t.ok(reported.has(tx.getId()), `witness tx ${tx.getId()} reported under its txid`);
      t.notOk(reported.has(wtxid), `and never under its wtxid ${wtxid}`);
    }
    if (parsed.hasWitness()) t.ok(witnessTxs.length >= 2, `${witnessTxs.length} witness transactions checked`);

    t.same(walkBlock(raw, scripts).spends, [], 'without an outpoint watch, no spends');

    // Every truncated copy is refused as BLOCK_INVALID (a CustodyError), never a crash or a short walk.
    const quiet: ScriptWatch = { lookup: () => undefined };
    const err = thrown(() => walkBlock(raw.subarray(0, raw.length - 1), quiet));
    t.ok(err instanceof CustodyError, 'a copy one byte short throws a CustodyError');
    t.match(err, { code: 'BLOCK_INVALID', message: /truncated/ }, 'with code BLOCK_INVALID');
    const notRefused: number[] = [];
    for (let len = 0; len < raw.length; len++) {
      const e = thrown(() => walkBlock(raw.subarray(0, len), quiet, outpoints));
      if (!(e instanceof CustodyError && e.code === 'BLOCK_INVALID')) notRefused.push(len);
    }
    t.same(notRefused, [], `all ${raw.length} truncations refused with BLOCK_INVALID`);
    t.throws(() => walkBlock(Buffer.concat([raw, Uint8Array.of(0)]), quiet), { code: 'BLOCK_INVALID', message: /1 bytes after the last transaction/ }, 'a trailing byte is refused');
  });
}
