/**
 * `custody keystore init|verify|info|rekey|passwd`: the key ceremonies (DESIGN §10, SECURITY.md).
 * Passphrases come from a hidden prompt, or one per line from --passphrase-fd N; never argv or env.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { CustodyError, isCustodyError } from '../errors.js';
import { isNetwork, NETWORKS, type Network } from '../types.js';
import { wipe } from '../crypto/wipe.js';
import { DEFAULT_SCRYPT, MIN_PRODUCTION_SCRYPT_N, type ScryptParams } from '../crypto/envelope.js';
import { readKeystore, writeKeystore, type KeystoreBody } from '../keystore/keyfile.js';
import { changePassphrase, checkCustodianSet, createKeystore, rekeyKeystore, type CeremonyDeps, type CustodianSecret } from '../keystore/ceremony.js';
import { checkPassphraseStrength, preloadStrengthEstimator } from '../keystore/passphrase-policy.js';
import { mnemonicFromEntropy } from '../wallet/mnemonic.js';
import { UnlockSession } from '../keystore/unlock-session.js';
import { configure, parseIntOption, parseList, usage, type CliIo } from './run.js';
import { secretSource, type SecretSource } from './secrets.js';

/** For tests and dev mode only: makes a stolen keystore cheap to attack. */
const UNSAFE_FAST_SCRYPT: ScryptParams = Object.freeze({ N: 2 ** 10, r: 8, p: 1 });

const random = (n: number): Uint8Array => randomBytes(n);

function ceremonyDeps(unsafeFastKdf: boolean): CeremonyDeps {
  return { random, now: () => new Date(), scrypt: unsafeFastKdf ? UNSAFE_FAST_SCRYPT : DEFAULT_SCRYPT, unsafeFastKdf };
}

const fdOption = (): Option =>
  new Option('--passphrase-fd <n>', 'read passphrases from this file descriptor, one per line, in custodian order (automation, tests)').argParser((v) =>
    parseIntOption(v, '--passphrase-fd', 0, 1_000_000),
  );
const unsafeKdfOption = (): Option =>
  new Option('--unsafe-fast-kdf', `TESTS AND DEV MODE ONLY: scrypt N=2^10 instead of 2^17; a stolen keystore would be cheap to crack`);

/** Asks for a new passphrase: hidden, twice, strength-checked; on a terminal a weak one is asked again. */
async function newPassphrase(src: SecretSource, custodian: string, label: string): Promise<Buffer> {
  for (;;) {
    const p = await src.read(label, { confirm: true });
    try {
      await checkPassphraseStrength(p, custodian);
      return p;
    } catch (err) {
      wipe(p);
      if (!src.interactive || !isCustodyError(err, 'WEAK_PASSPHRASE')) throw err;
      src.tell(`${err.message}. Choose another.`);
    }
  }
}

async function collectNew(src: SecretSource, names: readonly string[]): Promise<CustodianSecret[]> {
  const out: CustodianSecret[] = [];
  try {
    for (const [i, name] of names.entries()) {
      src.tell(`\nCustodian "${name}" (${i + 1} of ${names.length}): only ${name} should be at the keyboard now.`);
      out.push({ name, passphrase: await newPassphrase(src, name, `New passphrase for ${name}`) });
    }
    return out;
  } catch (err) {
    wipeAll(out);
    throw err;
  }
}

async function collectCurrent(src: SecretSource, names: readonly string[]): Promise<CustodianSecret[]> {
  const out: CustodianSecret[] = [];
  try {
    for (const name of names) {
      src.tell(`\nCustodian "${name}": only ${name} should be at the keyboard now.`);
      out.push({ name, passphrase: await src.read(`Passphrase for ${name}`) });
    }
    return out;
  } catch (err) {
    wipeAll(out);
    throw err;
  }
}

function wipeAll(secrets: readonly CustodianSecret[]): void {
  for (const s of secrets) wipe(s.passphrase);
}

