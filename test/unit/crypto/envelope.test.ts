import t from 'tap';
import { randomBytes, scryptSync } from 'node:crypto';
import { aeadOpen, aeadSeal, checkScryptParams, deriveKey, openWithPassphrase, sealWithPassphrase } from '../../../src/crypto/envelope.js';

const random = (n: number): Uint8Array => randomBytes(n);
const FAST = { N: 1024, r: 8, p: 1 };

t.test('scrypt matches RFC 7914 §12 test vector 2 (password / NaCl, N=1024, r=8, p=16)', async (t) => {
  const key = await deriveKey(Buffer.from('password'), Buffer.from('NaCl'), { N: 1024, r: 8, p: 16 });
  // The RFC gives 64 bytes; deriveKey takes the first 32 (PBKDF2 output is a prefix of a longer one).
  t.equal(key.toString('hex'), 'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162');
});

t.test('deriveKey raises maxmem enough for the default N=2^17, r=8 (Node refuses it by default)', async (t) => {
  t.throws(() => scryptSync('x', 'salt', 32, { N: 2 ** 17, r: 8, p: 1 }), 'node default maxmem refuses');
  const key = await deriveKey(Buffer.from('x'), Buffer.from('salt'), { N: 2 ** 17, r: 8, p: 1 });
  t.equal(key.length, 32);
});

t.test('a sealed secret opens only with the same passphrase and associated data', async (t) => {
  const secret = randomBytes(33);
  const aad = Buffer.from('keystore-id/ops1/1');
  const sealed = await sealWithPassphrase(secret, Buffer.from('right passphrase!'), aad, random, FAST);
  t.same(await openWithPassphrase(sealed, Buffer.from('right passphrase!'), aad), secret);
  t.equal(await openWithPassphrase(sealed, Buffer.from('wrong passphrase!'), aad), undefined, 'wrong passphrase');
  t.equal(await openWithPassphrase(sealed, Buffer.from('right passphrase!'), Buffer.from('keystore-id/ops2/2')), undefined, 'other custodian AAD');
  const ct = Buffer.from(sealed.ciphertext, 'base64');
  for (const i of [0, ct.length - 1]) {
    const bad = Buffer.from(ct);
    bad[i] = (bad[i] as number) ^ 1;
    t.equal(await openWithPassphrase({ ...sealed, ciphertext: bad.toString('base64') }, Buffer.from('right passphrase!'), aad), undefined, `flipped byte ${i}`);
  }
  t.equal(await openWithPassphrase({ ...sealed, salt: Buffer.alloc(16).toString('base64') }, Buffer.from('right passphrase!'), aad), undefined, 'other salt');
});

t.test('each seal uses a fresh salt and nonce', async (t) => {
  const a = await sealWithPassphrase(Buffer.from('s'), Buffer.from('p'), Buffer.alloc(0), random, FAST);
  const b = await sealWithPassphrase(Buffer.from('s'), Buffer.from('p'), Buffer.alloc(0), random, FAST);
  t.not(a.salt, b.salt);
  t.not(a.nonce, b.nonce);
  t.not(a.ciphertext, b.ciphertext);
});

t.test('AES-GCM rejects short input and wrong nonce lengths without throwing', async (t) => {
  const key = randomBytes(32);
  const nonce = randomBytes(12);
  const sealed = aeadSeal(key, nonce, Buffer.from('hello'), Buffer.from('ad'));
  t.same(aeadOpen(key, nonce, sealed, Buffer.from('ad')), Buffer.from('hello'));
  t.equal(aeadOpen(key, nonce, sealed.subarray(0, 10), Buffer.from('ad')), undefined);
  t.equal(aeadOpen(key, randomBytes(11), sealed, Buffer.from('ad')), undefined);
  t.equal(aeadOpen(randomBytes(31), nonce, sealed, Buffer.from('ad')), undefined);
});

t.test('scrypt parameters a hostile file could ask for are refused', async (t) => {
  t.equal(checkScryptParams({ N: 2 ** 17, r: 8, p: 1 }), undefined);
  for (const p of [
    { N: 2 ** 23, r: 8, p: 1 },
    { N: 1000, r: 8, p: 1 },
    { N: 2 ** 9, r: 8, p: 1 },
    { N: 2 ** 17, r: 0, p: 1 },
    { N: 2 ** 17, r: 64, p: 1 },
    { N: 2 ** 17, r: 8, p: 17 },
  ]) {
    t.match(checkScryptParams(p), /scrypt/, JSON.stringify(p));
    await t.rejects(deriveKey(Buffer.from('x'), Buffer.from('y'), p));
  }
});
