/**
 * The real custodyd as a child process, talked to through the client library, raw CURVE sockets and the
 * CLI: authentication, roles, replay, bad frames, locked issuance, 2-of-3 unlock, events, audit, signals.
 */
import t from 'tap';
import { CustodyClient } from '../../src/client/app-client.js';
import { newCurveKeyPair } from '../../src/rpc/curve-keys.js';
import type { CustodyEvent } from '../../src/service/events.js';
import { adminClient, appClient, custody, makeDaemonFixture, startTestDaemon, writeConfig, type DaemonFixture, type RunningTestDaemon } from '../support/daemon.js';
import { passphraseFor } from '../support/keystore.js';
import { RawDealer } from '../support/raw-dealer.js';

let f: DaemonFixture;
let d: RunningTestDaemon;

t.before(async () => {
  f = await makeDaemonFixture();
  d = await startTestDaemon(f);
});
t.teardown(async () => {
  if (d.child.exitCode === null) await d.stop();
});

t.test('the daemon starts locked and says so to clients and to the CLI', async (t) => {
  const watcher = appClient(f, 'watcher');
  const s = await watcher.status();
  t.equal(s.wallet.state, 'locked');
  t.equal(s.network, 'regtest');
  t.equal(s.wallet.unlock.threshold, 2);
  await watcher.close();
  const cli = await custody(f, ['status']);
  t.equal(cli.code, 0, cli.stderr);
  t.match(cli.stdout, /wallet: +LOCKED \(needs 2 custodians\)/);
  t.match(d.stderr(), /wallet LOCKED/);
});

t.test('an unknown client key never gets an answer, and the attempt is audited', async (t) => {
  const stranger = new CustodyClient({ endpoint: f.appEndpoint, serverPublicKey: f.serverPublicKey, keys: { name: 'app', ...newCurveKeyPair() }, timeoutMs: 1_500 });
  await t.rejects(stranger.status(), { code: 'TIMEOUT' });
  await stranger.close();
  const admin = adminClient(f);
  const { records } = (await admin.call('audit.tail', { n: 50 })) as { records: Array<{ action: string; details: Record<string, unknown> }> };
  t.ok(records.some((r) => r.action === 'rpc.auth_failed' && r.details['code'] === 'UNKNOWN_KEY'), 'rpc.auth_failed UNKNOWN_KEY recorded');
  await admin.close();
});

t.test('roles: a deposits client calling withdrawal or admin methods gets FORBIDDEN; a monitor cannot issue', async (t) => {
  const app = appClient(f, 'app');
  for (const method of ['withdrawal.create', 'withdrawal.approve', 'unlock.submit', 'freeze', 'lock', 'audit.verify']) {
    await t.rejects(app.call(method, {}), { code: 'FORBIDDEN', message: new RegExp(`^${method.replace('.', '\\.')}: client "app"`) }, method);
  }
  const watcher = appClient(f, 'watcher');
  await t.rejects(watcher.newAddress({ requestId: 'w1', account: 'x' }), { code: 'FORBIDDEN' });
  await t.rejects(app.call('events.nosuch', {}), { code: 'METHOD_NOT_FOUND' });
  await app.close();
  await watcher.close();
});

t.test('replays and forged client names are refused', async (t) => {
  const raw = new RawDealer(f, 'app');
  const frame = raw.signed('status', undefined, 'replay-1');
  await raw.send(frame);
  t.same((await raw.reply()).error, undefined, 'first copy answered');
  await raw.send(frame);
  t.match((await raw.reply()).error, { data: { code: 'REPLAYED' } }, 'second copy refused');
  await raw.send(raw.signed('status', undefined, 'forge-1', 'watcher'));
  t.match((await raw.reply()).error, { data: { code: 'UNAUTHENTICATED' }, message: /auth\.mac/ }, "app cannot speak as watcher");
  const tampered = JSON.parse(raw.signed('deposit.newAddress', { requestId: 'r-t', account: 'a' }, 'tamper-1')) as { params: { account: string } };
  tampered.params.account = 'mallory';
  await raw.send(JSON.stringify(tampered));
  t.match((await raw.reply()).error, { data: { code: 'UNAUTHENTICATED' } }, 'changed params break the MAC');
  raw.close();
});

