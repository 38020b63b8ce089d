/**
 * The keystore ceremonies through the real `custody` binary: files on disk, exit codes, and a scan of
 * everything the commands wrote or printed for any secret (mnemonic, seed, data key, shares, passphrases).
 */
import t from 'tap';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openWithPassphrase } from '../../src/crypto/envelope.js';
import { combineShares } from '../../src/crypto/shamir.js';
import { recoverEntropy } from '../../src/keystore/ceremony.js';
import { readKeystore, shareAad, type KeystoreBody } from '../../src/keystore/keyfile.js';
import { hotAccountNode } from '../../src/keystore/hot-key.js';
import { seedFromEntropy } from '../../src/keystore/seed.js';
import { mnemonicFromEntropy } from '../../src/wallet/mnemonic.js';
import { runCli, type CliResult } from '../support/cli.js';

const PASS: Record<string, string> = {
  ops1: 'Tundra-Violet-Harbor-93',
  ops2: 'Maple-Quartz-Silent-Otter-7',
  ops3: 'Cobalt-Wren-Falls-Ember-55',
  ops4: 'Saffron-Glacier-Pylon-Mirth-4',
  ops5: 'Obsidian-Lark-Canyon-Drift-61',
};
const lines = (...names: string[]): string => names.map((n) => `${PASS[n]}\n`).join('');
const opts = { clock: Date.now, random: (n: number) => randomBytes(n) };

/** Every string form in which a secret of this keystore could leak. */
async function secretForms(body: KeystoreBody, names: string[]): Promise<string[]> {
  const custodians = names.map((name) => ({ name, passphrase: Buffer.from(PASS[name]!) }));
  const entropy = await recoverEntropy(body, custodians, opts);
  const words = mnemonicFromEntropy(entropy).toString('ascii').split(' ');
  const seed = seedFromEntropy(entropy);
  const shares: Buffer[] = [];
  for (const c of body.custodians) {
    if (PASS[c.name] === undefined) continue;
    const s = await openWithPassphrase(c.share, Buffer.from(PASS[c.name]!), shareAad(body.id, c.name, c.index, body.threshold));
    if (s) shares.push(s);
  }
  const dataKey = Buffer.from(await combineShares(shares.slice(0, body.threshold)));
  const { node } = hotAccountNode(entropy, body.network);
  const forms = [words.join(' '), node.toBase58(), ...Object.values(PASS)];
  for (let i = 0; i + 3 <= words.length; i++) forms.push(words.slice(i, i + 3).join(' '));
  for (const b of [entropy, seed, dataKey, ...shares]) forms.push(b.toString('hex'), b.toString('base64'), b.toString('base64url'));
  return forms;
}

function scan(haystacks: Record<string, string>, forms: readonly string[]): string[] {
  const hits: string[] = [];
  for (const [where, text] of Object.entries(haystacks)) {
    for (const f of forms) if (text.includes(f)) hits.push(`${where} contains a secret (${f.length} chars)`);
  }
  return hits;
}

function outputs(results: Record<string, CliResult>, dir: string): Record<string, string> {
  const all: Record<string, string> = {};
  for (const [name, r] of Object.entries(results)) {
    all[`${name} stdout`] = r.stdout;
    all[`${name} stderr`] = r.stderr;
  }
  for (const f of readdirSync(dir)) all[`file ${f}`] = readFileSync(join(dir, f), 'latin1');
  return all;
}

