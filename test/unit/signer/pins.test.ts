/**
 * The signer's pins (signer/pins.ts): what makePins accepts, and the file savePins writes (0600, atomic,
 * never silently replaced) and loadPins reads back (refused when others could have written it, or when
 * any field is off). Keys from BIP39's published test mnemonics; files in temp dirs under os.tmpdir().
 */
import t, { type Test } from 'tap';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCustodyError, type CustodyError, type ErrorCode } from '../../../src/errors.js';
import type { SignerPins } from '../../../src/signer/offline.js';
import { DEFAULT_MAX_FEE_RATE, DEFAULT_MAX_FEE_SATS, loadPins, makePins, savePins } from '../../../src/signer/pins.js';
import { combineCosigners, signerAccount, singleKeyDescriptor } from '../../../src/signer/setup.js';
import { hotAccountFromSeed } from '../../../src/wallet/hot-account.js';
import { mnemonicToSeed, normalizeMnemonic } from '../../../src/wallet/mnemonic.js';
import { thrown } from '../../support/vectors.js';

const ABANDON = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
const LEGAL = 'legal winner thank year wave sausage worth useful legal winner thank yellow';
const LETTER = 'letter advice cage absurd amount doctor acoustic avoid letter advice cage above';
const ZOO = 'zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong';
const seedOf = (m: string): Uint8Array => mnemonicToSeed(normalizeMnemonic(Buffer.from(m)));

const coldSingle = signerAccount(seedOf(ABANDON), 'regtest', 'single', 0);
const SINGLE = singleKeyDescriptor(coldSingle);
const cosigners = [ABANDON, LEGAL, LETTER].map((m) => signerAccount(seedOf(m), 'regtest', 'multisig', 0));
const MULTI = combineCosigners(2, cosigners.map((a) => a.keyOrigin), 'regtest').canonical;
const HOT = hotAccountFromSeed(seedOf(ZOO), 'regtest');
const HOT_MAINNET = hotAccountFromSeed(seedOf(ZOO), 'mainnet');
const SINGLE_MAINNET = singleKeyDescriptor(signerAccount(seedOf(ABANDON), 'mainnet', 'single', 0));

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'custody-pins-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The CustodyError `fn` throws with `code` and a message matching `pattern`; a failed assertion otherwise. */
function refused(t: Test, fn: () => unknown, code: ErrorCode, pattern: RegExp, label: string): CustodyError | undefined {
  const err = thrown(fn);
  const ok = isCustodyError(err, code) && pattern.test(err.message);
  t.ok(ok, `${label}: ${code} ${pattern}${ok ? '' : ` (got ${err === undefined ? 'no error' : String(err)})`}`);
  return ok ? (err as CustodyError) : undefined;
}

const sameKey = (a: SignerPins, b: SignerPins): unknown[] => [
  [a.network, a.descriptor.canonical, a.hot.fingerprint, a.hot.originPath, a.hot.xpub, a.maxFeeSats, a.maxFeeRate],
  [b.network, b.descriptor.canonical, b.hot.fingerprint, b.hot.originPath, b.hot.xpub, b.maxFeeSats, b.maxFeeRate],
];

// --- makePins ------------------------------------------------------------------------------------------------

t.test('makePins: a checksummed descriptor and a hot key of the network, with the default caps', async (t) => {
  for (const descriptor of [SINGLE, MULTI]) {
    const pins = makePins('regtest', descriptor, HOT.keyOrigin);
    t.equal(pins.network, 'regtest');
    t.equal(pins.descriptor.canonical, descriptor, 'the descriptor as given (canonical)');
    t.same([pins.hot.fingerprint, pins.hot.originPath, pins.hot.xpub], [HOT.fingerprint, '84h/1h/0h', HOT.xpub], 'the hot key with its origin');
    t.equal(pins.maxFeeSats, DEFAULT_MAX_FEE_SATS);
    t.equal(pins.maxFeeRate, DEFAULT_MAX_FEE_RATE);
  }
  t.equal(DEFAULT_MAX_FEE_SATS, 1_000_000n);
  t.equal(DEFAULT_MAX_FEE_RATE, 200);
  const withSuffix = makePins('regtest', SINGLE, `  ${HOT.keyOrigin}/<0;1>/*\n`, 5_000n, 12.5);
  t.equal(withSuffix.hot.xpub, HOT.xpub, 'the hot key may carry /<0;1>/* and whitespace');
  t.same([withSuffix.maxFeeSats, withSuffix.maxFeeRate], [5_000n, 12.5], 'caps as given');
  t.equal(makePins('signet', SINGLE, HOT.keyOrigin).network, 'signet', 'tpub keys serve every test network');
});

