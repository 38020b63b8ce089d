/**
 * `custodyd --config FILE`: runs the daemon in the foreground (under systemd or similar). It starts
 * locked. SIGTERM/SIGINT: finish writes in flight, lock, close, exit 0. SIGHUP: reload the client list.
 */
import { Command } from 'commander';
import { configPath, loadConfig } from '../config/load.js';
import { startDaemon, VERSION, type RunningDaemon } from '../main.js';
import { configure, processIo, reportError, EXIT_OK, type CliIo } from './run.js';

export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const program = configure(new Command('custodyd'), io)
    .description('The custody daemon. Starts locked; custodians unlock it with `custody unlock`.')
    .version(VERSION)
    .option('--config <file>', 'configuration file (default: $CUSTODY_CONFIG)');
  let file: string;
  let daemon: RunningDaemon | undefined;
  // Signal handlers go in before anything starts: a SIGTERM that arrives while starting (or right
  // after the "started" line) must still stop the daemon cleanly, not kill it with the default action.
  let requested: string | undefined;
  let onSignal: (signal: string) => void = (signal) => {
    requested ??= signal;
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGHUP', () => {
    try {
      if (daemon !== undefined) void daemon.reloadClients(loadConfig(file)).catch((err: unknown) => reportError(err, io));
    } catch (err) {
      // A bad edit keeps the old client list: say so and keep serving.
      reportError(err, io);
    }
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    file = configPath(program.opts<{ config?: string }>().config);
    const config = loadConfig(file);
    const log = (line: string): void => io.err(`custodyd: ${line}`);
    daemon = await startDaemon(config, log, faultInjection(process.env['CUSTODY_FAULT_INJECT'], log));
    const e = daemon.endpoints;
    log(`started ${VERSION} on ${config.network}, wallet LOCKED (${daemon.services.keystore.body.threshold} of ${daemon.services.keystore.body.custodians.length} custodians unlock)`);
    log(`app rpc: ${e.app ?? 'off'}; events: ${e.events ?? 'off'}; admin: ${e.admin ?? 'off'}${e.adminTcp === null ? '' : ` and ${e.adminTcp} (CURVE, operators)`}; metrics: ${e.metrics ?? 'off'}`);
    watchEventLoop(log);
  } catch (err) {
    process.removeAllListeners('SIGHUP');
    return reportError(err, io);
  }

  const running = daemon;
  return new Promise<number>((resolve) => {
    onSignal = (signal: string): void => {
      process.removeAllListeners('SIGHUP');
      // Safety net: if something outside our control keeps the event loop alive, still exit.
      setTimeout(() => process.exit(EXIT_OK), 10_000).unref();
      void running
        .stop(signal)
        .then(() => resolve(EXIT_OK))
        .catch((err: unknown) => resolve(reportError(err, io)));
    };
    if (requested !== undefined) onSignal(requested);
  });
}

/**
 * Says when the event loop was blocked for more than 2 s: every request, block and signature waits
 * behind it, and without this line a stall looks like a lost message from outside.
 */
function watchEventLoop(log: (line: string) => void): void {
  let last = Date.now();
  setInterval(() => {
    const now = Date.now();
    if (now - last > 3_000) log(`warning: the event loop was blocked for ${now - last - 1_000} ms`);
    last = now;
  }, 1_000).unref();
}

/**
 * CUSTODY_FAULT_INJECT=STEP[:N[:throw]] (tests only): SIGKILL this process the Nth time (default 1st) the
 * payout path reaches STEP (after-approval, after-sign, after-persist, after-broadcast), or with `throw`,
 * fail that step with an error instead. A crash or failure at an exact point cannot be caused from outside
 * reliably; this is the named stand-in for it.
 */
function faultInjection(spec: string | undefined, log: (line: string) => void): { fault?: (step: string) => void } {
  if (spec === undefined || spec === '') return {};
  const [step, nth, mode] = spec.split(':');
  let left = Number(nth ?? '1');
  log(`warning: CUSTODY_FAULT_INJECT=${spec}: this process will ${mode === 'throw' ? 'fail' : 'kill itself'} at ${step} (tests only)`);
  return {
    fault: (at) => {
      if (at !== step || --left !== 0) return;
      if (mode === 'throw') throw new Error(`injected fault at ${at}`);
      process.kill(process.pid, 'SIGKILL');
    },
  };
}
