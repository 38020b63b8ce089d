/**
 * Each automatic-freeze trigger caused for real, against a real daemon and a real regtest node: a client
 * hammering the policy, a reorganisation deeper than the limit (a competing branch on the node), a burst
 * of failed unlock attempts, a tip that stops moving, and the audit sink unreachable. Deposits keep being
 * tracked while frozen; new withdrawals are refused; only an operator unfreezes.
 */
import t, { type Test } from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CustodyEvent } from '../../src/service/events.js';
import type { StatusDocument } from '../../src/service/status.js';
import { Deriver } from '../../src/wallet/derive.js';
import { appClient, custody, freePort, makeDaemonFixture, startTestDaemon, type DaemonFixture } from '../support/daemon.js';
import { Funder, mine, startRegtestNode, submitBranch, type RegtestNode } from '../support/regtest.js';
import { allEvents, chainConfig, eventually, unlockDaemon, waitForTip } from '../support/chain.js';
import { regtestDescriptor } from '../support/wallets.js';

let node: RegtestNode;
let funder: Funder;

t.before(async () => {
  node = await startRegtestNode();
  funder = await Funder.create(node);
});
t.teardown(() => node?.stop());

async function daemonWith(t: Test, extra: string): Promise<DaemonFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'custody-freeze-'));
  const fixture = await makeDaemonFixture({
    clients: { payer: ['withdrawals'], app: ['deposits'], watcher: ['monitor'] },
    poolSize: 64,
    poolWorkers: 0,
    extraConfig: `${chainConfig(dir, node, (await node.client.getBlockCount()) + 1)}\n${extra}`,
  });
  const daemon = await startTestDaemon(fixture);
  t.teardown(async () => {
    if (!t.passing()) console.error(`custodyd stderr (last 20,000 chars):\n${daemon.stderr().slice(-20_000)}`);
    await daemon.stop();
  });
  return fixture;
}

async function status(f: DaemonFixture): Promise<StatusDocument> {
  const c = appClient(f, 'watcher', 20_000);
  try {
    return await c.status();
  } finally {
    await c.close();
  }
}

async function frozenBy(f: DaemonFixture, reason: RegExp): Promise<StatusDocument['frozen']> {
  return eventually(`frozen: ${reason}`, async () => {
    const s = await status(f);
    return s.frozen !== null && reason.test(s.frozen.reason) ? s.frozen : undefined;
  }, 30_000);
}

async function events(f: DaemonFixture): Promise<CustodyEvent[]> {
  const c = appClient(f, 'watcher', 20_000);
  try {
    return await allEvents(c);
  } finally {
    await c.close();
  }
}

const WITHDRAWALS = '[withdrawals]\nmaxAmountSats = 1_000_000\n[withdrawals.fee]\nfallbackSatPerVb = 2';

