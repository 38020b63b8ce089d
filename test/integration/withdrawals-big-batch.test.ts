/**
 * A batch of 950 withdrawals in one transaction (maxOutputs may be 1,000): signed, and named on the audit
 * record over several records (one record of 800+ ids was over the 16 KiB details cap; the batch was
 * requeued and retried forever, and nothing else was ever signed).
 */
import t, { type Test } from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditRecord } from '../../src/audit/log.js';
import type { WithdrawalView } from '../../src/service/withdrawals.js';
import { Deriver } from '../../src/wallet/derive.js';
import type { CustodyClient } from '../../src/client/app-client.js';
import { adminClient, appClient, custody, makeDaemonFixture, startTestDaemon, type DaemonFixture } from '../support/daemon.js';
import { Funder, mine, startRegtestNode, type RegtestNode } from '../support/regtest.js';
import { chainConfig, eventually, hotAddress, unlockDaemon, waitForTip } from '../support/chain.js';
import { regtestDescriptor } from '../support/wallets.js';

/** A regtest node, a daemon paying batches of up to 1,000 at `feeRate` sat/vB, unlocked, its hot wallet funded. */
async function bigBatchRig(t: Test, feeRate: number): Promise<{ node: RegtestNode; f: DaemonFixture; payer: CustodyClient }> {
  const node = await startRegtestNode();
  t.teardown(() => node.stop());
  const funder = await Funder.create(node);
  const dir = mkdtempSync(join(tmpdir(), 'custody-bigbatch-'));
  const f = await makeDaemonFixture({
    clients: { payer: ['withdrawals'] },
    poolSize: 64,
    poolWorkers: 0,
    extraConfig: `${chainConfig(dir, node, (await node.client.getBlockCount()) + 1)}\n[withdrawals]\nmaxAmountSats = 1_000_000\n[withdrawals.batch]\nwindowMs = 4000\nmaxOutputs = 1000\n[withdrawals.fee]\nfallbackSatPerVb = ${feeRate}`,
  });
  const daemon = await startTestDaemon(f);
  t.teardown(async () => {
    if (!t.passing()) console.error(`custodyd stderr (last 20,000 chars):\n${daemon.stderr().slice(-20_000)}`);
    await daemon.stop();
  });
  await unlockDaemon(f);
  await funder.pay([{ address: hotAddress(f, 0), sats: 500_000_000n }]);
  await mine(node, 1, funder.address);
  const payer = appClient(f, 'payer', 60_000);
  t.teardown(() => payer.close());
  await waitForTip(payer, node);
  return { node, f, payer };
}

t.test('950 withdrawals in one batch are signed in one transaction and named over several audit records', async (t) => {
  const { f, payer } = await bigBatchRig(t, 3);
  const dest = new Deriver(regtestDescriptor(), 'regtest');
  const created = await Promise.all(Array.from({ length: 950 }, (_, i) => payer.call('withdrawal.create', { requestId: `big-${i}`, address: dest.address(1, 5000 + i), amountSats: 10_000 }) as Promise<WithdrawalView>));
  const last = created[created.length - 1]!;
  const paid = await eventually('the batch broadcast', async () => {
    const w = (await payer.call('withdrawal.get', { id: last.id })) as WithdrawalView;
    return w.state === 'broadcast' ? w : undefined;
  }, 90_000);
  const first = (await payer.call('withdrawal.get', { id: created[0]!.id })) as WithdrawalView;
  t.equal(first.txid, paid.txid, 'one transaction pays the first and the last');
  const admin = adminClient(f);
  t.teardown(() => admin.close());
  const { records } = (await admin.call('audit.tail', { n: 50 })) as { records: AuditRecord[] };
  const parts = records.filter((r) => (r.action === 'payout.sign' || r.action === 'payout.sign.more') && r.details['txid'] === paid.txid);
  t.equal(parts.length, 5, '950 ids over 5 records of at most 200 (one would be about 17 KiB)');
  t.same(parts.map((r) => r.details['part']), [1, 2, 3, 4, 5]);
  const named = parts.flatMap((r) => r.details['withdrawals'] as string[]);
  t.same([...named].sort(), created.map((w) => w.id).sort(), 'every withdrawal of the batch is named once');
  t.equal(parts[0]!.details['withdrawalCount'], 950);
  t.equal((await custody(f, ['audit', 'verify'])).code, 0, 'the audit chain verifies');
});

t.test('a transaction the node will not keep raises alert.stuck; its withdrawals stay signed', async (t) => {
  // bcoin 1.0.2 does not keep this 950-output batch at 1 sat/vB (its minimum fee is computed on more bytes
  // than ours), while it answers the send with the txid: a real refusal, as a node with a higher minimum
  // relay fee or a conflicting spend would give.
  const { node, payer } = await bigBatchRig(t, 1);
  const head = (await payer.eventsSince(-1, 1)).head;
  const dest = new Deriver(regtestDescriptor(), 'regtest');
  const created = await Promise.all(Array.from({ length: 950 }, (_, i) => payer.call('withdrawal.create', { requestId: `low-${i}`, address: dest.address(1, 5000 + i), amountSats: 10_000 }) as Promise<WithdrawalView>));
  const signed = await eventually('the batch signed', async () => {
    const w = (await payer.call('withdrawal.get', { id: created[0]!.id })) as WithdrawalView;
    return w.state === 'signed' && w.txid !== null ? w : undefined;
  }, 90_000);
  // Over 1,900 events come first (each withdrawal created and signed): read the feed page by page.
  let seen = head;
  const alert = await eventually('alert.stuck', async () => {
    for (;;) {
      const { events } = await payer.eventsSince(seen, 1000);
      if (events.length === 0) return undefined;
      seen = events[events.length - 1]!.seq;
      const found = events.find((e) => e.type === 'alert.stuck');
      if (found !== undefined) return found;
    }
  }, 60_000);
  t.match(alert.data, { txid: signed.txid, kind: 'withdrawals', reason: /does not keep it/, resends: 5 }, 'names the transaction and why');
  t.notOk((await node.client.getRawMempool()).includes(signed.txid!), 'the node indeed does not have it');
  const last = (await payer.call('withdrawal.get', { id: created[created.length - 1]!.id })) as WithdrawalView;
  t.equal(last.state, 'signed', 'its withdrawals wait, signed, for an operator (never re-signed into a second payment)');
});
