/**
 * Cold sweeps end to end against a real regtest node, a real custodyd and the real custody-signer:
 * deposits to a single-key cold wallet → refill PSBT → signed offline → imported → broadcast → confirmed,
 * the hot balance up by exactly the amount; the same with 2-of-3 multisig (the daemon's own automatic
 * refill proposal), two separate signers, files combined in either order; a PSBT altered to pay someone
 * else is refused by the signer with the reason; another sweep's file and files with one changed byte are
 * refused by import with the reason.
 */
import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Psbt, Transaction } from 'bitcoinjs-lib';
import { readKeystore } from '../../src/keystore/keyfile.js';
import type { SweepView } from '../../src/service/sweeps.js';
import { combineCosigners, signerAccount } from '../../src/signer/setup.js';
import { Deriver } from '../../src/wallet/derive.js';
import { parseDescriptor } from '../../src/wallet/descriptor.js';
import { mnemonicToSeed, normalizeMnemonic } from '../../src/wallet/mnemonic.js';
import { runCli } from '../support/cli.js';
import { adminClient, appClient, custody, makeDaemonFixture, startTestDaemon, type DaemonFixture, type RunningTestDaemon } from '../support/daemon.js';
import { Funder, mine, startRegtestNode, type RegtestNode } from '../support/regtest.js';
import { chainConfig, eventually, unlockDaemon, waitForTip } from '../support/chain.js';
import { REGTEST_WPKH } from '../support/wallets.js';

/** BIP39's published test mnemonics (never real funds). The first is REGTEST_WPKH's key. */
const MNEMONICS = [
  'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about',
  'legal winner thank year wave sausage worth useful legal winner thank yellow',
  'letter advice cage absurd amount doctor acoustic avoid letter advice cage above',
];

let node: RegtestNode;
let funder: Funder;

t.before(async () => {
  node = await startRegtestNode();
  funder = await Funder.create(node);
});
t.teardown(() => node?.stop());

function hotKeyOrigin(f: DaemonFixture): string {
  const { body } = readKeystore(join(f.dir, 'keystore.json'));
  return `[${body.hot.fingerprint}/${body.hot.path}]${body.hot.xpub}`;
}

const signer = (args: readonly string[], mnemonic?: string) => runCli('custody-signer', args, mnemonic === undefined ? {} : { fd3: `${mnemonic}\n` });

interface Setup {
  fixture: DaemonFixture;
  daemon: RunningTestDaemon;
  dir: string;
}

async function setup(t: Test, descriptor: string, extra: string): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'custody-sweep-'));
  const fixture = await makeDaemonFixture({
    clients: { watcher: ['monitor'] },
    poolSize: 64,
    poolWorkers: 0,
    descriptor,
    extraConfig: `${chainConfig(dir, node, (await node.client.getBlockCount()) + 1)}\n${extra}`,
  });
  const daemon = await startTestDaemon(fixture);
  t.teardown(async () => {
    if (!t.passing()) console.error(`custodyd stderr (last 20,000 chars):\n${daemon.stderr().slice(-20_000)}`);
    await daemon.stop();
  });
  await unlockDaemon(fixture);
  return { fixture, daemon, dir };
}

async function balances(f: DaemonFixture): Promise<{ hot: number; cold: number }> {
  const c = appClient(f, 'watcher', 20_000);
  try {
    await waitForTip(c, node);
    const s = await c.status();
    return { hot: s.balances!.hot.confirmedSats, cold: s.balances!.cold.confirmedSats };
  } finally {
    await c.close();
  }
}

async function sweep(f: DaemonFixture, id: string): Promise<SweepView> {
  const admin = adminClient(f);
  try {
    return (await admin.call('sweep.get', { id })) as SweepView;
  } finally {
    await admin.close();
  }
}

async function waitSweep(f: DaemonFixture, id: string, state: string): Promise<SweepView> {
  return eventually(`${id} ${state}`, async () => {
    const s = await sweep(f, id);
    return s.state === state ? s : undefined;
  }, 60_000);
}

/** A copy of `psbt` with output `vout` replaced (the same value), keeping or dropping its derivation claim. */
function withOutput(psbt: Psbt, vout: number, script: Uint8Array, keepClaim: boolean): Psbt {
  const out = new Psbt();
  out.setVersion(psbt.version);
  out.setLocktime(psbt.locktime);
  psbt.txInputs.forEach((i, k) => {
    const d = psbt.data.inputs[k]!;
    out.addInput({ hash: i.hash, index: i.index, sequence: i.sequence!, witnessUtxo: d.witnessUtxo!, nonWitnessUtxo: d.nonWitnessUtxo!, bip32Derivation: d.bip32Derivation!, ...(d.witnessScript ? { witnessScript: d.witnessScript } : {}) });
  });
  psbt.txOutputs.forEach((o, k) => {
    const d = psbt.data.outputs[k]!;
    const claim = d.bip32Derivation !== undefined && (k !== vout || keepClaim) ? { bip32Derivation: d.bip32Derivation } : {};
    out.addOutput({ script: k === vout ? script : o.script, value: o.value, ...claim });
  });
  return out;
}

