/** Shared value types. Money is always integer satoshis as bigint inside the daemon. */

export type Sats = bigint;

export const NETWORKS = ['mainnet', 'testnet', 'signet', 'regtest'] as const;
export type Network = (typeof NETWORKS)[number];

export function isNetwork(value: unknown): value is Network {
  return typeof value === 'string' && (NETWORKS as readonly string[]).includes(value);
}

/** SLIP-44 coin type used in BIP44/48/84 paths: 0 for mainnet, 1 for every test network. */
export function coinType(network: Network): 0 | 1 {
  return network === 'mainnet' ? 0 : 1;
}

/** Bech32 human-readable parts (BIP173); signet shares testnet's. */
export const BECH32_HRP: Readonly<Record<Network, string>> = {
  mainnet: 'bc',
  testnet: 'tb',
  signet: 'tb',
  regtest: 'bcrt',
};

export type Txid = string;
export interface Outpoint {
  readonly txid: Txid;
  readonly vout: number;
}

/** Injected clock, so that pure modules never read the wall clock themselves. */
export type Clock = () => number;

/** Injected randomness: returns `n` fresh bytes from a CSPRNG. */
export type RandomBytes = (n: number) => Uint8Array;
