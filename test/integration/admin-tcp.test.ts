/**
 * The remote admin door ([admin] tcpEndpoint): the real custodyd and the real `custody` CLI over tcp with
 * CURVE and an operator key. Only [[operators]] keys pass ZAP there (an app client's key does not, nor an
 * operator's key on the app door); each request is signed, and the audit names the operator the key
 * proves, whatever the request's `operator` member says. The ipc socket keeps working beside it.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Dealer } from 'zeromq';
import { AdminClient } from '../../src/client/admin-client.js';
import { CustodyClient } from '../../src/client/app-client.js';
import { deriveClientKey, RequestSigner } from '../../src/rpc/auth.js';
import { newCurveKeyPair } from '../../src/rpc/curve-keys.js';
import { adminClient, custody, makeDaemonFixture, startTestDaemon, type DaemonFixture, type RunningTestDaemon } from '../support/daemon.js';
import { passphraseFor } from '../support/keystore.js';

let f: DaemonFixture;
let d: RunningTestDaemon;
let remote: string[];

interface AuditRecord {
  readonly actor: string;
  readonly action: string;
  readonly details: Record<string, unknown>;
}

async function auditTail(n = 50): Promise<AuditRecord[]> {
  const admin = adminClient(f);
  try {
    return ((await admin.call('audit.tail', { n })) as { records: AuditRecord[] }).records;
  } finally {
    await admin.close();
  }
}

/** A bare CURVE Dealer on the admin door with alice's key, for hand-made (and mis-signed) frames. */
function rawOperator(): { socket: Dealer; signer: RequestSigner; nonce: () => string } {
  const alice = f.operators['alice']!;
  const socket = new Dealer({ curveServerKey: f.serverPublicKey, curvePublicKey: alice.keys.publicKey, curveSecretKey: alice.keys.secretKey, linger: 0, receiveTimeout: 5_000 });
  socket.connect(f.adminTcpEndpoint!);
  const key = deriveClientKey({ secretKey: alice.keys.secretKey, peerPublicKey: f.serverPublicKey, clientPublicKey: alice.keys.publicKey, serverPublicKey: f.serverPublicKey });
  return { socket, signer: new RequestSigner(key, 'alice'), nonce: () => randomBytes(16).toString('hex') };
}

async function reply(socket: Dealer): Promise<{ result?: unknown; error?: { data: { code: string } ; message: string } }> {
  const [frame] = await socket.receive();
  return JSON.parse(frame!.toString('utf8')) as never;
}

t.before(async () => {
  f = await makeDaemonFixture({ operators: ['alice', 'bob'] });
  d = await startTestDaemon(f);
  remote = ['--admin', f.adminTcpEndpoint!, '--server-key', f.serverPublicKey, '--key-file', f.operators['alice']!.keyFile];
});
t.teardown(async () => {
  if (d.child.exitCode === null) await d.stop();
});

t.test('the start line names the remote admin door', async (t) => {
  t.match(d.stderr(), new RegExp(`admin: ipc://\\S+ and ${f.adminTcpEndpoint!.replace(/\./g, '\\.')} \\(CURVE, operators\\)`));
});

t.test('custody status, freeze, unfreeze and a 2-of-3 unlock work over tcp, audited as the key\'s operator', async (t) => {
  const status = await custody(f, ['status', ...remote]);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, /wallet: +LOCKED \(needs 2 custodians\)/);

  const fr = await custody(f, ['freeze', '--reason', 'drill', ...remote]);
  t.equal(fr.code, 0, fr.stderr);
  t.match(fr.stdout, /FROZEN at .*: drill/);
  const frozen = await custody(f, ['status', '--json', ...remote]);
  t.match(JSON.parse(frozen.stdout), { frozen: { reason: 'drill', by: 'alice' } });
  const un = await custody(f, ['unfreeze', ...remote]);
  t.equal(un.code, 0, un.stderr);
  t.match(un.stdout, /Unfrozen/);

  const unlock = (name: string) => custody(f, ['unlock', '--custodian', name, '--passphrase-fd', '3', ...remote], `${passphraseFor(name).toString()}\n`);
  const one = await unlock('ops1');
  t.equal(one.code, 0, one.stderr);
  t.match(one.stdout, /Unlock progress 1\/2 \(nonce [0-9a-f]+\)/);
  const two = await unlock('ops2');
  t.equal(two.code, 0, two.stderr);
  t.match(two.stdout, /Wallet UNLOCKED/);
  const lock = await custody(f, ['lock', ...remote]);
  t.equal(lock.code, 0, lock.stderr);

  const records = await auditTail();
  for (const action of ['freeze', 'unfreeze', 'lock']) {
    t.ok(records.some((r) => r.action === action && r.actor === 'operator:alice'), `${action} by operator:alice`);
  }
  // An unlock is the custodian's act, submitted through the operator the key proves.
  t.ok(records.some((r) => r.action === 'unlock.submit' && r.actor === 'custodian:ops1' && r.details['via'] === 'alice'), 'unlock.submit via alice');
  t.notMatch(JSON.stringify(records), new RegExp(passphraseFor('ops1').toString()), 'no passphrase in the audit log');
});

