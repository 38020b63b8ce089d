/**
 * `npm run bench [-- --quick] [-- --json FILE] [-- --only SUBSTRING]`: every benchmark of the project in
 * one table (DESIGN §9). Entries live in bench/*.bench.ts, one file per area.
 */
import { writeFileSync } from 'node:fs';
import { formatTable, runBench, type Bench, type BenchResult } from './harness.js';
import { keystoreBenches } from './keystore.bench.js';
import { walletBenches } from './wallet.bench.js';
import { addressBenches } from './addresses.bench.js';
import { chainBenches } from './chain.bench.js';
import { rpcBenches } from './rpc.bench.js';
import { withdrawalBenches } from './withdrawals.bench.js';

const ALL: readonly Bench[] = [...keystoreBenches, ...walletBenches, ...addressBenches, ...rpcBenches, ...chainBenches, ...withdrawalBenches];

async function main(argv: readonly string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const jsonAt = argv.indexOf('--json');
  const jsonFile = jsonAt >= 0 ? argv[jsonAt + 1] : undefined;
  if (jsonAt >= 0 && jsonFile === undefined) {
    process.stderr.write('--json needs a file name\n');
    return 2;
  }
  const onlyAt = argv.indexOf('--only');
  const only = onlyAt >= 0 ? argv[onlyAt + 1] : undefined;
  const selected = ALL.filter((b) => only === undefined || b.name.includes(only));
  const results: BenchResult[] = [];
  for (const b of selected) {
    process.stderr.write(`bench: ${b.name} ...\n`);
    results.push(await runBench(b, quick));
  }
  process.stdout.write(`${formatTable(results)}\n`);
  if (jsonFile !== undefined) {
    const out = results.map(({ runs: _runs, met: _met, ...rest }) => rest);
    writeFileSync(jsonFile, `${JSON.stringify(out, null, 2)}\n`);
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
