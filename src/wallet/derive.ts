/**
 * Addresses of a cold descriptor, per (chain, index): output script, address and key paths.
 * The chain-level nodes (account/0 and account/1) are derived once and cached; each address then costs
 * one public child derivation per key (BIP32 §CKDpub), written out here because bip32's `derive()` also
 * builds a full node (chain code, parent fingerprint = an extra HASH160) that an address never needs.
 * Pure and built from plain data, so a worker thread can run it ahead of demand.
 */
import { createHmac } from 'node:crypto';
import { crypto as bcrypto } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { CustodyError } from '../errors.js';
import { BECH32_HRP, type Network } from '../types.js';
import type { ColdDescriptor } from './descriptor.js';
import { bip32, bip32Network } from './keys.js';
import { keyNetworkOf } from './xpub.js';
import { p2wpkhScript, p2wshScript, segwitV0Address, sortedMultisigScript } from './scripts.js';

export type Chain = 0 | 1;

/** One key's share of an output, in descriptor key order: what a PSBT's bip32Derivation records (BIP174). */
export interface KeyDerivation {
  readonly fingerprint: string;
  /** Full path from the master key: `m/48h/0h/0h/2h/0/7`. */
  readonly path: string;
  readonly pubkey: Uint8Array;
}

export interface DerivedOutput {
  readonly chain: Chain;
  readonly index: number;
  /** scriptPubKey. */
  readonly script: Uint8Array;
  readonly address: string;
  /** Full path of the first (for wpkh, the only) key: `m/84h/0h/0h/0/7`. */
  readonly path: string;
  /** The P2WSH witness script (sortedmulti only). */
  readonly witnessScript?: Uint8Array;
  readonly keys: readonly KeyDerivation[];
}

export interface ChainNode {
  readonly publicKey: Uint8Array;
  readonly chainCode: Uint8Array;
}

/** Non-hardened indexes only: an xpub cannot derive hardened children (BIP32). */
export const MAX_INDEX = 0x7fffffff;

export class Deriver {
  readonly descriptor: ColdDescriptor;
  readonly network: Network;
  private readonly hrp: string;
  /** chains[chain][key]: the cached account/chain node of each key. */
  private readonly chains: readonly (readonly ChainNode[])[];
  private readonly origins: readonly string[];

  /** `network` may pick among the test networks for a tpub descriptor (testnet, signet, regtest). */
  constructor(descriptor: ColdDescriptor, network: Network = descriptor.network) {
    if (keyNetworkOf(network) !== keyNetworkOf(descriptor.network)) {
      throw new CustodyError('DESCRIPTOR_NETWORK', `network: ${network} cannot use a descriptor of ${descriptor.network} keys`, { network });
    }
    this.descriptor = descriptor;
    this.network = network;
    this.hrp = BECH32_HRP[network];
    const nodes = descriptor.keys.map((k) => bip32.fromBase58(k.xpub, bip32Network(descriptor.network)));
    this.chains = ([0, 1] as const).map((c) => nodes.map((n) => {
      const child = n.derive(c);
      return { publicKey: child.publicKey, chainCode: child.chainCode };
    }));
    this.origins = descriptor.keys.map((k) => `m${k.originPath === '' ? '' : `/${k.originPath}`}`);
  }

  /** Everything about one output: script, address, witness script and per-key paths. */
  derive(chain: Chain, index: number): DerivedOutput {
    const pubkeys = this.pubkeys(chain, index);
    const keys = pubkeys.map((pubkey, i) => ({
      fingerprint: (this.descriptor.keys[i] as { fingerprint: string }).fingerprint,
      path: `${this.origins[i] as string}/${chain}/${index}`,
      pubkey,
    }));
    const path = `${this.origins[0] as string}/${chain}/${index}`;
    if (this.descriptor.kind === 'wpkh') {
      const script = p2wpkhScript(pubkeys[0] as Uint8Array);
      return { chain, index, script, address: segwitV0Address(script.subarray(2), this.hrp), path, keys };
    }
    const witnessScript = sortedMultisigScript(this.descriptor.threshold, pubkeys);
    const script = p2wshScript(witnessScript);
    return { chain, index, script, address: segwitV0Address(script.subarray(2), this.hrp), path, witnessScript, keys };
  }

  /** The output script alone: what the chain follower watches for. */
  script(chain: Chain, index: number): Uint8Array {
    const pubkeys = this.pubkeys(chain, index);
    return this.descriptor.kind === 'wpkh' ? p2wpkhScript(pubkeys[0] as Uint8Array) : p2wshScript(sortedMultisigScript(this.descriptor.threshold, pubkeys));
  }

  /** Script and address together from one derivation: what the address pool stores for each index. */
  output(chain: Chain, index: number): { script: Uint8Array; address: string } {
    const script = this.script(chain, index);
    return { script, address: segwitV0Address(script.subarray(2), this.hrp) };
  }

  /** The address alone (the hot path of deposit-address issuance). */
  address(chain: Chain, index: number): string {
    const pubkeys = this.pubkeys(chain, index);
    const program = this.descriptor.kind === 'wpkh'
      ? bcrypto.hash160(pubkeys[0] as Uint8Array)
      : bcrypto.sha256(sortedMultisigScript(this.descriptor.threshold, pubkeys));
    return segwitV0Address(program, this.hrp);
  }

  /** Derived public keys for (chain, index), in descriptor key order. */
  pubkeys(chain: Chain, index: number): Uint8Array[] {
    if (chain !== 0 && chain !== 1) throw new RangeError(`chain must be 0 or 1, got ${String(chain)}`);
    if (!Number.isInteger(index) || index < 0 || index > MAX_INDEX) throw new RangeError(`index must be 0 to ${MAX_INDEX}, got ${index}`);
    const nodes = this.chains[chain] as readonly ChainNode[];
    const out = new Array<Uint8Array>(nodes.length);
    for (let i = 0; i < nodes.length; i++) out[i] = publicChildKey(nodes[i] as ChainNode, index);
    return out;
  }
}

/**
 * BIP32 §Public parent key → public child key, non-hardened, returning only the child's public key:
 * I = HMAC-SHA512(c_par, ser_P(K_par) || ser_32(i)); K_i = point(I_L) + K_par.
 */
export function publicChildKey(parent: ChainNode, index: number): Uint8Array {
  const data = new Uint8Array(37);
  data.set(parent.publicKey, 0);
  data[33] = index >>> 24;
  data[34] = (index >>> 16) & 0xff;
  data[35] = (index >>> 8) & 0xff;
  data[36] = index & 0xff;
  const il = createHmac('sha512', parent.chainCode).update(data).digest().subarray(0, 32);
  const child = ecc.isPrivate(il) ? ecc.pointAddScalar(parent.publicKey, il, true) : null;
  if (child === null) {
    // Probability below 2^-127; BIP32 says such an index is skipped. Refuse rather than silently differ.
    throw new CustodyError('DESCRIPTOR_KEY', `index ${index} derives an invalid key (BIP32 §Public parent key → public child key); skip this index`, { index });
  }
  return child;
}