t.test('bad frames get the right code and the daemon keeps serving', async (t) => {
  const raw = new RawDealer(f, 'app');
  const cases: Array<[string, Array<Buffer | string>, string]> = [
    ['oversized', [Buffer.alloc(70_000, 0x20)], 'FRAME_TOO_LARGE'],
    ['not JSON', ['{"jsonrpc": "2.0", "id": 1, "method": '], 'PARSE_ERROR'],
    ['not UTF-8', [Buffer.from([0xff, 0xfe, 0x7b, 0x7d])], 'PARSE_ERROR'],
    ['a batch', ['[]'], 'INVALID_REQUEST'],
    ['no id', [JSON.stringify({ jsonrpc: '2.0', method: 'status' })], 'INVALID_REQUEST'],
    ['unknown member', [JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'status', extra: 1 })], 'INVALID_REQUEST'],
    ['no authenticator', [JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'status' })], 'UNAUTHENTICATED'],
    ['two frames', [raw.signed('status', undefined, 3), 'x'], 'INVALID_REQUEST'],
    ['wrong type', [raw.signed('deposit.newAddress', { requestId: 7, account: 'a' }, 4)], 'INVALID_PARAMS'],
    ['unknown field', [raw.signed('deposit.newAddress', { requestId: 'r', account: 'a', colour: 'red' }, 5)], 'INVALID_PARAMS'],
    ['unknown method', [raw.signed('events.nope', {}, 6)], 'METHOD_NOT_FOUND'],
  ];
  for (const [what, frames, code] of cases) {
    await raw.send(...frames);
    const r = await raw.reply();
    t.equal(r.error?.data.code, code, what);
    t.notMatch(JSON.stringify(r), /at .*\.js:\d+/, `${what}: no stack trace`);
  }
  await raw.send(raw.signed('deposit.newAddress', { requestId: 7, account: 'a' }, 8));
  t.match((await raw.reply()).error?.message, /params\.requestId: .*expected string/);
  await raw.send(raw.signed('status', undefined, 9));
  t.equal(((await raw.reply()).result as { network: string }).network, 'regtest', 'still serving');
  raw.close();
});

t.test('deposit addresses are issued while locked, idempotently', async (t) => {
  const app = appClient(f, 'app');
  const a = await app.newAddress({ requestId: 'order-1', account: 'cust-1' });
  t.match(a.address, /^bcrt1q/);
  t.equal(a.created, true);
  const again = await app.newAddress({ requestId: 'order-1', account: 'cust-1' });
  t.same([again.address, again.created], [a.address, false]);
  await t.rejects(app.newAddress({ requestId: 'order-1', account: 'cust-2' }), { code: 'REQUEST_ID_CONFLICT' });
  const found = await app.lookupAddress(a.address);
  t.equal(found?.account, 'cust-1');
  t.equal((await app.status()).wallet.state, 'locked');
  await app.close();
});

t.test('2-of-3 unlock through the CLI, wrong passphrases and repeats handled; lock wipes; events follow', async (t) => {
  const watcher = appClient(f, 'watcher');
  const seen: CustodyEvent[] = [];
  const head = (await watcher.eventsSince(-1, 1000)).head;
  const sub = watcher.subscribe(f.eventsEndpoint, head, (e) => seen.push(e));
  const unlock = (name: string, passphrase: string) => custody(f, ['unlock', '--custodian', name, '--passphrase-fd', '3'], `${passphrase}\n`);

  const one = await unlock('ops1', passphraseFor('ops1').toString());
  t.equal(one.code, 0, one.stderr);
  t.match(one.stdout, /Unlock progress 1\/2 \(nonce [0-9a-f]{8}\)/);
  const wrong = await unlock('ops2', 'not-the-passphrase-of-ops2');
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /BAD_PASSPHRASE/);
  const repeat = await unlock('ops1', passphraseFor('ops1').toString());
  t.match(repeat.stdout, /Unlock progress 1\/2 .*already counted/);
  const status = await custody(f, ['status', '--json']);
  t.match(JSON.parse(status.stdout), { wallet: { state: 'locked', unlock: { received: 1, custodians: ['ops1'] } } });
  const two = await unlock('ops3', passphraseFor('ops3').toString());
  t.equal(two.code, 0, two.stderr);
  t.match(two.stdout, /Wallet UNLOCKED/);
  t.match((await custody(f, ['status'])).stdout, /wallet: +UNLOCKED since/);
  const lock = await custody(f, ['lock']);
  t.equal(lock.code, 0);
  t.match((await custody(f, ['status'])).stdout, /wallet: +LOCKED/);

  const deadline = Date.now() + 5_000;
  while (seen.filter((e) => e.type === 'wallet.locked').length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.same(
    seen.map((e) => e.type),
    ['wallet.unlock_progress', 'alert.unlock_failed', 'wallet.unlock_progress', 'wallet.unlocked', 'wallet.locked'],
    'events in order (the wrong passphrase is an alert; the repeat counts again as progress)',
  );
  t.ok(seen.every((e, i) => i === 0 || e.seq === (seen[i - 1] as CustodyEvent).seq + 1), 'consecutive sequence numbers');
  const replay = await watcher.eventsSince(head, 100);
  t.same(replay.events.map((e) => e.seq), seen.map((e) => e.seq), 'events.since replays the same events');
  await sub.close();

  const admin = adminClient(f);
  const { records } = (await admin.call('audit.tail', { n: 10 })) as { records: Array<{ actor: string; action: string; details: Record<string, unknown> }> };
  const unlocks = records.filter((r) => r.action === 'unlock.submit').map((r) => `${r.actor}:${String(r.details['result'])}`);
  t.same(unlocks, ['custodian:ops1:accepted', 'custodian:ops2:bad_passphrase', 'custodian:ops1:already_counted', 'custodian:ops3:unlocked']);
  t.notMatch(JSON.stringify(records), new RegExp(passphraseFor('ops1').toString()), 'no passphrase in the audit log');
  await admin.close();
  await watcher.close();
});

