/**
 * A real regtest node for tests (DESIGN §8): bcoin, started as a child process on a free loopback
 * port with a random RPC password, reached through the daemon's own BitcoindClient exactly as a
 * deployment reaches bitcoind. The daemon never depends on bcoin; only this harness starts it.
 * Quirks verified on bcoin 1.0.2 (see bcoin-launcher.mjs): segwit spends enter the mempool only from
 * height 432; sendrawtransaction returns a txid even when rejected (check getrawmempool); no RBF;
 * estimatesmartfee has no estimate; invalidateblock deletes blocks and reconsiderblock does nothing,
 * so reorgs are made by submitting a competing branch.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { address, Block, networks, payments, script, Transaction } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { BitcoindClient } from '../../src/chain/bitcoind.js';
import { REPO } from './cli.js';

export const SEGWIT_HEIGHT = 432;

export interface RegtestNode {
  readonly url: string;
  readonly user: string;
  readonly password: string;
  readonly client: BitcoindClient;
  readonly child: ChildProcess;
  readonly startMs: number;
  stop(): Promise<void>;
}

export interface RegtestNodeOptions {
  logLevel?: string;
  timeoutMs?: number;
  /** Keep the chain on disk here (a restart with the same dir resumes it); default in memory. */
  dataDir?: string;
  /** A fixed RPC port (to restart a node where a daemon expects it); default a free one. */
  port?: number;
  password?: string;
}

