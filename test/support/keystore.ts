/** Builds real keystores for tests, with scrypt at N=2^10 (the --unsafe-fast-kdf cost) unless asked otherwise. */
import { randomBytes } from 'node:crypto';
import type { ScryptParams } from '../../src/crypto/envelope.js';
import { createKeystore, type CeremonyDeps, type CustodianSecret } from '../../src/keystore/ceremony.js';
import type { KeystoreBody } from '../../src/keystore/keyfile.js';
import type { Network } from '../../src/types.js';

export const FAST_SCRYPT: ScryptParams = { N: 2 ** 10, r: 8, p: 1 };

export const fastDeps = (now = () => new Date('2026-11-27T12:00:00Z')): CeremonyDeps => ({
  random: (n) => randomBytes(n),
  now,
  scrypt: FAST_SCRYPT,
  unsafeFastKdf: true,
});

/** Passphrases strong enough for the zxcvbn rule, one per custodian name. */
export function passphraseFor(name: string): Buffer {
  return Buffer.from(`${name}-Harbor-Violet-Quartz-${name.length * 7 + 13}`, 'utf8');
}

export function custodians(names: readonly string[]): CustodianSecret[] {
  return names.map((name) => ({ name, passphrase: passphraseFor(name) }));
}

export async function makeKeystore(
  names: readonly string[] = ['ops1', 'ops2', 'ops3'],
  threshold = 2,
  network: Network = 'regtest',
): Promise<{ body: KeystoreBody; entropy: Buffer }> {
  return createKeystore({ network, threshold, custodians: custodians(names) }, fastDeps());
}

/** Every k-element subset of `items`, in order. */
export function subsets<T>(items: readonly T[], k: number): T[][] {
  if (k === 0) return [[]];
  if (items.length < k) return [];
  const [first, ...rest] = items as [T, ...T[]];
  return [...subsets(rest, k - 1).map((s) => [first, ...s]), ...subsets(rest, k)];
}