t.test('the audit names the operator the key proves, not the request\'s operator member', async (t) => {
  const raw = rawOperator();
  const frame = JSON.parse(raw.signer.frame('freeze', 1, { reason: 'spoof check' }, Date.now(), raw.nonce())) as Record<string, unknown>;
  // `operator` is not under the MAC, so adding it keeps the authenticator valid: the daemon must ignore it.
  await raw.socket.send(JSON.stringify({ ...frame, operator: 'mallory' }));
  const r = await reply(raw.socket);
  t.match(r, { result: { reason: 'spoof check', by: 'alice' } }, r.error?.message ?? '');
  const records = await auditTail(20);
  t.ok(records.some((x) => x.action === 'freeze' && x.actor === 'operator:alice' && x.details['reason'] === 'spoof check'), 'recorded as operator:alice');
  t.notOk(records.some((x) => x.actor.includes('mallory')), 'the claimed name appears nowhere');
  await raw.socket.send(raw.signer.frame('unfreeze', 2, undefined, Date.now(), raw.nonce()));
  t.match(await reply(raw.socket), { result: { frozen: null } });
  raw.socket.close();
  raw.signer.wipe();
});

t.test('a bad authenticator is UNAUTHENTICATED, a replay REPLAYED, and failures are audited', async (t) => {
  const raw = rawOperator();
  const good = raw.signer.frame('status', 10, undefined, Date.now(), raw.nonce());
  const flipped = good.replace(/"mac":"(.)/, (_m, c: string) => `"mac":"${c === '0' ? '1' : '0'}`);
  await raw.socket.send(flipped);
  t.match(await reply(raw.socket), { error: { data: { code: 'UNAUTHENTICATED' } } }, 'wrong MAC');
  // alice's key claiming to be bob: the MAC is computed under alice's key, so bob's key does not match it.
  const claimBob = good.replace('"client":"alice"', '"client":"bob"');
  await raw.socket.send(claimBob);
  t.match(await reply(raw.socket), { error: { data: { code: 'UNAUTHENTICATED' } } }, 'another operator\'s name');
  await raw.socket.send(JSON.stringify({ jsonrpc: '2.0', id: 11, method: 'status', operator: 'alice' }));
  t.match(await reply(raw.socket), { error: { data: { code: 'UNAUTHENTICATED' } } }, 'no authenticator (a local-style request)');
  await raw.socket.send(good);
  t.match(await reply(raw.socket), { result: { wallet: { state: 'locked' } } }, 'the good one once');
  await raw.socket.send(good);
  t.match(await reply(raw.socket), { error: { data: { code: 'REPLAYED' } } }, 'and never twice');
  raw.socket.close();
  raw.signer.wipe();
  const records = await auditTail(30);
  t.ok(records.some((r) => r.action === 'rpc.auth_failed' && r.details['who'] === 'operator:alice' && r.details['code'] === 'UNAUTHENTICATED'), 'rpc.auth_failed recorded');
});

t.test('an app client key and an unknown key get no service on the admin door; an operator key none on the app door', async (t) => {
  const app = f.clients['app']!;
  const asApp = new AdminClient(f.adminTcpEndpoint!, { timeoutMs: 1_500, remote: { serverPublicKey: f.serverPublicKey, keys: { name: 'app', ...app.keys } } });
  await t.rejects(asApp.call('status'), { code: 'TIMEOUT' }, 'app client key refused at ZAP');
  await asApp.close();
  const stranger = new AdminClient(f.adminTcpEndpoint!, { timeoutMs: 1_500, remote: { serverPublicKey: f.serverPublicKey, keys: { name: 'alice', ...newCurveKeyPair() } } });
  await t.rejects(stranger.call('status'), { code: 'TIMEOUT' }, 'unknown key refused at ZAP');
  await stranger.close();
  const alice = f.operators['alice']!;
  const onAppDoor = new CustodyClient({ endpoint: f.appEndpoint, serverPublicKey: f.serverPublicKey, keys: { name: 'alice', ...alice.keys }, timeoutMs: 1_500 });
  await t.rejects(onAppDoor.status(), { code: 'TIMEOUT' }, 'operator key refused on the app door');
  await onAppDoor.close();

  // Through the CLI the refusal reads as UNAVAILABLE with a hint.
  const cli = await custody(f, ['status', '--admin', f.adminTcpEndpoint!, '--server-key', f.serverPublicKey, '--key-file', f.clients['app']!.keyFile]);
  t.not(cli.code, 0);
  t.match(cli.stderr, /KEY_FILE|expected an operator's/, 'an app client key file is not an operator key file');

  const records = await auditTail(50);
  t.ok(records.some((r) => r.action === 'rpc.auth_failed' && r.details['code'] === 'UNKNOWN_KEY' && r.details['domain'] === 'custody-admin' && r.details['publicKey'] === app.keys.publicKey), 'the app key\'s refusal is audited');
});

t.test('the CLI needs --server-key and --key-file with a tcp endpoint', async (t) => {
  const cli = await custody(f, ['status', '--admin', f.adminTcpEndpoint!]);
  t.not(cli.code, 0);
  t.match(cli.stderr, /--server-key and --key-file/);
});

t.test('the ipc door keeps working beside the remote one', async (t) => {
  const admin = adminClient(f, 'local-op');
  t.match(await admin.call('status'), { wallet: { state: 'locked' } });
  await admin.close();
  const cli = await custody(f, ['status']);
  t.equal(cli.code, 0, cli.stderr);
});
