/**
 * `npm run dev`: a whole custody system on this machine in seconds, like `vault server -dev`, for trying
 * it out and for the demo: a regtest node (bcoin, the test harness's: the daemon never depends on it), a
 * throwaway data dir, a 1-of-1 keystore unlocked automatically, a cold wallet whose mnemonic is kept in
 * the throwaway dir, client keys, signer pins, a funded hot wallet, and a block every few seconds.
 * Regtest only: it refuses any other network. Nothing here is fit for real money, and it says so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createKeystore } from '../src/keystore/ceremony.js';
import { writeKeystore } from '../src/keystore/keyfile.js';
import { newCurveKeyPair, writeKeyPairFile, type ClientRole } from '../src/rpc/curve-keys.js';
import { signerAccount, singleKeyDescriptor } from '../src/signer/setup.js';
import { makePins, savePins } from '../src/signer/pins.js';
import { mnemonicFromEntropy, mnemonicToSeed } from '../src/wallet/mnemonic.js';
import { Deriver } from '../src/wallet/derive.js';
import { parseDescriptor } from '../src/wallet/descriptor.js';
import { REPO, runCli, type CliResult } from '../test/support/cli.js';
import { freePort } from '../test/support/daemon.js';
import { fastDeps } from '../test/support/keystore.js';
import { Funder, mine, startRegtestNode, type RegtestNode } from '../test/support/regtest.js';

export interface DevOptions {
  /** Mine a block this often (0: only when asked). */
  readonly blockIntervalMs: number;
  /** Keep the throwaway dir after exit. */
  readonly keep: boolean;
  readonly log: (line: string) => void;
}

export interface DevSystem {
  readonly dir: string;
  readonly configFile: string;
  readonly coldMnemonicFile: string;
  readonly passphraseFile: string;
  readonly signerPins: string;
  readonly appEndpoint: string;
  readonly adminEndpoint: string;
  readonly eventsEndpoint: string;
  readonly serverPublicKey: string;
  readonly clients: Readonly<Record<string, { keyFile: string; roles: readonly ClientRole[] }>>;
  readonly node: RegtestNode;
  readonly funder: Funder;
  readonly cold: Deriver;
  readonly hotKeyOrigin: string;
  custody(args: readonly string[], fd3?: string): Promise<CliResult>;
  mine(blocks?: number): Promise<void>;
  stop(): Promise<void>;
}

const CLIENTS: Record<string, ClientRole[]> = { app: ['deposits'], payer: ['withdrawals'], checker: ['approver'], watcher: ['monitor'] };

