import t from 'tap';
import { chainDescriptor, parseDescriptor, type ColdDescriptor } from '../../../src/wallet/descriptor.js';
import { isCustodyError, type ErrorCode } from '../../../src/errors.js';
import type { Network } from '../../../src/types.js';
import { fixture, refusedWith } from '../../support/vectors.js';

interface Invalid { cases: { name: string; descriptor: string; network?: Network; code: ErrorCode; mentions: string[]; secret?: string }[] }
interface Multi {
  p2wsh: { descriptor: string; network: Network }[];
  twoOfThree: { descriptor: string; checksum: string; network: Network };
  slip132: { vpub: string; tpub: string };
}
interface Bip84 { accountZpub: string; multisigTestnetKeyOrigin: { keyOrigin: string } }
const invalid = fixture<Invalid>('descriptors-invalid.json');
const multi = fixture<Multi>('sortedmulti-vectors.json');
const b84 = fixture<Bip84>('bip84-vectors.json');

const XPUB84 = 'xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V';
const WPKH = `wpkh([73c5da0a/84h/0h/0h]${XPUB84}/<0;1>/*)`;

t.test('every invalid descriptor is refused with its code, and the message names the problem', async (t) => {
  for (const c of invalid.cases) {
    let caught: unknown;
    try {
      parseDescriptor(c.descriptor, c.network === undefined ? {} : { network: c.network });
    } catch (err) {
      caught = err;
    }
    t.ok(isCustodyError(caught, c.code), `${c.name}: ${c.code} (got ${isCustodyError(caught) ? caught.code : String(caught)})`);
    const message = isCustodyError(caught) ? caught.message : '';
    for (const word of c.mentions) t.ok(message.includes(word), `${c.name}: message mentions "${word}" (${message})`);
    if (c.secret !== undefined) {
      t.notOk(message.includes(c.secret.slice(4, 20)), `${c.name}: the private key is not echoed`);
      t.notOk(JSON.stringify(caught).includes(c.secret.slice(4, 20)), `${c.name}: nor in the serialised error`);
    }
  }
});

t.test('a BIP84 wpkh multipath descriptor parses to one key with its origin, mainnet, canonical with checksum', async (t) => {
  const d = parseDescriptor(WPKH);
  t.equal(d.kind, 'wpkh');
  t.equal(d.threshold, 1);
  t.same(d.keys, [{ fingerprint: '73c5da0a', originPath: '84h/0h/0h', xpub: XPUB84 }]);
  t.equal(d.network, 'mainnet');
  t.equal(d.canonical, `${WPKH}#${d.checksum}`);
  t.same(d.warnings, []);
  t.same(parseDescriptor(d.canonical), d, 'the canonical form parses to the same result');
});

t.test("hardened markers ', H and h and upper-case fingerprints all normalise to the same canonical form", async (t) => {
  const a = parseDescriptor(WPKH);
  const b = parseDescriptor(`wpkh([73C5DA0A/84'/0H/0h]${XPUB84}/<0;1>/*)`);
  t.equal(b.canonical, a.canonical);
});

t.test('a zpub is converted to the xpub it denotes, with a warning', async (t) => {
  const d = parseDescriptor(`wpkh([73c5da0a/84h/0h/0h]${b84.accountZpub}/<0;1>/*)`);
  t.equal(d.keys[0]?.xpub, XPUB84);
  t.equal(d.warnings.length, 1);
  t.match(d.warnings[0], /zpub converted to xpub/);
});

t.test('a Vpub is converted to its published tpub, and a zpub in a multisig is flagged', async (t) => {
  const key = `[2553c4b8/48h/1h/0h/2h/2046266013/1945465733/1801020214/1402692941]`;
  const d = parseDescriptor(`wsh(sortedmulti(1,${b84.multisigTestnetKeyOrigin.keyOrigin}/<0;1>/*,${key}${multi.slip132.vpub}/<0;1>/*))`);
  t.equal(d.keys[1]?.xpub, multi.slip132.tpub);
  t.ok(d.warnings.some((w) => /key 2: Vpub converted to tpub/.test(w)));
});

t.test('the published 2-of-3 multipath descriptor parses with its checksum and is already canonical', async (t) => {
  const d = parseDescriptor(multi.twoOfThree.descriptor);
  t.equal(d.kind, 'wsh-sortedmulti');
  t.equal(d.threshold, 2);
  t.equal(d.keys.length, 3);
  t.equal(d.network, 'testnet');
  t.equal(d.checksum, multi.twoOfThree.checksum);
  t.equal(d.canonical, multi.twoOfThree.descriptor);
  t.same(d.warnings, []);
});

t.test('the pair form (array or two lines, either order) equals the multipath form', async (t) => {
  const recv = multi.p2wsh[0]?.descriptor as string; // published with #checksum, chain 0
  const change = recv.split('#')[0]?.replace(/\/0\/\*/g, '/1/*') as string;
  const fromArray = parseDescriptor([recv, change]);
  const fromLines = parseDescriptor(`${change}\n${recv}\n`);
  t.same(fromLines, fromArray);
  t.equal(fromArray.canonical, parseDescriptor(fromArray.canonical).canonical);
  t.match(fromArray.canonical, /\/<0;1>\/\*/);
  t.notMatch(fromArray.canonical, /\/0\/\*/);
});

t.test('chainDescriptor writes each chain back as a single-path descriptor with its own checksum', async (t) => {
  const recv = multi.p2wsh[0]?.descriptor as string;
  const change = recv.split('#')[0]?.replace(/\/0\/\*/g, '/1/*') as string;
  const d: ColdDescriptor = parseDescriptor([recv, change]);
  t.equal(chainDescriptor(d, 0), recv, 'reproduces the published receive descriptor and checksum');
  t.equal(chainDescriptor(d, 1).split('#')[0], change);
});

t.test('a network option accepts matching keys and is recorded', async (t) => {
  t.equal(parseDescriptor(multi.twoOfThree.descriptor, { network: 'regtest' }).network, 'regtest');
  t.equal(parseDescriptor(multi.twoOfThree.descriptor, { network: 'signet' }).network, 'signet');
  t.equal(parseDescriptor(WPKH, { network: 'mainnet' }).network, 'mainnet');
});

t.test('requireChecksum refuses a descriptor without one', async (t) => {
  t.ok(refusedWith(() => parseDescriptor(WPKH, { requireChecksum: true }), 'DESCRIPTOR_CHECKSUM', /no #checksum/));
  t.doesNotThrow(() => parseDescriptor(parseDescriptor(WPKH).canonical, { requireChecksum: true }));
});

t.test('an origin path that is not BIP84/BIP48 is accepted with a warning', async (t) => {
  const d = parseDescriptor(`wsh(sortedmulti(1,[73c5da0a/84h/0h/0h]${XPUB84}/<0;1>/*))`);
  t.ok(d.warnings.some((w) => /not the usual 48h\/0h\/Nh\/2h/.test(w)));
});