function requireNames(body: KeystoreBody, names: readonly string[]): void {
  for (const n of names) {
    if (!body.custodians.some((c) => c.name === n)) throw new CustodyError('UNKNOWN_CUSTODIAN', `no custodian named "${n}" in this keystore`, { custodian: n });
  }
  if (new Set(names).size !== names.length) throw usage('--custodians: a custodian is named twice');
}

function hotLine(body: KeystoreBody): string {
  return `[${body.hot.fingerprint}/${body.hot.path}]${body.hot.xpub}`;
}

function weakKdfWarning(body: KeystoreBody): string | undefined {
  const weak = body.custodians.filter((c) => c.share.N < MIN_PRODUCTION_SCRYPT_N).map((c) => c.name);
  return weak.length === 0 ? undefined : `WARNING: weak scrypt parameters (test/dev keystore) for ${weak.join(', ')}: never hold real funds with it`;
}

function showBackup(io: CliIo, entropy: Uint8Array): void {
  io.err('');
  io.err('!!! PAPER BACKUP OF THE HOT SEED !!!');
  io.err('Anyone who sees these words can spend the hot wallet. Write them on paper, check them, store the paper');
  io.err('like cash, and never type them into a networked computer. They are shown this once.');
  const words = mnemonicFromEntropy(entropy);
  try {
    const list = words.toString('ascii').split(' ');
    const lines: string[] = [];
    for (let i = 0; i < list.length; i += 4) {
      lines.push(list.slice(i, i + 4).map((w, j) => `${String(i + j + 1).padStart(2)}. ${w.padEnd(9)}`).join(' '));
    }
    io.err(lines.join('\n'));
  } finally {
    wipe(words);
  }
  io.err('');
}

