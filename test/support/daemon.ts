/**
 * Starts a real `custodyd` child process for integration tests: a throwaway dir with a 2-of-3 keystore
 * (fast scrypt), a server key, client keys for each role, a config file, and free loopback ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeystore } from '../../src/keystore/ceremony.js';
import { writeKeystore } from '../../src/keystore/keyfile.js';
import { newCurveKeyPair, writeKeyPairFile, type ClientRole, type CurveKeyPair } from '../../src/rpc/curve-keys.js';
import { CustodyClient } from '../../src/client/app-client.js';
import { AdminClient } from '../../src/client/admin-client.js';
import { REPO, runCli, type CliResult } from './cli.js';
import { custodians, fastDeps } from './keystore.js';
import { REGTEST_WPKH } from './wallets.js';

export const CUSTODIAN_NAMES = ['ops1', 'ops2', 'ops3'];

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface TestClient {
  readonly name: string;
  readonly roles: readonly ClientRole[];
  readonly keys: CurveKeyPair;
  readonly keyFile: string;
}

/** An operator of the remote admin door ([[operators]], `custody keys operator`). */
export interface TestOperator {
  readonly name: string;
  readonly keys: CurveKeyPair;
  readonly keyFile: string;
}

export interface DaemonFixture {
  readonly dir: string;
  readonly configFile: string;
  readonly appEndpoint: string;
  readonly eventsEndpoint: string;
  readonly adminEndpoint: string;
  /** [admin] tcpEndpoint: set when the fixture has operators. */
  readonly adminTcpEndpoint: string | null;
  readonly serverPublicKey: string;
  readonly operators: Record<string, TestOperator>;
  readonly clients: Record<string, TestClient>;
  readonly extraConfig: string;
  readonly poolSize: number;
  readonly poolWorkers: number;
  readonly descriptor: string;
}

/** Writes everything a daemon needs; `clients` maps name → roles; `operators` (names) turn on the remote admin door. */
export async function makeDaemonFixture(
  opts: { clients?: Record<string, ClientRole[]>; operators?: readonly string[]; extraConfig?: string; poolSize?: number; poolWorkers?: number; descriptor?: string } = {},
): Promise<DaemonFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'custodyd-'));
  const { body } = await createKeystore({ network: 'regtest', threshold: 2, custodians: custodians(CUSTODIAN_NAMES) }, fastDeps());
  writeKeystore(join(dir, 'keystore.json'), body, { create: true });
  const server = newCurveKeyPair();
  writeKeyPairFile(join(dir, 'server.key'), { kind: 'server', ...server });
  const clients: Record<string, TestClient> = {};
  const wanted: Record<string, ClientRole[]> = opts.clients ?? { app: ['deposits'], watcher: ['monitor'], payer: ['withdrawals'] };
  for (const [name, roles] of Object.entries(wanted)) {
    const keys = newCurveKeyPair();
    const keyFile = join(dir, `${name}.key`);
    writeKeyPairFile(keyFile, { kind: 'client', name, roles, ...keys });
    clients[name] = { name, roles, keys, keyFile };
  }
  const operators: Record<string, TestOperator> = {};
  for (const name of opts.operators ?? []) {
    const keys = newCurveKeyPair();
    const keyFile = join(dir, `operator-${name}.key`);
    writeKeyPairFile(keyFile, { kind: 'operator', name, ...keys });
    operators[name] = { name, keys, keyFile };
  }
  const [app, events] = [await freePort(), await freePort()];
  const adminTcp = Object.keys(operators).length > 0 ? await freePort() : null;
  const fixture: DaemonFixture = {
    dir,
    configFile: join(dir, 'custody.toml'),
    appEndpoint: `tcp://127.0.0.1:${app}`,
    eventsEndpoint: `tcp://127.0.0.1:${events}`,
    adminEndpoint: `ipc://${join(dir, 'admin', 'admin.sock')}`,
    adminTcpEndpoint: adminTcp === null ? null : `tcp://127.0.0.1:${adminTcp}`,
    serverPublicKey: server.publicKey,
    operators,
    clients,
    extraConfig: opts.extraConfig ?? '',
    poolSize: opts.poolSize ?? 2048,
    poolWorkers: opts.poolWorkers ?? 1,
    descriptor: opts.descriptor ?? REGTEST_WPKH,
  };
  writeConfig(fixture);
  return fixture;
}

export function writeConfig(f: DaemonFixture, clients: readonly TestClient[] = Object.values(f.clients)): void {
  const lines = [
    'network = "regtest"',
    `dataDir = "${join(f.dir, 'data')}"`,
    '[keystore]',
    `file = "${join(f.dir, 'keystore.json')}"`,
    '[cold]',
    `descriptor = "${f.descriptor}"`,
    '[addresses]',
    `poolSize = ${f.poolSize}`,
    `poolWorkers = ${f.poolWorkers}`,
    '[rpc]',
    `endpoint = "${f.appEndpoint}"`,
    `serverKeyFile = "${join(f.dir, 'server.key')}"`,
    '[events]',
    `endpoint = "${f.eventsEndpoint}"`,
    '[admin]',
    `endpoint = "${f.adminEndpoint}"`,
    ...(f.adminTcpEndpoint === null ? [] : [`tcpEndpoint = "${f.adminTcpEndpoint}"`]),
    f.extraConfig,
  ];
  for (const c of clients) {
    lines.push('[[clients]]', `name = "${c.name}"`, `publicKey = "${c.keys.publicKey}"`, `roles = [${c.roles.map((r) => `"${r}"`).join(', ')}]`, 'ratePerSecond = 100000', 'burst = 100000');
  }
  for (const o of Object.values(f.operators)) lines.push('[[operators]]', `name = "${o.name}"`, `publicKey = "${o.keys.publicKey}"`);
  writeFileSync(f.configFile, `${lines.join('\n')}\n`);
}

export interface RunningTestDaemon {
  readonly child: ChildProcess;
  readonly stderr: () => string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export function startTestDaemon(f: DaemonFixture, env: Record<string, string> = {}): Promise<RunningTestDaemon> {
  return new Promise((resolve, reject) => {
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, join(REPO, 'bin', 'custodyd'), '--config', f.configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let err = '';
    let started = false;
    const exited = new Promise<number | string>((r) => child.on('exit', (code, sig) => r(code ?? sig ?? 'unknown')));
    child.stdout!.resume();
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString('utf8');
      if (!started && err.includes('app rpc:')) {
        started = true;
        resolve({
          child,
          stderr: () => err,
          exited,
          stop: async (signal = 'SIGTERM') => {
            child.kill(signal);
            return exited;
          },
        });
      }
    });
    void exited.then((code) => {
      if (!started) reject(new Error(`custodyd exited (${code}) before starting:\n${err}`));
    });
  });
}

export function appClient(f: DaemonFixture, name: string, timeoutMs = 5_000): CustodyClient {
  const c = f.clients[name];
  if (c === undefined) throw new Error(`no test client ${name}`);
  return new CustodyClient({ endpoint: f.appEndpoint, serverPublicKey: f.serverPublicKey, keyFile: c.keyFile, timeoutMs });
}

export function adminClient(f: DaemonFixture, operator = 'tester'): AdminClient {
  return new AdminClient(f.adminEndpoint, { operator, timeoutMs: 10_000 });
}

/** Runs the real `custody` CLI against the fixture's config; `fd3` feeds --passphrase-fd 3. */
export function custody(f: DaemonFixture, args: readonly string[], fd3?: string): Promise<CliResult> {
  return runCli('custody', [...args, '--config', f.configFile], fd3 === undefined ? {} : { fd3 });
}
