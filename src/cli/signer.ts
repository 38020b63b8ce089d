/**
 * `custody-signer`: the offline signer for the air-gapped machine. It must stay network-free: the layer
 * check (.dependency-cruiser.cjs, rule signer-network-free) fails the build if anything it imports reaches
 * chain/, store/, rpc/, keystore/, ZeroMQ, LevelDB or a networking builtin.
 */
import { randomBytes } from 'node:crypto';
import { Command, Option } from 'commander';
import { isCustodyError } from '../errors.js';
import { wipe } from '../crypto/wipe.js';
import { isNetwork, NETWORKS, type Network } from '../types.js';
import { mnemonicFromEntropy, mnemonicToSeed, normalizeMnemonic } from '../wallet/mnemonic.js';
import { combineCosigners, signerAccount, singleKeyDescriptor } from '../signer/setup.js';
import { configure, parseIntOption, processIo, runProgram, usage, type CliIo } from './run.js';
import { secretSource, type SecretSource } from './secrets.js';

export const VERSION = '0.1.0';

const HARDENED_MAX = 0x7fffffff;

export function buildSignerProgram(io: CliIo): Command {
  const program = configure(new Command('custody-signer'), io)
    .description('Offline signer for cold-wallet PSBTs. Run it only on an air-gapped machine.')
    .version(VERSION);

  configure(program.command('init'), io)
    .description(
      'Create (or restore) this signer\'s BIP39 mnemonic and print its key-origin xpub; for a single-key wallet also the ' +
        'wpkh() descriptor with its BIP380 checksum. A new mnemonic is shown once, on stderr, for the paper backup.',
    )
    .addOption(new Option('--network <net>', 'mainnet, testnet, signet or regtest').choices([...NETWORKS]).default('mainnet'))
    .option('--multisig', 'export the BIP48 multisig key m/48h/<coin>h/<account>h/2h instead of BIP84', false)
    .option('--restore', 'type an existing mnemonic (and optional BIP39 passphrase) instead of generating one', false)
    .option('--mnemonic-fd <n>', 'read the mnemonic from file descriptor N: line 1 the words, optional line 2 a BIP39 passphrase')
    .option('--account <n>', 'account number (hardened)', '0')
    .action(async (opts: { network: string; multisig: boolean; restore: boolean; mnemonicFd?: string; account: string }) => {
      const network = networkOption(opts.network);
      const account = parseIntOption(opts.account, '--account', 0, HARDENED_MAX);
      const fd = opts.mnemonicFd === undefined ? undefined : parseIntOption(opts.mnemonicFd, '--mnemonic-fd', 0, 1_000_000);
      const restoring = opts.restore || fd !== undefined;
      let mnemonic: Buffer;
      let passphrase: Buffer = Buffer.alloc(0);
      if (restoring) {
        const source = secretSource(fd, '--mnemonic-fd');
        const typed = await source.read('BIP39 mnemonic (words separated by spaces)');
        try {
          mnemonic = normalizeMnemonic(typed);
        } finally {
          wipe(typed);
        }
        passphrase = await optionalPassphrase(source);
      } else {
        const entropy = randomBytes(32); // 256 bits from the OS CSPRNG: 24 words (BIP39)
        mnemonic = mnemonicFromEntropy(entropy);
        wipe(entropy);
        showBackup(mnemonic, io);
      }
      const seed = mnemonicToSeed(mnemonic, passphrase);
      wipe(mnemonic, passphrase);
      try {
        const acct = signerAccount(seed, network, opts.multisig ? 'multisig' : 'single', account);
        io.out(acct.keyOrigin);
        if (!opts.multisig) io.out(singleKeyDescriptor(acct));
        io.err(`signer ready: master fingerprint ${acct.fingerprint}, account ${acct.path} on ${network}${restoring ? ' (restored)' : ''}`);
      } finally {
        wipe(seed);
      }
    });

  configure(program.command('descriptor'), io)
    .description('Combine cosigners\' key-origin xpubs ([fp/48h/…]xpub…) into wsh(sortedmulti(M,…/<0;1>/*,…))#checksum.')
    .requiredOption('--multisig <m>', 'signatures required (M of the N keys given)')
    .addOption(new Option('--network <net>', 'check the keys belong to this network').choices([...NETWORKS]))
    .argument('<keys...>', 'each cosigner\'s [fingerprint/path]xpub')
    .action((keys: string[], opts: { multisig: string; network?: string }) => {
      const threshold = parseIntOption(opts.multisig, '--multisig', 1, 20);
      const desc = combineCosigners(threshold, keys, opts.network === undefined ? undefined : networkOption(opts.network));
      for (const w of desc.warnings) io.err(`warning: ${w}`);
      io.out(desc.canonical);
    });

  return program;
}

function networkOption(value: string): Network {
  if (!isNetwork(value)) throw usage(`--network: expected one of ${NETWORKS.join(', ')}, got "${value}"`);
  return value;
}

/** Line 2 of --mnemonic-fd, or a prompt on a terminal; absent means no passphrase. */
async function optionalPassphrase(source: SecretSource): Promise<Buffer> {
  try {
    return await source.read('BIP39 passphrase (empty for none)');
  } catch (err) {
    if (!source.interactive && isCustodyError(err, 'USAGE')) return Buffer.alloc(0);
    throw err;
  }
}

/** The one deliberate display of a secret: a new mnemonic, on stderr only, for the paper backup. */
function showBackup(mnemonic: Buffer, io: CliIo): void {
  const words = mnemonic.toString('utf8').split(' ');
  const rows = words.map((w, i) => `  ${String(i + 1).padStart(2, ' ')}. ${w}`);
  const bar = '!'.repeat(72);
  io.err(
    [
      bar,
      '!! NEW COLD-WALLET MNEMONIC: WRITE THESE WORDS ON PAPER NOW, IN ORDER.',
      '!! They are shown this once and never stored or printed again. Anyone who',
      '!! sees them can spend the cold funds; losing them (and every copy) loses',
      '!! the funds. Never type them into a networked computer or a photo.',
      bar,
      ...rows,
      bar,
    ].join('\n'),
  );
}

export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  return runProgram(buildSignerProgram(io), argv, io);
}

