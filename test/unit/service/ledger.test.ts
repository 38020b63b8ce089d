/**
 * The ledger's state machine on real blocks (serialized by bitcoinjs, walked by our walker) and a real
 * LevelDB data dir: confirmation depth, several deposits in one transaction, hot coins spent and
 * un-spent by rollbacks, the watch lookahead moving, mempool arrivals and departures, idempotent
 * rescans, reservations, and a reopen that resumes without a duplicate event.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Block, Transaction } from 'bitcoinjs-lib';
import { Store } from '../../../src/store/db.js';
import { EventLog, type CustodyEvent } from '../../../src/service/events.js';
import { DepositAddresses } from '../../../src/service/deposits.js';
import { Ledger } from '../../../src/service/ledger.js';
import { WatchSet } from '../../../src/service/watch.js';
import { walkBlock, walkTransaction } from '../../../src/chain/block-walker.js';
import { Deriver } from '../../../src/wallet/derive.js';
import { parseDescriptor } from '../../../src/wallet/descriptor.js';
import { hotAccountFromSeed } from '../../../src/wallet/hot-account.js';
import { regtestDescriptor } from '../../support/wallets.js';

const cold = regtestDescriptor();
const hotAccount = hotAccountFromSeed(randomBytes(32), 'regtest');
const hotDescriptor = parseDescriptor(`wpkh([${hotAccount.fingerprint}/${hotAccount.path}]${hotAccount.xpub}/<0;1>/*)`, { network: 'regtest' });
const coldDeriver = new Deriver(cold, 'regtest');
const hotDeriver = new Deriver(hotDescriptor, 'regtest');
const OTHER = Buffer.from('0014' + '11'.repeat(20), 'hex');

interface Harness {
  store: Store;
  events: EventLog;
  deposits: DepositAddresses;
  ledger: Ledger;
  close(): Promise<void>;
}

async function open(dir: string): Promise<Harness> {
  const store = await Store.open(dir, { network: 'regtest', descriptorChecksum: cold.checksum });
  const events = await EventLog.open(store);
  const deposits = await DepositAddresses.open(store, cold, { pool: { size: 32, batch: 32, workers: 0 } });
  const watch = new WatchSet(coldDeriver, hotDeriver);
  deposits.onDerived((list) => list.forEach((a) => watch.add(a.script, { wallet: 'cold', chain: 0, index: a.index })));
  await deposits.warm(32);
  const ledger = await Ledger.open(store, events, deposits, watch, { network: 'regtest', confirmations: 3, lookahead: 10 });
  return {
    store,
    events,
    deposits,
    ledger,
    async close() {
      await deposits.close();
      await store.close();
    },
  };
}

let txCounter = 0;
/** A transaction with a unique dummy input (or the given ones) paying `outs`. */
function tx(outs: ReadonlyArray<[Uint8Array, bigint]>, spends: ReadonlyArray<{ txid: string; vout: number }> = []): Transaction {
  const t = new Transaction();
  t.version = 2;
  if (spends.length === 0) t.addInput(randomBytes(32), txCounter++, 0xffffffff);
  for (const s of spends) t.addInput(Buffer.from(s.txid, 'hex').reverse(), s.vout, 0xffffffff);
  for (const [script, value] of outs) t.addOutput(script, value);
  return t;
}

/** A block on `prevHash` holding a coinbase and `txs` (validity is the node's job; structure is real). */
function block(prevHash: string, txs: readonly Transaction[]): { raw: Uint8Array; hash: string } {
  const cb = new Transaction();
  cb.addInput(new Uint8Array(32), 0xffffffff, 0xffffffff, Buffer.from([txCounter++ & 0xff, 0x51]));
  cb.addOutput(OTHER, 5_000_000_000n);
  const b = new Block();
  b.version = 0x20000000;
  b.prevHash = Buffer.from(prevHash, 'hex').reverse();
  b.timestamp = 1_700_000_000 + txCounter;
  b.bits = 0x207fffff;
  b.transactions = [cb, ...txs];
  b.merkleRoot = Block.calculateMerkleRoot(b.transactions);
  const raw = b.toBuffer();
  return { raw, hash: b.getId() };
}

async function apply(h: Harness, height: number, txs: readonly Transaction[] = [], rescanOf?: Uint8Array): Promise<{ raw: Uint8Array; hash: string; events: CustodyEvent[] }> {
  const before = h.events.head;
  const prev = h.ledger.tip()?.hash ?? '00'.repeat(32);
  const b = rescanOf === undefined ? block(prev, txs) : { raw: rescanOf, hash: '' };
  const walked = walkBlock(b.raw, h.ledger.scripts, h.ledger.outpoints);
  await h.ledger.applyBlock(height, walked, { rescan: rescanOf !== undefined, nodeTip: h.ledger.tip()?.height ?? height });
  return { ...b, hash: walked.hash, events: await h.events.since(before, 1000) };
}

const types = (es: readonly CustodyEvent[]): string[] => es.map((e) => `${e.type}:${String(e.data['vout'])}`);