t.test('freeze and unfreeze are recorded and survive in status', async (t) => {
  const fr = await custody(f, ['freeze', '--reason', 'incident 42: suspicious withdrawals']);
  t.equal(fr.code, 0, fr.stderr);
  t.match((await custody(f, ['status'])).stdout, /frozen: +YES since .* by .*: incident 42/);
  t.equal((await custody(f, ['unfreeze'])).code, 0);
  t.match((await custody(f, ['status'])).stdout, /frozen: +no/);
  const bad = await custody(f, ['freeze', '--reason', '']);
  t.not(bad.code, 0);
  // Twelve ordinary words that all happen to be BIP39 words: the freeze must still happen.
  const wordy = await custody(f, ['freeze', '--reason', 'large amount left during night then again found wrong transfer please hold until team review']);
  t.equal(wordy.code, 0, wordy.stderr);
  t.match((await custody(f, ['status'])).stdout, /frozen: +YES since .*reason withheld/);
  t.equal((await custody(f, ['unfreeze'])).code, 0);
});

t.test('SIGHUP reloads the client list: a removed client is shut out, an added one gets in', async (t) => {
  const added = { name: 'late', roles: ['monitor'] as const, keys: newCurveKeyPair(), keyFile: '' };
  const before = Object.values(f.clients).filter((c) => c.name !== 'payer');
  writeConfig(f, [...before, { ...added, roles: [...added.roles] }]);
  d.child.kill('SIGHUP');
  await new Promise((r) => setTimeout(r, 500));
  const late = new CustodyClient({ endpoint: f.appEndpoint, serverPublicKey: f.serverPublicKey, keys: { name: 'late', ...added.keys }, timeoutMs: 3_000 });
  t.equal((await late.status()).network, 'regtest', 'the added client is served');
  await late.close();
  const payer = appClient(f, 'payer', 1_500);
  await t.rejects(payer.status(), { code: /TIMEOUT|UNAUTHENTICATED/ }, 'the removed client is not');
  await payer.close();
  writeConfig(f);
  d.child.kill('SIGHUP');
  await new Promise((r) => setTimeout(r, 300));
});

t.test('SIGTERM in the middle of heavy issuance: exit 0, and every returned address is still there after a restart', async (t) => {
  const app = appClient(f, 'app', 5_000);
  const returned = new Map<string, string>();
  let stopAt = 0;
  const workers = Array.from({ length: 32 }, async (_, w) => {
    for (let i = 0; ; i++) {
      const requestId = `term-${w}-${i}`;
      try {
        const r = await app.newAddress({ requestId, account: `acct-${w}` });
        returned.set(requestId, r.address);
        if (returned.size === 1_000 && stopAt === 0) {
          stopAt = returned.size;
          d.child.kill('SIGTERM');
        }
      } catch {
        return; // the daemon went away
      }
    }
  });
  await Promise.all(workers);
  t.equal(await d.exited, 0, `clean exit; daemon said:\n${d.stderr()}`);
  t.match(d.stderr(), /stopping \(SIGTERM\)/);
  await app.close();
  d = await startTestDaemon(f);
  const again = appClient(f, 'app');
  let lost = 0;
  for (const [requestId, address] of returned) {
    const w = requestId.split('-')[1];
    const r = await again.newAddress({ requestId, account: `acct-${w}` });
    if (r.address !== address || r.created) lost++;
  }
  t.equal(lost, 0, `all ${returned.size} returned addresses survived`);
  await again.close();
});

t.test('custody audit verify passes after the run, and names the record when one byte is changed on disk', async (t) => {
  const live = await custody(f, ['audit', 'verify']);
  t.equal(live.code, 0, live.stderr);
  t.match(live.stdout, /audit chain OK/, 'through the running daemon');
  const tail = await custody(f, ['audit', 'tail', '-n', '3']);
  t.equal(tail.stdout.trim().split('\n').length, 3);
  t.equal(await d.stop('SIGTERM'), 0);
  const ok = await custody(f, ['audit', 'verify']);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /audit chain OK: \d+ records/);
  const { Store } = await import('../../src/store/db.js');
  const { regtestDescriptor } = await import('../support/wallets.js');
  const store = await Store.open(`${f.dir}/data`, { network: 'regtest', descriptorChecksum: regtestDescriptor().checksum });
  const rows = await store.range('u!', 'u!~', 10);
  const [key, value] = rows[5]!;
  const i = value.indexOf('"action":"') + 11;
  const changed = value.slice(0, i) + (value[i] === 'x' ? 'y' : 'x') + value.slice(i + 1);
  await store.commit([{ type: 'put', key, value: changed }]);
  await store.close();
  const broken = await custody(f, ['audit', 'verify']);
  t.equal(broken.code, 1);
  t.match(broken.stdout + broken.stderr, /BROKEN at record 5/);
});
