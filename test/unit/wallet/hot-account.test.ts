import t from 'tap';
import * as bip39 from 'bip39';
import { hotAccountFromSeed, accountFromSeed } from '../../../src/wallet/hot-account.js';
import { mnemonicFromEntropy, mnemonicToSeed, normalizeMnemonic } from '../../../src/wallet/mnemonic.js';
import { parseDescriptor } from '../../../src/wallet/descriptor.js';
import { isCustodyError } from '../../../src/errors.js';
import { bip32 } from '../../../src/wallet/keys.js';
import { fixture, hex, refusedWith, thrown, unhex } from '../../support/vectors.js';

interface Bip39 { passphrase: string; vectors: { entropy: string; mnemonic: string; seed: string; xprv: string }[] }
interface Bip84 { mnemonic: string; passphrase: string; accountPath: string; accountZpub: string; multisigTestnetKeyOrigin: { keyOrigin: string } }
const b39 = fixture<Bip39>('bip39-vectors.json');
const b84 = fixture<Bip84>('bip84-vectors.json');

t.test('BIP39 vectors: entropy gives the words, and words plus "TREZOR" give the seed', async (t) => {
  for (const v of b39.vectors) {
    t.equal(mnemonicFromEntropy(unhex(v.entropy)).toString(), v.mnemonic, `words of ${v.entropy}`);
    t.equal(hex(mnemonicToSeed(Buffer.from(v.mnemonic), Buffer.from(b39.passphrase))), v.seed, `seed of ${v.mnemonic.slice(0, 20)}…`);
    t.equal(hex(bip39.mnemonicToSeedSync(v.mnemonic, b39.passphrase)), v.seed, 'the bip39 package agrees');
    t.equal(bip32.fromSeed(unhex(v.seed)).toBase58(), v.xprv, 'and the seed gives the listed master xprv');
  }
});

t.test('normalizeMnemonic accepts the vectors with stray case and spacing', async (t) => {
  for (const v of b39.vectors) {
    t.equal(normalizeMnemonic(Buffer.from(`  ${v.mnemonic.toUpperCase().replace(/ /g, '   ')}\n`)).toString(), v.mnemonic);
  }
});

t.test('normalizeMnemonic names the first unknown word by position, never by value', async (t) => {
  const words = b84.mnemonic.split(' ');
  words[4] = 'abandonn';
  const err = thrown(() => normalizeMnemonic(Buffer.from(words.join(' '))));
  t.ok(isCustodyError(err, 'MNEMONIC_INVALID') && /word 5\b/.test(err.message));
  t.notOk(isCustodyError(err) && err.message.includes('abandon'), 'no word of the mnemonic is echoed');
});

t.test('normalizeMnemonic rejects a bad BIP39 checksum and a wrong word count', async (t) => {
  const swapped = b84.mnemonic.replace(/about$/, 'abandon');
  t.ok(refusedWith(() => normalizeMnemonic(Buffer.from(swapped)), 'MNEMONIC_INVALID', /checksum/));
  t.ok(refusedWith(() => normalizeMnemonic(Buffer.from('abandon abandon about')), 'MNEMONIC_INVALID', /3 words/));
});

t.test('hotAccountFromSeed gives the BIP84 account xpub (the published zpub in plain xpub form)', async (t) => {
  const seed = mnemonicToSeed(Buffer.from(b84.mnemonic));
  const acct = hotAccountFromSeed(seed, 'mainnet');
  const fromZpub = parseDescriptor(`wpkh([${acct.fingerprint}/${b84.accountPath}]${b84.accountZpub}/<0;1>/*)`).keys[0];
  t.equal(acct.xpub, fromZpub?.xpub);
  t.equal(acct.path, b84.accountPath);
  t.match(acct.fingerprint, /^[0-9a-f]{8}$/);
  t.equal(acct.keyOrigin, `[${acct.fingerprint}/84h/0h/0h]${acct.xpub}`);
});

t.test('hotAccountFromSeed on a test network uses coin type 1 and a tpub', async (t) => {
  const seed = mnemonicToSeed(Buffer.from(b84.mnemonic));
  for (const network of ['testnet', 'signet', 'regtest'] as const) {
    const acct = hotAccountFromSeed(seed, network);
    t.equal(acct.path, '84h/1h/0h', network);
    t.match(acct.xpub, /^tpub/, network);
  }
});

t.test('accountFromSeed reproduces the published BIP48 testnet key origin of the same mnemonic', async (t) => {
  const seed = mnemonicToSeed(Buffer.from(b84.mnemonic));
  t.equal(accountFromSeed(seed, 'testnet', [48, 1, 0, 2]).keyOrigin, b84.multisigTestnetKeyOrigin.keyOrigin);
});
