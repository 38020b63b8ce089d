import t from 'tap';
import { checksumMatches, descriptorChecksum, withChecksum } from '../../../src/wallet/checksum.js';
import { fixture } from '../../support/vectors.js';

interface Vectors {
  valid: { descriptor: string; from: string }[];
  withoutChecksum: string[];
  invalid: { descriptor: string; why: string }[];
}
const v = fixture<Vectors>('bip380-checksums.json');

/** BIP380's descsum_check: SCRIPT#CHECKSUM with exactly 8 checksum characters. */
function descsumCheck(s: string): boolean {
  if (s.length < 9 || s[s.length - 9] !== '#') return false;
  return checksumMatches(s.slice(0, -9), s.slice(-8));
}

t.test('descriptorChecksum reproduces every published BIP380 checksum', async (t) => {
  for (const { descriptor, from } of v.valid) {
    const [body, sum] = descriptor.split('#') as [string, string];
    t.equal(descriptorChecksum(body), sum, from);
    t.equal(withChecksum(body), descriptor, `withChecksum: ${from}`);
    t.ok(descsumCheck(descriptor), `descsum_check accepts: ${from}`);
  }
});

t.test('withChecksum replaces a wrong checksum and adds a missing one', async (t) => {
  t.equal(withChecksum('raw(deadbeef)'), 'raw(deadbeef)#89f8spxm');
  t.equal(withChecksum('raw(deadbeef)#aaaaaaaa'), 'raw(deadbeef)#89f8spxm');
  for (const d of v.withoutChecksum) t.equal(withChecksum(d).split('#')[0], d);
});

t.test('BIP380 invalid checksum vectors are all rejected', async (t) => {
  for (const { descriptor, why } of v.invalid) t.notOk(descsumCheck(descriptor), why);
});

t.test('a character outside the BIP380 set cannot be checksummed', async (t) => {
  t.throws(() => descriptorChecksum('raw(Ü)'), RangeError);
});
