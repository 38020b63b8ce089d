import t from 'tap';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { curveKeyPair } from 'zeromq';
import { isZ85Key, newCurveKeyPair, parseKeyPairFile, readKeyPairFile, serializeKeyPairFile, writeKeyPairFile, type KeyPairFile } from '../../../src/rpc/curve-keys.js';

const dir = (): string => mkdtempSync(join(tmpdir(), 'custody-curve-keys-'));
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}
const client = (): KeyPairFile => ({ kind: 'client', name: 'shop-1', roles: ['deposits', 'monitor'], ...newCurveKeyPair() });

t.test('server and client key files round-trip, mode 0600 even under a permissive umask', async (t) => {
  const d = dir();
  const server: KeyPairFile = { kind: 'server', ...newCurveKeyPair() };
  const c = client();
  const old = process.umask(0o000);
  try {
    writeKeyPairFile(join(d, 'server.key'), server);
    writeKeyPairFile(join(d, 'client.key'), c);
  } finally {
    process.umask(old);
  }
  for (const f of ['server.key', 'client.key']) t.equal(statSync(join(d, f)).mode & 0o777, 0o600, f);
  t.same(readKeyPairFile(join(d, 'server.key')), server);
  t.same(readKeyPairFile(join(d, 'client.key')), c);
  t.same(readdirSync(d).sort(), ['client.key', 'server.key'], 'no temp file left behind');
});

t.test('operator key files (the remote admin door) round-trip with a name and no roles; roles are refused in them', async (t) => {
  const d = dir();
  const op: KeyPairFile = { kind: 'operator', name: 'alice', ...newCurveKeyPair() };
  writeKeyPairFile(join(d, 'alice.key'), op);
  t.equal(statSync(join(d, 'alice.key')).mode & 0o777, 0o600);
  t.same(readKeyPairFile(join(d, 'alice.key')), op);
  t.match(serializeKeyPairFile(op), /\nkind = "operator"\nname = "alice"\npublicKey = "[^"]{40}"\nsecretKey = "[^"]{40}"\n$/);
  const withRoles = serializeKeyPairFile(op).replace('name = "alice"', 'name = "alice"\nroles = ["monitor"]');
  t.throws(() => parseKeyPairFile(withRoles, 'x.key'), { code: 'KEY_FILE', message: /^x\.key: roles: unknown field in an operator key file/ });
});

