/**
 * Withdrawal destinations from published addresses. Provenance (copied, not typed from memory):
 * - BIP173 §Test vectors and §Examples, https://github.com/bitcoin/bips/blob/master/bip-0173.mediawiki
 *   (the valid P2WPKH `BC1QW508…`, the testnet P2WSH `tb1qrp33…0sl5k7`, its mainnet form `bc1qrp33…ccfmv3`
 *   from §Examples, and the invalid list);
 * - BIP350 §Test vectors for v0-v16 native segregated witness addresses,
 *   https://github.com/bitcoin/bips/blob/master/bip-0350.mediawiki (the v1 `bc1p0xlx…zk5jj0` and
 *   `tb1pqqqq…f3hn0c`, the future-version ones, and the invalid list, including Bech32-instead-of-Bech32m);
 * - bitcoinjs-lib `test/fixtures/address.json` (its "standard" list) for base58check: P2PKH
 *   `1BgGZ9tc…26SAMH` and P2SH `3LRW7jeC…eqXFmdcr` on mainnet, `mrCDrCyb…FwDBC8r` and `2NByiBUa…1EDwt5w`
 *   on testnet, and the regtest P2WSH `bcrt1qjh3d…cn82zx`, each with its hash160 / program.
 * Dust limits are Bitcoin Core's GetDustThreshold at 3 sat/vB: 546 (P2PKH), 540 (P2SH), 294 (P2WPKH),
 * 330 (P2WSH, P2TR).
 */
import t, { type Test } from 'tap';
import { initEccLib, Transaction } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { outputVbytes, parseDestination, scriptType, type DestinationType } from '../../../src/wallet/destination.js';
import { isCustodyError } from '../../../src/errors.js';
import type { Network } from '../../../src/types.js';
import { hex, thrown } from '../../support/vectors.js';

interface Valid {
  readonly address: string;
  readonly network: Network;
  readonly type: DestinationType;
  readonly script: string;
  readonly dust: bigint;
  readonly source: string;
}

