import t from 'tap';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { runCli } from '../../support/cli.js';
import { readKeyPairFile } from '../../../src/rpc/curve-keys.js';

const dir = (): string => mkdtempSync(join(tmpdir(), 'custody-keys-cli-'));

t.test('custody keys server writes a 0600 key pair and prints only the public key, ready to paste', async (t) => {
  const file = join(dir(), 'server.key');
  const r = await runCli('custody', ['keys', 'server', '--out', file]);
  t.equal(r.code, 0, r.stderr);
  t.equal(statSync(file).mode & 0o777, 0o600);
  const pair = readKeyPairFile(file);
  t.equal(pair.kind, 'server');
  t.match(r.stdout, new RegExp(`^serverPublicKey = "${pair.publicKey.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"\n# `));
  t.same(parse(r.stdout), { serverPublicKey: pair.publicKey }, 'stdout is valid TOML');
  t.notOk(r.stdout.includes(pair.secretKey) || r.stderr.includes(pair.secretKey), 'the secret key is never printed');
});

t.test('custody keys client prints the [[clients]] block for the daemon and writes the key pair with name and roles', async (t) => {
  const file = join(dir(), 'shop.key');
  const r = await runCli('custody', ['keys', 'client', 'shop-1', '--role', 'deposits,monitor', '--out', file]);
  t.equal(r.code, 0, r.stderr);
  t.equal(statSync(file).mode & 0o777, 0o600);
  const pair = readKeyPairFile(file);
  t.same({ ...pair, publicKey: '', secretKey: '' }, { kind: 'client', name: 'shop-1', roles: ['deposits', 'monitor'], publicKey: '', secretKey: '' });
  t.equal(r.stdout, `[[clients]]\nname = "shop-1"\npublicKey = "${pair.publicKey}"\nroles = ["deposits", "monitor"]\n`);
  t.same(parse(r.stdout), { clients: [{ name: 'shop-1', publicKey: pair.publicKey, roles: ['deposits', 'monitor'] }] });
  t.notOk(r.stdout.includes(pair.secretKey) || r.stderr.includes(pair.secretKey), 'the secret key is never printed');
  t.match(r.stderr, /mode 0600/);
});

t.test('custody keys operator prints the [[operators]] block and writes an operator key pair (remote admin door)', async (t) => {
  const file = join(dir(), 'alice.key');
  const r = await runCli('custody', ['keys', 'operator', 'alice', '--out', file]);
  t.equal(r.code, 0, r.stderr);
  t.equal(statSync(file).mode & 0o777, 0o600);
  const pair = readKeyPairFile(file);
  t.same({ ...pair, publicKey: '', secretKey: '' }, { kind: 'operator', name: 'alice', publicKey: '', secretKey: '' });
  t.equal(r.stdout, `[[operators]]\nname = "alice"\npublicKey = "${pair.publicKey}"\n`);
  t.same(parse(r.stdout), { operators: [{ name: 'alice', publicKey: pair.publicKey }] });
  t.notOk(r.stdout.includes(pair.secretKey) || r.stderr.includes(pair.secretKey), 'the secret key is never printed');
  const bad = await runCli('custody', ['keys', 'operator', 'Alice Smith', '--out', join(dir(), 'x.key')]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /NAME: "Alice Smith" must match/);
});

t.test('an existing file is never overwritten: exit 1 with a KEY_FILE message', async (t) => {
  const file = join(dir(), 'taken.key');
  writeFileSync(file, 'precious', { mode: 0o600 });
  for (const args of [['keys', 'server', '--out', file], ['keys', 'client', 'shop', '--role', 'deposits', '--out', file]]) {
    const r = await runCli('custody', args);
    t.equal(r.code, 1, args.join(' '));
    t.match(r.stderr, /error \[KEY_FILE\]: .*taken\.key: exists already; refusing to overwrite/);
    t.equal(r.stdout, '', 'nothing to paste');
  }
  t.equal(readFileSync(file, 'utf8'), 'precious');
});

t.test('bad names, roles and missing options are usage errors (exit 2) and write nothing', async (t) => {
  const d = dir();
  const out = join(d, 'k.key');
  const cases: Array<[string, string[], RegExp]> = [
    ['uppercase name', ['keys', 'client', 'Shop', '--role', 'deposits', '--out', out], /NAME: "Shop" must match/],
    ['name with a space', ['keys', 'client', 'my shop', '--role', 'deposits', '--out', out], /NAME/],
    ['name too long', ['keys', 'client', 'a'.repeat(33), '--role', 'deposits', '--out', out], /NAME/],
    ['unknown role', ['keys', 'client', 'shop', '--role', 'deposits,admin', '--out', out], /--role: "admin" is not a role; expected deposits, withdrawals, approver, monitor/],
    ['duplicate role', ['keys', 'client', 'shop', '--role', 'monitor,monitor', '--out', out], /listed twice/],
    ['empty role', ['keys', 'client', 'shop', '--role', 'deposits,', '--out', out], /--role/],
    ['no role', ['keys', 'client', 'shop', '--out', out], /--role/],
    ['no --out', ['keys', 'server'], /--out/],
  ];
  for (const [what, args, message] of cases) {
    const r = await runCli('custody', args);
    t.equal(r.code, 2, what);
    t.match(r.stderr, message, what);
  }
  t.throws(() => statSync(out), { code: 'ENOENT' }, 'no file was written');
});
