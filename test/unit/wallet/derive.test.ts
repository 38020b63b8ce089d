import t from 'tap';
import { payments, networks } from 'bitcoinjs-lib';
import { parseDescriptor } from '../../../src/wallet/descriptor.js';
import { Deriver } from '../../../src/wallet/derive.js';
import { compareBytes, sortedMultisigScript, p2wshScript } from '../../../src/wallet/scripts.js';
import { bip32, BIP32_TESTNET, fingerprintHex } from '../../../src/wallet/keys.js';
import { mnemonicToSeed } from '../../../src/wallet/mnemonic.js';
import { hotAccountFromSeed } from '../../../src/wallet/hot-account.js';
import type { Network } from '../../../src/types.js';
import { fixture, hex, refusedWith } from '../../support/vectors.js';

interface Bip84 {
  mnemonic: string;
  receive: { index: number; pubkey: string; address: string }[];
  change: { index: number; pubkey: string; address: string }[];
}
interface Multi {
  p2wsh: { name: string; descriptor: string; network: Network; receive: string[]; change: string[] }[];
  twoOfThree: { descriptor: string };
  witnessScripts: { threshold: number; keys: { xpub: string; path: number[] }[]; scripts: string[] };
  regtestWpkh: { tpub: string; path: number[]; addresses: string[] };
}
const b84 = fixture<Bip84>('bip84-vectors.json');
const multi = fixture<Multi>('sortedmulti-vectors.json');

const bjsNetwork = (n: Network): networks.Network => (n === 'mainnet' ? networks.bitcoin : n === 'regtest' ? networks.regtest : networks.testnet);
const bip84 = (network: Network): Deriver => {
  const acct = hotAccountFromSeed(mnemonicToSeed(Buffer.from(b84.mnemonic)), network);
  return new Deriver(parseDescriptor(`wpkh(${acct.keyOrigin}/<0;1>/*)`), network);
};

t.test('BIP84 vectors: receive and change pubkeys, scripts and addresses', async (t) => {
  const d = bip84('mainnet');
  for (const [chain, list] of [[0, b84.receive], [1, b84.change]] as const) {
    for (const v of list) {
      const out = d.derive(chain, v.index);
      t.equal(out.address, v.address, `${chain}/${v.index} address`);
      t.equal(d.address(chain, v.index), v.address, `${chain}/${v.index} address()`);
      t.equal(hex(out.keys[0]?.pubkey as Uint8Array), v.pubkey, `${chain}/${v.index} pubkey`);
      t.equal(out.path, `m/84h/0h/0h/${chain}/${v.index}`);
      t.same(out.keys.map((k) => k.fingerprint), ['73c5da0a']);
      t.equal(hex(out.script), hex(payments.p2wpkh({ pubkey: out.keys[0]?.pubkey as Uint8Array }).output as Uint8Array));
      t.equal(hex(d.script(chain, v.index)), hex(out.script));
      t.equal(out.witnessScript, undefined);
    }
  }
});

t.test('P2WPKH scripts and addresses match bitcoinjs payments on every network, indexes 0-24 of both chains', async (t) => {
  for (const network of ['mainnet', 'testnet', 'signet', 'regtest'] as const) {
    const d = bip84(network);
    let same = 0;
    for (const chain of [0, 1] as const) {
      for (let i = 0; i < 25; i++) {
        const out = d.derive(chain, i);
        const p = payments.p2wpkh({ pubkey: out.keys[0]?.pubkey as Uint8Array, network: bjsNetwork(network) });
        if (p.address === out.address && hex(p.output as Uint8Array) === hex(out.script)) same++;
      }
    }
    t.equal(same, 50, `${network}: all 50 agree`);
    t.match(d.address(0, 0), { mainnet: /^bc1q/, testnet: /^tb1q/, signet: /^tb1q/, regtest: /^bcrt1q/ }[network]);
  }
});

