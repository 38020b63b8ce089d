import t from 'tap';
import { randomBytes } from 'node:crypto';
import { combineShares, splitSecret } from '../../../src/crypto/shamir.js';
import { subsets } from '../../support/keystore.js';

for (const [n, k] of [
  [3, 2],
  [5, 3],
  [4, 4],
  [3, 1],
  [1, 1],
] as const) {
  t.test(`${k}-of-${n}: every ${k}-subset recovers the secret, and fewer shares do not`, async (t) => {
    const secret = randomBytes(32); // a Buffer: the wrapper must cope with the library's Uint8Array-only check
    const shares = await splitSecret(secret, n, k);
    t.equal(shares.length, n);
    for (const s of shares) t.equal(s.length, 33);
    for (const subset of subsets(shares, k)) {
      t.same(Buffer.from(await combineShares(subset)), secret);
    }
    if (k > 1) {
      for (const subset of subsets(shares, k - 1)) {
        if (subset.length < 2) continue; // one share alone is never combined at threshold > 1
        t.notSame(Buffer.from(await combineShares(subset)), secret, 'k-1 shares give another value');
      }
    }
  });
}

t.test('invalid split parameters are refused', async (t) => {
  await t.rejects(splitSecret(randomBytes(32), 3, 4), /threshold/);
  await t.rejects(splitSecret(randomBytes(32), 0, 1), /shares/);
  await t.rejects(splitSecret(randomBytes(32), 256, 2), /shares/);
  await t.rejects(splitSecret(new Uint8Array(0), 3, 2), /empty/);
});
