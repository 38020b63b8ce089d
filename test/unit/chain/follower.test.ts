/**
 * The follower's own behaviour, with a real ledger (LevelDB) and a real regtest node: an unreachable node
 * is `disconnected` (and stop() still returns), a ZMQ `hashblock` wakes it long before its next poll,
 * rescans are validated and report progress.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Publisher } from 'zeromq';
import { BitcoindClient } from '../../../src/chain/bitcoind.js';
import { ChainFollower } from '../../../src/chain/follower.js';
import { BlockNotifier } from '../../../src/chain/block-notify.js';
import { Store } from '../../../src/store/db.js';
import { EventLog } from '../../../src/service/events.js';
import { DepositAddresses } from '../../../src/service/deposits.js';
import { Ledger } from '../../../src/service/ledger.js';
import { WatchSet } from '../../../src/service/watch.js';
import { Deriver } from '../../../src/wallet/derive.js';
import { regtestDescriptor } from '../../support/wallets.js';
import { freePort } from '../../support/daemon.js';
import { mine, startRegtestNode, type RegtestNode } from '../../support/regtest.js';

const cold = regtestDescriptor();
const payTo = new Deriver(cold, 'regtest').output(1, 500).address; // watched by nobody here

async function openLedger(): Promise<{ ledger: Ledger; close: () => Promise<void> }> {
  const store = await Store.open(mkdtempSync(join(tmpdir(), 'follower-')), { network: 'regtest', descriptorChecksum: cold.checksum });
  const events = await EventLog.open(store);
  const deposits = await DepositAddresses.open(store, cold, { pool: { size: 16, batch: 16, workers: 0 } });
  const ledger = await Ledger.open(store, events, deposits, new WatchSet(new Deriver(cold, 'regtest'), null), { network: 'regtest', confirmations: 1, lookahead: 5 });
  return {
    ledger,
    close: async () => {
      await deposits.close();
      await store.close();
    },
  };
}

let node: RegtestNode;
t.before(async () => {
  node = await startRegtestNode();
  await mine(node, 20, payTo);
});
t.teardown(() => node.stop());

t.test('an unreachable node: disconnected with the reason; stop() returns', async (t) => {
  const { ledger, close } = await openLedger();
  const backend = new BitcoindClient({ url: `http://127.0.0.1:${await freePort()}/`, auth: { user: 'u', password: 'p' }, retries: 0, timeoutMs: 500 });
  const follower = new ChainFollower(backend, ledger, { birthdayHeight: 0, pollMs: 50 });
  t.equal(follower.status().state, 'starting');
  follower.start();
  const until = Date.now() + 5_000;
  while (follower.status().state !== 'disconnected' && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.match(follower.status(), { state: 'disconnected', lastError: /cannot reach the node/, height: null });
  await follower.stop();
  await close();
});

t.test('a ZMQ hashblock wakes the follower long before its next poll', async (t) => {
  const { ledger, close } = await openLedger();
  const follower = new ChainFollower(node.client, ledger, { birthdayHeight: 0, pollMs: 60_000 });
  follower.start();
  await follower.whenSynced();
  const height = (await node.client.getBlockCount()) as number;
  t.equal(ledger.tip()?.height, height);
  // bcoin has no ZMQ publisher: a real zeromq Publisher stands in for bitcoind's -zmqpubhashblock.
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const pub = new Publisher({ linger: 0 });
  await pub.bind(endpoint);
  const notifier = new BlockNotifier(endpoint, () => follower.wake());
  notifier.start();
  await new Promise((r) => setTimeout(r, 200)); // subscription reaches the publisher (slow joiner)
  const [hash] = await mine(node, 1, payTo);
  const sent = Date.now();
  await pub.send(['hashblock', Buffer.from(hash!, 'hex'), Buffer.alloc(4)]);
  while (ledger.tip()?.hash !== hash && Date.now() - sent < 5_000) await new Promise((r) => setTimeout(r, 10));
  t.equal(ledger.tip()?.hash, hash, 'applied without waiting a minute for the poll');
  t.ok(Date.now() - sent < 5_000);
  await notifier.close();
  pub.close();
  await follower.stop();
  await close();
});

t.test('rescans: refused before any block, beyond the tip, or while one runs; progress reaches the end', async (t) => {
  const { ledger, close } = await openLedger();
  const follower = new ChainFollower(node.client, ledger, { birthdayHeight: 5, pollMs: 50, prefetch: 4 });
  t.throws(() => follower.requestRescan(0), { code: 'RESCAN_RANGE', message: /has not applied any block yet/ });
  follower.start();
  await follower.whenSynced();
  const tip = ledger.tip()!.height;
  t.throws(() => follower.requestRescan(tip + 1), { code: 'RESCAN_RANGE', message: new RegExp(`from 0 to the daemon's tip ${tip}, got ${tip + 1}`) });
  t.throws(() => follower.requestRescan(-1), { code: 'RESCAN_RANGE' });
  t.same(follower.requestRescan(0), { from: 0, to: tip }, 'below the birthday is allowed (a birthday set too late)');
  t.throws(() => follower.requestRescan(0), { code: 'RESCAN_RANGE', message: /already running/ });
  const until = Date.now() + 10_000;
  while (follower.status().rescan?.finishedAt === null && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.match(follower.status().rescan, { from: 0, to: tip, at: tip, etaSeconds: 0, error: null });
  t.ok((await ledger.hashAt(0)) !== undefined, 'heights below the birthday are recorded once rescanned');
  await follower.stop();
  await close();
});
