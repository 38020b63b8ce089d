/**
 * The daemon's node client against a real regtest node (bcoin as a child process): every call the
 * daemon uses, typed errors for bad credentials, RPC errors and an unreachable node.
 */
import t from 'tap';
import { Block } from 'bitcoinjs-lib';
import { BitcoindClient } from '../../src/chain/bitcoind.js';
import { walkBlock } from '../../src/chain/block-walker.js';
import { Deriver } from '../../src/wallet/derive.js';
import { regtestDescriptor } from '../support/wallets.js';
import { mine, startRegtestNode, type RegtestNode } from '../support/regtest.js';

let node: RegtestNode;
t.before(async () => {
  node = await startRegtestNode();
});
t.teardown(() => node.stop());

const deriver = new Deriver(regtestDescriptor(), 'regtest');

t.test('a fresh regtest node answers like Core, and mined blocks pay our cold address', async (t) => {
  const info = await node.client.getBlockchainInfo();
  t.equal(info.chain, 'regtest');
  t.equal(info.blocks, 0);
  const payTo = deriver.output(0, 0);
  const hashes = await mine(node, 150, payTo.address);
  t.equal(hashes.length, 150);
  t.equal(await node.client.getBlockCount(), 150);
  t.equal(await node.client.getBestBlockHash(), hashes[149]);
  t.equal(await node.client.getBlockHash(150), hashes[149]);
  const raw = await node.client.getBlockRaw(hashes[0]!);
  const block = Block.fromBuffer(raw);
  t.equal(block.getId(), hashes[0], 'the raw block hashes to its id');
  const coinbase = block.transactions![0]!;
  t.ok(coinbase.outs.some((o) => Buffer.from(o.script).equals(Buffer.from(payTo.script))), 'the coinbase pays the bcrt1 address we derived');
  const tx = await node.client.getRawTransaction(coinbase.getId());
  t.equal(Buffer.from(tx).toString('hex'), coinbase.toHex(), 'getrawtransaction returns the same bytes');
  t.same(await node.client.getRawMempool(), []);
  t.equal(await node.client.estimateSmartFee(6), null, 'no estimate on a fresh regtest chain');
});

t.test('the block walker reads real blocks from the node: our coinbase outputs, with the same txids as bitcoinjs', async (t) => {
  const payTo = deriver.output(0, 1);
  const other = deriver.output(1, 0);
  await mine(node, 440 - (await node.client.getBlockCount()), other.address); // past segwit activation (432)
  const [hash] = await mine(node, 1, payTo.address);
  const raw = await node.client.getBlockRaw(hash!);
  const watch = { lookup: (b: Uint8Array, s: number, e: number) => (Buffer.from(b.subarray(s, e)).equals(Buffer.from(payTo.script)) ? 7 : undefined) };
  const walked = walkBlock(raw, watch);
  const parsed = Block.fromBuffer(raw);
  t.equal(walked.hash, hash);
  t.equal(walked.prevHash, Buffer.from(parsed.prevHash!).reverse().toString('hex'));
  t.equal(walked.outputs.length, 1);
  const out = walked.outputs[0]!;
  t.equal(out.txid, parsed.transactions![0]!.getId(), 'txid of a segwit-era coinbase (witness stripped for the txid)');
  t.equal(out.tag, 7);
  t.equal(out.value, 1_250_000_000n, 'the subsidy at height 441 on regtest: 50 BTC halved twice (every 150 blocks)');
  t.equal(out.value, parsed.transactions![0]!.outs[out.vout]!.value);
  t.ok(parsed.transactions![0]!.hasWitnesses(), 'the coinbase carries the witness reserved value');
});

t.test('node errors are CHAIN_RPC with the node\'s code; bad input is refused before the call', async (t) => {
  await t.rejects(node.client.getBlockHash(1_000_000), { code: 'CHAIN_RPC', details: { method: 'getblockhash' } });
  await t.rejects(node.client.sendRawTransaction(Buffer.from('00', 'hex')), { code: 'CHAIN_RPC' });
  await t.rejects(node.client.getBlockRaw('zz'), { code: 'INVALID_ARGUMENT' });
});

t.test('wrong credentials are CHAIN_AUTH; an unreachable node is CHAIN_UNAVAILABLE after the retries', async (t) => {
  const wrong = new BitcoindClient({ url: node.url, auth: { user: 'custody', password: 'not-it' }, retries: 0 });
  await t.rejects(wrong.getBlockCount(), { code: 'CHAIN_AUTH' });
  const cookieless = new BitcoindClient({ url: node.url, auth: { cookieFile: '/nonexistent/.cookie' }, retries: 0 });
  await t.rejects(cookieless.getBlockCount(), { code: 'CHAIN_AUTH', message: /cookie file/ });
  const started = Date.now();
  const nowhere = new BitcoindClient({ url: 'http://127.0.0.1:9/', auth: { user: 'u', password: 'p' }, retries: 2, backoffMs: 20 });
  await t.rejects(nowhere.getBlockCount(), { code: 'CHAIN_UNAVAILABLE', message: /after 3 attempts/ });
  t.ok(Date.now() - started >= 60, 'it backed off between attempts');
});

t.test('the node stopped: calls fail as unreachable, not with a crash', async (t) => {
  await node.stop();
  await t.rejects(node.client.getBlockCount(), { code: 'CHAIN_UNAVAILABLE' });
});
