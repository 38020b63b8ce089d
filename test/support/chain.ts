/** Helpers for tests of the daemon against the regtest node: config, waiting for events and the tip. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CustodyClient } from '../../src/client/app-client.js';
import type { CustodyEvent } from '../../src/service/events.js';
import type { RegtestNode } from './regtest.js';
import { custody, type DaemonFixture } from './daemon.js';
import { passphraseFor } from './keystore.js';
import { readKeystore } from '../../src/keystore/keyfile.js';
import { parseDescriptor } from '../../src/wallet/descriptor.js';
import { Deriver } from '../../src/wallet/derive.js';

/** The [chain] section pointing a daemon at `node` (password in a 0600 file, never in the config). */
export function chainConfig(dir: string, node: { url: string; user: string; password: string }, birthdayHeight: number, extra = ''): string {
  const passwordFile = join(dir, 'node.pass');
  writeFileSync(passwordFile, `${node.password}\n`, { mode: 0o600 });
  return ['[chain]', `url = "${node.url}"`, `user = "${node.user}"`, `passwordFile = "${passwordFile}"`, `birthdayHeight = ${birthdayHeight}`, 'pollMilliseconds = 100', extra].join('\n');
}

/** Every event in the feed after `afterSeq`. */
export async function allEvents(client: CustodyClient, afterSeq = -1): Promise<CustodyEvent[]> {
  const out: CustodyEvent[] = [];
  for (let seq = afterSeq; ; ) {
    const { events } = await client.eventsSince(seq, 1000);
    out.push(...events);
    if (events.length < 1000) return out;
    seq = (events[events.length - 1] as CustodyEvent).seq;
  }
}

/** Polls the feed until `done(events)` holds (events after afterSeq), or fails after timeoutMs. */
export async function waitForEvents(client: CustodyClient, afterSeq: number, done: (events: CustodyEvent[]) => boolean, timeoutMs = 20_000): Promise<CustodyEvent[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const events = await allEvents(client, afterSeq);
    if (done(events)) return events;
    if (Date.now() > until) throw new Error(`timed out waiting for events; have: ${JSON.stringify(events.map((e) => [e.seq, e.type, e.data['txid'], e.data['vout']]))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the daemon has applied the node's tip. */
export async function waitForTip(client: CustodyClient, node: RegtestNode, timeoutMs = 30_000): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const [tip, count, status] = await Promise.all([node.client.getBestBlockHash(), node.client.getBlockCount(), client.status()]);
    const c = status.chain;
    if (c.state !== 'disabled' && c.hash === tip) return c.height as number;
    // Before its birthday block the daemon has applied nothing; it is at the tip once it has looked.
    if (c.state === 'connected' && c.height === null && c.nodeHeight === count && count < c.birthdayHeight && c.lastSyncAt !== null) return c.nodeHeight;
    if (Date.now() > until) throw new Error(`timed out waiting for the daemon to reach ${tip}: ${JSON.stringify(status.chain)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const deposit = (type: string, txid: string, vout?: number) => (e: CustodyEvent): boolean =>
  e.type === type && e.data['txid'] === txid && (vout === undefined || e.data['vout'] === vout);

/** Unlocks a test daemon with two of its three custodians, through the real CLI. */
export async function unlockDaemon(f: DaemonFixture): Promise<void> {
  for (const name of ['ops1', 'ops2']) {
    const r = await custody(f, ['unlock', '--custodian', name, '--passphrase-fd', '3'], `${passphraseFor(name).toString('utf8')}\n`);
    if (r.code !== 0) throw new Error(`unlock ${name} failed: ${r.stderr}`);
  }
}

/** The hot wallet's receive address `index` (chain 0), from the fixture's keystore. */
export function hotAddress(f: DaemonFixture, index: number): string {
  const { body } = readKeystore(join(f.dir, 'keystore.json'));
  const hot = parseDescriptor(`wpkh([${body.hot.fingerprint}/${body.hot.path}]${body.hot.xpub}/<0;1>/*)`, { network: 'regtest' });
  return new Deriver(hot, 'regtest').address(0, index);
}

/** Polls `probe` until it returns a value (not undefined), or fails after timeoutMs. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
