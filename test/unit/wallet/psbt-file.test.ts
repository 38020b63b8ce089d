import t, { type Test } from 'tap';
import { decodePsbt, encodePsbt, MAX_PSBT_BYTES, PSBT_MAGIC } from '../../../src/wallet/psbt-file.js';
import { isCustodyError } from '../../../src/errors.js';
import { fixture, hex, thrown, unhex } from '../../support/vectors.js';

interface Case {
  hex: string;
  base64: string;
}
interface Vectors {
  invalid: (Case & { reason: string })[];
  valid: (Case & { description: string })[];
  failsSignerChecks: (Case & { description: string })[];
}
const v = fixture<Vectors>('bip174-vectors.json');

const WHERE = 'sweep-7.psbt';
const text = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

/** The PSBT_INVALID error `content` is refused with, failing the test if it is not refused that way. */
function refusal(t: Test, content: Uint8Array, label: string): string {
  const err = thrown(() => decodePsbt(content, WHERE));
  if (!isCustodyError(err, 'PSBT_INVALID')) {
    t.fail(`${label}: not refused with PSBT_INVALID (${err === undefined ? 'accepted' : String(err)})`);
    return '';
  }
  t.ok(err.message.startsWith(`${WHERE}: `), `${label}: the message names the file`);
  return err.message;
}

/**
 * Why each BIP174 invalid vector must be refused, as the parser words it (bitcoinjs-lib 7.0.5 / bip174 3.0.1,
 * or decodePsbt's own magic check). Pinning the reason catches a vector refused for another cause, such as a
 * truncated copy; after a library upgrade that rewords a message, update the pattern, not the vector.
 */
const WHY: Record<string, RegExp> = {
  'Network transaction, not PSBT format': /magic bytes 70736274ff/,
  'PSBT missing outputs': /Unexpected End of PSBT/,
  'PSBT where one input has a filled scriptSig in the unsigned tx': /ScriptSigs are not empty/,
  'PSBT where inputs and outputs are provided but without an unsigned tx': /UNSIGNED_TX/,
  'PSBT with duplicate keys in an input': /Keys must be unique for each input/,
  'PSBT with invalid global transaction typed key': /Invalid global key: 0001/,
  'PSBT with invalid input witness utxo typed key': /Invalid input key: 0100/,
  'PSBT with invalid pubkey length for input partial signature typed key': /invalid pubkey in key 0x0203b1/,
  'PSBT with invalid redeemscript typed key': /Invalid input key: 0400/,
  'PSBT with invalid witnessscript typed key': /Invalid input key: 0500/,
  'PSBT with invalid pubkey in input BIP 32 derivation paths typed key': /invalid pubkey in key 0x0603b1/,
  'PSBT with invalid non-witness utxo typed key': /Invalid input key: 0000/,
  'PSBT with invalid final scriptsig typed key': /Invalid input key: 0700/,
  'PSBT with invalid final script witness typed key': /Invalid input key: 0800/,
  'PSBT with invalid pubkey in output BIP 32 derivation paths typed key': /invalid pubkey in key 0x0203a9/,
  'PSBT with invalid input sighash type typed key': /Invalid input key: 0300/,
  'PSBT with invalid output redeemScript typed key': /Invalid output key: 0000/,
  'PSBT with invalid output witnessScript typed key': /Invalid output key: 0100/,
  'PSBT with unsigned tx serialized with witness serialization format': /superfluous witness data/,
};

/**
 * bitcoinjs-lib does not give back the published bytes of a PSBT without inputs: its Psbt constructor sets the
 * transaction version to 2 when there are no inputs, and bip174's serializer writes an empty input map for
 * zero inputs. Every other valid vector re-encodes byte for byte.
 */
const NOT_CANONICAL_IN_BITCOINJS = new Set([
  'PSBT with global unsigned tx that has 0 inputs and 0 outputs',
  'PSBT with 0 inputs',
]);

t.test('the fixture is a faithful copy: every vector\'s hex and base64 are the same bytes', async (t) => {
  t.equal(v.invalid.length, 19, 'BIP174 lists 19 invalid PSBTs');
  t.equal(v.valid.length, 10, 'BIP174 lists 10 valid PSBTs');
  t.equal(v.failsSignerChecks.length, 4, 'BIP174 lists 4 PSBTs that fail signer checks');
  for (const c of [...v.invalid, ...v.valid, ...v.failsSignerChecks]) {
    t.equal(Buffer.from(c.base64, 'base64').toString('base64'), c.base64, 'canonical base64');
    t.equal(hex(Buffer.from(c.base64, 'base64')), c.hex);
  }
  t.same(Object.keys(WHY).sort(), v.invalid.map((c) => c.reason).sort(), 'a refusal reason for each invalid vector');
});

