/**
 * Deposits end to end against a real regtest node (bcoin, a child process) and a real custodyd (a child
 * process): a payment raises seen then confirmed; a reorganisation that drops its block raises reorged
 * and removes the coin, one that brings it back confirms it again; a daemon restarted mid-way resumes
 * without a duplicate or a missed event; a node killed and restarted is caught up with.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CustodyClient } from '../../src/client/app-client.js';
import type { CustodyEvent } from '../../src/service/events.js';
import { readKeystore } from '../../src/keystore/keyfile.js';
import { parseDescriptor } from '../../src/wallet/descriptor.js';
import { Deriver } from '../../src/wallet/derive.js';
import { appClient, custody, freePort, makeDaemonFixture, startTestDaemon, type DaemonFixture, type RunningTestDaemon } from '../support/daemon.js';
import { Funder, invalidateAndMine, mine, startRegtestNode, submitBranch, type RegtestNode } from '../support/regtest.js';
import { allEvents, chainConfig, deposit, waitForEvents, waitForTip } from '../support/chain.js';

let node: RegtestNode;
let funder: Funder;
let fixture: DaemonFixture;
let daemon: RunningTestDaemon;
let app: CustodyClient;
const nodeDir = mkdtempSync(join(tmpdir(), 'custody-node-'));
let nodePort: number;
let nodePassword: string;
let birthday: number;

t.before(async () => {
  nodePort = await freePort();
  node = await startRegtestNode({ dataDir: nodeDir, port: nodePort });
  nodePassword = node.password;
  funder = await Funder.create(node);
  birthday = (await node.client.getBlockCount()) + 1;
  const dir = mkdtempSync(join(tmpdir(), 'custody-chain-'));
  fixture = await makeDaemonFixture({ poolSize: 64, poolWorkers: 0, extraConfig: chainConfig(dir, node, birthday) });
  daemon = await startTestDaemon(fixture);
  app = appClient(fixture, 'app', 10_000);
});

t.teardown(async () => {
  await app?.close();
  await daemon?.stop();
  await node?.stop();
});

const seq = (events: readonly CustodyEvent[]): number => events.reduce((m, e) => Math.max(m, e.seq), -1);
let dropped: { txid: string; vout: number; blockHash: string; height: number } | undefined;

t.test('a payment to an issued address is seen from the mempool, then confirmed, with its account and amount', async (t) => {
  t.equal(await waitForTip(app, node), birthday - 1, 'the follower looked at the node; nothing to apply before its birthday');
  const { address, index } = await app.newAddress({ requestId: 'order-1', account: 'alice' });
  const before = (await app.eventsSince(-1, 1000)).head;
  const tx = await funder.pay([{ address, sats: 1_234_567n }]);
  const txid = tx.getId();
  const vout = tx.outs.findIndex((o) => o.value === 1_234_567n);
  const seen = await waitForEvents(app, before, (es) => es.some(deposit('deposit.seen', txid)));
  const s = seen.find(deposit('deposit.seen', txid))!;
  t.match(s.data, { txid, vout, address, account: 'alice', index, amountSats: 1_234_567, state: 'seen', height: null, confirmations: 0 });
  let status = await app.status();
  t.equal(status.balances?.cold.unconfirmedSats, 1_234_567, 'an unconfirmed cold coin');
  t.equal(status.balances?.cold.confirmedSats, 0);

  const [blockHash] = await mine(node, 1, funder.address);
  const height = await node.client.getBlockCount();
  const confirmed = await waitForEvents(app, seq(seen), (es) => es.some(deposit('deposit.confirmed', txid)));
  t.match(confirmed.find(deposit('deposit.confirmed', txid))!.data, { txid, vout, account: 'alice', amountSats: 1_234_567, state: 'confirmed', height, confirmations: 1 });
  t.notOk(confirmed.some(deposit('deposit.seen', txid)), 'mined after being seen: no second seen event');
  status = await app.status();
  t.equal(status.balances?.cold.confirmedSats, 1_234_567);
  t.equal(status.balances?.cold.unconfirmedSats, 0);
  t.equal(status.deposits.highestUsed, index, 'the gap report knows the address was used');
  const list = await app.listDeposits({ account: 'alice' });
  t.equal(list.deposits.length, 1);
  t.match(list.deposits[0], { txid, vout, state: 'confirmed', height, blockHash, confirmations: 1, amountSats: 1_234_567 });
  t.same((await app.listDeposits({ account: 'bob' })).deposits, [], 'another account sees nothing');
  dropped = { txid, vout, blockHash: blockHash!, height };
});

t.test('a reorganisation that drops the block raises reorged and removes the coin; one that restores it confirms it again', async (t) => {
  const d = dropped!;
  const head = (await app.eventsSince(-1, 1)).head;
  const parent = await node.client.getBlockHash(d.height - 1);
  await submitBranch(node, parent, d.height - 1, 2, funder.script, 1);
  t.not(await node.client.getBlockHash(d.height), d.blockHash, 'the node switched branches');
  const reorged = await waitForEvents(app, head, (es) => es.some(deposit('deposit.reorged', d.txid)));
  t.match(reorged.find(deposit('deposit.reorged', d.txid))!.data, { account: 'alice', amountSats: 1_234_567, state: 'reorged', reason: 'block-disconnected', wasConfirmed: true, height: null, disconnectedHeight: d.height, disconnectedBlock: d.blockHash });
  await waitForTip(app, node);
  let status = await app.status();
  t.equal(status.balances?.cold.confirmedSats, 0, 'the coin is gone');
  t.equal(status.balances?.cold.coins, 0);
  t.equal((await app.listDeposits({ account: 'alice' })).deposits[0]?.state, 'reorged');

  // The original branch grows longer: the block with the payment is back.
  await submitBranch(node, d.blockHash, d.height, 2, funder.script, 2);
  t.equal(await node.client.getBlockHash(d.height), d.blockHash);
  const back = await waitForEvents(app, seq(reorged), (es) => es.some(deposit('deposit.confirmed', d.txid)));
  t.ok(back.some(deposit('deposit.seen', d.txid)), 'seen again');
  t.match(back.find(deposit('deposit.confirmed', d.txid))!.data, { state: 'confirmed', height: d.height, amountSats: 1_234_567 });
  await waitForTip(app, node);
  status = await app.status();
  t.equal(status.balances?.cold.confirmedSats, 1_234_567, 'the coin is back');
  const [record] = (await app.listDeposits({ account: 'alice' })).deposits;
  t.match(record, { state: 'confirmed', height: d.height, blockHash: d.blockHash, confirmations: 3 });

  // invalidateblock above the payment's block, then a longer branch: the blocks above are replaced, the
  // payment's block stays, and so does its confirmed deposit (no event for it).
  const before = (await app.eventsSince(-1, 1)).head;
  const replaced = await invalidateAndMine(node, d.height + 1, 3, funder.address);
  t.equal(await node.client.getBlockHash(d.height + 1), replaced[0], 'the node switched to the new branch');
  await waitForTip(app, node);
  t.same((await allEvents(app, before)).filter((e) => e.data['txid'] === d.txid), [], 'the deposit below the fork point is untouched');
  t.match((await app.listDeposits({ account: 'alice' })).deposits[0], { state: 'confirmed', height: d.height, confirmations: 4 });
});

t.test('a daemon stopped mid-way resumes: no duplicate, no missed event', async (t) => {
  const addresses = await Promise.all([0, 1, 2].map((i) => app.newAddress({ requestId: `restart-${i}`, account: `carol-${i}` })));
  const head = (await app.eventsSince(-1, 1)).head;
  // One payment confirmed while the daemon runs, then the daemon stops mid-way.
  const first = await funder.pay([{ address: addresses[0]!.address, sats: 50_000n }]);
  await mine(node, 1, funder.address);
  await waitForEvents(app, head, (es) => es.some(deposit('deposit.confirmed', first.getId())));
  await app.close();
  t.equal(await daemon.stop('SIGTERM'), 0);
  // While it is down: one payment mined, one left in the mempool.
  const second = await funder.pay([{ address: addresses[1]!.address, sats: 60_000n }, { address: addresses[1]!.address, sats: 61_000n }]);
  await mine(node, 2, funder.address);
  const third = await funder.pay([{ address: addresses[2]!.address, sats: 70_000n }]);
  daemon = await startTestDaemon(fixture);
  app = appClient(fixture, 'app', 10_000);
  const events = await waitForEvents(app, head, (es) => es.some(deposit('deposit.seen', third.getId())) && es.filter(deposit('deposit.confirmed', second.getId())).length === 2);
  await waitForTip(app, node);
  const all = await allEvents(app, head);
  const count = (type: string, txid: string): number => all.filter(deposit(type, txid)).length;
  t.same(
    [count('deposit.seen', first.getId()), count('deposit.confirmed', first.getId()), count('deposit.seen', second.getId()), count('deposit.confirmed', second.getId()), count('deposit.seen', third.getId()), count('deposit.confirmed', third.getId())],
    [1, 1, 2, 2, 1, 0],
    'each deposit once per state; two outputs to one address are two deposits',
  );
  t.same(all.map((e) => e.seq), all.map((_e, i) => head + 1 + i), 'sequence numbers without a gap');
  t.ok(events.length > 0);
  const carol1 = (await app.listDeposits({ account: 'carol-1' })).deposits;
  t.same(carol1.map((d) => d.amountSats).sort(), [60_000, 61_000]);
  t.ok(carol1.every((d) => d.state === 'confirmed' && d.confirmations === 2));
});

t.test('hot coins (a refill to the hot wallet\'s first receive address) show in status as unconfirmed, then confirmed', async (t) => {
  const { body } = readKeystore(join(fixture.dir, 'keystore.json'));
  const hot = parseDescriptor(`wpkh([${body.hot.fingerprint}/${body.hot.path}]${body.hot.xpub}/<0;1>/*)`, { network: 'regtest' });
  const refill = new Deriver(hot, 'regtest').address(0, 0);
  const before = await app.status();
  t.same(before.balances?.hot, { confirmedSats: 0, unconfirmedSats: 0, reservedSats: 0, coins: 0 });
  const head = (await app.eventsSince(-1, 1)).head;
  const tx = await funder.pay([{ address: refill, sats: 2_500_000n }]);
  const until = Date.now() + 20_000;
  let s = await app.status();
  while (s.balances?.hot.unconfirmedSats !== 2_500_000 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    s = await app.status();
  }
  t.match(s.balances?.hot, { confirmedSats: 0, unconfirmedSats: 2_500_000, coins: 1 });
  await mine(node, 1, funder.address);
  await waitForTip(app, node);
  s = await app.status();
  t.match(s.balances?.hot, { confirmedSats: 2_500_000, unconfirmedSats: 0, coins: 1 });
  const events = await allEvents(app, head);
  t.notOk(events.some((e) => e.data['txid'] === tx.getId()), 'a hot coin is not a deposit: no deposit event');
});

t.test('the node killed: status says disconnected, addresses are still issued; restarted: the daemon catches up', async (t) => {
  node.child.kill('SIGKILL');
  await new Promise((r) => node.child.once('exit', r));
  const until = Date.now() + 15_000;
  let status = await app.status();
  while (status.chain.state !== 'disconnected' && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    status = await app.status();
  }
  t.equal(status.chain.state, 'disconnected');
  t.match(status.chain, { lastError: /cannot reach the node/ });
  const offline = await app.newAddress({ requestId: 'while-node-down', account: 'dave' });
  t.ok(offline.created, 'issuance needs no node');
  const adminView = await custody(fixture, ['status']);
  t.match(adminView.stdout, /chain: {4}DISCONNECTED/);

  node = await startRegtestNode({ dataDir: nodeDir, port: nodePort, password: nodePassword });
  const height = await node.client.getBlockCount();
  t.ok(height > birthday, `the node kept its chain on disk (height ${height})`);
  const head = (await app.eventsSince(-1, 1)).head;
  const tx = await funder.pay([{ address: offline.address, sats: 80_000n }]);
  await mine(node, 1, funder.address);
  const events = await waitForEvents(app, head, (es) => es.some(deposit('deposit.confirmed', tx.getId())));
  t.match(events.find(deposit('deposit.confirmed', tx.getId()))!.data, { account: 'dave', amountSats: 80_000 });
  t.equal((await app.status()).chain.state, 'connected');
  await waitForTip(app, node);
});

t.test('a fresh data dir with a late birthday finds earlier deposits by `custody chain rescan`', async (t) => {
  await app.close();
  t.equal(await daemon.stop('SIGTERM'), 0);
  const dir = mkdtempSync(join(tmpdir(), 'custody-rescan-'));
  fixture = await makeDaemonFixture({ poolSize: 64, poolWorkers: 0, extraConfig: chainConfig(dir, node, (await node.client.getBlockCount()) + 1) });
  daemon = await startTestDaemon(fixture);
  app = appClient(fixture, 'app', 10_000);
  await mine(node, 1, funder.address);
  const tip = await waitForTip(app, node);
  // The same cold descriptor: the first address issued here is the one alice was paid at.
  const again = await app.newAddress({ requestId: 'restore-1', account: 'alice-restored' });
  t.equal((await app.listDeposits()).deposits.length, 0, 'nothing found from the late birthday on');
  const r = await custody(fixture, ['chain', 'rescan', '--from', String(birthday)]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, new RegExp(`rescan of blocks ${birthday}\\.\\.${tip} started`));
  t.match(r.stderr, /\[#+\] \d+\/\d+ blocks .*done/);
  t.match(r.stdout, /Rescan of blocks \d+\.\.\d+ done/);
  const found = (await app.listDeposits({ account: 'alice-restored' })).deposits;
  t.equal(found.length, 1);
  t.match(found[0], { address: again.address, amountSats: 1_234_567, state: 'confirmed' });
  const bad = await custody(fixture, ['chain', 'rescan', '--from', String(tip + 10)]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /RESCAN_RANGE.*from: expected a height from 0 to the daemon's tip/);
});
