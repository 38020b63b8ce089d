/**
 * Withdrawals end to end against a real regtest node and a real custodyd: paid and confirmed with exact
 * amounts and fees; 50 in one batch window become one transaction; limits refuse with POLICY_* codes that
 * name the rule and what is left; approvals, never by the requester; freeze stops signing and unfreeze
 * resumes; locked withdrawals wait; a stuck transaction is bumped by CPFP; the hot balance above its cap
 * is swept to a cold address within one block.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transaction } from 'bitcoinjs-lib';
import type { CustodyClient } from '../../src/client/app-client.js';
import type { WithdrawalView } from '../../src/service/withdrawals.js';
import type { CustodyEvent } from '../../src/service/events.js';
import { Deriver } from '../../src/wallet/derive.js';
import { appClient, custody, makeDaemonFixture, startTestDaemon, type DaemonFixture, type RunningTestDaemon } from '../support/daemon.js';
import { Funder, mine, startRegtestNode, submitBranch, type RegtestNode } from '../support/regtest.js';
import { allEvents, chainConfig, eventually, hotAddress, unlockDaemon, waitForTip } from '../support/chain.js';
import { regtestDescriptor } from '../support/wallets.js';

let node: RegtestNode;
let funder: Funder;
let fixture: DaemonFixture;
let daemon: RunningTestDaemon;
let payer: CustodyClient;
let approver: CustodyClient;
let both: CustodyClient;

const WITHDRAWALS = `
[withdrawals]
whenLocked = "queue"
maxAmountSats = 50_000_000
bumpAfterBlocks = 2
[withdrawals.approval]
aboveSats = 10_000_000
approvals = 1
[[withdrawals.windows]]
name = "24h"
seconds = 86400
perClientSats = 200_000_000
globalSats = 300_000_000
[withdrawals.batch]
windowMs = 1500
maxOutputs = 100
[withdrawals.fee]
fallbackSatPerVb = 5
maxFeeSats = 200_000
[hot]
minSats = 1_000_000
targetSats = 400_000_000
maxSats = 600_000_000
`;

t.before(async () => {
  node = await startRegtestNode();
  funder = await Funder.create(node);
  const dir = mkdtempSync(join(tmpdir(), 'custody-wd-'));
  fixture = await makeDaemonFixture({
    clients: { payer: ['withdrawals'], checker: ['approver'], both: ['withdrawals', 'approver'], app: ['deposits'] },
    poolSize: 64,
    poolWorkers: 0,
    extraConfig: `${chainConfig(dir, node, (await node.client.getBlockCount()) + 1)}\n${WITHDRAWALS}`,
  });
  daemon = await startTestDaemon(fixture);
  payer = appClient(fixture, 'payer', 20_000);
  approver = appClient(fixture, 'checker', 20_000);
  both = appClient(fixture, 'both', 20_000);
  await unlockDaemon(fixture);
  // Fund the hot wallet: five coins of 1 BTC on its first receive addresses (below the 6 BTC cap).
  await funder.pay([0, 1, 2, 3, 4].map((i) => ({ address: hotAddress(fixture, i), sats: 100_000_000n })));
  await mine(node, 1, funder.address);
  await waitForTip(payer, node);
});

t.teardown(async () => {
  // On a failure, the daemon's own account of what it did is the first thing one needs (CI has nothing else).
  if (!t.passing() && daemon !== undefined) console.error(`custodyd stderr (last 20,000 chars):\n${daemon.stderr().slice(-20_000)}`);
  for (const c of [payer, approver, both]) await c?.close();
  await daemon?.stop();
  await node?.stop();
});

const create = (c: CustodyClient, p: Record<string, unknown>): Promise<WithdrawalView & { created: boolean }> => c.call('withdrawal.create', p) as Promise<WithdrawalView & { created: boolean }>;
const get = (c: CustodyClient, id: string): Promise<WithdrawalView> => c.call('withdrawal.get', { id }) as Promise<WithdrawalView>;
const dest = (i: number): string => new Deriver(regtestDescriptor(), 'regtest').address(1, 1000 + i); // nobody's hot address; not a deposit either

// 60 s: normally a second or two; a CI run once needed more than 20 s for one step under load (the
// daemon's stderr is printed on a failure to tell a stall from a bug).
async function waitState(id: string, state: string, timeoutMs = 60_000): Promise<WithdrawalView> {
  return eventually(`${id} ${state}`, async () => {
    const w = await get(payer, id).catch(() => get(both, id));
    return w.state === state ? w : undefined;
  }, timeoutMs);
}

t.test('a withdrawal is signed, broadcast and confirmed; the amount and the fee are exact to the satoshi', async (t) => {
  const before = await payer.status();
  const w = await create(payer, { requestId: 'w-1', address: dest(1), amountSats: 12_345_678 / 2 | 0, account: 'alice' });
  t.match(w, { state: 'approved', created: true, client: 'payer', account: 'alice' });
  const again = await create(payer, { requestId: 'w-1', address: dest(1), amountSats: 12_345_678 / 2 | 0, account: 'alice' });
  t.same([again.id, again.created], [w.id, false], 'the same requestId returns the same withdrawal');
  await t.rejects(create(payer, { requestId: 'w-1', address: dest(1), amountSats: 1_000 }), { code: 'REQUEST_ID_CONFLICT' });
  const signed = await waitState(w.id, 'broadcast');
  const txid = signed.txid!;
  t.ok((await node.client.getRawMempool()).includes(txid), 'in the node\'s mempool');
  const tx = Transaction.fromBuffer(Buffer.from(await node.client.getRawTransaction(txid)));
  const paid = tx.outs[signed.vout!]!;
  t.equal(paid.value, BigInt(w.amountSats), 'pays exactly the amount');
  await mine(node, 1, funder.address);
  const confirmed = await waitState(w.id, 'confirmed');
  t.ok(confirmed.height !== null);
  await waitForTip(payer, node);
  const after = await payer.status();
  const events = await allEvents(payer);
  const payout = events.find((e: CustodyEvent) => e.type === 'payout.signed' && e.data['txid'] === txid)!;
  const fee = payout.data['feeSats'] as number;
  t.ok(fee > 0 && fee < 10_000, `fee ${fee} sats`);
  t.equal(after.balances!.hot.confirmedSats, before.balances!.hot.confirmedSats - w.amountSats - fee, 'hot balance fell by amount + fee, exactly');
  const types = events.filter((e) => e.data['id'] === w.id).map((e) => e.type);
  t.same(types, ['withdrawal.approved', 'withdrawal.signed', 'withdrawal.broadcast', 'withdrawal.confirmed']);
  const audit = await custody(fixture, ['audit', 'tail', '-n', '200']);
  t.match(audit.stdout, new RegExp(`client:payer\\s+withdrawal\\.create.*${w.id}`), 'the request is on the audit record, naming the client');
  t.match(audit.stdout, new RegExp(`system\\s+payout\\.sign.*${txid}`), 'and the signature');
  t.equal((await custody(fixture, ['audit', 'verify'])).code, 0, 'the audit chain verifies');
});

t.test('50 withdrawals in one batch window become one transaction', async (t) => {
  const ws = await Promise.all(Array.from({ length: 50 }, (_, i) => create(payer, { requestId: `batch-${i}`, address: dest(100 + i), amountSats: 100_000 + i })));
  const done = await Promise.all(ws.map((w) => waitState(w.id, 'broadcast')));
  const txids = new Set(done.map((w) => w.txid));
  t.equal(txids.size, 1, 'one transaction');
  const tx = Transaction.fromBuffer(Buffer.from(await node.client.getRawTransaction([...txids][0]!)));
  for (const w of done) t.equal(tx.outs[w.vout!]!.value, BigInt(w.amountSats));
  await mine(node, 1, funder.address);
  await Promise.all(ws.map((w) => waitState(w.id, 'confirmed')));
});

t.test('limits refuse with POLICY_* codes naming the rule and what is left', async (t) => {
  await t.rejects(create(payer, { requestId: 'too-big', address: dest(2), amountSats: 60_000_000 }), {
    code: 'POLICY_MAX_AMOUNT',
    message: /amountSats: 60000000 is above the per-withdrawal maximum of 50000000 sats/,
    details: { rule: 'withdrawals.maxAmountSats' },
  });
  await t.rejects(create(payer, { requestId: 'dust', address: dest(2), amountSats: 100 }), { code: 'AMOUNT_INVALID', message: /below the dust limit of 294 sats/ });
  await t.rejects(create(payer, { requestId: 'foreign', address: 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq', amountSats: 10_000 }), { code: 'ADDRESS_INVALID', message: /not a valid regtest address/ });
  // The per-client 24h limit (2 BTC): locked, so approved withdrawals are charged and queued, not paid.
  t.equal((await custody(fixture, ['lock'])).code, 0);
  const charged: WithdrawalView[] = [];
  let refusal: unknown;
  for (let i = 0; i < 25 && refusal === undefined; i++) {
    try {
      charged.push(await create(payer, { requestId: `velocity-${i}`, address: dest(3), amountSats: 10_000_000 }));
    } catch (err) {
      refusal = err;
    }
  }
  t.match(refusal, { code: 'POLICY_VELOCITY', message: /amountSats: 10000000 exceeds the 24h limit for client payer: \d+ of 200000000 sats left/, details: { rule: 'withdrawals.windows.24h.perClientSats' } });
  const remaining = (refusal as { details: { remainingSats: number } }).details.remainingSats;
  t.ok(remaining < 10_000_000, `remaining allowance ${remaining} named`);
  const usedBefore = (await payer.status()).withdrawals!.windows[0]!.usedSats;
  for (const w of charged) await payer.call('withdrawal.cancel', { id: w.id });
  const usedAfter = (await payer.status()).withdrawals!.windows[0]!.usedSats;
  t.equal(usedBefore - usedAfter, charged.length * 10_000_000, 'cancelling releases exactly what was charged');
  await unlockDaemon(fixture);
  const s = await payer.status();
  t.ok(s.withdrawals!.worstCase24hSats <= s.balances!.hot.confirmedSats + s.balances!.hot.unconfirmedSats, 'the worst case is at most the hot balance');
  t.ok(s.withdrawals!.worstCase24hSats <= (s.withdrawals!.allowance24hSats ?? Infinity), 'and at most what the global limit allows');
  // Leave nothing pending for the next tests.
  for (const w of (await payer.call('withdrawal.list', { state: 'pending_approval' }) as { withdrawals: WithdrawalView[] }).withdrawals) await payer.call('withdrawal.cancel', { id: w.id });
});

t.test('large withdrawals wait for an approval that the requester can never give', async (t) => {
  const w = await create(both, { requestId: 'big-1', address: dest(4), amountSats: 20_000_000 });
  t.match(w, { state: 'pending_approval', requiredApprovals: 1 });
  await t.rejects(both.call('withdrawal.approve', { id: w.id }), { code: 'POLICY_SELF_APPROVAL', message: /client:both requested this withdrawal and cannot approve it/ });
  await t.rejects(payer.call('withdrawal.approve', { id: w.id }), { code: 'FORBIDDEN' }, 'a withdrawals-only client has no approve');
  await new Promise((r) => setTimeout(r, 2_000));
  t.equal((await get(both, w.id)).state, 'pending_approval', 'not paid while waiting');
  const approved = (await approver.call('withdrawal.approve', { id: w.id })) as WithdrawalView;
  t.match(approved, { state: 'approved', approvals: ['client:checker'] });
  await waitState(w.id, 'broadcast');
  // And an operator approves through the CLI.
  const w2 = await create(both, { requestId: 'big-2', address: dest(5), amountSats: 15_000_000 });
  const r = await custody(fixture, ['withdrawals', 'approve', w2.id]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`${w2.id}\\s+approved`));
  await waitState(w2.id, 'broadcast');
  await mine(node, 1, funder.address);
  await waitState(w2.id, 'confirmed');
});

t.test('freeze stops signing at once and refuses new withdrawals; unfreeze resumes; while locked withdrawals wait', async (t) => {
  // Accepted while locked (so it cannot be signed yet, whatever the timing), then frozen, then unlocked:
  // the freeze alone now keeps it from being signed.
  t.equal((await custody(fixture, ['lock'])).code, 0);
  const w = await create(payer, { requestId: 'frozen-1', address: dest(6), amountSats: 250_000 });
  t.equal((await custody(fixture, ['freeze', '--reason', 'drill'])).code, 0);
  await unlockDaemon(fixture);
  await t.rejects(create(payer, { requestId: 'frozen-2', address: dest(6), amountSats: 250_000 }), { code: 'FROZEN', message: /frozen by an operator \(drill\)/ });
  await new Promise((r) => setTimeout(r, 3_000));
  t.equal((await get(payer, w.id)).state, 'approved', 'unlocked but frozen: not signed');
  t.equal((await custody(fixture, ['unfreeze'])).code, 0);
  await waitState(w.id, 'broadcast');

  t.equal((await custody(fixture, ['lock'])).code, 0);
  const locked = await create(payer, { requestId: 'locked-1', address: dest(7), amountSats: 260_000 });
  await new Promise((r) => setTimeout(r, 3_000));
  t.equal((await get(payer, locked.id)).state, 'approved', 'locked: queued (whenLocked = "queue")');
  await unlockDaemon(fixture);
  await waitState(locked.id, 'broadcast');
  await mine(node, 1, funder.address);
  await waitState(locked.id, 'confirmed');
});

t.test('a transaction stuck for bumpAfterBlocks blocks is bumped by CPFP through its change', async (t) => {
  const w = await create(payer, { requestId: 'stuck-1', address: dest(8), amountSats: 300_000 });
  const parent = (await waitState(w.id, 'broadcast')).txid!;
  // Blocks without it: coinbase-only blocks on top of the tip (the node mines everything otherwise).
  const tip = await node.client.getBlockCount();
  await submitBranch(node, await node.client.getBestBlockHash(), tip, 2, funder.script, 40);
  const child = await eventually('a CPFP child', async () => {
    const e = (await allEvents(payer)).find((x) => x.type === 'payout.signed' && x.data['parent'] === parent);
    return e?.data['txid'] as string | undefined;
  });
  const childTx = Transaction.fromBuffer(Buffer.from(await node.client.getRawTransaction(child)));
  t.equal(Buffer.from(childTx.ins[0]!.hash).reverse().toString('hex'), parent, 'the child spends the stuck parent');
  t.ok((await node.client.getRawMempool()).includes(child), 'the child is in the mempool');
  await mine(node, 1, funder.address);
  const done = await waitState(w.id, 'confirmed');
  t.equal(done.txid, parent, 'the withdrawal is paid by the original transaction, never a different one');
});

t.test('a reorg that drops a confirmed withdrawal returns it to broadcast and sends the same transaction again', async (t) => {
  const w = await create(payer, { requestId: 'reorged-1', address: dest(9), amountSats: 333_333 });
  const txid = (await waitState(w.id, 'broadcast')).txid!;
  const [block] = await mine(node, 1, funder.address);
  const height = await node.client.getBlockCount();
  await waitState(w.id, 'confirmed');
  await submitBranch(node, await node.client.getBlockHash(height - 1), height - 1, 2, funder.script, 77);
  t.not(await node.client.getBlockHash(height), block, 'its block was replaced');
  const back = await waitState(w.id, 'broadcast');
  t.equal(back.txid, txid, 'the same transaction');
  await eventually('re-sent to the node', async () => ((await node.client.getRawMempool()).includes(txid) ? true : undefined));
  await mine(node, 1, funder.address);
  const again = await waitState(w.id, 'confirmed');
  t.equal(again.txid, txid);
  const types = (await allEvents(payer)).filter((e) => e.data['id'] === w.id).map((e) => e.type);
  t.same(types, ['withdrawal.approved', 'withdrawal.signed', 'withdrawal.broadcast', 'withdrawal.confirmed', 'withdrawal.broadcast', 'withdrawal.confirmed']);
});

t.test('the hot balance above its cap is swept to a verified cold address within one block', async (t) => {
  await mine(node, 1, funder.address); // earlier change confirmed: the balance below is all confirmed
  await waitForTip(payer, node);
  const before = await payer.status();
  t.equal(before.balances!.hot.unconfirmedSats, 0);
  const cold = new Deriver(regtestDescriptor(), 'regtest').address(1, 0);
  await funder.pay([{ address: hotAddress(fixture, 10), sats: 600_000_000n }]);
  await mine(node, 1, funder.address);
  const sweep = await eventually('a sweep', async () => {
    const e = (await allEvents(payer)).find((x) => x.type === 'payout.signed' && x.data['kind'] === 'sweep');
    return e?.data['txid'] as string | undefined;
  });
  const tx = Transaction.fromBuffer(Buffer.from(await node.client.getRawTransaction(sweep)));
  const hotBefore = before.balances!.hot.confirmedSats + 600_000_000;
  t.equal(tx.outs[0]!.value, BigInt(hotBefore - 400_000_000), 'sweeps down to hot.targetSats');
  t.equal(Buffer.from(tx.outs[0]!.script).toString('hex'), Buffer.from(new Deriver(regtestDescriptor(), 'regtest').script(1, 0)).toString('hex'), `to cold change ${cold}`);
  await mine(node, 1, funder.address);
  await waitForTip(payer, node);
  const after = await payer.status();
  t.equal(after.balances!.cold.confirmedSats, before.balances!.cold.confirmedSats + hotBefore - 400_000_000, 'the cold balance holds the sweep');
  t.ok(after.balances!.hot.confirmedSats < 400_000_000 && after.balances!.hot.confirmedSats > 399_000_000, 'hot is at the target less the fee');
});