export async function startDev(opts: DevOptions): Promise<DevSystem> {
  const dir = mkdtempSync(join(tmpdir(), 'custody-dev-'));
  const network = 'regtest';
  const node = await startRegtestNode({ dataDir: join(dir, 'node') });
  const funder = await Funder.create(node);

  // The hot wallet: a 1-of-1 keystore whose passphrase sits in the throwaway dir (dev only: a real one
  // is typed by custodians and never written anywhere).
  const passphrase = `dev-${randomBytes(12).toString('hex')}-Harbor`;
  const passphraseFile = join(dir, 'dev-passphrase.txt');
  writeFileSync(passphraseFile, `${passphrase}\n`, { mode: 0o600 });
  const { body } = await createKeystore({ network, threshold: 1, custodians: [{ name: 'dev', passphrase: Buffer.from(passphrase) }] }, fastDeps(() => new Date()));
  writeKeystore(join(dir, 'keystore.json'), body, { create: true });
  const hotKeyOrigin = `[${body.hot.fingerprint}/${body.hot.path}]${body.hot.xpub}`;

  // The cold wallet: a fresh mnemonic kept here, so the demo's offline signer can sign with it.
  const entropy = randomBytes(16);
  const words = mnemonicFromEntropy(entropy);
  const coldMnemonicFile = join(dir, 'cold-mnemonic.txt');
  writeFileSync(coldMnemonicFile, `${words.toString('utf8')}\n`, { mode: 0o600 });
  const account = signerAccount(mnemonicToSeed(words, Buffer.alloc(0)), network, 'single', 0);
  const descriptor = singleKeyDescriptor(account);
  const cold = new Deriver(parseDescriptor(descriptor, { network }), network);
  const signerPins = join(dir, 'signer.json');
  savePins(signerPins, makePins(network, descriptor, hotKeyOrigin), false);

  const server = newCurveKeyPair();
  writeKeyPairFile(join(dir, 'server.key'), { kind: 'server', ...server });
  const clients: Record<string, { keyFile: string; roles: ClientRole[]; publicKey: string }> = {};
  for (const [name, roles] of Object.entries(CLIENTS)) {
    const keys = newCurveKeyPair();
    const keyFile = join(dir, `${name}.key`);
    writeKeyPairFile(keyFile, { kind: 'client', name, roles, ...keys });
    clients[name] = { keyFile, roles, publicKey: keys.publicKey };
  }
  const appEndpoint = `tcp://127.0.0.1:${await freePort()}`;
  const eventsEndpoint = `tcp://127.0.0.1:${await freePort()}`;
  mkdirSync(join(dir, 'admin'), { mode: 0o700 });
  const adminEndpoint = `ipc://${join(dir, 'admin', 'admin.sock')}`;
  const nodePass = join(dir, 'node.pass');
  writeFileSync(nodePass, `${node.password}\n`, { mode: 0o600 });
  const configFile = join(dir, 'custody.toml');
  const lines = [
    '# Written by `npm run dev`: a throwaway regtest system. NOT FOR REAL MONEY.',
    `network = "${network}"`,
    `dataDir = "${join(dir, 'data')}"`,
    '[keystore]',
    `file = "${join(dir, 'keystore.json')}"`,
    '[cold]',
    `descriptor = "${descriptor}"`,
    '[addresses]',
    'poolSize = 256',
    'poolWorkers = 0',
    '[rpc]',
    `endpoint = "${appEndpoint}"`,
    `serverKeyFile = "${join(dir, 'server.key')}"`,
    '[events]',
    `endpoint = "${eventsEndpoint}"`,
    '[admin]',
    `endpoint = "${adminEndpoint}"`,
    '[chain]',
    `url = "${node.url}"`,
    `user = "${node.user}"`,
    `passwordFile = "${nodePass}"`,
    `birthdayHeight = ${(await node.client.getBlockCount()) + 1}`,
    'pollMilliseconds = 200',
    '[withdrawals]',
    'maxAmountSats = 100_000_000',
    '[withdrawals.approval]',
    'aboveSats = 10_000_000',
    'approvals = 1',
    '[[withdrawals.windows]]',
    'name = "24h"',
    'seconds = 86400',
    'perClientSats = 500_000_000',
    '[withdrawals.batch]',
    'windowMs = 500',
    '[withdrawals.fee]',
    'fallbackSatPerVb = 2',
    '[sweeps]',
    'autoRefill = false',
    '[hot]',
    'minSats = 10_000_000',
    'targetSats = 100_000_000',
    'maxSats = 300_000_000',
  ];
  for (const [name, c] of Object.entries(clients)) lines.push('[[clients]]', `name = "${name}"`, `publicKey = "${c.publicKey}"`, `roles = [${c.roles.map((r) => `"${r}"`).join(', ')}]`);
  writeFileSync(configFile, `${lines.join('\n')}\n`, { mode: 0o600 });

  const custody = (args: readonly string[], fd3?: string): Promise<CliResult> => runCli('custody', [...args, '--config', configFile], fd3 === undefined ? {} : { fd3 });
  const daemon = await startDaemon(configFile, opts.log);
  const unlocked = await custody(['unlock', '--custodian', 'dev', '--passphrase-fd', '3'], `${passphrase}\n`);
  if (unlocked.code !== 0) throw new Error(`dev mode: unlock failed: ${unlocked.stderr}`);
  // A hot wallet with something in it: 1.5 BTC on its first receive address, confirmed.
  const hot = new Deriver(parseDescriptor(`wpkh(${hotKeyOrigin}/<0;1>/*)`, { network }), network);
  await funder.pay([{ address: hot.address(0, 0), sats: 150_000_000n }]);
  await mine(node, 1, funder.address);

  let miner: NodeJS.Timeout | undefined;
  if (opts.blockIntervalMs > 0) {
    miner = setInterval(() => void mine(node, 1, funder.address).catch(() => undefined), opts.blockIntervalMs);
  }
  let stopped = false;
  return {
    dir,
    configFile,
    coldMnemonicFile,
    passphraseFile,
    signerPins,
    appEndpoint,
    adminEndpoint,
    eventsEndpoint,
    serverPublicKey: server.publicKey,
    clients: Object.fromEntries(Object.entries(clients).map(([n, c]) => [n, { keyFile: c.keyFile, roles: c.roles }])),
    node,
    funder,
    cold,
    hotKeyOrigin,
    custody,
    async mine(blocks = 1) {
      await mine(node, blocks, funder.address);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (miner !== undefined) clearInterval(miner);
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.once('exit', r));
      await node.stop();
      if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function startDaemon(configFile: string, log: (line: string) => void): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, join(REPO, 'bin', 'custodyd'), '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let started = false;
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      const text = d.toString('utf8');
      if (!started) err += text;
      else for (const line of text.split('\n')) if (line.trim() !== '') log(line);
      if (!started && err.includes('app rpc:')) {
        started = true;
        resolve(child);
      }
    });
    child.once('exit', (code) => {
      if (!started) reject(new Error(`custodyd exited (${code}) before starting:\n${err}`));
    });
  });
}

