import t from 'tap';
import { runCli } from '../../support/cli.js';
import { fixture, unhex } from '../../support/vectors.js';
import { parseDescriptor } from '../../../src/wallet/descriptor.js';
import { mnemonicToSeed } from '../../../src/wallet/mnemonic.js';
import { hotAccountFromSeed } from '../../../src/wallet/hot-account.js';
import { bip32, fingerprintHex } from '../../../src/wallet/keys.js';

interface Bip84 { mnemonic: string; accountZpub: string; multisigTestnetKeyOrigin: { keyOrigin: string } }
interface Bip39 { passphrase: string; vectors: { mnemonic: string; seed: string }[] }
interface Multi { twoOfThree: { descriptor: string } }
const b84 = fixture<Bip84>('bip84-vectors.json');
const b39 = fixture<Bip39>('bip39-vectors.json');
const multi = fixture<Multi>('sortedmulti-vectors.json');

t.test('init --mnemonic-fd restores the BIP84 account: the published zpub as xpub, and a checksummed wpkh descriptor', async (t) => {
  const r = await runCli('custody-signer', ['init', '--mnemonic-fd', '3'], { fd3: `${b84.mnemonic}\n` });
  t.equal(r.code, 0, r.stderr);
  const [origin, descriptor, extra] = r.stdout.split('\n');
  const expectedXpub = parseDescriptor(`wpkh([73c5da0a/84h/0h/0h]${b84.accountZpub}/<0;1>/*)`).keys[0]?.xpub;
  t.equal(origin, `[73c5da0a/84h/0h/0h]${expectedXpub}`);
  t.equal(descriptor, parseDescriptor(`wpkh(${origin}/<0;1>/*)`).canonical);
  t.equal(extra, '');
  t.notOk(r.stdout.includes('abandon') || r.stderr.includes('abandon'), 'a restored mnemonic is never printed');
  t.match(r.stderr, /master fingerprint 73c5da0a/);
});

t.test('init --multisig --network testnet restores the published BIP48 cosigner key, and prints no descriptor', async (t) => {
  const r = await runCli('custody-signer', ['init', '--multisig', '--network', 'testnet', '--mnemonic-fd', '3'], { fd3: `${b84.mnemonic}\n` });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `${b84.multisigTestnetKeyOrigin.keyOrigin}\n`);
});

t.test('init reads an optional BIP39 passphrase on line 2 (BIP39 "TREZOR" vector)', async (t) => {
  const v = b39.vectors[0] as { mnemonic: string; seed: string };
  const r = await runCli('custody-signer', ['init', '--network', 'regtest', '--mnemonic-fd', '3'], { fd3: `${v.mnemonic}\n${b39.passphrase}\n` });
  t.equal(r.code, 0, r.stderr);
  const expected = hotAccountFromSeed(unhex(v.seed), 'regtest');
  t.equal(r.stdout.split('\n')[0], expected.keyOrigin);
  t.equal(expected.fingerprint, fingerprintHex(bip32.fromSeed(unhex(v.seed))));
  t.not(expected.fingerprint, '73c5da0a', 'the passphrase changes the wallet');
});

t.test('init refuses an unknown word by position (exit 1, MNEMONIC_INVALID) without echoing the mnemonic', async (t) => {
  const words = b84.mnemonic.split(' ');
  words[2] = 'abandonx';
  const r = await runCli('custody-signer', ['init', '--mnemonic-fd', '3'], { fd3: `${words.join(' ')}\n` });
  t.equal(r.code, 1);
  t.match(r.stderr, /error \[MNEMONIC_INVALID\]: mnemonic: word 3 is not in the BIP39 English wordlist/);
  t.notOk(r.stderr.includes('abandon'));
  t.equal(r.stdout, '');
});

t.test('init without a mnemonic generates 24 words shown once on stderr; stdout carries only the public export', async (t) => {
  const r = await runCli('custody-signer', ['init', '--network', 'regtest']);
  t.equal(r.code, 0, 'exit 0'); // stderr holds the (throwaway) words: never used as an assertion message
  t.match(r.stderr, /WRITE THESE WORDS ON PAPER/);
  const words = [...r.stderr.matchAll(/^\s+\d+\. ([a-z]+)$/gm)].map((m) => m[1] as string);
  t.equal(words.length, 24);
  const lines = r.stdout.trimEnd().split('\n');
  t.equal(lines.length, 2);
  for (let i = 1; i < words.length; i++) t.notOk(r.stdout.includes(`${words[i - 1]} ${words[i]}`), 'no run of mnemonic words on stdout');
  const acct = hotAccountFromSeed(mnemonicToSeed(Buffer.from(words.join(' '))), 'regtest');
  t.equal(lines[0], acct.keyOrigin, 'the export belongs to the words shown');
  t.match(lines[1], /^wpkh\(\[[0-9a-f]{8}\/84h\/1h\/0h\]tpub[1-9A-Za-z]+\/<0;1>\/\*\)#[a-z0-9]{8}$/);
});

t.test('descriptor --multisig combines cosigner key origins into the published 2-of-3 descriptor', async (t) => {
  const keys = parseDescriptor(multi.twoOfThree.descriptor).keys.map((k) => `[${k.fingerprint}/${k.originPath}]${k.xpub}`);
  const r = await runCli('custody-signer', ['descriptor', '--multisig', '2', '--network', 'testnet', ...keys]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `${multi.twoOfThree.descriptor}\n`);
});

t.test('descriptor refuses M > N (exit 1) and a missing --multisig (exit 2)', async (t) => {
  const keys = parseDescriptor(multi.twoOfThree.descriptor).keys.map((k) => `[${k.fingerprint}/${k.originPath}]${k.xpub}`);
  const tooMany = await runCli('custody-signer', ['descriptor', '--multisig', '4', ...keys]);
  t.equal(tooMany.code, 1);
  t.match(tooMany.stderr, /DESCRIPTOR_SYNTAX.*threshold 4 exceeds its 3 keys/);
  t.equal((await runCli('custody-signer', ['descriptor', ...keys])).code, 2);
  const mainnet = await runCli('custody-signer', ['descriptor', '--multisig', '2', '--network', 'mainnet', ...keys]);
  t.equal(mainnet.code, 1);
  t.match(mainnet.stderr, /DESCRIPTOR_NETWORK/);
});