t.test('init, info, verify, rekey to 3-of-5 and passwd through the CLI, with no secret anywhere in the clear', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'custody-cli-'));
  const file = join(dir, 'ks.json');
  const results: Record<string, CliResult> = {};
  const run = async (name: string, args: string[], fd3 = ''): Promise<CliResult> => (results[name] = await runCli('custody', args, { fd3 }));

  // The full ceremony runs at --unsafe-fast-kdf cost to keep the suite quick; the next test proves the default cost.
  const init = await run('init', ['keystore', 'init', '--file', file, '--custodians', 'ops1,ops2,ops3', '--threshold', '2', '--network', 'regtest', '--passphrase-fd', '3', '--unsafe-fast-kdf'], lines('ops1', 'ops2', 'ops3'));
  t.equal(init.code, 0, init.stderr);
  t.match(init.stdout, /keystore [0-9a-f-]{36} written to .*ks\.json \(mode 0600\)/);
  t.match(init.stdout, /hot account: \[[0-9a-f]{8}\/84h\/1h\/0h\]tpub[1-9A-HJ-NP-Za-km-z]{100,}/);
  t.equal(statSync(file).mode & 0o777, 0o600);
  const body = readKeystore(file).body;

  const info = await run('info', ['keystore', 'info', '--file', file]);
  t.equal(info.code, 0);
  t.match(info.stdout, /unlock: +2 of 3 custodians/);
  t.match(info.stdout, /ops2 +scrypt N=2\^10 r=8 p=1/);
  t.match(info.stderr, /WARNING: weak scrypt parameters/);
  const infoJson = JSON.parse((await run('info-json', ['keystore', 'info', '--file', file, '--json'])).stdout) as { threshold: number; hot: { xpub: string } };
  t.equal(infoJson.threshold, 2);
  t.equal(infoJson.hot.xpub, body.hot.xpub);

  const before = readFileSync(file);
  const mtime = statSync(file).mtimeMs;
  const verify = await run('verify', ['keystore', 'verify', '--file', file, '--custodians', 'ops3,ops1', '--passphrase-fd', '3'], lines('ops3', 'ops1'));
  t.equal(verify.code, 0, verify.stderr);
  t.match(verify.stdout, /unlock proven: 2 of 3/);
  const wrong = await run('verify-wrong', ['keystore', 'verify', '--file', file, '--custodians', 'ops1,ops2', '--passphrase-fd', '3'], `${PASS['ops1']}\nnot-the-passphrase-of-ops2\n`);
  t.equal(wrong.code, 1);
  t.match(wrong.stdout, /ops1: passphrase OK\nops2: WRONG passphrase/);
  t.match(wrong.stderr, /BAD_PASSPHRASE/);
  t.ok(readFileSync(file).equals(before) && statSync(file).mtimeMs === mtime, 'verify changed nothing');

  const forms = await secretForms(body, ['ops1', 'ops2', 'ops3']);
  t.same(scan(outputs(results, dir), forms), [], 'no secret after init/info/verify');

  const rekey = await run(
    'rekey',
    ['keystore', 'rekey', '--file', file, '--custodians', 'ops1,ops3', '--new-custodians', 'ops1,ops2,ops3,ops4,ops5', '--threshold', '3', '--passphrase-fd', '3', '--unsafe-fast-kdf'],
    lines('ops1', 'ops3') + ['ops1', 'ops2', 'ops3', 'ops4', 'ops5'].map((n) => `${PASS[n]}-new\n`).join(''),
  );
  t.equal(rekey.code, 0, rekey.stderr);
  t.match(rekey.stdout, /3 of 5 unlock/);
  const rekeyed = readKeystore(file).body;
  t.equal(rekeyed.id, body.id);
  t.equal(rekeyed.hot.xpub, body.hot.xpub);
  t.equal(statSync(file).mode & 0o777, 0o600);
  for (const n of Object.keys(PASS)) PASS[n] = `${PASS[n]}-new`;
  const newSet = await run('verify-new', ['keystore', 'verify', '--file', file, '--custodians', 'ops2,ops4,ops5', '--passphrase-fd', '3'], lines('ops2', 'ops4', 'ops5'));
  t.equal(newSet.code, 0, newSet.stderr);
  t.match(newSet.stdout, /unlock proven: 3 of 5/);
  const oldSet = await run('verify-old', ['keystore', 'verify', '--file', file, '--custodians', 'ops1,ops3', '--passphrase-fd', '3'], 'Tundra-Violet-Harbor-93\nCobalt-Wren-Falls-Ember-55\n');
  t.equal(oldSet.code, 1, 'the old passphrases no longer unlock');

  const passwd = await run('passwd', ['keystore', 'passwd', '--file', file, '--custodian', 'ops4', '--passphrase-fd', '3', '--unsafe-fast-kdf'], `${PASS['ops4']}\nPeregrine-Basalt-Tiller-Noon-2\n`);
  t.equal(passwd.code, 0, passwd.stderr);
  const oldPass = PASS['ops4']!;
  PASS['ops4'] = 'Peregrine-Basalt-Tiller-Noon-2';
  t.equal((await run('verify-passwd', ['keystore', 'verify', '--file', file, '--custodians', 'ops4,ops1,ops2', '--passphrase-fd', '3'], lines('ops4', 'ops1', 'ops2'))).code, 0);
  t.equal((await run('verify-passwd-old', ['keystore', 'verify', '--file', file, '--custodians', 'ops4', '--passphrase-fd', '3'], `${oldPass}\n`)).code, 1);

  const forms2 = await secretForms(readKeystore(file).body, ['ops1', 'ops2', 'ops3', 'ops4', 'ops5']);
  t.same(scan(outputs(results, dir), [...forms, ...forms2, oldPass]), [], 'no secret after rekey and passwd');
});

