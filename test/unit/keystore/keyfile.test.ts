import t from 'tap';
import { mkdtempSync, readFileSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCustodyError } from '../../../src/errors.js';
import { checksumOf, parseKeystore, readKeystore, serializeKeystore, writeKeystore, type KeystoreBody } from '../../../src/keystore/keyfile.js';
import { Keystore } from '../../../src/keystore/keystore.js';
import { makeKeystore, passphraseFor } from '../../support/keystore.js';

const dir = (): string => mkdtempSync(join(tmpdir(), 'custody-keyfile-'));

t.test('a written keystore reads back identical, mode 0600 even under a permissive umask', async (t) => {
  const { body } = await makeKeystore();
  const file = join(dir(), 'ks.json');
  const old = process.umask(0o000);
  try {
    writeKeystore(file, body, { create: true });
  } finally {
    process.umask(old);
  }
  t.equal(statSync(file).mode & 0o777, 0o600);
  const loaded = readKeystore(file);
  t.same(loaded.body, body);
  t.same(loaded.warnings, []);
  t.same(readdirSync(join(file, '..')), ['ks.json'], 'no temp file left behind');
});

t.test('create refuses to overwrite an existing file, and leaves it untouched', async (t) => {
  const { body } = await makeKeystore();
  const file = join(dir(), 'ks.json');
  writeFileSync(file, 'precious');
  t.throws(() => writeKeystore(file, body, { create: true }), { code: 'KEYSTORE_EXISTS' });
  t.equal(readFileSync(file, 'utf8'), 'precious');
  t.same(readdirSync(join(file, '..')), ['ks.json'], 'no temp file left behind');
});

t.test('replace refuses when the file changed on disk since it was read', async (t) => {
  const { body } = await makeKeystore();
  const file = join(dir(), 'ks.json');
  writeKeystore(file, body, { create: true });
  const loaded = readKeystore(file);
  const other = (await makeKeystore()).body;
  writeFileSync(file, serializeKeystore(other));
  t.throws(() => writeKeystore(file, body, { replace: loaded.raw }), { code: 'KEYSTORE_IO', message: /changed on disk/ });
  t.same(readKeystore(file).body, other);
});

t.test('a keystore readable by others loads with a warning', async (t) => {
  const { body } = await makeKeystore();
  const file = join(dir(), 'ks.json');
  writeFileSync(file, serializeKeystore(body), { mode: 0o644 });
  t.match(readKeystore(file).warnings, [/mode 644/]);
});

t.test('empty, whitespace, truncated, non-JSON and foreign files give clear errors', async (t) => {
  const { body } = await makeKeystore();
  const text = serializeKeystore(body);
  const cases: Array<[string, string, string]> = [
    ['empty', '', 'KEYSTORE_INVALID'],
    ['whitespace', '  \n', 'KEYSTORE_INVALID'],
    ['not JSON', 'hello, world', 'KEYSTORE_INVALID'],
    ['an array', '[1,2,3]', 'KEYSTORE_INVALID'],
    ['null', 'null', 'KEYSTORE_INVALID'],
    ['another JSON document', '{"format":"wallet.dat"}', 'KEYSTORE_INVALID'],
    ['no checksum', text.replace(/,\n {2}"checksum": "[^"]+"/, ''), 'KEYSTORE_CORRUPT'],
  ];
  for (const [what, input, code] of cases) {
    t.throws(() => parseKeystore(input, 'ks.json'), { code, message: /^ks\.json: / }, what);
  }
  for (let len = 0; len < text.length; len += 7) {
    t.throws(() => parseKeystore(text.slice(0, len), 'ks.json'), { code: /^KEYSTORE_(INVALID|CORRUPT)$/ }, `truncated to ${len} bytes`);
  }
  t.throws(() => readKeystore(join(dir(), 'missing.json')), { code: 'KEYSTORE_NOT_FOUND' });
});

t.test('one flipped byte anywhere gives a keystore error, never a crash or a different keystore', async (t) => {
  const { body } = await makeKeystore();
  const bytes = Buffer.from(serializeKeystore(body), 'utf8');
  let errors = 0;
  let harmless = 0;
  let other = 0;
  for (let i = 0; i < bytes.length; i++) {
    for (const mask of [0x01, 0x20, 0x80]) {
      const damaged = Buffer.from(bytes);
      damaged[i] = (damaged[i] as number) ^ mask;
      try {
        const parsed = parseKeystore(damaged.toString('utf8'), 'ks.json');
        // Only a change JSON ignores (whitespace between tokens) may parse, and then it must be the same keystore.
        if (JSON.stringify(parsed) === JSON.stringify(body)) harmless++;
        else other++;
      } catch (err) {
        if (isCustodyError(err) && /^KEYSTORE_(INVALID|CORRUPT)$/.test(err.code)) errors++;
        else other++;
      }
    }
  }
  t.equal(other, 0, 'no flip crashes or yields a different keystore');
  t.ok(errors > bytes.length * 2.9, `almost every flip is an error (${errors} errors, ${harmless} harmless)`);
});

t.test('a header edited with a recomputed checksum is caught at unlock by the seed AEAD', async (t) => {
  const { body } = await makeKeystore();
  const edits: Array<[string, KeystoreBody]> = [
    ['threshold lowered to 1', { ...body, threshold: 1 }],
    ['custodian renamed', { ...body, custodians: body.custodians.map((c, i) => (i === 2 ? { ...c, name: 'eve' } : c)) }],
    ['hot fingerprint swapped', { ...body, hot: { ...body.hot, fingerprint: '00000000' } }],
  ];
  for (const [what, edited] of edits) {
    t.equal(checksumOf(edited).startsWith('sha256:'), true);
    const file = join(dir(), 'ks.json');
    writeFileSync(file, serializeKeystore(edited), { mode: 0o600 });
    const { keystore } = Keystore.open(file);
    let failed: unknown;
    try {
      for (const c of edited.custodians.slice(0, Math.max(edited.threshold, 2))) await keystore.submit(c.name, passphraseFor(c.name === 'eve' ? 'ops3' : c.name));
    } catch (err) {
      failed = err;
    }
    t.ok(isCustodyError(failed) && /^(UNLOCK_FAILED|BAD_PASSPHRASE)$/.test(failed.code), `${what}: refused (${isCustodyError(failed) ? failed.code : String(failed)})`);
    t.equal(keystore.state, 'locked', `${what}: stays locked`);
  }
});
