import t from 'tap';
import { address } from 'bitcoinjs-lib';
import { runCli } from '../../support/cli.js';
import { fixture } from '../../support/vectors.js';

interface Bip84 { accountZpub: string; receive: { address: string }[]; change: { address: string }[] }
interface Multi { twoOfThree: { descriptor: string } }
const b84 = fixture<Bip84>('bip84-vectors.json');
const multi = fixture<Multi>('sortedmulti-vectors.json');
const ZPUB_DESC = `wpkh([73c5da0a/84h/0h/0h]${b84.accountZpub}/<0;1>/*)`;
interface Bip32 { vectors: { chains: { xprv: string }[] }[] }
// BIP32 test vector 1, master xprv (published test data, test/fixtures/README.md).
const XPRV = fixture<Bip32>('bip32-vectors.json').vectors[0]!.chains[0]!.xprv;

t.test('custody addresses derive prints the BIP84 receive and change addresses, one a line', async (t) => {
  const recv = await runCli('custody', ['addresses', 'derive', '--descriptor', ZPUB_DESC, '--count', '2']);
  t.equal(recv.code, 0, recv.stderr);
  t.same(recv.stdout.trimEnd().split('\n'), b84.receive.map((r) => r.address));
  t.match(recv.stderr, /warning: key 1: zpub converted to xpub/);
  const change = await runCli('custody', ['addresses', 'derive', '--descriptor', ZPUB_DESC, '--chain', '1', '--count', '1']);
  t.equal(change.code, 0);
  t.equal(change.stdout, `${b84.change[0]?.address}\n`);
});

t.test('--count defaults to 20 and --from starts later in the same sequence', async (t) => {
  const all = await runCli('custody', ['addresses', 'derive', '--descriptor', ZPUB_DESC]);
  const lines = all.stdout.trimEnd().split('\n');
  t.equal(lines.length, 20);
  const later = await runCli('custody', ['addresses', 'derive', '--descriptor', ZPUB_DESC, '--from', '5', '--count', '3']);
  t.same(later.stdout.trimEnd().split('\n'), lines.slice(5, 8));
});

t.test('the network defaults from the key (tpub: testnet) and --network regtest gives bcrt addresses', async (t) => {
  const test = await runCli('custody', ['addresses', 'derive', '--descriptor', multi.twoOfThree.descriptor, '--count', '1']);
  t.equal(test.code, 0, test.stderr);
  t.match(test.stdout, /^tb1q[a-z0-9]{58}\n$/);
  const reg = await runCli('custody', ['addresses', 'derive', '--descriptor', multi.twoOfThree.descriptor, '--network', 'regtest', '--count', '1']);
  t.equal(reg.code, 0, reg.stderr);
  t.match(reg.stdout, /^bcrt1q[a-z0-9]{58}\n$/);
  const program = (a: string): string => Buffer.from(address.fromBech32(a.trim()).data).toString('hex');
  t.equal(program(reg.stdout), program(test.stdout), 'same witness program, other HRP');
});

t.test('refusals exit 1 with the stable code: wrong network, private key (never echoed)', async (t) => {
  const wrong = await runCli('custody', ['addresses', 'derive', '--descriptor', ZPUB_DESC, '--network', 'regtest']);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /error \[DESCRIPTOR_NETWORK\]/);
  t.equal(wrong.stdout, '');
  const priv = await runCli('custody', ['addresses', 'derive', '--descriptor', `wpkh(${XPRV}/<0;1>/*)`]);
  t.equal(priv.code, 1);
  t.match(priv.stderr, /error \[DESCRIPTOR_KEY\]: .*private key/);
  t.notOk(priv.stderr.includes(XPRV.slice(4, 20)) || priv.stdout.includes(XPRV.slice(4, 20)), 'the xprv is not echoed');
});

t.test('usage errors exit 2: --count out of range, bad --chain, missing --descriptor', async (t) => {
  for (const args of [['--count', '0'], ['--count', '100001'], ['--chain', '2'], ['--from', '-1']]) {
    const r = await runCli('custody', ['addresses', 'derive', '--descriptor', ZPUB_DESC, ...args]);
    t.equal(r.code, 2, args.join(' '));
  }
  t.equal((await runCli('custody', ['addresses', 'derive'])).code, 2);
});