t.test('by default init seals every share at scrypt N=2^17, r=8, p=1 and verify proves it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'custody-cli-'));
  const file = join(dir, 'ks.json');
  const init = await runCli('custody', ['keystore', 'init', '--file', file, '--custodians', 'ops1,ops2', '--threshold', '2', '--network', 'testnet', '--passphrase-fd', '3'], {
    fd3: lines('ops1', 'ops2'),
  });
  t.equal(init.code, 0, init.stderr);
  t.same(readKeystore(file).body.custodians.map((c) => [c.share.N, c.share.r, c.share.p]), [[2 ** 17, 8, 1], [2 ** 17, 8, 1]]);
  t.notMatch(init.stderr, /WARNING/);
  const verify = await runCli('custody', ['keystore', 'verify', '--file', file, '--custodians', 'ops2,ops1', '--passphrase-fd', '3'], { fd3: lines('ops2', 'ops1') });
  t.equal(verify.code, 0, verify.stderr);
  t.match(verify.stdout, /unlock proven: 2 of 2/);
});

t.test('--show-backup prints the 24 words once (and the scan finds them: the scan works)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'custody-cli-'));
  const file = join(dir, 'ks.json');
  const r = await runCli('custody', ['keystore', 'init', '--file', file, '--custodians', 'ops1', '--threshold', '1', '--network', 'regtest', '--passphrase-fd', '3', '--show-backup', '--unsafe-fast-kdf'], {
    fd3: 'Tundra-Violet-Harbor-93\n',
  });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /PAPER BACKUP/);
  t.match(r.stderr, /WARNING: weak scrypt parameters/);
  const entropy = await recoverEntropy(readKeystore(file).body, [{ name: 'ops1', passphrase: Buffer.from('Tundra-Violet-Harbor-93') }], opts);
  const words = mnemonicFromEntropy(entropy).toString('ascii').split(' ');
  t.equal(words.length, 24);
  const shown = [...r.stderr.matchAll(/\d+\. ([a-z]+)/g)].map((m) => m[1]);
  t.same(shown, words, 'the words shown are the keystore\'s seed');
  t.notMatch(r.stdout, new RegExp(words.slice(0, 3).join(' ')), 'not on stdout');
});

t.test('refusals: overwrite, weak passphrase, missing fd lines and usage errors, with exit codes 1 and 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'custody-cli-'));
  const file = join(dir, 'ks.json');
  writeFileSync(file, 'existing');
  const base = ['keystore', 'init', '--custodians', 'ops1,ops2', '--threshold', '2', '--network', 'regtest', '--passphrase-fd', '3', '--unsafe-fast-kdf'];
  const over = await runCli('custody', [...base, '--file', file], { fd3: lines('ops1', 'ops2') });
  t.equal(over.code, 1);
  t.match(over.stderr, /KEYSTORE_EXISTS/);
  t.equal(readFileSync(file, 'utf8'), 'existing');

  const weakFile = join(dir, 'weak.json');
  const weak = await runCli('custody', [...base, '--file', weakFile], { fd3: 'password1234\npassword1234\n' });
  t.equal(weak.code, 1);
  t.match(weak.stderr, /WEAK_PASSPHRASE.*ops1.*too easy to guess/);
  t.notOk(readdirSync(dir).includes('weak.json'), 'nothing written');

  const short = await runCli('custody', [...base, '--file', weakFile], { fd3: lines('ops1') });
  t.equal(short.code, 2);
  t.match(short.stderr, /--passphrase-fd 3: no line left for New passphrase for ops2/);

  const noTty = await runCli('custody', ['keystore', 'init', '--file', weakFile, '--custodians', 'a1', '--threshold', '1', '--network', 'regtest']);
  t.equal(noTty.code, 2, 'no terminal and no fd is a usage error');
  t.match(noTty.stderr, /no terminal/);

  for (const args of [
    ['keystore', 'init', '--file', weakFile, '--custodians', 'a1,b2', '--threshold', '3', '--network', 'regtest'],
    ['keystore', 'init', '--file', weakFile, '--custodians', 'a1', '--threshold', '1', '--network', 'moon'],
    ['keystore', 'frobnicate'],
    ['keystore', 'verify', '--file', weakFile],
  ]) {
    const r = await runCli('custody', args);
    t.equal(r.code, 2, args.join(' '));
  }
  const missing = await runCli('custody', ['keystore', 'info', '--file', join(dir, 'nope.json')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /KEYSTORE_NOT_FOUND/);
  writeFileSync(join(dir, 'trunc.json'), '{"format":"custody-keystore","vers');
  const trunc = await runCli('custody', ['keystore', 'info', '--file', join(dir, 'trunc.json')]);
  t.equal(trunc.code, 1);
  t.match(trunc.stderr, /KEYSTORE_INVALID.*not valid JSON/);
});