t.test('deposits: seen in a block, confirmed at depth 3, several per transaction, highest used recorded', async (t) => {
  const h = await open(mkdtempSync(join(tmpdir(), 'ledger-')));
  const a = await h.deposits.newAddress({ requestId: 'a', account: 'alice' });
  const b = await h.deposits.newAddress({ requestId: 'b', account: 'bob' });
  const sa = coldDeriver.script(0, a.index);
  const sb = coldDeriver.script(0, b.index);
  const pay = tx([[sa, 10_000n], [OTHER, 5n], [sa, 20_000n], [sb, 30_000n]]);
  const b1 = await apply(h, 100, [pay]);
  t.same(types(b1.events), ['deposit.seen:0', 'deposit.seen:2', 'deposit.seen:3'], 'three deposits, two of them to one address');
  t.match(b1.events[0]!.data, { account: 'alice', amountSats: 10_000, height: 100, confirmations: 1, state: 'seen', address: a.address });
  t.equal(h.deposits.gap().highestUsed, b.index);
  t.same(types((await apply(h, 101)).events), []);
  const b3 = await apply(h, 102);
  t.same(types(b3.events), ['deposit.confirmed:0', 'deposit.confirmed:2', 'deposit.confirmed:3']);
  t.match(b3.events[2]!.data, { account: 'bob', amountSats: 30_000, confirmations: 3, state: 'confirmed' });
  const list = await h.ledger.listDeposits({ account: 'alice' });
  t.same(list.deposits.map((d) => [d.vout, d.amountSats, d.state, d.confirmations]), [[0, 10_000, 'confirmed', 3], [2, 20_000, 'confirmed', 3]]);
  t.same(h.ledger.balances().cold, { confirmedSats: 60_000n, unconfirmedSats: 0n, coins: 3 });
  const page = await h.ledger.listDeposits({ limit: 2 });
  t.same(page.deposits.map((d) => d.vout), [0, 2]);
  t.same((await h.ledger.listDeposits({ sinceSeq: page.lastSeq })).deposits.map((d) => d.vout), [3], 'sinceSeq pages on');
  t.same((await h.ledger.listDeposits({ sinceSeq: list.lastSeq, account: 'alice' })).deposits, [], 'lastSeq of a filtered list covers what was skipped');

  // Rolling back the top two blocks un-confirms nothing whose block stays; rolling back its block reorgs it.
  await h.ledger.rollbackTip();
  await h.ledger.rollbackTip();
  t.equal((await h.ledger.getDeposit(pay.getId(), 0))?.state, 'confirmed', 'still in the chain: stays confirmed');
  const before = h.events.head;
  await h.ledger.rollbackTip();
  const reorged = await h.events.since(before);
  t.same(types(reorged), ['deposit.reorged:0', 'deposit.reorged:2', 'deposit.reorged:3']);
  t.match(reorged[0]!.data, { reason: 'block-disconnected', wasConfirmed: true, disconnectedHeight: 100, height: null });
  t.same(h.ledger.balances().cold, { confirmedSats: 0n, unconfirmedSats: 0n, coins: 0 });
  t.equal(h.ledger.tip(), null, 'back before the first block');
  t.equal(await h.store.get('c!h!00000064'), undefined, 'its height → hash row is gone');
  await h.close();
});

t.test('hot coins: found, spent, un-spent by a rollback; the lookahead follows the highest used index', async (t) => {
  const h = await open(mkdtempSync(join(tmpdir(), 'ledger-')));
  const fund = tx([[hotDeriver.script(0, 9), 70_000n], [hotDeriver.script(1, 0), 5_000n]]);
  await apply(h, 1, [fund]);
  t.same(h.ledger.balances().hot, { confirmedSats: 75_000n, unconfirmedSats: 0n, reservedSats: 0n, coins: 2 });
  const beyond = tx([[hotDeriver.script(0, 19), 1_000n], [hotDeriver.script(0, 20), 2_000n]]);
  await apply(h, 2, [beyond]);
  t.equal(h.ledger.balances().hot.confirmedSats, 76_000n, 'index 19 is watched now (9 + lookahead 10); 20 is not yet');
  const spend = tx([[OTHER, 69_000n]], [{ txid: fund.getId(), vout: 0 }]);
  const b3 = await apply(h, 3, [spend]);
  t.same(h.ledger.balances().hot, { confirmedSats: 6_000n, unconfirmedSats: 0n, reservedSats: 0n, coins: 2 });
  t.same(types(b3.events), [], 'hot coins raise no deposit events');
  await h.ledger.rollbackTip();
  t.equal(h.ledger.balances().hot.confirmedSats, 76_000n, 'the spend is undone');
  // Spent and created in the same block: both undone together.
  const chainA = tx([[hotDeriver.script(0, 1), 3_000n]]);
  const chainB = tx([[OTHER, 2_500n]], [{ txid: chainA.getId(), vout: 0 }]);
  await apply(h, 3, [chainA, chainB]);
  t.equal(h.ledger.balances().hot.confirmedSats, 76_000n, 'a coin created and spent in one block');
  await h.ledger.rollbackTip();
  t.equal(h.ledger.balances().hot.coins, 3);
  await h.close();
});

