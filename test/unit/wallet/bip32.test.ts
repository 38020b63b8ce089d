import t from 'tap';
import { bip32, fingerprintHex } from '../../../src/wallet/keys.js';
import { publicChildKey } from '../../../src/wallet/derive.js';
import { fixture, hex, unhex } from '../../support/vectors.js';

interface Chain { path: string; xpub: string; xprv: string }
interface Vectors { vectors: { name: string; seed: string; chains: Chain[] }[] }
const { vectors } = fixture<Vectors>('bip32-vectors.json');

const bip32Path = (p: string): string => p.replace(/H/g, "'");

t.test('BIP32 vectors 1-3: every chain\'s xprv and xpub derive from the seed', async (t) => {
  for (const v of vectors) {
    const master = bip32.fromSeed(unhex(v.seed));
    for (const c of v.chains) {
      const node = c.path === 'm' ? master : master.derivePath(bip32Path(c.path));
      t.equal(node.toBase58(), c.xprv, `${v.name} ${c.path} xprv`);
      t.equal(node.neutered().toBase58(), c.xpub, `${v.name} ${c.path} xpub`);
    }
  }
});

t.test('BIP32 vectors: each non-hardened step is reproduced from the parent xpub alone (CKDpub)', async (t) => {
  let steps = 0;
  for (const v of vectors) {
    v.chains.forEach((c, i) => {
      const last = c.path.split('/').pop() as string;
      if (i === 0 || last.endsWith('H')) return;
      const parent = bip32.fromBase58((v.chains[i - 1] as Chain).xpub);
      const child = bip32.fromBase58(c.xpub);
      t.equal(hex(publicChildKey(parent, Number(last))), hex(child.publicKey), `${v.name} ${c.path} public key`);
      t.equal(parent.derive(Number(last)).neutered().toBase58(), c.xpub, `${v.name} ${c.path} via bip32 public derivation`);
      steps++;
    });
  }
  t.ok(steps >= 4, `checked ${steps} public steps`);
});

t.test('the master fingerprint is the first 4 bytes of HASH160(master public key), lowercase hex', async (t) => {
  const master = bip32.fromSeed(unhex((vectors[0] as { seed: string }).seed));
  t.equal(fingerprintHex(master), hex(master.identifier.subarray(0, 4)));
  t.match(fingerprintHex(master), /^[0-9a-f]{8}$/);
});
