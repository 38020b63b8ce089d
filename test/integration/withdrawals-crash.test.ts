/**
 * Fault injection with a real custodyd and a real regtest node: the daemon is SIGKILLed at each step of
 * the payout lifecycle (after approval; after signing, before persisting; after persisting, before
 * broadcast; after broadcast), restarted, unlocked, and the app retries its requests with the same
 * requestIds. Over every run: no request is paid twice, none is lost, and the velocity charged equals
 * what the chain paid. (CUSTODY_FAULT_INJECT is the named stand-in for a crash at an exact point.)
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Block } from 'bitcoinjs-lib';
import type { CustodyClient } from '../../src/client/app-client.js';
import type { WithdrawalView } from '../../src/service/withdrawals.js';
import { Deriver } from '../../src/wallet/derive.js';
import { appClient, makeDaemonFixture, startTestDaemon, type DaemonFixture, type RunningTestDaemon } from '../support/daemon.js';
import { Funder, mine, startRegtestNode, type RegtestNode } from '../support/regtest.js';
import { chainConfig, eventually, hotAddress, unlockDaemon, waitForTip } from '../support/chain.js';
import { regtestDescriptor } from '../support/wallets.js';

const STEPS = ['after-approval', 'after-sign', 'after-persist', 'after-broadcast'] as const;
const RUNS_PER_STEP = 2;

let node: RegtestNode;
let funder: Funder;
let fixture: DaemonFixture;
let daemon: RunningTestDaemon | undefined;
let birthday: number;

t.before(async () => {
  node = await startRegtestNode();
  funder = await Funder.create(node);
  birthday = (await node.client.getBlockCount()) + 1;
  const dir = mkdtempSync(join(tmpdir(), 'custody-crash-'));
  fixture = await makeDaemonFixture({
    clients: { payer: ['withdrawals'] },
    poolSize: 32,
    poolWorkers: 0,
    extraConfig: `${chainConfig(dir, node, birthday)}\n[withdrawals]\nmaxAmountSats = 10_000_000\n[[withdrawals.windows]]\nname = "24h"\nseconds = 86400\nglobalSats = 1_000_000_000\n[withdrawals.batch]\nwindowMs = 200\n`,
  });
  await funder.pay([0, 1, 2, 3, 4, 5].map((i) => ({ address: hotAddress(fixture, i), sats: 100_000_000n })));
  await mine(node, 1, funder.address);
});

t.teardown(async () => {
  await daemon?.stop();
  await node?.stop();
});

const destination = (i: number): string => new Deriver(regtestDescriptor(), 'regtest').address(1, 5000 + i);

async function started(env: Record<string, string> = {}): Promise<CustodyClient> {
  daemon = await startTestDaemon(fixture, env);
  const c = appClient(fixture, 'payer', 15_000);
  await waitForTip(c, node);
  await unlockDaemon(fixture);
  return c;
}

/** Every output on chain since the birthday paying one of our destinations: script hex → amounts. */
async function paidOnChain(): Promise<Map<string, bigint[]>> {
  const paid = new Map<string, bigint[]>();
  const tip = await node.client.getBlockCount();
  for (let h = birthday; h <= tip; h++) {
    const block = Block.fromBuffer(Buffer.from(await node.client.getBlockRaw(await node.client.getBlockHash(h))));
    for (const tx of block.transactions ?? []) {
      for (const o of tx.outs) {
        const key = Buffer.from(o.script).toString('hex');
        paid.set(key, [...(paid.get(key) ?? []), o.value]);
      }
    }
  }
  return paid;
}

const requests: Array<{ requestId: string; address: string; amountSats: number }> = [];

