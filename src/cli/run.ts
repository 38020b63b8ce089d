/**
 * Shared command-line plumbing: exit codes (DESIGN §10: 0 success, 1 refused or failed, 2 usage),
 * error printing with stable codes and no stack traces, and the output streams.
 */
import { Command, CommanderError } from 'commander';
import { CustodyError, isCustodyError } from '../errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: CliIo = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
};

/** Commander settings every program and sub-command shares: usage errors exit 2, output via io. */
export function configure(cmd: Command, io: CliIo): Command {
  return cmd
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
}

export async function runProgram(program: Command, argv: readonly string[], io: CliIo): Promise<number> {
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    return reportError(err, io);
  }
}

export function reportError(err: unknown, io: CliIo): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
      return EXIT_OK;
    }
    return EXIT_USAGE; // commander has already printed the message
  }
  if (isCustodyError(err)) {
    io.err(`error [${err.code}]: ${err.message}`);
    return err.code === 'USAGE' ? EXIT_USAGE : EXIT_FAILED;
  }
  // Unexpected: say so without a stack trace (which could carry data from the failing frame).
  const message = err instanceof Error ? err.message : String(err);
  io.err(`error [INTERNAL]: ${message}`);
  return EXIT_FAILED;
}

export function usage(message: string): CustodyError {
  return new CustodyError('USAGE', message);
}

/** Parses a comma-separated list option such as `--custodians a,b,c`. */
export function parseList(value: string, option: string): string[] {
  const items = value.split(',').map((s) => s.trim());
  if (items.length === 0 || items.some((s) => s.length === 0)) {
    throw usage(`${option}: expected a comma-separated list of names, got "${value}"`);
  }
  return items;
}

export function parseIntOption(value: string, option: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw usage(`${option}: expected a whole number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw usage(`${option}: expected ${min} to ${max}, got ${n}`);
  return n;
}
