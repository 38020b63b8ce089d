/**
 * From the unlocked entropy to the hot account's private node (m/84h/<coin>h/0h), proved against the
 * xpub the keystore recorded at init. Only the account node is kept; the seed, master and intermediate
 * private keys are wiped as soon as the account is derived.
 */
import { CustodyError } from '../errors.js';
import { wipe } from '../crypto/wipe.js';
import { coinType, type Network } from '../types.js';
import { bip32, bip32Network, fingerprintHex, type BIP32Interface } from '../wallet/keys.js';
import { seedFromEntropy } from './seed.js';
import type { KeystoreBody } from './keyfile.js';

/** Overwrites a node's private scalar and chain code in place (bip32 returns its own buffers). */
export function wipeNode(node: BIP32Interface | undefined): void {
  if (node === undefined) return;
  wipe(node.privateKey, node.chainCode);
}

export function hotAccountNode(entropy: Uint8Array, network: Network): { node: BIP32Interface; fingerprint: string } {
  const seed = seedFromEntropy(entropy);
  const chain: BIP32Interface[] = [];
  try {
    const master = bip32.fromSeed(seed, bip32Network(network));
    chain.push(master);
    const purpose = master.deriveHardened(84);
    chain.push(purpose);
    const coin = purpose.deriveHardened(coinType(network));
    chain.push(coin);
    const account = coin.deriveHardened(0);
    return { node: account, fingerprint: fingerprintHex(master) };
  } finally {
    wipe(seed);
    for (const n of chain) wipeNode(n);
  }
}

/** Derives the account and checks it is the one recorded in the keystore; UNLOCK_FAILED otherwise. */
export function provenHotAccount(entropy: Uint8Array, body: Pick<KeystoreBody, 'network' | 'hot'>): BIP32Interface {
  const { node, fingerprint } = hotAccountNode(entropy, body.network);
  if (fingerprint !== body.hot.fingerprint || node.neutered().toBase58() !== body.hot.xpub) {
    wipeNode(node);
    throw new CustodyError('UNLOCK_FAILED', 'the decrypted seed does not match the hot xpub recorded in the keystore; the file was altered', {});
  }
  return node;
}