t.test('the file starts with a comment saying what it is and to keep it secret, then the documented fields', async (t) => {
  const c = client();
  const text = serializeKeyPairFile(c);
  t.match(text, /^# custody CURVE client key pair for "shop-1"\. SECRET: keep this file private/);
  t.match(text, /\nkind = "client"\nname = "shop-1"\nroles = \["deposits", "monitor"\]\npublicKey = "[^"]{40}"\nsecretKey = "[^"]{40}"\n$/);
  t.match(serializeKeyPairFile({ kind: 'server', ...newCurveKeyPair() }), /^# custody CURVE server key pair .*SECRET/);
});

t.test('writing refuses to overwrite an existing file and leaves it untouched', async (t) => {
  const file = join(dir(), 'k.key');
  writeFileSync(file, 'precious', { mode: 0o600 });
  t.throws(() => writeKeyPairFile(file, client()), { code: 'KEY_FILE', message: new RegExp(`^${file}: exists already; refusing to overwrite`) });
  t.equal(readFileSync(file, 'utf8'), 'precious');
  t.throws(() => writeKeyPairFile(join(dir(), 'no', 'such', 'dir.key'), client()), { code: 'KEY_FILE', message: /cannot write the key file \(ENOENT\)/ });
});

t.test('a key file group or others can read is refused, naming the file and the mode (fail closed)', async (t) => {
  for (const mode of [0o640, 0o604, 0o644, 0o660, 0o607]) {
    const file = join(dir(), 'k.key');
    writeKeyPairFile(file, client());
    chmodSync(file, mode);
    t.throws(() => readKeyPairFile(file), { code: 'KEY_FILE', message: new RegExp(`^${file}: mode ${mode.toString(8)} lets group or others read`) }, mode.toString(8));
  }
  const file = join(dir(), 'k.key');
  writeKeyPairFile(file, client());
  chmodSync(file, 0o400);
  t.equal(readKeyPairFile(file).kind, 'client', '0400 is fine');
});

t.test('a symlink is judged by the file it points to', async (t) => {
  const d = dir();
  writeKeyPairFile(join(d, 'real.key'), client());
  symlinkSync(join(d, 'real.key'), join(d, 'link.key'));
  t.equal(readKeyPairFile(join(d, 'link.key')).kind, 'client');
  chmodSync(join(d, 'real.key'), 0o644);
  t.throws(() => readKeyPairFile(join(d, 'link.key')), { code: 'KEY_FILE', message: /mode 644/ });
});

t.test('a missing file, a directory and malformed contents give KEY_FILE errors naming the file and the problem', async (t) => {
  const d = dir();
  t.throws(() => readKeyPairFile(join(d, 'missing.key')), { code: 'KEY_FILE', message: /missing\.key: key file does not exist/ });
  t.throws(() => readKeyPairFile(d), { code: 'KEY_FILE', message: /not a regular file/ });
  const good = serializeKeyPairFile(client());
  const other = newCurveKeyPair();
  const cases: Array<[string, string, RegExp]> = [
    ['empty', '', /kind: expected "server", "client" or "operator"/],
    ['not TOML', 'hello world', /not a valid TOML key file \(line 1/],
    ['wrong kind', good.replace('kind = "client"', 'kind = "admin"'), /kind: expected/],
    ['unknown field', `${good}extra = 1\n`, /extra: unknown field in a client key file/],
    ['client fields in a server file', good.replace('kind = "client"', 'kind = "server"'), /name: unknown field in a server key file/],
    ['bad name', good.replace('name = "shop-1"', 'name = "Shop 1"'), /name: expected a client name/],
    ['unknown role', good.replace('"monitor"', '"admin"'), /roles: expected each of deposits, withdrawals, approver, monitor/],
    ['empty roles', good.replace(/roles = \[.*\]/, 'roles = []'), /roles: expected a non-empty list/],
    ['duplicate role', good.replace('"monitor"', '"deposits"'), /roles: a role is listed twice/],
    ['short public key', good.replace(/publicKey = "[^"]{40}"/, 'publicKey = "HelloWorld"'), /publicKey: expected a 40-character Z85 key/],
    ['secret key not Z85', good.replace(/secretKey = "[^"]{40}"/, `secretKey = "${'~'.repeat(40)}"`), /secretKey: expected a 40-character Z85 key/],
    // A replacer function: Z85 keys contain `$` and `&`, and "$&" in a replacement string means "the match".
    ['halves of two pairs', good.replace(/publicKey = "[^"]{40}"/, () => `publicKey = "${other.publicKey}"`), /secretKey does not match publicKey/],
    ['no secret key', good.replace(/secretKey = .*\n/, ''), /secretKey: expected/],
  ];
  for (const [what, text, message] of cases) {
    const file = join(dir(), 'k.key');
    writeFileSync(file, text, { mode: 0o600 });
    t.throws(() => readKeyPairFile(file), { code: 'KEY_FILE', message: new RegExp(`^${file}: ${message.source}`) }, what);
  }
});

t.test('parse errors never quote the secret key', async (t) => {
  const c = client();
  const text = serializeKeyPairFile(c).replace(`secretKey = "${c.secretKey}"`, () => `secretKey = "${c.secretKey}`);
  const err = thrown(() => parseKeyPairFile(text, 'k.key'));
  t.match(err.message, /^k\.key: not a valid TOML key file/);
  t.notOk(err.message.includes(c.secretKey.slice(0, 20)), 'no part of the secret key in the message');
});

t.test('isZ85Key accepts zeromq keys and refuses other lengths, alphabets and types', async (t) => {
  const { publicKey, secretKey } = curveKeyPair();
  t.ok(isZ85Key(publicKey));
  t.ok(isZ85Key(secretKey));
  t.notOk(isZ85Key('HelloWorld'), '8 bytes');
  t.notOk(isZ85Key(`${publicKey}00000`), '36 bytes');
  t.notOk(isZ85Key(`${publicKey.slice(0, 39)} `), 'space');
  t.notOk(isZ85Key('#'.repeat(40)), 'overflowing groups');
  t.notOk(isZ85Key(undefined));
  t.notOk(isZ85Key(42));
});
