import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { payments, networks } from 'bitcoinjs-lib';
import { BIP32Factory } from 'bip32';
import * as ecc from 'tiny-secp256k1';
import { Store } from '../../../src/store/db.js';
import { DepositAddresses, type IssuedAddress } from '../../../src/service/deposits.js';
import { AuditLog, verifyAudit } from '../../../src/audit/log.js';
import { regtestDescriptor } from '../../support/wallets.js';

const descriptor = regtestDescriptor();
const identity = { network: 'regtest', descriptorChecksum: descriptor.checksum } as const;
const newDir = (): string => join(mkdtempSync(join(tmpdir(), 'custody-deposits-')), 'data');

async function open(dir: string, workers = 0, gapWarning?: number): Promise<{ store: Store; deposits: DepositAddresses; close: () => Promise<void> }> {
  const store = await Store.open(dir, identity);
  const deposits = await DepositAddresses.open(store, descriptor, { pool: { size: 256, batch: 64, workers }, ...(gapWarning ? { gapWarning } : {}) });
  return { store, deposits, close: async () => (await deposits.close(), await store.close()) };
}

t.test('issued addresses are the descriptor\'s chain-0 addresses in index order, with their paths', async (t) => {
  const { deposits, close } = await open(newDir());
  const bip32 = BIP32Factory(ecc);
  const account = bip32.fromBase58(descriptor.keys[0]!.xpub, networks.testnet);
  for (let i = 0; i < 5; i++) {
    const r = await deposits.newAddress({ requestId: `r${i}`, account: 'cust-1' });
    const expected = payments.p2wpkh({ pubkey: account.derive(0).derive(i).publicKey, network: networks.regtest }).address;
    t.equal(r.index, i);
    t.equal(r.address, expected, `index ${i}`);
    t.equal(r.path, `m/84h/1h/0h/0/${i}`);
    t.equal(r.created, true);
  }
  await close();
});

t.test('the same requestId returns the same address, also after a restart; other parameters conflict', async (t) => {
  const dir = newDir();
  let s = await open(dir);
  const a = await s.deposits.newAddress({ requestId: 'order-1', account: 'alice', label: 'first' });
  const again = await s.deposits.newAddress({ requestId: 'order-1', account: 'alice', label: 'first' });
  t.same({ ...again, created: true }, a);
  t.equal(again.created, false);
  await t.rejects(s.deposits.newAddress({ requestId: 'order-1', account: 'bob', label: 'first' }), { code: 'REQUEST_ID_CONFLICT', message: /order-1.*index 0/ });
  const other = await s.deposits.newAddress({ requestId: 'order-1', account: 'alice', label: 'first' }, 'other-client');
  t.not(other.address, a.address, 'requestIds are scoped per client');
  await s.close();
  s = await open(dir);
  const after = await s.deposits.newAddress({ requestId: 'order-1', account: 'alice', label: 'first' });
  t.equal(after.address, a.address);
  t.equal(after.created, false);
  const fresh = await s.deposits.newAddress({ requestId: 'order-2', account: 'alice' });
  t.equal(fresh.index, 2, 'the counter survived the restart');
  t.same((await s.deposits.lookup(a.address))?.account, 'alice');
  t.equal(await s.deposits.lookup('bcrt1qnotours'), undefined);
  await s.close();
});

t.test('repeats racing each other, in one group and across groups in flight, all get the first answer', async (t) => {
  const { deposits, close } = await open(newDir(), 1);
  const stored = await deposits.newAddress({ requestId: 'stored', account: 'a' });
  const calls: Array<Promise<IssuedAddress>> = [];
  for (let i = 0; i < 3_000; i++) {
    // A stored id repeated within groups, a new id repeated across the 1,024-request groups, and fresh ids.
    if (i % 100 === 0) calls.push(deposits.newAddress({ requestId: 'stored', account: 'a' }));
    else if (i % 100 === 1) calls.push(deposits.newAddress({ requestId: 'hot', account: 'b' }));
    else calls.push(deposits.newAddress({ requestId: `f${i}`, account: 'c' }));
  }
  const results = await Promise.all(calls);
  const storedAnswers = results.filter((r) => r.requestId === 'stored');
  const hot = results.filter((r) => r.requestId === 'hot');
  t.equal(storedAnswers.length, 30);
  t.ok(storedAnswers.every((r) => r.address === stored.address && !r.created));
  t.equal(new Set(hot.map((r) => r.address)).size, 1, 'one address for the new id');
  t.equal(hot.filter((r) => r.created).length, 1, 'created exactly once');
  t.equal(new Set(results.map((r) => r.address)).size, 1 + 1 + 2_940);
  await close();
});

t.test('bad requests are refused with the field and rule, and nothing is issued', async (t) => {
  const { deposits, close } = await open(newDir());
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ requestId: '', account: 'a' }, 'requestId'],
    [{ requestId: 'x'.repeat(65), account: 'a' }, 'requestId'],
    [{ requestId: 'has space', account: 'a' }, 'requestId'],
    [{ requestId: 'ok', account: '' }, 'account'],
    [{ requestId: 'ok', account: 'a\nb' }, 'account'],
    [{ requestId: 'ok', account: 'a'.repeat(129) }, 'account'],
    [{ requestId: 'ok', account: 'a', label: 'x'.repeat(257) }, 'label'],
    [{ requestId: 'ok', account: 7 }, 'account'],
  ];
  for (const [req, field] of cases) {
    await t.rejects(deposits.newAddress(req as never), { code: 'INVALID_ARGUMENT', message: new RegExp(`^${field}: expected`) }, JSON.stringify(req).slice(0, 40));
  }
  // A requestId goes into the audit record of its group: one that looks like a key (the published WIF of
  // private key 1) is refused alone, rather than failing the whole group's audit record.
  await t.rejects(deposits.newAddress({ requestId: 'KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn', account: 'a' }), { code: 'INVALID_ARGUMENT', message: /^requestId: looks like a private key/ });
  t.equal(deposits.gap().highestIssued, -1);
  await close();
});

