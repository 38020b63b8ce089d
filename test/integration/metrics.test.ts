/**
 * The Prometheus endpoint of a real daemon on a real regtest node: requests by method and code, latency
 * histograms, balances, tip height and lag, velocity; no address, account or client in any label.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Deriver } from '../../src/wallet/derive.js';
import { appClient, freePort, makeDaemonFixture, startTestDaemon } from '../support/daemon.js';
import { Funder, mine, startRegtestNode } from '../support/regtest.js';
import { chainConfig, hotAddress, unlockDaemon, waitForTip } from '../support/chain.js';
import { regtestDescriptor } from '../support/wallets.js';

t.test('a scrape shows requests, latency, balances, chain and velocity, and nothing identifying', async (t) => {
  const node = await startRegtestNode();
  t.teardown(() => node.stop());
  const funder = await Funder.create(node);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'custody-metrics-'));
  const f = await makeDaemonFixture({
    clients: { app: ['deposits'], payer: ['withdrawals'] },
    poolSize: 64,
    poolWorkers: 0,
    extraConfig: `${chainConfig(dir, node, (await node.client.getBlockCount()) + 1)}\n[metrics]\nport = ${port}\n[withdrawals]\nmaxAmountSats = 1_000_000\n[[withdrawals.windows]]\nname = "24h"\nseconds = 86400\nglobalSats = 50_000_000`,
  });
  const daemon = await startTestDaemon(f);
  t.teardown(() => daemon.stop());
  t.match(daemon.stderr(), new RegExp(`metrics: http://127\\.0\\.0\\.1:${port}/metrics`));
  await unlockDaemon(f);
  await funder.pay([{ address: hotAddress(f, 0), sats: 30_000_000n }]);
  await mine(node, 1, funder.address);
  const app = appClient(f, 'app', 20_000);
  const payer = appClient(f, 'payer', 20_000);
  t.teardown(async () => {
    await app.close();
    await payer.close();
  });
  const height = await waitForTip(app, node);
  const issued = await app.newAddress({ requestId: 'm-1', account: 'secret-account-name' });
  const dest = new Deriver(regtestDescriptor(), 'regtest').address(1, 31337);
  await t.rejects(payer.call('withdrawal.create', { requestId: 'too-big', address: dest, amountSats: 2_000_000 }), { code: 'POLICY_MAX_AMOUNT' });
  await payer.call('withdrawal.create', { requestId: 'ok', address: dest, amountSats: 100_000 });

  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  t.equal(res.status, 200);
  const text = await res.text();
  const value = (line: RegExp): number => Number(new RegExp(`^${line.source} (\\S+)$`, 'm').exec(text)?.[1]);
  t.equal(value(/custody_rpc_requests_total\{door="app",method="deposit\.newAddress",code="OK"\}/), 1);
  t.equal(value(/custody_rpc_requests_total\{door="app",method="withdrawal\.create",code="POLICY_MAX_AMOUNT"\}/), 1);
  t.equal(value(/custody_rpc_requests_total\{door="app",method="withdrawal\.create",code="OK"\}/), 1);
  t.ok(value(/custody_rpc_request_duration_seconds_count\{door="app",method="status"\}/) >= 1, 'latency histogram per method');
  t.ok(value(/custody_rpc_requests_total\{door="admin",method="unlock\.submit",code="OK"\}/) >= 2, 'the admin door too');
  t.equal(value(/custody_balance_sats\{wallet="hot",state="confirmed"\}/), 30_000_000);
  t.equal(value(/custody_chain_tip_height/), height);
  t.equal(value(/custody_chain_lag_blocks/), 0);
  t.equal(value(/custody_chain_connected/), 1);
  t.equal(value(/custody_velocity_limit_sats\{window="24h"\}/), 50_000_000);
  t.equal(value(/custody_velocity_used_sats\{window="24h"\}/), 100_000);
  t.equal(value(/custody_frozen/), 0);
  t.equal(value(/custody_locked/), 0);
  for (const secret of [issued.address, dest, 'secret-account-name', 'client:app', 'client:payer', 'client=', 'caller=', 'account=', 'address=']) t.notOk(text.includes(secret), `no ${secret} anywhere in the scrape`);
  t.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
});
