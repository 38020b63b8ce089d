/**
 * Dev mode and the demo, run as a newcomer would (npm run dev / npm run demo run these same files after
 * tsc): the banner comes up, `custody status` answers with the printed config, Ctrl-C (SIGTERM) stops
 * everything and deletes the throwaway dir; mainnet is refused; the scripted tour completes every step.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, cleanEnv, runCli } from '../support/cli.js';

const DEVMODE = join(REPO, 'build', 'dev', 'devmode.js');
const DEMO = join(REPO, 'build', 'dev', 'demo.js');

t.test('npm run dev: the banner, custody status against it, and a clean stop', async (t) => {
  const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, DEVMODE], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.resume();
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const started = Date.now();
  while (!out.includes('Ctrl-C stops') && Date.now() - started < 90_000 && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
  t.match(out, /custody DEV MODE: regtest only/);
  t.match(out, /NOT FOR REAL MONEY/);
  t.comment(`banner after ${Date.now() - started} ms`);
  const config = /config:\s+(\S+)/.exec(out)?.[1] as string;
  const dir = /dir:\s+(\S+)/.exec(out)?.[1] as string;
  t.ok(existsSync(config), 'the printed config exists');
  for (const key of ['app.key', 'payer.key', 'checker.key', 'watcher.key']) t.match(out, new RegExp(key.replace('.', '\\.')), `the banner names ${key}`);
  const status = await runCli('custody', ['status'], { env: { CUSTODY_CONFIG: config } });
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, /wallet:\s+UNLOCKED/, 'unlocked automatically (1 of 1)');
  t.match(status.stdout, /on regtest/);
  t.match(status.stdout, /hot:\s+150000000 sats/, 'with a funded hot wallet');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'stops with exit 0');
  t.notOk(existsSync(dir), 'and deletes its throwaway dir');
});

t.test('dev mode refuses any network but regtest', async (t) => {
  const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, DEVMODE, '--network=mainnet'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 2);
  t.match(err, /dev mode runs on regtest only; refusing --network=mainnet/);
});

t.test('npm run demo completes every step of the tour', async (t) => {
  const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, DEMO], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 0, err);
  for (const step of [
    /== 1\. An app asks for a deposit address/,
    /event deposit\.seen: .*"amountSats":25000000/,
    /event deposit\.confirmed:/,
    /wd-[0-9a-f]{12} confirmed/,
    /wd-[0-9a-f]{12} is pending_approval/,
    /custody withdrawals approve wd-/,
    /event payout\.signed \(kind sweep\)/,
    /hot wallet, verified: derives from the pinned hot xpub/,
    /sw-[0-9a-f]{8} confirmed in [0-9a-f]{64}: 20000000 sats now in the hot wallet/,
    /audit chain OK/,
    /The tour is done: 7 steps/,
  ]) t.match(out, step);
});