t.test('every BIP174 valid vector parses, as base64 text, as binary and with whitespace around the text', async (t) => {
  for (const c of [...v.valid, ...v.failsSignerChecks]) {
    const label = c.description;
    const fromText = decodePsbt(text(c.base64), WHERE);
    const fromBinary = decodePsbt(unhex(c.hex), WHERE);
    const padded = decodePsbt(text(`\n  ${c.base64}\r\n\n`), WHERE);
    t.equal(fromText.inputCount, fromText.txInputs.length, `${label}: one input map per input of the unsigned tx`);
    t.equal(fromText.data.outputs.length, fromText.txOutputs.length, `${label}: one output map per output`);
    if (NOT_CANONICAL_IN_BITCOINJS.has(label)) {
      t.equal(fromText.inputCount, 0, `${label}: no inputs`);
    } else {
      t.equal(fromText.toBase64(), c.base64, `${label}: re-encodes to the published base64`);
      t.equal(hex(encodePsbt(fromBinary)), c.hex, `${label}: the binary form re-encodes to the published bytes`);
      t.equal(padded.toBase64(), c.base64, `${label}: whitespace around the text changes nothing`);
    }
    t.equal(fromBinary.toBase64(), fromText.toBase64(), `${label}: binary and text decode alike`);
  }
});

t.test('the valid vectors decode to what the BIP describes', async (t) => {
  const byName = (start: string) => {
    const c = v.valid.find((x) => x.description.startsWith(start));
    if (c === undefined) throw new Error(`no valid vector starting ${start}`);
    return decodePsbt(text(c.base64), WHERE);
  };
  const finalized = byName('PSBT with one P2PKH input and one P2SH-P2WPKH input. First input is signed');
  t.equal(finalized.inputCount, 2);
  t.ok(finalized.data.inputs[0]?.finalScriptSig, 'first input carries its final scriptSig');
  t.equal(finalized.data.inputs[1]?.redeemScript?.length, 22, 'second input carries its P2WPKH redeemScript');
  t.equal(byName('PSBT with one P2PKH input which has a non-final scriptSig').data.inputs[0]?.sighashType, 1, 'SIGHASH_ALL');
  t.equal(byName('PSBT with one P2SH-P2WSH input').data.inputs[0]?.partialSig?.length, 1, 'one signature');
  t.equal(byName('PSBT with one P2WSH input').data.globalMap.globalXpub?.length, 2, 'two global xpubs');
  t.equal(byName('PSBT with `PSBT_GLOBAL_XPUB`').data.globalMap.globalXpub?.length, 1, 'one global xpub');
  t.equal(byName('PSBT with unknown types').data.inputs[0]?.unknownKeyVals?.length, 1, 'unknown input field kept');
  const noInputs = byName('PSBT with 0 inputs');
  t.same(noInputs.txOutputs.map((o) => o.value), [99_999_699n, 100_000_000n]);
  t.equal(noInputs.locktime, 1_257_139);
});

t.test('every BIP174 invalid vector is refused with PSBT_INVALID, as base64 text and as binary', async (t) => {
  for (const c of v.invalid) {
    const why = WHY[c.reason] ?? /^$/;
    t.match(refusal(t, text(c.base64), `${c.reason} (base64)`), why, `${c.reason} (base64): refused for its reason`);
    const binary = refusal(t, unhex(c.hex), `${c.reason} (binary)`);
    // The network transaction is no PSBT at all: as binary it is refused for not being base64 text either.
    t.match(binary, c.hex.startsWith('70736274ff') ? why : /neither a binary PSBT/, `${c.reason} (binary): refused for its reason`);
  }
});

t.test('files that are no PSBT are refused, naming the file', async (t) => {
  const sample = v.valid[0];
  if (sample === undefined) throw new Error('no valid vector');
  t.match(refusal(t, new Uint8Array(0), 'empty file'), /the file is empty/);
  t.match(refusal(t, text(' \n\t\r\n'), 'only whitespace'), /the file is empty/);
  t.match(refusal(t, text('this is not a psbt!'), 'non-base64 garbage'), /neither a binary PSBT/);
  t.match(refusal(t, text(sample.base64.slice(0, -1)), 'base64 of the wrong length'), /neither a binary PSBT/);
  t.match(refusal(t, text(Buffer.from('hello, world').toString('base64')), 'base64 of no PSBT'), /does not decode to a PSBT/);
  t.match(refusal(t, Uint8Array.of(0x00, 0xff, 0x80, 0x01), 'binary garbage'), /neither a binary PSBT/);
  const big = new Uint8Array(MAX_PSBT_BYTES + 1);
  big.set(PSBT_MAGIC);
  t.match(refusal(t, big, 'a file over the limit'), new RegExp(`${MAX_PSBT_BYTES + 1} bytes is more than`));
  t.ok(refusal(t, unhex(sample.hex).subarray(0, 40), 'a truncated binary PSBT').length > 0);
});

t.test('one changed byte in the magic is refused, in either form', async (t) => {
  const sample = v.valid[0];
  if (sample === undefined) throw new Error('no valid vector');
  for (let i = 0; i < PSBT_MAGIC.length; i++) {
    const bytes = unhex(sample.hex);
    bytes[i] = (bytes[i] ?? 0) ^ 0x01;
    t.match(refusal(t, bytes, `binary, magic byte ${i} changed`), /neither a binary PSBT/);
    t.match(refusal(t, text(Buffer.from(bytes).toString('base64')), `base64, magic byte ${i} changed`), /does not decode to a PSBT/);
  }
});