t.test('single key: deposits → refill PSBT → custody-signer → import → confirmed; hot grows by exactly the amount', async (t) => {
  const { fixture, dir } = await setup(t, REGTEST_WPKH, '[hot]\nminSats = 0\ntargetSats = 400_000_000\nmaxSats = 900_000_000\n[sweeps]\nautoRefill = false');
  const cold = new Deriver(parseDescriptor(REGTEST_WPKH, { network: 'regtest' }), 'regtest');
  await funder.pay([
    { address: cold.address(0, 0), sats: 100_000_000n },
    { address: cold.address(0, 1), sats: 50_000_000n },
    { address: cold.address(0, 2), sats: 30_000_000n },
  ]);
  await mine(node, 1, funder.address);
  const before = await balances(fixture);
  t.equal(before.cold, 180_000_000, 'the deposits are cold coins');

  const created = await custody(fixture, ['sweep', 'create', '--refill', '1.2btc', '--fee-rate', '3']);
  t.equal(created.code, 0, created.stderr);
  const file = /PSBT: (\S+)/.exec(created.stdout)?.[1];
  t.ok(file !== undefined && existsSync(file), `the proposal is in the outbox: ${file}`);
  const id = /^(sw-[0-9a-f]{8})/.exec(created.stdout)?.[1] as string;
  t.ok(existsSync(file!.replace(/\.psbt$/, '.base64')), 'with its base64 twin');
  t.equal(readFileSync(file!.replace(/\.psbt$/, '.base64'), 'utf8').trim(), readFileSync(file!).toString('base64'), 'the twin holds the same PSBT');

  // The custodian's machine: pins, then the summary, then the signature.
  const pins = join(dir, 'signer.json');
  const pinned = await signer(['pin', '--network', 'regtest', '--descriptor', REGTEST_WPKH, '--hot', hotKeyOrigin(fixture), '--config', pins]);
  t.equal(pinned.code, 0, pinned.stderr);
  const shown = await signer(['show', file!, '--config', pins]);
  t.equal(shown.code, 0, shown.stderr);
  t.match(shown.stdout, /hot wallet, verified: derives from the pinned hot xpub at 0\/\d+/);
  t.match(shown.stdout, /cold change, verified: derives from your descriptor at 1\/\d+/);
  t.match(shown.stdout, /1\.20000000 BTC \(120,000,000 sats\)/);
  t.match(shown.stdout, /cold, verified: derives from your descriptor at 0\/0/);
  t.notMatch(shown.stdout, /will NOT sign/);

  const signedFile = join(dir, 'signed.psbt');
  const signed = await signer(['sign', file!, '-o', signedFile, '--mnemonic-fd', '3', '--yes', '--config', pins], MNEMONICS[0]);
  t.equal(signed.code, 0, signed.stderr);
  t.match(signed.stderr, /signed 2 inputs with key 73c5da0a/);
  t.notMatch(signed.stdout + signed.stderr, /abandon/, 'the mnemonic is never printed');

  // A signed file with one changed byte inside its signature: refused, naming the input.
  const bytes = readFileSync(signedFile);
  const sig = Psbt.fromBuffer(bytes).data.inputs[0]!.partialSig![0]!.signature;
  const at = bytes.indexOf(Buffer.from(sig)) + 20;
  const tampered = Buffer.from(bytes);
  tampered[at] = (tampered[at] as number) ^ 0x01;
  writeFileSync(join(dir, 'tampered-sig.psbt'), tampered);
  const badSig = await custody(fixture, ['sweep', 'import', join(dir, 'tampered-sig.psbt')]);
  t.equal(badSig.code, 1);
  t.match(badSig.stderr, /SWEEP_SIGNATURES|input 0: (the signature by .* does not verify|a signature is not DER-encoded)/);
  // A changed byte in the magic: not a PSBT at all.
  const badMagic = Buffer.from(bytes);
  badMagic[1] = 0x00;
  writeFileSync(join(dir, 'tampered-magic.psbt'), badMagic);
  const notPsbt = await custody(fixture, ['sweep', 'import', join(dir, 'tampered-magic.psbt')]);
  t.equal(notPsbt.code, 1);
  t.match(notPsbt.stderr, /tampered-magic\.psbt: neither a binary PSBT .* nor base64 text/);
  // A changed byte in the transaction (an amount): not the transaction the daemon proposed.
  const unsignedBytes = Buffer.from(Psbt.fromBuffer(bytes).data.globalMap.unsignedTx.toBuffer());
  const txAt = bytes.indexOf(unsignedBytes);
  const badTx = Buffer.from(bytes);
  badTx[txAt + unsignedBytes.length - 20] = (badTx[txAt + unsignedBytes.length - 20] as number) ^ 0x01;
  writeFileSync(join(dir, 'tampered-tx.psbt'), badTx);
  const otherTx = await custody(fixture, ['sweep', 'import', join(dir, 'tampered-tx.psbt')]);
  t.equal(otherTx.code, 1);
  t.match(otherTx.stderr, /tampered-tx\.psbt: its transaction [0-9a-f]{64} is not one this daemon proposed/);

  const imported = await custody(fixture, ['sweep', 'import', signedFile]);
  t.equal(imported.code, 0, imported.stderr);
  const txid = /transaction ([0-9a-f]{64}) written and sent/.exec(imported.stdout)?.[1] as string;
  await eventually('the sweep in the mempool', async () => ((await node.client.getRawMempool()).includes(txid) ? true : undefined));
  await mine(node, 1, funder.address);
  const done = await waitSweep(fixture, id, 'confirmed');
  t.equal(done.txid, txid);
  const after = await balances(fixture);
  t.equal(after.hot - before.hot, 120_000_000, 'the hot balance grew by exactly the amount');
  t.equal(before.cold - after.cold, 120_000_000 + done.feeSats, 'the cold balance fell by the amount and the fee');
  const tx = Transaction.fromBuffer(Buffer.from(await node.client.getRawTransaction(txid)));
  t.same(done.inputs.map((i) => i.valueSats), ['100000000', '50000000'], 'the largest coins first, no more than needed');
  t.equal(tx.ins.length, 2);

  // Importing it again, or a file of another sweep mixed in: refused by name.
  const again = await custody(fixture, ['sweep', 'import', signedFile]);
  t.equal(again.code, 1);
  t.match(again.stderr, new RegExp(`sweep ${id} is already imported`));
  const second = await custody(fixture, ['sweep', 'create', '--refill', '10000000', '--fee-rate', '2']);
  t.equal(second.code, 0, second.stderr);
  const file2 = /PSBT: (\S+)/.exec(second.stdout)?.[1] as string;
  const id2 = /^(sw-[0-9a-f]{8})/.exec(second.stdout)?.[1] as string;
  const signed2 = join(dir, 'signed2.psbt');
  t.equal((await signer(['sign', file2, '-o', signed2, '--mnemonic-fd', '3', '--yes', '--config', pins], MNEMONICS[0])).code, 0);
  const mixed = await custody(fixture, ['sweep', 'import', signed2, signedFile]);
  t.equal(mixed.code, 1);
  t.match(mixed.stderr, /signed\.psbt belongs to sweep sw-[0-9a-f]{8}, signed2\.psbt to sw-[0-9a-f]{8}: import one sweep's files at a time/);
  t.equal((await custody(fixture, ['sweep', 'cancel', id2])).code, 0);
  const cancelled = await custody(fixture, ['sweep', 'import', signed2]);
  t.equal(cancelled.code, 1);
  t.match(cancelled.stderr, new RegExp(`sweep ${id2} is cancelled`));

  // A proposal altered to pay someone else: the signer refuses and says why, whether or not the altered
  // output still claims the hot wallet's key path.
  const third = await custody(fixture, ['sweep', 'create', '--refill', '5000000', '--fee-rate', '2']);
  const file3 = /PSBT: (\S+)/.exec(third.stdout)?.[1] as string;
  const proposal = Psbt.fromBuffer(readFileSync(file3));
  const thief = new Deriver(parseDescriptor(REGTEST_WPKH, { network: 'regtest' }), 'regtest').derive(0, 999).script.map((b, i) => (i === 5 ? b ^ 0xff : b));
  for (const keepClaim of [false, true]) {
    const altered = join(dir, `altered-${keepClaim}.psbt`);
    writeFileSync(altered, withOutput(proposal, 0, thief, keepClaim).toBuffer());
    const shownBad = await signer(['show', altered, '--config', pins]);
    t.match(shownBad.stdout, keepClaim ? /UNKNOWN, not yours \(it claims a key path, but the script does not derive from it\)/ : /UNKNOWN, not yours/);
    const refused = await signer(['sign', altered, '--mnemonic-fd', '3', '--yes', '--config', pins], MNEMONICS[0]);
    t.equal(refused.code, 1, 'not signed');
    t.match(refused.stderr, /SIGNER_REFUSED|not signed: output 0 \(bcrt1[a-z0-9]+\): UNKNOWN destination, not yours/);
    t.notOk(existsSync(altered.replace(/\.psbt$/, '.signed-73c5da0a.psbt')), 'no signed file was written');
  }
});

t.test('2-of-3 multisig: the automatic refill proposal, two separate signers, files combined in either order', async (t) => {
  const accounts = MNEMONICS.map((m) => signerAccount(mnemonicToSeed(normalizeMnemonic(Buffer.from(m)), Buffer.alloc(0)), 'regtest', 'multisig', 0));
  const descriptor = combineCosigners(2, accounts.map((a) => a.keyOrigin), 'regtest').canonical;
  // The hot wallet starts empty, below minSats: once cold coins are confirmed the daemon proposes a refill by itself.
  const { fixture, dir } = await setup(t, descriptor, '[hot]\nminSats = 50_000_000\ntargetSats = 150_000_000\nmaxSats = 900_000_000\n[withdrawals]\nmaxAmountSats = 100_000_000\n[withdrawals.fee]\nfallbackSatPerVb = 4');
  const cold = new Deriver(parseDescriptor(descriptor, { network: 'regtest' }), 'regtest');
  await funder.pay([
    { address: cold.address(0, 0), sats: 100_000_000n },
    { address: cold.address(0, 1), sats: 80_000_000n },
  ]);
  await mine(node, 1, funder.address);
  const before = await balances(fixture);
  const proposal = await eventually('the automatic refill proposal', async () => {
    const admin = adminClient(fixture);
    try {
      const { sweeps } = (await admin.call('sweep.list', {})) as { sweeps: SweepView[] };
      return sweeps.find((s) => s.kind === 'refill' && s.state === 'proposed');
    } finally {
      await admin.close();
    }
  }, 60_000);
  t.equal(proposal.amountSats, 150_000_000, 'it refills to hot.targetSats');
  t.equal(proposal.createdBy, 'system');
  t.equal(proposal.inputs.length, 2, 'both cold coins (1.5 BTC needs both)');

  const signedFiles: string[] = [];
  for (const k of [0, 2]) {
    const pins = join(dir, `signer-${k}.json`);
    t.equal((await signer(['pin', '--network', 'regtest', '--descriptor', descriptor, '--hot', hotKeyOrigin(fixture), '--config', pins])).code, 0);
    const out = join(dir, `signed-by-${k}.psbt`);
    const r = await signer(['sign', proposal.files.psbt, '-o', out, '--mnemonic-fd', '3', '--yes', '--config', pins], MNEMONICS[k]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /2 of 3 multisig/);
    t.match(r.stderr, new RegExp(`signed 2 inputs with key ${accounts[k]!.fingerprint}`));
    signedFiles.push(out);
  }
  // The third custodian's mnemonic with the wrong passphrase is another key: refused before any signature.
  const wrong = await signer(['sign', proposal.files.psbt, '-o', join(dir, 'x.psbt'), '--mnemonic-fd', '3', '--yes', '--config', join(dir, 'signer-0.json')], `${MNEMONICS[1]}\nnot-the-passphrase`);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /is not a key of the pinned descriptor/);

  const one = await custody(fixture, ['sweep', 'import', signedFiles[1]!]);
  t.equal(one.code, 1, 'one signature of two is not enough');
  t.match(one.stderr, new RegExp(`input 0 has 1 of 2 \\(signed by \\[${accounts[2]!.fingerprint}\\]`));
  const both = await custody(fixture, ['sweep', 'import', signedFiles[1]!, signedFiles[0]!]);
  t.equal(both.code, 0, both.stderr);
  await mine(node, 1, funder.address);
  const done = await waitSweep(fixture, proposal.id, 'confirmed');
  const after = await balances(fixture);
  t.equal(after.hot - before.hot, 150_000_000, 'the hot balance grew by exactly the amount');
  t.equal(before.cold - after.cold, 150_000_000 + done.feeSats);
  const tx = Transaction.fromBuffer(Buffer.from(await node.client.getRawTransaction(done.txid!)));
  t.equal(tx.ins[0]!.witness.length, 4, 'a 2-of-3 witness: empty, two signatures, the script');
});