export async function startRegtestNode(opts: RegtestNodeOptions = {}): Promise<RegtestNode> {
  const password = opts.password ?? randomBytes(16).toString('hex');
  const started = performance.now();
  const launcher = join(REPO, 'test', 'support', 'regtest', 'bcoin-launcher.mjs');
  const args = [`--log-level=${opts.logLevel ?? process.env['BCOIN_LOG_LEVEL'] ?? 'none'}`, `--http-port=${opts.port ?? 0}`, ...(opts.dataDir === undefined ? [] : [`--data-dir=${opts.dataDir}`])];
  const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, launcher, ...args], {
    env: { ...process.env, BCOIN_API_KEY: password },
    // stdin stays open: the node exits when the test process goes away, so no orphan is left.
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const ready = await new Promise<{ port: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the regtest node did not start')), opts.timeoutMs ?? 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the regtest node exited early (${code})`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('{"ready"')) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { port: number });
      }
    });
  });
  const url = `http://127.0.0.1:${ready.port}/`;
  const user = 'custody';
  const client = new BitcoindClient({ url, auth: { user, password }, retries: 2, backoffMs: 50 });
  await client.getBlockCount();
  return {
    url,
    user,
    password,
    client,
    child,
    startMs: performance.now() - started,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** Mines `blocks` blocks paying `address` (a bcrt1… address), in chunks the node handles quickly. */
export async function mine(node: RegtestNode, blocks: number, address: string): Promise<string[]> {
  const hashes: string[] = [];
  for (let left = blocks; left > 0; left -= 100) hashes.push(...(await node.client.generateToAddress(Math.min(100, left), address)));
  return hashes;
}

// --- paying addresses and reorganising the chain, as tests need ----------------------------------

const ECC = ecc;
const REGTEST = networks.regtest;

export interface Coin {
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
}

/**
 * A test-only wallet on the regtest node (which has no wallet of its own): one P2WPKH key that mines
 * coinbase outputs and spends them with bitcoinjs, so tests pay our addresses with real, valid transactions.
 */
export class Funder {
  readonly script: Uint8Array;
  readonly address: string;
  private readonly coins: Coin[] = [];

  private constructor(
    private readonly node: RegtestNode,
    private readonly privateKey: Uint8Array,
    publicKey: Uint8Array,
  ) {
    const p = payments.p2wpkh({ pubkey: publicKey, network: REGTEST });
    this.script = p.output as Uint8Array;
    this.address = p.address as string;
  }

  /** Mines `blocks` (at least 450: segwit spends need height 432) to itself; coinbases 100 deep are spendable. */
  static async create(node: RegtestNode, blocks = 450): Promise<Funder> {
    let privateKey: Uint8Array;
    do privateKey = randomBytes(32);
    while (!ECC.isPrivate(privateKey));
    const f = new Funder(node, privateKey, ECC.pointFromScalar(privateKey, true) as Uint8Array);
    const start = await node.client.getBlockCount();
    const hashes = await mine(node, blocks, f.address);
    const tip = start + blocks;
    for (let i = 0; i < hashes.length; i++) {
      if (start + 1 + i > tip - 100) break; // coinbase maturity
      const block = Block.fromBuffer(await node.client.getBlockRaw(hashes[i] as string));
      const cb = block.transactions![0]!;
      cb.outs.forEach((o, vout) => {
        if (Buffer.from(o.script).equals(Buffer.from(f.script))) f.coins.push({ txid: cb.getId(), vout, value: o.value });
      });
    }
    return f;
  }

  get spendable(): number {
    return this.coins.length;
  }

  /** Builds and signs a transaction paying `outputs` from one coin, change back to the funder. */
  build(outputs: ReadonlyArray<{ address: string; sats: bigint }>, fee = 5_000n): Transaction {
    const total = outputs.reduce((a, o) => a + o.sats, 0n) + fee;
    const i = this.coins.findIndex((c) => c.value >= total);
    if (i < 0) throw new Error(`the funder has no coin of ${total} sats or more`);
    const coin = this.coins.splice(i, 1)[0] as Coin;
    const change = coin.value - total;
    const outs = [...outputs.map((o) => ({ script: address.toOutputScript(o.address, REGTEST), sats: o.sats })), ...(change > 1_000n ? [{ script: this.script, sats: change }] : [])];
    const tx = signP2wpkhSpend([{ ...coin, privateKey: this.privateKey }], outs);
    if (change > 1_000n) this.coins.push({ txid: tx.getId(), vout: outputs.length, value: change });
    return tx;
  }

  /** Pays and checks the node's mempool took it (bcoin answers a txid even when it refuses one). */
  async pay(outputs: ReadonlyArray<{ address: string; sats: bigint }>, fee?: bigint): Promise<Transaction> {
    const tx = this.build(outputs, fee);
    await broadcast(this.node, tx);
    return tx;
  }
}

/** Sends a transaction and waits until the node's mempool holds it (bcoin returns a txid even when it refuses). */
export async function broadcast(node: RegtestNode, tx: Transaction): Promise<void> {
  await node.client.sendRawTransaction(tx.toBuffer());
  const txid = tx.getId();
  for (let i = 0; i < 100; i++) {
    if ((await node.client.getRawMempool()).includes(txid)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the node did not accept ${txid} into its mempool`);
}

/** A transaction spending P2WPKH coins whose private keys the test holds (the funder's, the BIP84 test key's). */
export function signP2wpkhSpend(inputs: ReadonlyArray<Coin & { privateKey: Uint8Array }>, outputs: ReadonlyArray<{ script: Uint8Array; sats: bigint }>): Transaction {
  const tx = new Transaction();
  tx.version = 2;
  for (const c of inputs) tx.addInput(Buffer.from(c.txid, 'hex').reverse(), c.vout, 0xfffffffd);
  for (const o of outputs) tx.addOutput(o.script, o.sats);
  inputs.forEach((c, i) => {
    const publicKey = ECC.pointFromScalar(c.privateKey, true) as Uint8Array;
    const scriptCode = payments.p2pkh({ pubkey: publicKey }).output as Uint8Array;
    const hash = tx.hashForWitnessV0(i, scriptCode, c.value, Transaction.SIGHASH_ALL);
    tx.setWitness(i, [script.signature.encode(ECC.sign(hash, c.privateKey), Transaction.SIGHASH_ALL), publicKey]);
  });
  return tx;
}

/**
 * A coinbase-only block on `prevHash` at `height` (BIP34 height push; regtest difficulty, nonce ground
 * here), as bitcoind's tests build competing branches. `tag` makes two branches' blocks differ.
 */
export function buildBlock(opts: { prevHash: string; height: number; time: number; payTo: Uint8Array; tag: number }): Block {
  const cb = new Transaction();
  cb.version = 2;
  cb.addInput(new Uint8Array(32), 0xffffffff, 0xffffffff, script.compile([script.number.encode(opts.height), script.number.encode(opts.tag + 1)]));
  cb.addOutput(opts.payTo, 5_000_000_000n >> BigInt(Math.floor(opts.height / 150)));
  const b = new Block();
  b.version = 0x20000000;
  b.prevHash = Buffer.from(opts.prevHash, 'hex').reverse();
  b.timestamp = opts.time;
  b.bits = 0x207fffff;
  b.transactions = [cb];
  b.merkleRoot = Block.calculateMerkleRoot(b.transactions);
  for (b.nonce = 0; !b.checkProofOfWork(); b.nonce++);
  return b;
}

/**
 * A real reorganisation: `length` coinbase-only blocks on top of the block `parentHash` (at
 * `parentHeight`), submitted; a branch longer than the node's current one becomes its best chain.
 * Returns the new blocks' hashes.
 */
export async function submitBranch(node: RegtestNode, parentHash: string, parentHeight: number, length: number, payTo: Uint8Array, tag: number): Promise<string[]> {
  let prev = parentHash;
  let time = Block.fromBuffer(await node.client.getBlockRaw(parentHash)).timestamp;
  const hashes: string[] = [];
  for (let i = 1; i <= length; i++) {
    time += 1;
    const b = buildBlock({ prevHash: prev, height: parentHeight + i, time, payTo, tag });
    const r = await node.client.call<string | null>('submitblock', [b.toHex()]);
    if (r !== null && r !== 'inconclusive') throw new Error(`submitblock refused block ${parentHeight + i}: ${r}`);
    prev = b.getId();
    hashes.push(prev);
  }
  return hashes;
}

/**
 * The other way to reorganise (DESIGN §8): `invalidateblock` at `height` (bcoin deletes it and everything
 * above, and empties its mempool), then mine `length` blocks on the block below. Returns the new hashes.
 */
export async function invalidateAndMine(node: RegtestNode, height: number, length: number, payTo: string): Promise<string[]> {
  await node.client.call('invalidateblock', [await node.client.getBlockHash(height)]);
  return mine(node, length, payTo);
}