export function banner(d: DevSystem): string {
  const bar = '='.repeat(78);
  const c = (name: string): string => d.clients[name]?.keyFile ?? '?';
  return [
    bar,
    '  custody DEV MODE: regtest only, a throwaway data dir, keys in plain files.',
    '  NOT FOR REAL MONEY. Every secret of this system is on disk in the directory below.',
    bar,
    `  dir:         ${d.dir}`,
    `  config:      ${d.configFile}`,
    `  app RPC:     ${d.appEndpoint}  (CURVE server key ${d.serverPublicKey})`,
    `  events:      ${d.eventsEndpoint}`,
    `  admin:       ${d.adminEndpoint}`,
    `  node:        ${d.node.url} (bcoin regtest; a block every few seconds)`,
    `  clients:     app (deposits) ${c('app')}`,
    `               payer (withdrawals) ${c('payer')}`,
    `               checker (approver) ${c('checker')}`,
    `               watcher (monitor) ${c('watcher')}`,
    `  cold mnemonic: ${d.coldMnemonicFile}   signer pins: ${d.signerPins}`,
    '',
    '  Try:',
    `    export CUSTODY_CONFIG=${d.configFile}`,
    '    bin/custody status',
    '    bin/custody audit tail',
    '    bin/custody sweep create --refill 0.1btc',
    `    bin/custody-signer show ${join(d.dir, 'data', 'outbox')}/sweep-sw-00000001.psbt --config ${d.signerPins}`,
    '    npm run demo            (a scripted tour on its own dev system)',
    '  Ctrl-C stops the daemon and the node and deletes the directory (--keep keeps it).',
    bar,
  ].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const network = args.find((a) => a.startsWith('--network='))?.slice('--network='.length);
  if (network !== undefined && network !== 'regtest') {
    process.stderr.write(`dev mode runs on regtest only; refusing --network=${network}\n`);
    process.exit(2);
  }
  const dev = await startDev({ blockIntervalMs: 5_000, keep: args.includes('--keep'), log: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(`${banner(dev)}\n`);
  const stop = (): void => {
    void dev.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`dev mode failed: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
