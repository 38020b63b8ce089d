/**
 * The one BIP32 factory of the wallet layer and the extended-key version bytes it understands.
 * bip32 5 / bitcoinjs-lib 7 take Uint8Array and bigint, never Buffer (DESIGN §11).
 */
import { BIP32Factory, type BIP32API, type BIP32Interface } from 'bip32';
import * as ecc from 'tiny-secp256k1';
import type { Network } from '../types.js';

export const bip32: BIP32API = BIP32Factory(ecc);
export type { BIP32Interface };

/** BIP32 §Serialization format: xpub/xprv on mainnet, tpub/tprv on every test network. */
export const XPUB_VERSION = 0x0488b21e;
export const XPRV_VERSION = 0x0488ade4;
export const TPUB_VERSION = 0x043587cf;
export const TPRV_VERSION = 0x04358394;

/** The `network` object bip32 wants: only the version bytes matter for our (de)serialisation. */
export interface Bip32Network {
  wif: number;
  bip32: { public: number; private: number };
}

export const BIP32_MAINNET: Bip32Network = { wif: 0x80, bip32: { public: XPUB_VERSION, private: XPRV_VERSION } };
export const BIP32_TESTNET: Bip32Network = { wif: 0xef, bip32: { public: TPUB_VERSION, private: TPRV_VERSION } };

export function bip32Network(network: Network): Bip32Network {
  return network === 'mainnet' ? BIP32_MAINNET : BIP32_TESTNET;
}

/** Master-key fingerprint as BIP32 defines it (first 4 bytes of HASH160 of the public key), lowercase hex. */
export function fingerprintHex(node: BIP32Interface): string {
  return Buffer.from(node.fingerprint).toString('hex');
}