export function registerKeystoreCommands(program: Command, io: CliIo): void {
  const ks = configure(new Command('keystore'), io).description('Create and maintain the encrypted hot-seed keystore');
  program.addCommand(ks);

  configure(ks.command('init'), io)
    .description('Create a keystore: a new 24-word hot seed whose key is split among custodians (t of n)')
    .requiredOption('--file <path>', 'keystore file to create (refuses to overwrite)')
    .requiredOption('--custodians <names>', 'comma-separated custodian names, e.g. ops1,ops2,ops3')
    .requiredOption('--threshold <t>', 'custodians needed to unlock', (v) => parseIntOption(v, '--threshold', 1, 32))
    .addOption(new Option('--network <net>', 'bitcoin network').choices(NETWORKS).makeOptionMandatory())
    .addOption(fdOption())
    .option('--show-backup', 'show the 24 words once, after a warning, for a paper backup')
    .addOption(unsafeKdfOption())
    .action(async (o: { file: string; custodians: string; threshold: number; network: string; passphraseFd?: number; showBackup?: boolean; unsafeFastKdf?: boolean }) => {
      if (!isNetwork(o.network)) throw usage(`--network: expected one of ${NETWORKS.join(', ')}`);
      const network: Network = o.network;
      const names = parseList(o.custodians, '--custodians');
      checkCustodianSet(names, o.threshold);
      if (existsSync(o.file)) throw new CustodyError('KEYSTORE_EXISTS', `${o.file}: a keystore already exists there; refusing to overwrite it`);
      preloadStrengthEstimator();
      const src = secretSource(o.passphraseFd, '--passphrase-fd');
      src.tell(`Creating a ${o.threshold}-of-${names.length} keystore for ${network}. Each custodian chooses a passphrase of at least 12 characters.`);
      let custodians: CustodianSecret[] = [];
      let entropy: Buffer | undefined;
      try {
        custodians = await collectNew(src, names);
        src.close();
        const created = await createKeystore({ network, threshold: o.threshold, custodians }, ceremonyDeps(o.unsafeFastKdf === true));
        entropy = created.entropy;
        writeKeystore(o.file, created.body, { create: true });
        io.out(`keystore ${created.body.id} written to ${o.file} (mode 0600)`);
        io.out(`network: ${network}`);
        io.out(`custodians: ${names.join(', ')} (${o.threshold} of ${names.length} unlock)`);
        io.out(`hot account: ${hotLine(created.body)}`);
        const weak = weakKdfWarning(created.body);
        if (weak !== undefined) io.err(weak);
        if (o.showBackup === true) showBackup(io, entropy);
      } finally {
        src.close();
        wipe(entropy);
        wipeAll(custodians);
      }
    });

  configure(ks.command('verify'), io)
    .description('Custodian drill: prove that these custodians\' passphrases still unlock the keystore; changes nothing')
    .requiredOption('--file <path>', 'keystore file')
    .requiredOption('--custodians <names>', 'comma-separated custodians taking part')
    .addOption(fdOption())
    .action(async (o: { file: string; custodians: string; passphraseFd?: number }) => {
      const { body } = readKeystore(o.file);
      const names = parseList(o.custodians, '--custodians');
      requireNames(body, names);
      const src = secretSource(o.passphraseFd, '--passphrase-fd');
      // A generous backoff: this is a drill in one process, not an online guessing target.
      const session = new UnlockSession(body, { clock: Date.now, random, progressTimeoutMs: 3_600_000, backoffAfterFailures: 1_000, maxBackoffMs: 1 });
      let bad = 0;
      let proven = false;
      try {
        for (const name of names) {
          src.tell(`\nCustodian "${name}": only ${name} should be at the keyboard now.`);
          const p = await src.read(`Passphrase for ${name}`);
          try {
            const r = await session.submit(name, p);
            io.out(`${name}: passphrase OK`);
            if (r.unlocked) {
              proven = true;
              wipe(r.entropy);
            }
          } catch (err) {
            if (!isCustodyError(err, 'BAD_PASSPHRASE')) throw err;
            bad++;
            io.out(`${name}: WRONG passphrase`);
          } finally {
            wipe(p);
          }
        }
      } finally {
        src.close();
        session.reset();
      }
      if (bad > 0) throw new CustodyError('BAD_PASSPHRASE', `${bad} of ${names.length} passphrase(s) did not open their share`);
      if (proven) io.out(`unlock proven: ${body.threshold} of ${body.custodians.length} custodians decrypted the hot seed; the keystore was not changed`);
      else io.out(`each passphrase opens its share; ${body.threshold} custodians are needed to prove a full unlock`);
    });

  configure(ks.command('info'), io)
    .description('Show the keystore\'s public facts: id, network, custodians, threshold, KDF, hot xpub')
    .requiredOption('--file <path>', 'keystore file')
    .option('--json', 'machine-readable output')
    .action((o: { file: string; json?: boolean }) => {
      const { body, warnings } = readKeystore(o.file);
      const weak = weakKdfWarning(body);
      const all = weak === undefined ? [...warnings] : [...warnings, weak];
      if (o.json === true) {
        io.out(
          JSON.stringify(
            {
              id: body.id,
              network: body.network,
              createdAt: body.createdAt,
              updatedAt: body.updatedAt,
              threshold: body.threshold,
              custodians: body.custodians.map((c) => ({ name: c.name, index: c.index, kdf: { name: c.share.kdf, N: c.share.N, r: c.share.r, p: c.share.p } })),
              hot: { ...body.hot, keyOrigin: hotLine(body) },
              warnings: all,
            },
            null,
            2,
          ),
        );
        return;
      }
      io.out(`keystore:    ${body.id}`);
      io.out(`network:     ${body.network}`);
      io.out(`created:     ${body.createdAt}`);
      io.out(`updated:     ${body.updatedAt}`);
      io.out(`unlock:      ${body.threshold} of ${body.custodians.length} custodians`);
      for (const c of body.custodians) io.out(`  ${c.index}. ${c.name.padEnd(16)} scrypt N=2^${Math.log2(c.share.N)} r=${c.share.r} p=${c.share.p}, AES-256-GCM`);
      io.out(`hot account: ${hotLine(body)}`);
      for (const w of all) io.err(w);
    });

  configure(ks.command('rekey'), io)
    .description('Re-split the keystore to a new custodian set and threshold; needs the threshold of current custodians')
    .requiredOption('--file <path>', 'keystore file (replaced atomically)')
    .requiredOption('--custodians <names>', 'current custodians taking part (at least the current threshold)')
    .requiredOption('--new-custodians <names>', 'the new custodian set, e.g. ops1,ops2,ops3,ops4,ops5')
    .requiredOption('--threshold <t>', 'new threshold', (v) => parseIntOption(v, '--threshold', 1, 32))
    .addOption(new Option('--passphrase-fd <n>', 'read passphrases from this fd: the current custodians\' first, then the new ones\', one per line').argParser((v) => parseIntOption(v, '--passphrase-fd', 0, 1_000_000)))
    .addOption(unsafeKdfOption())
    .action(async (o: { file: string; custodians: string; newCustodians: string; threshold: number; passphraseFd?: number; unsafeFastKdf?: boolean }) => {
      const loaded = readKeystore(o.file);
      const names = parseList(o.custodians, '--custodians');
      requireNames(loaded.body, names);
      if (names.length < loaded.body.threshold) {
        throw new CustodyError('NOT_ENOUGH_CUSTODIANS', `${names.length} custodian(s) given; this keystore needs ${loaded.body.threshold}`);
      }
      const newNames = parseList(o.newCustodians, '--new-custodians');
      checkCustodianSet(newNames, o.threshold);
      preloadStrengthEstimator();
      const src = secretSource(o.passphraseFd, '--passphrase-fd');
      src.tell(`Rekey: ${names.length} current custodian(s) first, then ${newNames.length} new custodian(s) (${o.threshold} of ${newNames.length}).`);
      let current: CustodianSecret[] = [];
      let next: CustodianSecret[] = [];
      try {
        current = await collectCurrent(src, names);
        next = await collectNew(src, newNames);
        src.close();
        const body = await rekeyKeystore(loaded.body, current, { threshold: o.threshold, custodians: next }, ceremonyDeps(o.unsafeFastKdf === true));
        writeKeystore(o.file, body, { replace: loaded.raw });
        io.out(`keystore ${body.id} rekeyed: ${newNames.join(', ')} (${o.threshold} of ${newNames.length} unlock); the old passphrases no longer unlock it`);
        io.out(`hot account: ${hotLine(body)} (unchanged)`);
      } finally {
        src.close();
        wipeAll(current);
        wipeAll(next);
      }
    });

  configure(ks.command('passwd'), io)
    .description('One custodian changes their own passphrase (needs the current one)')
    .requiredOption('--file <path>', 'keystore file (replaced atomically)')
    .requiredOption('--custodian <name>', 'the custodian changing their passphrase')
    .addOption(new Option('--passphrase-fd <n>', 'read the current then the new passphrase from this fd, one per line').argParser((v) => parseIntOption(v, '--passphrase-fd', 0, 1_000_000)))
    .addOption(unsafeKdfOption())
    .action(async (o: { file: string; custodian: string; passphraseFd?: number; unsafeFastKdf?: boolean }) => {
      const loaded = readKeystore(o.file);
      requireNames(loaded.body, [o.custodian]);
      preloadStrengthEstimator();
      const src = secretSource(o.passphraseFd, '--passphrase-fd');
      let old: Buffer | undefined;
      let fresh: Buffer | undefined;
      try {
        old = await src.read(`Current passphrase for ${o.custodian}`);
        fresh = await newPassphrase(src, o.custodian, `New passphrase for ${o.custodian}`);
        src.close();
        const body = await changePassphrase(loaded.body, o.custodian, old, fresh, ceremonyDeps(o.unsafeFastKdf === true));
        writeKeystore(o.file, body, { replace: loaded.raw });
        io.out(`custodian ${o.custodian}: passphrase changed in ${o.file}`);
      } finally {
        src.close();
        wipe(old, fresh);
      }
    });
}
