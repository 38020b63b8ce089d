/**
 * `custody audit verify` and `custody audit tail`: check and read the hash-chained audit log.
 *
 * The work is done by audit/log.ts (verifyAudit, tailAudit); this file only finds the data and
 * prints. Where the data comes from is one small interface, AuditSource: the running daemon's admin
 * socket (which calls the same verifyAudit on its open store), or with `--offline` (or no daemon) the
 * data dir opened directly.
 */
import { Command } from 'commander';
import { configure, parseIntOption, type CliIo } from './run.js';
import { CustodyError, isCustodyError } from '../errors.js';
import { configPath, loadConfig } from '../config/load.js';
import { parseDescriptor } from '../wallet/descriptor.js';
import { Store } from '../store/db.js';
import { existsSync } from 'node:fs';
import { AdminClient } from '../client/admin-client.js';
import { ipcPath } from '../rpc/admin-server.js';
import { tailAudit, verifyAudit, type AuditRecord, type AuditVerifyResult } from '../audit/log.js';

/** More than a screenful, small enough to hold in memory at the 16 KiB per-record limit. */
export const MAX_TAIL = 10_000;

export interface AuditSource {
  verify(): Promise<AuditVerifyResult>;
  tail(n: number): Promise<AuditRecord[]>;
}

/**
 * Opens the data dir named by the configuration exactly as `custody addresses export` does, runs one
 * query, and closes it. While custodyd runs it holds the data dir's lock, and this says so.
 */
export function offlineSource(configFlag: string | undefined): AuditSource {
  const withStore = async <T>(fn: (store: Store) => Promise<T>): Promise<T> => {
    const config = loadConfig(configPath(configFlag));
    const descriptor = parseDescriptor(config.cold.descriptor, { network: config.network, requireChecksum: true });
    let store: Store;
    try {
      store = await Store.open(config.dataDir, { network: config.network, descriptorChecksum: descriptor.checksum });
    } catch (err) {
      if (isCustodyError(err, 'STORE_LOCKED')) {
        throw new CustodyError(
          'STORE_LOCKED',
          `${config.dataDir}: custodyd holds the data dir; stop the daemon to read the audit log offline, or give the configuration its [admin] endpoint`,
          { dir: config.dataDir },
        );
      }
      if (isCustodyError(err)) throw err;
      // Store.open reads the meta rows after opening LevelDB; a corrupted table can fail that read
      // with a LEVEL_CORRUPTION error that is not a CustodyError. Name it instead of reporting INTERNAL.
      const cause = (err as { cause?: { message?: unknown } }).cause?.message;
      const message = typeof cause === 'string' ? cause : err instanceof Error ? err.message : String(err);
      throw new CustodyError('STORE_IO', `${config.dataDir}: the data dir could not be read (${message}); the audit log cannot be checked`, { dir: config.dataDir });
    }
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  };
  return {
    verify: () => withStore((store) => verifyAudit(store)),
    tail: (n) => withStore((store) => tailAudit(store, n)),
  };
}

/** Asks the running daemon over its admin socket (the daemon holds the data dir while it runs). */
export function adminSource(endpoint: string): AuditSource {
  const ask = async <T>(method: string, params?: Record<string, unknown>): Promise<T> => {
    const client = new AdminClient(endpoint);
    try {
      return (await client.call(method, params)) as T;
    } finally {
      await client.close();
    }
  };
  return {
    verify: () => ask<AuditVerifyResult>('audit.verify'),
    tail: async (n) => (await ask<{ records: AuditRecord[] }>('audit.tail', { n: Math.min(n, 1000) })).records,
  };
}

/** The running daemon's admin socket when there is one, else the data dir; `--offline` forces the latter. */
function sourceFor(opts: { config?: string; offline?: boolean }): AuditSource {
  if (opts.offline !== true) {
    const config = loadConfig(configPath(opts.config));
    if (config.admin !== undefined && existsSync(ipcPath(config.admin.endpoint))) return adminSource(config.admin.endpoint);
  }
  return offlineSource(opts.config);
}

/** C1 controls, line/paragraph separators and bidi overrides survive JSON.stringify and can disguise a terminal line. */
const TERMINAL_UNSAFE = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function terminalSafe(s: string): string {
  return s.replace(TERMINAL_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function formatRecord(r: AuditRecord): string {
  return terminalSafe(`${r.time} ${r.seq} ${r.actor} ${r.action} ${JSON.stringify(r.details)}`);
}

export function registerAuditCommands(program: Command, io: CliIo): void {
  const group = configure(program.command('audit'), io).description('Check and read the hash-chained audit log.');

  configure(group.command('verify'), io)
    .description('Recompute the audit chain from its first record; exit 0 if it holds, 1 naming the first broken record')
    .option('--config <file>', 'daemon configuration (default: $CUSTODY_CONFIG)')
    .option('--offline', 'read the data dir directly (custodyd must be stopped) instead of asking the running daemon')
    .action(async (opts: { config?: string; offline?: boolean }) => {
      const result = await sourceFor(opts).verify();
      if (!result.ok) {
        throw new CustodyError('AUDIT_BROKEN', `audit chain BROKEN at record ${result.brokenAt}: ${result.reason} (${result.count} records before it verified)`, {
          brokenAt: result.brokenAt,
        });
      }
      io.out(`audit chain OK: ${result.count} records, head seq ${result.head.seq} hash ${result.head.hash}`);
    });

  configure(group.command('tail'), io)
    .description('Print the newest audit records, oldest first: time, seq, actor, action, details')
    .option('--config <file>', 'daemon configuration (default: $CUSTODY_CONFIG)')
    .option('-n, --lines <n>', `how many records (1 to ${MAX_TAIL})`, '20')
    .option('--json', 'one JSON record a line, with prevHash and hash')
    .option('--offline', 'read the data dir directly (custodyd must be stopped) instead of asking the running daemon')
    .action(async (opts: { config?: string; lines: string; json?: boolean; offline?: boolean }) => {
      const n = parseIntOption(opts.lines, '-n', 1, MAX_TAIL);
      const records = await sourceFor(opts).tail(n);
      if (records.length === 0) {
        if (!opts.json) io.err('the audit log is empty');
        return;
      }
      io.out(records.map((r) => (opts.json ? terminalSafe(JSON.stringify(r)) : formatRecord(r))).join('\n'));
    });
}
