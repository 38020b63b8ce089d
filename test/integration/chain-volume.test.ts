/**
 * 1,000 deposits over 200 blocks against a real regtest node and a real custodyd (SIGKILLed and restarted
 * on the way): every one is accounted for, to the satoshi, per account, with exactly one seen and one
 * confirmed event each. Then a cold coin
 * is spent (the test descriptor is the published BIP84 test key, so the test can sign) and the spend is
 * reorganised away: the balance follows both ways.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mnemonicToSeedSync } from 'bip39';
import type { CustodyClient, DepositAddress } from '../../src/client/app-client.js';
import type { DepositView } from '../../src/service/ledger.js';
import { bip32, bip32Network } from '../../src/wallet/keys.js';
import { appClient, makeDaemonFixture, startTestDaemon, type RunningTestDaemon } from '../support/daemon.js';
import { broadcast, Funder, mine, signP2wpkhSpend, startRegtestNode, submitBranch, type RegtestNode } from '../support/regtest.js';
import { allEvents, chainConfig, waitForTip } from '../support/chain.js';
import { seededPrng } from '../support/prng.js';

const BIP84_TEST_MNEMONIC = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';

let node: RegtestNode;
let daemon: RunningTestDaemon;
let app: CustodyClient;
t.teardown(async () => {
  await app?.close();
  await daemon?.stop();
  await node?.stop();
});

t.test('1,000 deposits over 200 blocks are all accounted for, to the satoshi', async (t) => {
  node = await startRegtestNode();
  const funder = await Funder.create(node, 450);
  const birthday = (await node.client.getBlockCount()) + 1;
  const dir = mkdtempSync(join(tmpdir(), 'custody-volume-'));
  const fixture = await makeDaemonFixture({ poolSize: 512, poolWorkers: 1, extraConfig: chainConfig(dir, node, birthday) });
  daemon = await startTestDaemon(fixture);
  app = appClient(fixture, 'app', 20_000);

  const addresses: DepositAddress[] = await Promise.all(Array.from({ length: 300 }, (_, i) => app.newAddress({ requestId: `vol-${i}`, account: `acct-${i % 17}` })));
  const prng = seededPrng();
  t.comment(`seed ${prng.seed}`);
  const expected = new Map<string, { account: string; sats: number }>(); // txid:vout → what was paid
  for (let block = 0; block < 200; block++) {
    if (block === 120) {
      // Killed without warning mid-way (no chance to finish a batch), restarted 40 blocks later.
      await app.close();
      t.equal(await daemon.stop('SIGKILL'), 'SIGKILL');
    }
    if (block === 160) {
      daemon = await startTestDaemon(fixture);
      app = appClient(fixture, 'app', 20_000);
    }
    // Five outputs per block; now and then two to the same address (two deposits, not one).
    const picks = Array.from({ length: 5 }, () => prng.pick(addresses));
    if (prng.chance(0.2)) picks[1] = picks[0]!;
    const outputs = picks.map((a) => ({ address: a.address, sats: BigInt(prng.int(546, 5_000_000)) }));
    const tx = await funder.pay(outputs);
    outputs.forEach((o, vout) => expected.set(`${tx.getId()}:${vout}`, { account: picks[vout]!.account, sats: Number(o.sats) }));
    await mine(node, 1, funder.address);
  }
  t.equal(expected.size, 1000);
  await waitForTip(app, node, 60_000);

  const deposits: DepositView[] = [];
  for (let since = -1; ; ) {
    const page = await app.listDeposits({ sinceSeq: since, limit: 1000 });
    deposits.push(...page.deposits);
    if (page.deposits.length < 1000) break;
    since = page.lastSeq;
  }
  t.equal(deposits.length, 1000, 'one record per output');
  const wrong = deposits.filter((d) => {
    const e = expected.get(`${d.txid}:${d.vout}`);
    return e === undefined || e.account !== d.account || e.sats !== d.amountSats || d.state !== 'confirmed' || d.height === null || d.confirmations < 1;
  });
  t.same(wrong, [], 'every deposit has the account, amount and state it should');
  const byAccount = (list: Iterable<{ account: string | null; sats: number }>): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const x of list) out[x.account as string] = (out[x.account as string] ?? 0) + x.sats;
    return out;
  };
  t.same(byAccount(deposits.map((d) => ({ account: d.account, sats: d.amountSats }))), byAccount(expected.values()), 'per-account totals to the satoshi');
  const total = [...expected.values()].reduce((a, e) => a + e.sats, 0);
  const status = await app.status();
  t.equal(status.balances?.cold.confirmedSats, total, `cold balance ${total} sats`);
  t.equal(status.balances?.cold.coins, 1000);
  t.equal(status.deposits.highestUsed, Math.max(...deposits.map((d) => d.index)));

  const events = (await allEvents(app)).filter((e) => e.type.startsWith('deposit.'));
  const key = (e: { data: Record<string, unknown> }): string => `${String(e.data['txid'])}:${String(e.data['vout'])}`;
  const seen = events.filter((e) => e.type === 'deposit.seen').map(key);
  const confirmed = events.filter((e) => e.type === 'deposit.confirmed').map(key);
  t.equal(seen.length, 1000, 'one seen event each');
  t.equal(new Set(seen).size, 1000);
  t.equal(confirmed.length, 1000, 'one confirmed event each');
  t.equal(new Set(confirmed).size, 1000);
  t.equal(events.filter((e) => e.type === 'deposit.reorged').length, 0);
  const aliceSample = (await app.listDeposits({ account: 'acct-3', limit: 1000 })).deposits;
  t.ok(aliceSample.length > 0 && aliceSample.every((d) => d.account === 'acct-3'), 'deposit.list filters by account');

  // A cold coin spent (signed with the test key), then the spending block reorganised away.
  const coin = deposits[0]!;
  const root = bip32.fromSeed(mnemonicToSeedSync(BIP84_TEST_MNEMONIC), bip32Network('regtest'));
  const privateKey = root.derivePath(`m/84'/1'/0'/0/${coin.index}`).privateKey!;
  const spend = signP2wpkhSpend([{ txid: coin.txid, vout: coin.vout, value: BigInt(coin.amountSats), privateKey }], [{ script: funder.script, sats: BigInt(coin.amountSats) - 300n }]);
  await broadcast(node, spend);
  const [spendBlock] = await mine(node, 1, funder.address);
  await waitForTip(app, node);
  let after = await app.status();
  t.equal(after.balances?.cold.confirmedSats, total - coin.amountSats, 'the spent coin left the balance');
  t.equal(after.balances?.cold.coins, 999);
  const spendHeight = await node.client.getBlockCount();
  await submitBranch(node, await node.client.getBlockHash(spendHeight - 1), spendHeight - 1, 2, funder.script, 9);
  t.not(await node.client.getBlockHash(spendHeight), spendBlock);
  await waitForTip(app, node);
  after = await app.status();
  t.equal(after.balances?.cold.confirmedSats, total, 'the spend was reorganised away: the coin is back');
  t.equal(after.balances?.cold.coins, 1000);
  t.equal((await app.listDeposits({ limit: 1000 })).deposits.filter((d) => d.state !== 'confirmed').length, 0, 'no deposit was touched by the spend\'s reorg');
});
