/** `custody addresses …`: derive the cold wallet's addresses from its descriptor, no daemon needed. */
import { Command, Option } from 'commander';
import { isNetwork, NETWORKS, type Network } from '../types.js';
import { parseDescriptor } from '../wallet/descriptor.js';
import { Deriver, MAX_INDEX, type Chain } from '../wallet/derive.js';
import { configure, parseIntOption, usage, type CliIo } from './run.js';
import { CustodyError } from '../errors.js';
import { configPath, loadConfig } from '../config/load.js';
import { Store } from '../store/db.js';
import { DepositAddresses } from '../service/deposits.js';
import { AtomicWriteError, writeFileAtomic } from '../files/atomic-write.js';

/** More than any operator checks by eye, few enough to print in about a minute. */
export const MAX_ADDRESS_COUNT = 100_000;

export function registerAddressCommands(program: Command, io: CliIo): void {
  const group = configure(program.command('addresses'), io).description('Derive cold-wallet addresses from the output descriptor.');
  configure(group.command('derive'), io)
    .description(
      'Print the addresses of a descriptor, one a line. The network defaults from the keys (xpub: mainnet, tpub: testnet); ' +
        'give --network signet or regtest for those (regtest addresses start bcrt1).',
    )
    .requiredOption('--descriptor <d>', 'wpkh(…/<0;1>/*) or wsh(sortedmulti(…)), with #checksum if you have it; a receive/change pair may be given on two lines')
    .addOption(new Option('--network <net>', 'mainnet, testnet, signet or regtest').choices([...NETWORKS]))
    .addOption(new Option('--chain <c>', '0 = receive (deposits), 1 = change').choices(['0', '1']).default('0'))
    .option('--from <i>', 'first index', '0')
    .option('--count <n>', `how many (1 to ${MAX_ADDRESS_COUNT})`, '20')
    .action((opts: { descriptor: string; network?: string; chain: string; from: string; count: string }) => {
      let network: Network | undefined;
      if (opts.network !== undefined) {
        if (!isNetwork(opts.network)) throw usage(`--network: expected one of ${NETWORKS.join(', ')}, got "${opts.network}"`);
        network = opts.network;
      }
      const from = parseIntOption(opts.from, '--from', 0, MAX_INDEX);
      const count = parseIntOption(opts.count, '--count', 1, MAX_ADDRESS_COUNT);
      if (from + count - 1 > MAX_INDEX) throw usage(`--from ${from} --count ${count}: the last index would pass ${MAX_INDEX} (BIP32 non-hardened limit)`);
      const chain = Number(opts.chain) as Chain;
      const desc = parseDescriptor(opts.descriptor, network === undefined ? {} : { network });
      for (const w of desc.warnings) io.err(`warning: ${w}`);
      const deriver = new Deriver(desc, network ?? desc.network);
      const lines = new Array<string>(count);
      for (let i = 0; i < count; i++) lines[i] = deriver.address(chain, from + i);
      io.out(`${lines.join('\n')}\n`);
    });
  registerAddressExport(group, io);
}

/**
 * `custody addresses export --config F [--out FILE]`: the recovery manifest (descriptor, highest index
 * issued and used, the gap limit to restore with, index → account), read straight from the data dir.
 * The daemon holds the data dir's lock while it runs; stop it first (or use its admin socket, later).
 */
export function registerAddressExport(group: Command, io: CliIo): void {
  configure(group.command('export'), io)
    .description('Write the recovery manifest: what a wallet restoring the cold seed needs to find every deposit')
    .option('--config <file>', 'daemon configuration (default: $CUSTODY_CONFIG)')
    .option('--out <file>', 'write here (mode 0600, refuses to overwrite) instead of stdout')
    .action(async (opts: { config?: string; out?: string }) => {
      const config = loadConfig(configPath(opts.config));
      const descriptor = parseDescriptor(config.cold.descriptor, { network: config.network, requireChecksum: true });
      const store = await Store.open(config.dataDir, { network: config.network, descriptorChecksum: descriptor.checksum });
      try {
        const deposits = await DepositAddresses.open(store, descriptor, { pool: { size: 16, batch: 16, workers: 0 }, gapWarning: config.addresses.gapWarning });
        const manifest = await deposits.manifest();
        await deposits.close();
        const text = `${JSON.stringify({ format: 'custody-recovery-manifest', version: 1, createdAt: new Date().toISOString(), ...manifest }, null, 2)}\n`;
        if (opts.out === undefined) {
          io.out(text);
          return;
        }
        try {
          writeFileAtomic(opts.out, Buffer.from(text, 'utf8'), { create: true });
        } catch (err) {
          const code = err instanceof AtomicWriteError ? err.code : 'EIO';
          throw new CustodyError(code === 'EEXIST' ? 'USAGE' : 'STORE_IO', `${opts.out}: ${code === 'EEXIST' ? 'exists already; refusing to overwrite it' : `cannot write (${code})`}`);
        }
        io.out(`recovery manifest written to ${opts.out}: ${manifest.accounts.length} addresses, restore with a gap limit of at least ${manifest.gapLimit}`);
      } finally {
        await store.close();
      }
    });
}
