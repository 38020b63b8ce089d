/**
 * `custody chain rescan --from HEIGHT` and `custody chain status`: re-walk blocks with the current watch
 * set (addresses added after their blocks were walked, a birthday set too late), with progress and ETA.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { RescanProgress } from '../chain/follower.js';
import type { ChainStatus } from '../service/chain-tracking.js';
import { CustodyError } from '../errors.js';
import { configure, parseIntOption, type CliIo } from './run.js';
import { adminOptions, withAdmin } from './operator.js';

interface ChainOpts {
  admin?: string;
  config?: string;
}

export function progressLine(r: RescanProgress, width = 30): string {
  const total = Math.max(1, r.to - r.from + 1);
  const done = Math.min(total, Math.max(0, r.at - r.from + 1));
  const filled = Math.round((done / total) * width);
  const eta = r.finishedAt !== null ? 'done' : r.etaSeconds === null ? 'ETA --' : `ETA ${formatDuration(r.etaSeconds)}`;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} blocks (height ${Math.max(r.at, r.from - 1)} of ${r.to}), ${r.blocksPerSecond} blocks/s, ${eta}`;
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

export function registerChainCommands(program: Command, io: CliIo): void {
  const chain = configure(program.command('chain'), io).description('The chain follower: status and rescans');

  adminOptions(configure(chain.command('rescan'), io))
    .description('Re-walk blocks from HEIGHT to the tip with the current watched addresses, merging what is found')
    .addOption(new Option('--from <height>', 'first block height to re-walk').argParser((v) => parseIntOption(v, '--from', 0, 100_000_000)).makeOptionMandatory())
    .option('--no-wait', 'start the rescan and return without waiting for it')
    .action(async (o: ChainOpts & { from: number; wait: boolean }) => {
      const range = (await withAdmin(o, (c) => c.call('chain.rescan', { from: o.from }))) as { from: number; to: number };
      io.err(`rescan of blocks ${range.from}..${range.to} started`);
      if (!o.wait) return;
      const tty = process.stderr.isTTY === true;
      let lastPrinted = 0;
      for (;;) {
        await new Promise((r) => setTimeout(r, 250));
        const s = (await withAdmin(o, (c) => c.call('chain.status'))) as { chain: ChainStatus };
        const r = s.chain.rescan;
        if (r === null) throw new CustodyError('INTERNAL', 'the daemon reports no rescan');
        const line = progressLine(r);
        // A redrawn bar on a terminal; one line every 5 s in a log.
        if (tty) process.stderr.write(`\r${line}`);
        else if (r.finishedAt !== null || Date.now() - lastPrinted > 5_000) {
          io.err(line);
          lastPrinted = Date.now();
        }
        if (r.finishedAt !== null) {
          if (tty) process.stderr.write('\n');
          if (r.error !== null) throw new CustodyError('RESCAN_RANGE', `the rescan stopped at height ${r.at}: ${r.error}`);
          io.out(`Rescan of blocks ${r.from}..${r.to} done`);
          return;
        }
      }
    });

  adminOptions(configure(chain.command('status'), io))
    .description('The follower\'s state, height, node height, last error, rescan progress, and balances (JSON)')
    .action(async (o: ChainOpts) => {
      const s = await withAdmin(o, (c) => c.call('chain.status'));
      io.out(JSON.stringify(s, null, 2));
    });
}