t.test('makePins refuses a descriptor without its checksum, or with a wrong one', async (t) => {
  for (const descriptor of [SINGLE, MULTI]) {
    const body = descriptor.slice(0, descriptor.indexOf('#'));
    refused(t, () => makePins('regtest', body, HOT.keyOrigin), 'DESCRIPTOR_CHECKSUM', /checksum/i, 'no checksum');
    const wrong = `${body}#${descriptor.slice(-8, -1)}${descriptor.endsWith('q') ? 'p' : 'q'}`;
    refused(t, () => makePins('regtest', wrong, HOT.keyOrigin), 'DESCRIPTOR_CHECKSUM', /checksum/i, 'a wrong checksum');
  }
});

t.test('makePins refuses another network\'s keys, in the descriptor or the hot key', async (t) => {
  refused(t, () => makePins('mainnet', SINGLE, HOT_MAINNET.keyOrigin), 'DESCRIPTOR_NETWORK', /tpub \(test networks\) but the network is mainnet/, 'a tpub descriptor on mainnet');
  refused(t, () => makePins('regtest', SINGLE_MAINNET, HOT.keyOrigin), 'DESCRIPTOR_NETWORK', /xpub \(mainnet\) but the network is regtest/, 'an xpub descriptor on regtest');
  refused(t, () => makePins('regtest', SINGLE, HOT_MAINNET.keyOrigin), 'DESCRIPTOR_NETWORK', /xpub \(mainnet\) but the network is regtest/, 'a mainnet hot key on regtest');
  refused(t, () => makePins('mainnet', SINGLE_MAINNET, HOT.keyOrigin), 'DESCRIPTOR_NETWORK', /tpub \(test networks\) but the network is mainnet/, 'a test-network hot key on mainnet');
  t.equal(makePins('mainnet', SINGLE_MAINNET, HOT_MAINNET.keyOrigin).network, 'mainnet', 'both mainnet: accepted');
});