const MAINNET: readonly Valid[] = [
  { address: '1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH', network: 'mainnet', type: 'p2pkh', script: '76a914751e76e8199196d454941c45d1b3a323f1433bd688ac', dust: 546n, source: 'bitcoinjs address.json' },
  { address: '3LRW7jeCvQCRdPF8S3yUCfRAx4eqXFmdcr', network: 'mainnet', type: 'p2sh', script: 'a914cd7b44d0b03f2d026d1e586d7ae18903b0d385f687', dust: 540n, source: 'bitcoinjs address.json' },
  { address: 'BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4', network: 'mainnet', type: 'p2wpkh', script: '0014751e76e8199196d454941c45d1b3a323f1433bd6', dust: 294n, source: 'BIP173/BIP350 valid' },
  { address: 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', network: 'mainnet', type: 'p2wpkh', script: '0014751e76e8199196d454941c45d1b3a323f1433bd6', dust: 294n, source: 'BIP173 examples' },
  { address: 'bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3', network: 'mainnet', type: 'p2wsh', script: '00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262', dust: 330n, source: 'BIP173 examples' },
];
const P2TR_MAINNET: Valid = {
  address: 'bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0',
  network: 'mainnet',
  type: 'p2tr',
  script: '512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798',
  dust: 330n,
  source: 'BIP350 valid',
};
const P2TR_TESTNET: Valid = {
  address: 'tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c',
  network: 'testnet',
  type: 'p2tr',
  script: '5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433',
  dust: 330n,
  source: 'BIP350 valid',
};
const OTHER_NETWORKS: readonly Valid[] = [
  { address: 'tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7', network: 'testnet', type: 'p2wsh', script: '00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262', dust: 330n, source: 'BIP173 valid' },
  { address: 'tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy', network: 'signet', type: 'p2wsh', script: '0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433', dust: 330n, source: 'BIP173 valid (signet shares tb)' },
  { address: 'mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r', network: 'testnet', type: 'p2pkh', script: '76a914751e76e8199196d454941c45d1b3a323f1433bd688ac', dust: 546n, source: 'bitcoinjs address.json' },
  { address: '2NByiBUaEXrhmqAsg7BbLpcQSAQs1EDwt5w', network: 'testnet', type: 'p2sh', script: 'a914cd7b44d0b03f2d026d1e586d7ae18903b0d385f687', dust: 540n, source: 'bitcoinjs address.json' },
  { address: 'bcrt1qjh3dnrafy8f2zszh5sdqn6c3ycfljh930yza9nt72v30dkw8mlvscn82zx', network: 'regtest', type: 'p2wsh', script: '002095e2d98fa921d2a14057a41a09eb112613f95cb17905d2cd7e5322f6d9c7dfd9', dust: 330n, source: 'bitcoinjs address.json' },
];

/** True when parseDestination refuses `address` on `network` with ADDRESS_INVALID naming the field. */
function refused(address: string, network: Network): boolean {
  const err = thrown(() => parseDestination(address, network));
  return isCustodyError(err, 'ADDRESS_INVALID') && err.details?.['field'] === 'address' && err.message.startsWith('address:');
}

function checkAccepted(t: Test, v: Valid): void {
  const d = parseDestination(v.address, v.network);
  t.equal(d.type, v.type, `${v.address} (${v.source}) is ${v.type}`);
  t.equal(hex(d.script), v.script, `${v.address}: the published scriptPubKey`);
  t.equal(d.dustSats, v.dust, `${v.type} dust`);
  // The canonical form: bech32 in lower case (BIP173 allows all upper case), base58 as given.
  t.equal(d.address, v.address.startsWith('1') || v.address.startsWith('3') || /^[mn2]/.test(v.address) ? v.address : v.address.toLowerCase());
  t.equal(scriptType(d.script), v.type, 'scriptType agrees');
  // outputVbytes is what one more output of this script adds to a serialized transaction.
  const tx = new Transaction();
  tx.addInput(new Uint8Array(32), 0);
  const before = tx.byteLength();
  tx.addOutput(d.script, 1_000n);
  t.equal(outputVbytes(d.script), tx.byteLength() - before, `${v.type}: outputVbytes`);
}

t.test('parseDestination accepts P2PKH, P2SH, P2WPKH (either case) and P2WSH on mainnet, with the published script and the dust limit', async (t) => {
  for (const v of MAINNET) checkAccepted(t, v);
});

t.test('parseDestination accepts each type on the test networks too (signet shares testnet’s prefixes; regtest has bcrt)', async (t) => {
  for (const v of OTHER_NETWORKS) checkAccepted(t, v);
});

// bitcoinjs-lib 7 decodes P2TR only with an ECC library; wallet/destination.ts installs it itself, so no
// caller has to.
t.test('parseDestination accepts P2TR (BIP350) without the caller initialising an ECC library', async (t) => {
  for (const v of [P2TR_MAINNET, P2TR_TESTNET]) {
    const err = thrown(() => parseDestination(v.address, v.network));
    t.equal(err, undefined, `${v.address} on ${v.network}: ${String(err)}`);
  }
});

t.test('with the ECC library initialised, P2TR gives the BIP350 script and 330-sat dust, on mainnet and testnet', async (t) => {
  initEccLib(ecc);
  checkAccepted(t, P2TR_MAINNET);
  checkAccepted(t, P2TR_TESTNET);
  t.ok(refused(P2TR_MAINNET.address, 'testnet'), 'and a mainnet P2TR is still refused on testnet');
});

t.test("parseDestination refuses another network's address, naming the field", async (t) => {
  const cases: ReadonlyArray<[string, Network]> = [
    ['bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', 'testnet'],
    ['bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', 'regtest'],
    ['1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH', 'testnet'],
    ['3LRW7jeCvQCRdPF8S3yUCfRAx4eqXFmdcr', 'signet'],
    ['tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7', 'mainnet'],
    ['tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7', 'regtest'],
    ['mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r', 'mainnet'],
    ['2NByiBUaEXrhmqAsg7BbLpcQSAQs1EDwt5w', 'mainnet'],
    ['bcrt1qjh3dnrafy8f2zszh5sdqn6c3ycfljh930yza9nt72v30dkw8mlvscn82zx', 'testnet'],
    ['bcrt1qjh3dnrafy8f2zszh5sdqn6c3ycfljh930yza9nt72v30dkw8mlvscn82zx', 'mainnet'],
    ['tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c', 'mainnet'],
  ];
  for (const [address, network] of cases) t.ok(refused(address, network), `${address} on ${network}`);
  const err = thrown(() => parseDestination('tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7', 'mainnet'));
  t.ok(isCustodyError(err) && err.message.includes('mainnet'), 'the message names the daemon’s network');
});

t.test('parseDestination refuses a v1+ address with a Bech32 checksum, and a v0 one with Bech32m (BIP350)', async (t) => {
  for (const a of [
    'bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd', // v1, Bech32 instead of Bech32m
    'BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL', // v16, Bech32 instead of Bech32m
    'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh', // v0, Bech32m instead of Bech32
    'bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx', // BIP173's old (Bech32) v1 vector
  ]) {
    t.ok(refused(a, 'mainnet'), a);
  }
  t.ok(refused('tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf', 'testnet'), 'testnet v2 with Bech32');
  t.ok(refused('tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47', 'testnet'), 'testnet v0 with Bech32m');
});

t.test('parseDestination refuses bad checksums, bad lengths, padding and case errors (BIP173 and BIP350 invalid lists)', async (t) => {
  const mainnet = [
    'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5', // BIP173: invalid checksum
    '1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMJ', // base58check: last character changed
    '3LRW7jeCvQCRdPF8S3yUCfRAx4eqXFmdcs', // base58check: last character changed
    'tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty', // invalid human-readable part
    'tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut',
    'BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2', // invalid witness version
    'BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R',
    'bc1rw5uspcuh', // invalid program length
    'bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90',
    'bc1pw5dgrnzv',
    'bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav', // 41-byte program
    'BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P', // wrong v0 program length (BIP141)
    'bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4', // invalid character in checksum
    'bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du', // zero padding of more than 4 bits
    'bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf',
    'bc1gmk9yu', // empty data section
  ];
  for (const a of mainnet) t.ok(refused(a, 'mainnet'), a);
  for (const a of [
    'tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7', // mixed case
    'tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq', // mixed case
    'tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv', // non-zero padding
    'tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j',
  ]) {
    t.ok(refused(a, 'testnet'), a);
  }
});

t.test('parseDestination refuses valid future segwit versions it does not pay (BIP350 valid list), by type', async (t) => {
  for (const a of ['bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs', 'BC1SW50QGDZ25J', 'bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y']) {
    t.ok(refused(a, 'mainnet'), a);
  }
  const err = thrown(() => parseDestination('bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs', 'mainnet'));
  t.ok(isCustodyError(err) && /does not pay/.test(err.message), 'v2: "of a type this daemon does not pay"');
});

t.test('parseDestination refuses junk before decoding it', async (t) => {
  const junk = ['', 'hello', 'not an address at all', ' 1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH', '1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH\n', 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4\u0000', 'x'.repeat(91), 'bc1' + 'q'.repeat(100), '1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH'.replace('1', '１'), '0'.repeat(40)];
  for (const a of junk) t.ok(refused(a, 'mainnet'), JSON.stringify(a));
  for (const notString of [42, null, undefined, {}]) t.ok(refused(notString as unknown as string, 'mainnet'), `non-string ${JSON.stringify(notString)}`);
});
