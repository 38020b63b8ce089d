/**
 * Withdrawal destinations: an address of the daemon's network turned into its output script, with the
 * dust limit for that script type. Accepted: P2PKH, P2SH (base58check, BIP13) and P2WPKH, P2WSH (bech32,
 * BIP173), P2TR (bech32m, BIP350/341). Anything else, or another network's address, is refused by name.
 */
import { address as baddress, initEccLib, networks, type Network as BtcNetwork } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { CustodyError } from '../errors.js';
import type { Network } from '../types.js';

// bitcoinjs-lib 7 decodes P2TR (bech32m) addresses only with an ECC library installed (DESIGN §11).
initEccLib(ecc);

export type DestinationType = 'p2pkh' | 'p2sh' | 'p2wpkh' | 'p2wsh' | 'p2tr';

export interface Destination {
  /** Canonical form: bech32/bech32m in lower case (BIP173 allows either case, never mixed). */
  readonly address: string;
  readonly type: DestinationType;
  readonly script: Uint8Array;
  /** Smallest amount Bitcoin Core relays to this script type (its GetDustThreshold at 3 sat/vB). */
  readonly dustSats: bigint;
}

export function btcNetwork(network: Network): BtcNetwork {
  return network === 'mainnet' ? networks.bitcoin : network === 'regtest' ? networks.regtest : networks.testnet;
}

const DUST: Readonly<Record<DestinationType, bigint>> = { p2pkh: 546n, p2sh: 540n, p2wpkh: 294n, p2wsh: 330n, p2tr: 330n };

export function parseDestination(address: string, network: Network): Destination {
  if (typeof address !== 'string' || address.length < 14 || address.length > 90 || !/^[0-9A-Za-z]+$/.test(address)) {
    throw new CustodyError('ADDRESS_INVALID', 'address: expected a Bitcoin address (14 to 90 letters and digits)', { field: 'address' });
  }
  let script: Uint8Array;
  try {
    script = baddress.toOutputScript(address, btcNetwork(network));
  } catch {
    throw new CustodyError('ADDRESS_INVALID', `address: "${address}" is not a valid ${network} address (P2PKH, P2SH, P2WPKH, P2WSH or P2TR)`, { field: 'address' });
  }
  const type = scriptType(script);
  if (type === null) throw new CustodyError('ADDRESS_INVALID', `address: "${address}" is of a type this daemon does not pay`, { field: 'address' });
  // The same script always has the same address string, so lists and idempotency compare like with like.
  return { address: baddress.fromOutputScript(script, btcNetwork(network)), type, script, dustSats: DUST[type] };
}

export function scriptType(s: Uint8Array): DestinationType | null {
  if (s.length === 25 && s[0] === 0x76 && s[1] === 0xa9 && s[2] === 0x14 && s[23] === 0x88 && s[24] === 0xac) return 'p2pkh';
  if (s.length === 23 && s[0] === 0xa9 && s[1] === 0x14 && s[22] === 0x87) return 'p2sh';
  if (s.length === 22 && s[0] === 0x00 && s[1] === 0x14) return 'p2wpkh';
  if (s.length === 34 && s[0] === 0x00 && s[1] === 0x20) return 'p2wsh';
  if (s.length === 34 && s[0] === 0x51 && s[1] === 0x20) return 'p2tr';
  return null;
}

/** Virtual size of one output paying `script` (BIP141 weight / 4): 8-byte value, length, script. */
export function outputVbytes(script: Uint8Array): number {
  return 8 + 1 + script.length;
}