t.test('makePins refuses a hot key that is one of the cold keys', async (t) => {
  const cases = [
    { label: 'the single key', descriptor: SINGLE, hot: coldSingle.keyOrigin },
    { label: 'the single key, with /<0;1>/*', descriptor: SINGLE, hot: `${coldSingle.keyOrigin}/<0;1>/*` },
    ...cosigners.map((c, i) => ({ label: `cosigner ${i}`, descriptor: MULTI, hot: c.keyOrigin })),
    // The same xpub under another origin label is still the same key (a fingerprint at depth 3 is only a label).
    { label: 'the single key under another fingerprint', descriptor: SINGLE, hot: `[deadbeef/84h/1h/0h]${coldSingle.xpub}` },
  ];
  for (const c of cases) {
    refused(t, () => makePins('regtest', c.descriptor, c.hot), 'SIGNER_CONFIG', /^hot: the hot key is one of the cold descriptor's keys; the hot wallet must have its own seed$/, c.label);
  }
});

t.test('makePins refuses caps that are zero or negative', async (t) => {
  for (const maxFeeSats of [0n, -1n, -1_000_000n]) {
    refused(t, () => makePins('regtest', SINGLE, HOT.keyOrigin, maxFeeSats, 10), 'SIGNER_CONFIG', new RegExp(`^maxFeeSats: ${maxFeeSats} must be positive$`), `maxFeeSats ${maxFeeSats}`);
  }
  for (const maxFeeRate of [0, -0, -1, -0.5, Number.NaN, Number.NEGATIVE_INFINITY]) {
    refused(t, () => makePins('regtest', SINGLE, HOT.keyOrigin, 1_000n, maxFeeRate), 'SIGNER_CONFIG', /^maxFeeRate: .* must be positive$/, `maxFeeRate ${maxFeeRate}`);
  }
  t.equal(makePins('regtest', SINGLE, HOT.keyOrigin, 1n, 0.1).maxFeeSats, 1n, 'the smallest caps are caps');
});

// --- savePins / loadPins --------------------------------------------------------------------------------------

t.test('savePins writes 0600 (whatever the umask) with no temp file left, and loadPins round-trips it', async (t) => {
  const dir = tempDir(t);
  for (const [i, descriptor] of [SINGLE, MULTI].entries()) {
    const path = join(dir, `signer-${i}.json`);
    const pins = makePins('regtest', descriptor, HOT.keyOrigin, 123_456n, 42.5);
    const umask = process.umask(0);
    try {
      savePins(path, pins, false);
    } finally {
      process.umask(umask);
    }
    t.equal(statSync(path).mode & 0o777, 0o600, `${i}: mode 0600 under umask 000`);
    const body = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    t.same(body, { version: 1, network: 'regtest', descriptor, hot: HOT.keyOrigin, maxFeeSats: '123456', maxFeeRate: 42.5 }, `${i}: the file's fields`);
    const [a, b] = sameKey(loadPins(path), pins);
    t.same(a, b, `${i}: loadPins gives back the same pins`);
  }
  t.same(readdirSync(dir).sort(), ['signer-0.json', 'signer-1.json'], 'no temp files left behind');
});

t.test('savePins refuses to replace pins unless told to (SIGNER_CONFIG naming --force)', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'signer.json');
  const first = makePins('regtest', SINGLE, HOT.keyOrigin);
  const second = makePins('regtest', MULTI, HOT.keyOrigin, 7n, 3);
  savePins(path, first, false);
  const before = readFileSync(path);
  refused(t, () => savePins(path, second, false), 'SIGNER_CONFIG', new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} exists: pins are changed only deliberately \\(pass --force to replace them\\)$`), 'a second save');
  t.ok(readFileSync(path).equals(before), 'the pins on disk are unchanged');
  t.same(readdirSync(dir), ['signer.json'], 'no temp file left by the refusal');

  chmodSync(path, 0o666);
  savePins(path, second, true);
  t.equal(statSync(path).mode & 0o777, 0o600, 'a replacement is 0600 again');
  const [a, b] = sameKey(loadPins(path), second);
  t.same(a, b, 'the replacement is what loads');
  t.same(readdirSync(dir), ['signer.json']);

  refused(t, () => savePins(join(dir, 'no-such-dir', 'signer.json'), first, false), 'SIGNER_CONFIG', /no-such-dir\/signer\.json: cannot write/, 'a missing directory');
});

t.test('loadPins refuses a file that group or others can write, naming the mode', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'signer.json');
  savePins(path, makePins('regtest', SINGLE, HOT.keyOrigin), false);
  for (const mode of [0o666, 0o620, 0o602, 0o660, 0o622]) {
    chmodSync(path, mode);
    refused(t, () => loadPins(path), 'SIGNER_CONFIG', new RegExp(`signer\\.json: writable by others \\(mode ${mode.toString(8)}\\); chmod 600 it`), `mode ${mode.toString(8)}`);
  }
  for (const mode of [0o600, 0o640, 0o644, 0o400]) {
    chmodSync(path, mode);
    t.equal(loadPins(path).network, 'regtest', `mode ${mode.toString(8)}: readable by others is fine`);
  }
});

t.test('loadPins refuses a missing file, bad JSON, and every malformed field', async (t) => {
  const dir = tempDir(t);
  refused(t, () => loadPins(join(dir, 'absent.json')), 'SIGNER_CONFIG', /absent\.json: no signer configuration \(run custody-signer pin first\): ENOENT$/, 'a missing file');

  const good = { version: 1, network: 'regtest', descriptor: SINGLE, hot: HOT.keyOrigin, maxFeeSats: '1000000', maxFeeRate: 200 };
  const json = (over: Record<string, unknown>): string => JSON.stringify({ ...good, ...over });
  /** Refused by loadPins itself: SIGNER_CONFIG, the message naming the file, then `why`. */
  const fileCases: Array<{ label: string; text: string; why: RegExp }> = [
    { label: 'not JSON', text: '{"version": 1,', why: /not JSON$/ },
    { label: 'empty', text: '', why: /not JSON$/ },
    { label: 'JSON null', text: 'null', why: /not a JSON object$/ },
    { label: 'a JSON array', text: '[1]', why: /not a JSON object$/ },
    { label: 'a JSON number', text: '1', why: /not a JSON object$/ },
    { label: 'version 2', text: json({ version: 2 }), why: /version 2 is not 1$/ },
    { label: 'version "1"', text: json({ version: '1' }), why: /version .* is not 1$/ },
    { label: 'no version', text: json({ version: undefined }), why: /version undefined is not 1$/ },
    { label: 'an unknown network', text: json({ network: 'testnet4' }), why: /network testnet4 is not a network$/ },
    { label: 'no network', text: json({ network: undefined }), why: /network undefined is not a network$/ },
    { label: 'no descriptor', text: json({ descriptor: undefined }), why: /descriptor and hot must be strings$/ },
    { label: 'a hot key that is not a string', text: json({ hot: 7 }), why: /descriptor and hot must be strings$/ },
    ...['0', '-5', '1.5', '1e6', '01000', 'abc', '', ' 1000', '12345678901234567'].map((v) => ({ label: `maxFeeSats "${v}"`, text: json({ maxFeeSats: v }), why: /maxFeeSats must be a positive integer string$/ })),
    { label: 'maxFeeSats as a number', text: json({ maxFeeSats: 1000 }), why: /maxFeeSats must be a positive integer string$/ },
    { label: 'no maxFeeSats', text: json({ maxFeeSats: undefined }), why: /maxFeeSats must be a positive integer string$/ },
    { label: 'maxFeeRate as a string', text: json({ maxFeeRate: '200' }), why: /maxFeeRate must be a number$/ },
    { label: 'no maxFeeRate', text: json({ maxFeeRate: undefined }), why: /maxFeeRate must be a number$/ },
  ];
  fileCases.forEach((c, i) => {
    const path = join(dir, `file-${i}.json`);
    writeFileSync(path, c.text, { mode: 0o600 });
    const err = refused(t, () => loadPins(path), 'SIGNER_CONFIG', c.why, c.label);
    t.ok(err?.message.startsWith(`${path}: `), `${c.label}: names the file`);
  });
  /** Well-formed files whose content makePins refuses, by its own rules. */
  const contentCases: Array<{ label: string; text: string; code: ErrorCode; pattern: RegExp }> = [
    { label: 'maxFeeRate 0', text: json({ maxFeeRate: 0 }), code: 'SIGNER_CONFIG', pattern: /^maxFeeRate: 0 must be positive$/ },
    { label: 'maxFeeRate −1', text: json({ maxFeeRate: -1 }), code: 'SIGNER_CONFIG', pattern: /^maxFeeRate: -1 must be positive$/ },
    { label: 'a descriptor without its checksum', text: json({ descriptor: SINGLE.slice(0, -9) }), code: 'DESCRIPTOR_CHECKSUM', pattern: /checksum/i },
    { label: 'a mainnet descriptor', text: json({ descriptor: SINGLE_MAINNET }), code: 'DESCRIPTOR_NETWORK', pattern: /but the network is regtest/ },
    { label: 'a hot key of mainnet', text: json({ hot: HOT_MAINNET.keyOrigin }), code: 'DESCRIPTOR_NETWORK', pattern: /but the network is regtest/ },
    { label: 'the hot key is the cold key', text: json({ hot: coldSingle.keyOrigin }), code: 'SIGNER_CONFIG', pattern: /^hot: the hot key is one of the cold descriptor's keys/ },
  ];
  contentCases.forEach((c, i) => {
    const path = join(dir, `content-${i}.json`);
    writeFileSync(path, c.text, { mode: 0o600 });
    refused(t, () => loadPins(path), c.code, c.pattern, c.label);
  });
  const path = join(dir, 'good.json');
  writeFileSync(path, JSON.stringify(good), { mode: 0o600 });
  t.equal(loadPins(path).maxFeeSats, 1_000_000n, 'the unaltered file loads');
});