for (const step of STEPS) {
  for (let run = 0; run < RUNS_PER_STEP; run++) {
    t.test(`SIGKILL ${step} (run ${run + 1}): restarted, retried, paid exactly once`, async (t) => {
      const batch = [0, 1, 2].map((k) => {
        const n = requests.length + k;
        return { requestId: `crash-${step}-${run}-${k}`, address: destination(n), amountSats: 100_000 + n };
      });
      requests.push(...batch);
      let c = await started({ CUSTODY_FAULT_INJECT: step });
      // The app sends its requests; the daemon dies on the way (some calls may fail with it).
      await Promise.allSettled(batch.map((r) => c.call('withdrawal.create', r)));
      const code = await Promise.race([daemon!.exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
      t.equal(code, 'SIGKILL', `the daemon was killed ${step}`);
      await c.close();
      c = await started();
      // The app retries every request it has no final answer for, with the same requestId.
      const answers = (await Promise.all(batch.map((r) => c.call('withdrawal.create', r)))) as WithdrawalView[];
      await eventually('all broadcast', async () => {
        const ws = (await Promise.all(answers.map((w) => c.call('withdrawal.get', { id: w.id })))) as WithdrawalView[];
        return ws.every((w) => w.state === 'broadcast' || w.state === 'confirmed') ? ws : undefined;
      });
      await mine(node, 1, funder.address);
      const final = await eventually('all confirmed', async () => {
        const ws = (await Promise.all(answers.map((w) => c.call('withdrawal.get', { id: w.id })))) as WithdrawalView[];
        return ws.every((w) => w.state === 'confirmed') ? ws : undefined;
      });
      t.same(final.map((w) => w.requestId), batch.map((r) => r.requestId), 'one withdrawal per request, none lost');
      t.ok(final.every((w) => w.txid !== null && w.height !== null), 'each paid by a mined transaction');
      await c.close();
      t.equal(await daemon!.stop(), 0);
      daemon = undefined;
    });
  }
}

t.test('a batch that fails between signing and writing raises alert.signing_failed, is retried and paid once', async (t) => {
  const r = { requestId: 'fail-after-sign', address: destination(requests.length), amountSats: 100_000 + requests.length };
  requests.push(r);
  const c = await started({ CUSTODY_FAULT_INJECT: 'after-sign:1:throw' });
  const head = (await c.eventsSince(-1, 1)).head;
  const w = (await c.call('withdrawal.create', r)) as WithdrawalView;
  const alert = await eventually('the alert', async () => (await c.eventsSince(head, 1000)).events.find((e) => e.type === 'alert.signing_failed'));
  t.match(alert.data, { withdrawals: 1, first: w.id, reason: /injected fault at after-sign/ }, 'names the batch and the reason');
  await eventually('broadcast on a later pass', async () => {
    const now = (await c.call('withdrawal.get', { id: w.id })) as WithdrawalView;
    return now.state === 'broadcast' || now.state === 'confirmed' ? now : undefined;
  });
  await mine(node, 1, funder.address);
  await eventually('confirmed', async () => (((await c.call('withdrawal.get', { id: w.id })) as WithdrawalView).state === 'confirmed' ? true : undefined));
  await c.close();
  t.equal(await daemon!.stop(), 0);
  daemon = undefined;
});

t.test('over all runs: every request paid exactly once, none lost, velocity equals the chain', async (t) => {
  const c = await started();
  const paid = await paidOnChain();
  const derive = new Deriver(regtestDescriptor(), 'regtest');
  let total = 0;
  requests.forEach((r, n) => {
    const amounts = paid.get(Buffer.from(derive.script(1, 5000 + n)).toString('hex')) ?? [];
    t.same(amounts, [BigInt(r.amountSats)], `${r.requestId}: paid once, ${r.amountSats} sats`);
    total += r.amountSats;
  });
  const status = await c.status();
  t.equal(status.withdrawals!.windows[0]!.usedSats, total, 'velocity charged = paid on chain');
  const list = (await c.call('withdrawal.list', { limit: 1000 })) as { withdrawals: WithdrawalView[] };
  t.equal(list.withdrawals.length, requests.length, 'one withdrawal per request');
  t.ok(list.withdrawals.every((w) => w.state === 'confirmed'));
  await c.close();
});
