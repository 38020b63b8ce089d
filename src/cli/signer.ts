/**
 * `custody-signer`: the offline signer for the air-gapped machine. It must stay network-free: the layer
 * check (.dependency-cruiser.cjs, rule signer-network-free) fails the build if anything it imports reaches
 * chain/, store/, rpc/, keystore/, ZeroMQ, LevelDB or a networking builtin.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { CustodyError, isCustodyError } from '../errors.js';
import { wipe } from '../crypto/wipe.js';
import { writeFileAtomic } from '../files/atomic-write.js';
import { isNetwork, NETWORKS, type Network } from '../types.js';
import { bip32, bip32Network } from '../wallet/keys.js';
import { mnemonicFromEntropy, mnemonicToSeed, normalizeMnemonic } from '../wallet/mnemonic.js';
import { decodePsbt, encodePsbt } from '../wallet/psbt-file.js';
import { combineCosigners, signerAccount, singleKeyDescriptor } from '../signer/setup.js';
import { formatSummary, seedKeys, signSweep, summarize, type SignerPins } from '../signer/offline.js';
import { DEFAULT_MAX_FEE_RATE, DEFAULT_MAX_FEE_SATS, defaultPinsPath, loadPins, makePins, savePins } from '../signer/pins.js';
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
    .option('--hot <key>', 'single key: also pin this descriptor and the hot account key ([fp/84h/…]xpub, from `custody keystore info`)')
    .option('--config <file>', 'where pins are written', defaultPinsPath())
    .action(async (opts: { network: string; multisig: boolean; restore: boolean; mnemonicFd?: string; account: string; hot?: string; config: string }) => {
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
        if (opts.hot !== undefined) {
          if (opts.multisig) throw usage('--hot: a multisig signer pins the combined descriptor with `custody-signer pin` once every cosigner\'s key is known');
          const pins = makePins(network, singleKeyDescriptor(acct), opts.hot);
          savePins(opts.config, pins, false);
          io.err(`pinned in ${opts.config}: this descriptor and hot account ${opts.hot.trim()}`);
        }
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

  configure(program.command('pin'), io)
    .description(
      'Pin, on this machine, the cold descriptor and the hot account key that every PSBT is checked against, and the fee caps. ' +
        'Copy both from the daemon host by hand or on read-only media and compare them with the other custodians.',
    )
    .addOption(new Option('--network <net>', 'mainnet, testnet, signet or regtest').choices([...NETWORKS]).makeOptionMandatory())
    .requiredOption('--descriptor <d>', 'the cold wallet\'s descriptor, with its #checksum')
    .requiredOption('--hot <key>', 'the hot account key with origin, [fp/84h/…]xpub (`custody keystore info` prints it)')
    .option('--max-fee-sats <n>', 'refuse to sign a fee above this', DEFAULT_MAX_FEE_SATS.toString())
    .option('--max-fee-rate <r>', 'refuse to sign a fee rate above this (sat/vB)', String(DEFAULT_MAX_FEE_RATE))
    .option('--config <file>', 'where the pins are written', defaultPinsPath())
    .option('--force', 'replace existing pins', false)
    .action((opts: { network: string; descriptor: string; hot: string; maxFeeSats: string; maxFeeRate: string; config: string; force: boolean }) => {
      const maxFee = parseIntOption(opts.maxFeeSats, '--max-fee-sats', 1, 2_100_000_000_000_000);
      const maxRate = Number(opts.maxFeeRate);
      if (!Number.isFinite(maxRate) || maxRate <= 0) throw usage(`--max-fee-rate: expected a positive number of sat/vB, got "${opts.maxFeeRate}"`);
      const pins = makePins(networkOption(opts.network), opts.descriptor, opts.hot, BigInt(maxFee), maxRate);
      savePins(opts.config, pins, opts.force);
      io.out(`pinned in ${opts.config}:`);
      io.out(`  cold: ${pins.descriptor.canonical} (${describeCold(pins)})`);
      io.out(`  hot:  [${pins.hot.fingerprint}/${pins.hot.originPath}]${pins.hot.xpub}`);
      io.out(`  caps: fee at most ${pins.maxFeeSats} sats and ${pins.maxFeeRate} sat/vB`);
    });

  configure(program.command('show'), io)
    .description('Show what a PSBT does, checked against the pins: inputs, each output proven hot, cold or UNKNOWN, the fee; signs nothing')
    .argument('<file>', 'the PSBT (binary .psbt or base64 text)')
    .option('--config <file>', 'the pins', defaultPinsPath())
    .action((file: string, opts: { config: string }) => {
      const pins = loadPins(opts.config);
      const psbt = decodePsbt(readPsbtFile(file), file);
      io.out(formatSummary(summarize(psbt, pins), pins));
    });

  configure(program.command('sign'), io)
    .description('Check a PSBT against the pins, show it, ask for the mnemonic and consent, and sign the inputs this key owns')
    .argument('<file>', 'the PSBT (binary .psbt or base64 text)')
    .option('-o, --out <file>', 'where to write the signed PSBT (default: next to the input, named with this key\'s fingerprint)')
    .option('--mnemonic-fd <n>', 'read the mnemonic from file descriptor N: line 1 the words, optional line 2 a BIP39 passphrase')
    .option('--config <file>', 'the pins', defaultPinsPath())
    .option('--allow-unknown-outputs', 'sign even though an output pays an address that is neither hot nor cold (dangerous)', false)
    .option('--yes', 'do not ask for consent (for scripted drills; the summary is still printed)', false)
    .action(async (file: string, opts: { out?: string; mnemonicFd?: string; config: string; allowUnknownOutputs: boolean; yes: boolean }) => {
      const pins = loadPins(opts.config);
      const psbt = decodePsbt(readPsbtFile(file), file);
      const summary = summarize(psbt, pins, { allowUnknownOutputs: opts.allowUnknownOutputs });
      io.out(formatSummary(summary, pins));
      if (summary.refusals.length > 0) throw new CustodyError('SIGNER_REFUSED', `not signed: ${summary.refusals.join('; ')}`);
      const fd = opts.mnemonicFd === undefined ? undefined : parseIntOption(opts.mnemonicFd, '--mnemonic-fd', 0, 1_000_000);
      const source = secretSource(fd, '--mnemonic-fd');
      let keys: ReturnType<typeof seedKeys>;
      try {
        const typed = await source.read('BIP39 mnemonic of this cosigner (words separated by spaces)');
        let words: Buffer;
        try {
          words = normalizeMnemonic(typed);
        } finally {
          wipe(typed);
        }
        const passphrase = await optionalPassphrase(source);
        const seed = mnemonicToSeed(words, passphrase);
        wipe(words, passphrase);
        try {
          keys = seedKeys(bip32.fromSeed(seed, bip32Network(pins.network)), pins);
        } finally {
          wipe(seed);
        }
        const n = summary.inputs.length;
        const question = `Sign ${n} input${n === 1 ? '' : 's'} with key ${keys.fingerprint} (${describeCold(pins)})? [y/N]`;
        if (source.interactive) {
          const answer = (await source.readVisible(question)).trim().toLowerCase();
          if (answer !== 'y' && answer !== 'yes') throw new CustodyError('SIGNER_REFUSED', 'not signed: you did not answer y');
        } else if (!opts.yes) {
          throw usage('no terminal to ask for consent; after reading the summary, pass --yes to sign');
        }
      } finally {
        source.close();
      }
      const signed = signSweep(psbt, summary, pins, keys);
      const out = opts.out ?? signedName(file, keys.fingerprint);
      try {
        writeFileAtomic(out, encodePsbt(psbt), { create: true }, 0o644);
      } catch (err) {
        throw new CustodyError('USAGE', `${out}: cannot write the signed PSBT (${(err as { code?: string }).code ?? (err as Error).message}); choose another name with -o`);
      }
      io.err(`signed ${signed} input${signed === 1 ? '' : 's'} with key ${keys.fingerprint}; wrote ${out}`);
      io.err('Carry it back to the daemon host: custody sweep import FILE… (with the other cosigners\' files for a multisig).');
    });

  return program;
}

function describeCold(pins: SignerPins): string {
  return pins.descriptor.kind === 'wpkh' ? 'single key' : `${pins.descriptor.threshold} of ${pins.descriptor.keys.length} multisig`;
}

function readPsbtFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CustodyError('PSBT_INVALID', `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** `sweep-3.psbt` → `sweep-3.signed-<fingerprint>.psbt`. */
function signedName(file: string, fingerprint: string): string {
  const base = file.replace(/\.(psbt|b64|base64|txt)$/i, '');
  return `${base}.signed-${fingerprint}.psbt`;
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