t.test("Bitcoin Core's regtest deriveaddresses vector: wpkh(tpub/1/1/*) children 0-2", async (t) => {
  const v = multi.regtestWpkh;
  const master = bip32.fromBase58(v.tpub, BIP32_TESTNET);
  const account = master.derive(v.path[0] as number); // the descriptor's chain is the next step, /1
  const desc = parseDescriptor(`wpkh([${fingerprintHex(master)}/${v.path[0]}]${account.toBase58()}/<0;1>/*)`, { network: 'regtest' });
  const d = new Deriver(desc);
  t.same([0, 1, 2].map((i) => d.address(v.path[1] as 0 | 1, i)), v.addresses);
});

t.test('published 1-of-4 wsh(sortedmulti): receive and change addresses', async (t) => {
  for (const v of multi.p2wsh) {
    const change = v.descriptor.split('#')[0]?.replace(/\/0\/\*/g, '/1/*') as string;
    const d = new Deriver(parseDescriptor([v.descriptor, change]), v.network);
    t.same(v.receive.map((_, i) => d.address(0, i)), v.receive, `${v.name}: receive`);
    t.same(v.change.map((_, i) => d.address(1, i)), v.change, `${v.name}: change`);
  }
});

t.test('BIP383 sortedmulti vector: witness scripts of children 0-2 from keys sorted by BIP67', async (t) => {
  const v = multi.witnessScripts;
  v.scripts.forEach((expected, i) => {
    const pubkeys = v.keys.map((k) => [...k.path, i].reduce((node, step) => node.derive(step), bip32.fromBase58(k.xpub)).publicKey);
    t.equal(hex(sortedMultisigScript(v.threshold, pubkeys)), expected, `child ${i}`);
    t.equal(hex(sortedMultisigScript(v.threshold, [...pubkeys].reverse())), expected, `child ${i}, keys given in the other order`);
  });
});

t.test('published 2-of-3 descriptor: every address, script and witness script matches bitcoinjs p2ms + p2wsh', async (t) => {
  const desc = parseDescriptor(multi.twoOfThree.descriptor);
  for (const network of ['testnet', 'regtest'] as const) {
    const d = new Deriver(desc, network);
    let same = 0;
    for (const chain of [0, 1] as const) {
      for (let i = 0; i < 10; i++) {
        const out = d.derive(chain, i);
        const pubkeys = desc.keys.map((k) => bip32.fromBase58(k.xpub, BIP32_TESTNET).derive(chain).derive(i).publicKey).sort(compareBytes);
        const p = payments.p2wsh({ redeem: payments.p2ms({ m: 2, pubkeys, network: bjsNetwork(network) }), network: bjsNetwork(network) });
        const ok = p.address === out.address && hex(p.output as Uint8Array) === hex(out.script) && hex(p.redeem?.output as Uint8Array) === hex(out.witnessScript as Uint8Array);
        if (ok) same++;
        if (i === 0 && chain === 0) {
          t.same(out.keys.map((k) => k.path), desc.keys.map((k) => `m/${k.originPath}/0/0`));
          t.equal(hex(p2wshScript(out.witnessScript as Uint8Array)), hex(out.script));
        }
      }
    }
    t.equal(same, 20, `${network}: all 20 agree`);
  }
});

t.test('Deriver refuses a network of the other kind and out-of-range chains and indexes', async (t) => {
  const desc = parseDescriptor(multi.twoOfThree.descriptor);
  t.ok(refusedWith(() => new Deriver(desc, 'mainnet'), 'DESCRIPTOR_NETWORK'));
  const d = new Deriver(desc);
  t.throws(() => d.address(0, -1), RangeError);
  t.throws(() => d.address(0, 2 ** 31), RangeError);
  t.throws(() => d.address(0, 1.5), RangeError);
  t.throws(() => d.address(2 as 0, 0), RangeError);
  t.doesNotThrow(() => d.address(1, 2 ** 31 - 1));
});

t.test('a Deriver can be rebuilt from the structured clone of its descriptor (worker threads)', async (t) => {
  const desc = parseDescriptor(multi.twoOfThree.descriptor);
  const clone = structuredClone(desc);
  t.equal(new Deriver(clone).address(0, 7), new Deriver(desc).address(0, 7));
});