t.test('every address is in an audit record of its own batch, also with other writers appending to the log meanwhile', async (t) => {
  const store = await Store.open(newDir(), identity);
  const audit = await AuditLog.open(store);
  // Audit rows must reach the store in seq order: one committed ahead of an earlier one would leave a hole
  // in the chain if the process died between the two writes.
  const landed: string[] = [];
  const commit = store.commit.bind(store);
  store.commit = (ops) => {
    landed.push(...ops.filter((o) => o.key.startsWith('u!')).map((o) => o.key));
    return commit(ops);
  };
  const batches: string[][] = [];
  const deposits = await DepositAddresses.open(store, descriptor, {
    pool: { size: 2048, batch: 256, workers: 0 },
    onIssue: (records) => {
      batches.push(records.map((r) => r.requestId));
      return audit.append('client:test', 'address.issue', { addresses: records.map((r) => [r.index, r.requestId]) }).ops;
    },
  });
  await deposits.warm(2048);
  // Waves of requests arriving while earlier groups are being written (so groups merge), interleaved with
  // another writer that appends and commits at once, as the daemon's other services do.
  const calls: Array<Promise<IssuedAddress>> = [];
  const others: Array<Promise<unknown>> = [];
  for (let wave = 0; wave < 40; wave++) {
    for (let i = 0; i < 1 + (wave % 7) * 9; i++) calls.push(deposits.newAddress({ requestId: `w${wave}-${i}`, account: 'a' }));
    others.push(audit.appendNow('system', 'tick', { wave }));
    await new Promise((r) => setTimeout(r, wave % 3));
  }
  const issued = await Promise.all(calls);
  await Promise.all(others);
  t.same(issued.map((r) => r.index).sort((a, b) => a - b), issued.map((_, i) => i), 'indexes contiguous');
  t.same(batches.flat().sort(), issued.map((r) => r.requestId).sort(), 'each address in exactly one audit record');
  t.ok(batches.length < calls.length, `${calls.length} addresses in ${batches.length} groups`);
  t.same(landed, [...landed].sort(), 'audit rows committed in seq order');
  const v = await verifyAudit(store);
  t.equal(v.ok, true, 'the chain verifies: no record landed before an earlier one');
  t.equal(v.count, batches.length + others.length);
  await deposits.close();
  await store.close();
});

t.test('list, gap report and recovery manifest', async (t) => {
  const { deposits, close } = await open(newDir(), 0, 20);
  for (let i = 0; i < 30; i++) await deposits.newAddress({ requestId: `q${i}`, account: i % 2 === 0 ? 'even' : 'odd' });
  t.equal((await deposits.list({ account: 'odd', limit: 100 })).length, 15);
  t.same((await deposits.list({ fromIndex: 28 })).map((r) => r.index), [28, 29]);
  let g = deposits.gap();
  t.same([g.highestIssued, g.highestUsed, g.gap], [29, -1, 30]);
  t.match(g.warning, /30 issued deposit addresses above the last used one.*gap limit of at least 31/);
  await deposits.markUsed(25);
  g = deposits.gap();
  t.same([g.highestUsed, g.gap, g.warning], [25, 4, null]);
  const m = await deposits.manifest();
  t.equal(m.descriptor, descriptor.canonical);
  t.equal(m.highestIssued, 29);
  t.equal(m.gapLimit, 20);
  t.same(m.accounts[3], { index: 3, account: 'odd' });
  t.equal(m.accounts.length, 30);
  await close();
});

t.test('100,000 issuances from concurrent callers with repeats: no duplicate, every repeat the same address', async (t) => {
  const dir = newDir();
  let s = await open(dir, 2);
  const firstSeen = new Map<string, IssuedAddress>();
  const byAddress = new Map<string, string>();
  let n = 0;
  let repeats = 0;
  const total = 100_000;
  async function caller(): Promise<void> {
    while (n < total) {
      const i = n++;
      // One in four repeats an earlier id (some still in flight in the same batch).
      const id = i % 4 === 3 ? `req-${Math.floor(Math.random() * i)}` : `req-${i}`;
      const r = await s.deposits.newAddress({ requestId: id, account: `acct-${id}` });
      const seen = firstSeen.get(id);
      if (seen) {
        repeats++;
        if (seen.address !== r.address) t.fail(`repeat of ${id} got another address`);
      } else {
        firstSeen.set(id, r);
        const owner = byAddress.get(r.address);
        if (owner !== undefined && owner !== id) t.fail(`${r.address} issued to ${owner} and ${id}`);
        byAddress.set(r.address, id);
      }
    }
  }
  await Promise.all(Array.from({ length: 64 }, caller));
  t.equal(byAddress.size, firstSeen.size, 'one address per distinct requestId');
  t.ok(repeats > 15_000, `repeats exercised (${repeats})`);
  const indexes = [...firstSeen.values()].map((r) => r.index).sort((a, b) => a - b);
  t.equal(indexes[0], 0);
  t.equal(indexes[indexes.length - 1], indexes.length - 1, 'indexes are contiguous: nothing skipped, nothing reused');
  await s.close();
  s = await open(dir);
  let mismatched = 0;
  for (const [id, r] of [...firstSeen].slice(0, 2_000)) {
    const again = await s.deposits.newAddress({ requestId: id, account: `acct-${id}` });
    if (again.address !== r.address || again.created) mismatched++;
  }
  t.equal(mismatched, 0, 'after a restart the same ids return the same addresses');
  await s.close();
});
