/**
 * The hot wallet's single BIP84 account (m/84h/<coin>h/0h), from its BIP39 seed.
 * The keystore records the key-origin xpub so the daemon can derive hot addresses without the seed.
 */
import { coinType, type Network } from '../types.js';
import { bip32, bip32Network, fingerprintHex } from './keys.js';

export interface HotAccount {
  /** Master-key fingerprint, 8 lowercase hex (BIP32 §Key identifiers). */
  readonly fingerprint: string;
  /** Account path below the master key, `h` for hardened: `84h/1h/0h`. */
  readonly path: string;
  /** Account xpub (mainnet) or tpub (test networks), BIP32 serialisation. */
  readonly xpub: string;
  /** BIP380 key expression with origin: `[fingerprint/84h/1h/0h]tpub…`. */
  readonly keyOrigin: string;
}

/** BIP84 §Public key derivation: m / 84' / coin_type' / account'. */
export function hotAccountFromSeed(seed: Uint8Array, network: Network, account = 0): HotAccount {
  return accountFromSeed(seed, network, [84, coinType(network), account]);
}

/** The account key at the given all-hardened path (e.g. BIP48's 48h/coin/account/2h) and its key origin. */
export function accountFromSeed(seed: Uint8Array, network: Network, hardenedPath: readonly number[]): HotAccount {
  const master = bip32.fromSeed(seed, bip32Network(network));
  let node = master;
  for (const step of hardenedPath) node = node.deriveHardened(step);
  const path = hardenedPath.map((s) => `${s}h`).join('/');
  const xpub = node.neutered().toBase58();
  const fingerprint = fingerprintHex(master);
  return { fingerprint, path, xpub, keyOrigin: `[${fingerprint}/${path}]${xpub}` };
}
