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

export async function startRegtestNode(opts: { logLevel?: string; timeoutMs?: number } = {}): Promise<RegtestNode> {
  const password = randomBytes(16).toString('hex');
  const started = performance.now();
  const launcher = join(REPO, 'test', 'support', 'regtest', 'bcoin-launcher.mjs');
  const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, launcher, `--log-level=${opts.logLevel ?? process.env['BCOIN_LOG_LEVEL'] ?? 'none'}`], {
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