t.test('mempool: an unconfirmed deposit is seen, mined without a second seen, or reorged when it leaves unmined', async (t) => {
  const h = await open(mkdtempSync(join(tmpdir(), 'ledger-')));
  const a = await h.deposits.newAddress({ requestId: 'm', account: 'carol' });
  await apply(h, 10);
  const pay = tx([[coldDeriver.script(0, a.index), 40_000n]]);
  const walked = walkTransaction(pay.toBuffer(), h.ledger.scripts, h.ledger.outpoints);
  t.equal(walked.txid, pay.getId());
  let head = h.events.head;
  await h.ledger.applyMempool([walked], new Set([pay.getId()]));
  const seen = await h.events.since(head);
  t.same(types(seen), ['deposit.seen:0']);
  t.match(seen[0]!.data, { height: null, confirmations: 0, account: 'carol' });
  t.same(h.ledger.balances().cold, { confirmedSats: 0n, unconfirmedSats: 40_000n, coins: 1 });
  head = h.events.head;
  await apply(h, 11, [pay]);
  t.same(types(await h.events.since(head)), [], 'mined: no second seen, not yet 3 deep');
  t.same(h.ledger.balances().cold, { confirmedSats: 40_000n, unconfirmedSats: 0n, coins: 1 });

  const other = tx([[coldDeriver.script(0, a.index), 1_000n]]);
  await h.ledger.applyMempool([walkTransaction(other.toBuffer(), h.ledger.scripts, h.ledger.outpoints)], new Set([other.getId()]));
  head = h.events.head;
  await h.ledger.applyMempool([], new Set());
  t.same(await h.events.since(head), [], 'missing from one snapshot: kept (the node may be mid-block)');
  t.equal(h.ledger.balances().cold.unconfirmedSats, 1_000n);
  await h.ledger.applyMempool([], new Set());
  const left = await h.events.since(head);
  t.same(types(left), ['deposit.reorged:0']);
  t.match(left[0]!.data, { txid: other.getId(), reason: 'left-mempool', wasConfirmed: false });
  t.same(h.ledger.balances().cold, { confirmedSats: 40_000n, unconfirmedSats: 0n, coins: 1 }, 'its coin is gone; the mined one stays');
  await h.close();
});

t.test('a rescan of an applied block changes nothing; a reopened ledger resumes without a duplicate', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-'));
  let h = await open(dir);
  const a = await h.deposits.newAddress({ requestId: 'r', account: 'dave' });
  const b1 = await apply(h, 50, [tx([[coldDeriver.script(0, a.index), 9_000n]])]);
  const head = h.events.head;
  const again = await apply(h, 50, [], b1.raw);
  t.same(again.events, [], 'no events');
  t.equal(h.events.head, head);
  t.equal(h.ledger.balances().cold.coins, 1, 'no second coin');
  await h.close();

  h = await open(dir);
  t.same(h.ledger.tip(), { height: 50, hash: b1.hash }, 'the tip survives a restart');
  await apply(h, 51);
  const b3 = await apply(h, 52);
  t.same(types(b3.events), ['deposit.confirmed:0'], 'the pending deposit is confirmed once, after the restart');
  t.same(types(await h.events.since(-1, 1000)), ['deposit.seen:0', 'deposit.confirmed:0']);
  await h.close();
});

t.test('reservations: only confirmed unspent coins, one holder at a time, durable, released', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-'));
  let h = await open(dir);
  const fund = tx([[hotDeriver.script(0, 0), 10_000n], [hotDeriver.script(0, 1), 20_000n]]);
  await apply(h, 1, [fund]);
  const c0 = { txid: fund.getId(), vout: 0 };
  const c1 = { txid: fund.getId(), vout: 1 };
  await h.ledger.reserve([c0], 'withdrawal-1');
  t.equal(h.ledger.balances().hot.reservedSats, 10_000n);
  await t.rejects(h.ledger.reserve([c1, c0], 'withdrawal-2'), { code: 'UTXO_UNAVAILABLE', message: /reserved by withdrawal-1/ });
  t.equal(h.ledger.utxos.get(c1.txid, c1.vout)?.reservedBy, null, 'all or nothing');
  await t.rejects(h.ledger.reserve([{ txid: 'ab'.repeat(32), vout: 0 }], 'w'), { code: 'UTXO_UNAVAILABLE', message: /not a coin of ours/ });
  const unconfirmed = tx([[hotDeriver.script(0, 2), 1_000n]]);
  await h.ledger.applyMempool([walkTransaction(unconfirmed.toBuffer(), h.ledger.scripts, h.ledger.outpoints)], new Set([unconfirmed.getId()]));
  await t.rejects(h.ledger.reserve([{ txid: unconfirmed.getId(), vout: 0 }], 'w'), { message: /not confirmed yet/ });
  await h.ledger.reserve([c0], 'withdrawal-1');
  await h.close();
  h = await open(dir);
  t.equal(h.ledger.utxos.get(c0.txid, c0.vout)?.reservedBy, 'withdrawal-1', 'durable');
  t.equal(await h.ledger.release('withdrawal-1'), 1);
  t.equal(h.ledger.balances().hot.reservedSats, 0n);
  await h.close();
});