t.test('policy rejections, a deep reorg and failed unlocks each freeze the daemon; deposits go on; only an operator unfreezes', async (t) => {
  const f = await daemonWith(t, `${WITHDRAWALS}\n[autoFreeze]\npolicyRejections = 3\npolicyRejectionsMinutes = 10\nreorgDepth = 2\nfailedUnlocks = 3`);
  await unlockDaemon(f);
  const payer = appClient(f, 'payer', 20_000);
  const app = appClient(f, 'app', 20_000);
  t.teardown(async () => {
    await payer.close();
    await app.close();
  });
  await waitForTip(payer, node);
  const dest = new Deriver(regtestDescriptor(), 'regtest').address(1, 777);

  // 1. A client hammering the policy.
  for (let i = 0; i < 3; i++) {
    await t.rejects(payer.call('withdrawal.create', { requestId: `big-${i}`, address: dest, amountSats: 5_000_000 }), { code: 'POLICY_MAX_AMOUNT' });
  }
  const byPolicy = await frozenBy(f, /^automatic: 3 policy rejections within 10 min from client client:payer \(last: POLICY_MAX_AMOUNT\)$/);
  t.equal(byPolicy!.by, 'system');
  await t.rejects(payer.call('withdrawal.create', { requestId: 'small', address: dest, amountSats: 100_000 }), { code: 'FROZEN' }, 'new withdrawals are refused');
  // Deposits keep being tracked while frozen.
  const addr = await app.newAddress({ requestId: 'frozen-deposit', account: 'carol' });
  await funder.pay([{ address: addr.address, sats: 1_234_567n }]);
  await mine(node, 1, funder.address);
  await eventually('the deposit confirmed while frozen', async () => (await events(f)).find((e) => e.type === 'deposit.confirmed' && e.data['address'] === addr.address), 30_000);
  t.ok((await status(f)).frozen !== null, 'still frozen: nothing but an operator unfreezes');
  const tail = await custody(f, ['audit', 'tail', '-n', '100']);
  t.match(tail.stdout, /system\s+freeze .*automatic: 3 policy rejections/, 'the automatic freeze is on the audit record');
  t.ok((await events(f)).some((e) => e.type === 'alert.auto_freeze'), 'and an alert on the feed');
  t.equal((await custody(f, ['unfreeze'])).code, 0);
  t.equal((await status(f)).frozen, null);

  // 2. A reorganisation deeper than reorgDepth (2): a competing branch replaces 3 blocks.
  await mine(node, 3, funder.address);
  const height = await waitForTip(payer, node);
  await submitBranch(node, await node.client.getBlockHash(height - 3), height - 3, 4, funder.script, 91);
  const byReorg = await frozenBy(f, /^automatic: a reorganisation rolled back 3 blocks \(deeper than 2\) to height \d+$/);
  t.equal(byReorg!.by, 'system');
  t.ok((await events(f)).some((e) => e.type === 'alert.reorg' && e.data['depth'] === 3), 'alert.reorg names the depth');
  t.equal((await custody(f, ['unfreeze'])).code, 0);

  // A reorg within the limit does not freeze.
  const h2 = await waitForTip(payer, node);
  await submitBranch(node, await node.client.getBlockHash(h2 - 1), h2 - 1, 2, funder.script, 92);
  await waitForTip(payer, node);
  await new Promise((r) => setTimeout(r, 1_500));
  t.equal((await status(f)).frozen, null, 'a 1-block reorg leaves it running');

  // 3. A burst of failed unlock attempts (one wrong passphrase from each of three custodians).
  t.equal((await custody(f, ['lock'])).code, 0);
  for (const who of ['ops1', 'ops2', 'ops3']) {
    const r = await custody(f, ['unlock', '--custodian', who, '--passphrase-fd', '3'], 'not-the-right-passphrase-Quartz-77\n');
    t.equal(r.code, 1, `${who}: refused`);
  }
  await frozenBy(f, /^automatic: 3 failed unlock attempts within 10 min \(last: ops3, BAD_PASSPHRASE\)$/);
  t.ok((await events(f)).filter((e) => e.type === 'alert.unlock_failed').length >= 3, 'each failed attempt is an alert');
});

t.test('a tip that stops moving freezes the daemon', async (t) => {
  const f = await daemonWith(t, '[autoFreeze]\ntipStaleSeconds = 3');
  const c = appClient(f, 'watcher', 20_000);
  await waitForTip(c, node);
  await c.close();
  const frozen = await frozenBy(f, /^automatic: the tip has not moved for \d+ s \(more than 3 s; chain connected at height (\d+|none)\)$/);
  t.equal(frozen!.by, 'system');
});

t.test('the audit sink unreachable freezes the daemon', async (t) => {
  const port = await freePort(); // nothing listens there
  const f = await daemonWith(t, `[audit]\nsyslog = "tcp://127.0.0.1:${port}"\n[autoFreeze]\nauditSinkDownSeconds = 2`);
  const frozen = await frozenBy(f, /^automatic: the audit sink has been unreachable for \d+ s \(more than 2 s\)$/);
  t.equal(frozen!.by, 'system');
  const s = await status(f);
  t.ok(s.audit.sink !== null && s.audit.sink.downSince !== null, 'status shows the sink down');
  await eventually('alert.audit_sink_down on the feed', async () => ((await events(f)).some((e) => e.type === 'alert.audit_sink_down') ? true : undefined), 30_000);
  t.pass('alert.audit_sink_down on the feed (raised after 5 s down)');
});
