/**
 * Setting up a cold signer: the account key a cosigner exports, and the descriptors built from them.
 * Single key: BIP84 m/84h/<coin>h/<account>h, `wpkh(…)`. Multisig: BIP48 m/48h/<coin>h/<account>h/2h
 * (script type 2 = native P2WSH), `wsh(sortedmulti(M,…))`. No I/O here: the CLI reads and prints.
 */
import { CustodyError } from '../errors.js';
import { coinType, type Network } from '../types.js';
import { formatDescriptor, parseDescriptor, withChecksum, type ColdDescriptor } from '../wallet/descriptor.js';
import { accountFromSeed, type HotAccount } from '../wallet/hot-account.js';

export type SignerKind = 'single' | 'multisig';

/** BIP48 §Script type: 2 is native segwit multisig (P2WSH). */
const BIP48_P2WSH = 2;

export function signerAccount(seed: Uint8Array, network: Network, kind: SignerKind, account: number): HotAccount {
  const coin = coinType(network);
  return accountFromSeed(seed, network, kind === 'single' ? [84, coin, account] : [48, coin, account, BIP48_P2WSH]);
}

/** `wpkh([fp/84h/…]xpub/<0;1>/*)#checksum` for a single-key signer. */
export function singleKeyDescriptor(account: HotAccount): string {
  return withChecksum(formatDescriptor('wpkh', 1, [{ fingerprint: account.fingerprint, originPath: account.path, xpub: account.xpub }]));
}

/**
 * Combines cosigners' key expressions (`[fp/48h/…]xpub`, optionally ending in `/<0;1>/*`) into a
 * validated `wsh(sortedmulti(M,…))` descriptor; every rule of parseDescriptor applies.
 */
export function combineCosigners(threshold: number, keyExprs: readonly string[], network?: Network): ColdDescriptor {
  if (keyExprs.length === 0) throw new CustodyError('DESCRIPTOR_SYNTAX', 'cosigners: no keys given; pass each cosigner\'s [fingerprint/path]xpub');
  const keys = keyExprs.map((k) => {
    const trimmed = k.trim();
    return trimmed.endsWith('/<0;1>/*') ? trimmed : `${trimmed}/<0;1>/*`;
  });
  const text = `wsh(sortedmulti(${threshold},${keys.join(',')}))`;
  return parseDescriptor(text, network === undefined ? {} : { network });
}
