/**
 * Reading an extended public key from text: BIP32 xpub/tpub as is, SLIP-132 zpub/vpub/Zpub/Vpub rewritten
 * to xpub/tpub (their version bytes only restate the script type, which the descriptor already says),
 * and every private form refused without ever echoing it.
 */
import { CustodyError } from '../errors.js';
import type { Network } from '../types.js';
import { base58CheckDecode, base58CheckEncode } from './base58check.js';
import { bip32, BIP32_MAINNET, BIP32_TESTNET, TPUB_VERSION, XPUB_VERSION, type BIP32Interface } from './keys.js';

export type KeyNetwork = 'mainnet' | 'test';

interface VersionInfo {
  readonly name: string;
  readonly net: KeyNetwork;
  /** Script type SLIP-132 ties the version to; undefined for plain BIP32 xpub/tpub. */
  readonly slip132?: 'p2wpkh' | 'p2wsh';
}

/** SLIP-132 §Registered HD version bytes (public keys we accept). */
const PUBLIC_VERSIONS = new Map<number, VersionInfo>([
  [XPUB_VERSION, { name: 'xpub', net: 'mainnet' }],
  [TPUB_VERSION, { name: 'tpub', net: 'test' }],
  [0x04b24746, { name: 'zpub', net: 'mainnet', slip132: 'p2wpkh' }],
  [0x045f1cf6, { name: 'vpub', net: 'test', slip132: 'p2wpkh' }],
  [0x02aa7ed3, { name: 'Zpub', net: 'mainnet', slip132: 'p2wsh' }],
  [0x02575483, { name: 'Vpub', net: 'test', slip132: 'p2wsh' }],
]);

/** SLIP-132 versions for P2SH-wrapped segwit (ypub, upub, Ypub, Upub): a script type we do not issue. */
const WRAPPED_VERSIONS = new Map<number, string>([
  [0x049d7cb2, 'ypub'],
  [0x044a5262, 'upub'],
  [0x0295b43f, 'Ypub'],
  [0x024289ef, 'Upub'],
]);

export interface ParsedXpub {
  /** Normalised BIP32 serialisation: xpub… on mainnet, tpub… on test networks. */
  readonly xpub: string;
  readonly net: KeyNetwork;
  readonly node: BIP32Interface;
  /** Set when the input used SLIP-132 version bytes. */
  readonly convertedFrom?: { readonly name: string; readonly slip132: 'p2wpkh' | 'p2wsh' };
}

/** `xprv…`, `tprv…`, `zprv…`, … : any four-letter prefix ending in "prv" is a private extended key. */
export function looksLikePrivateExtendedKey(token: string): boolean {
  return /^[a-zA-Z]prv[1-9A-HJ-NP-Za-km-z]/.test(token);
}

/** WIF private key (51 or 52 base58 characters starting 5, K, L, 9 or c). */
export function looksLikeWif(token: string): boolean {
  return /^[5KL9c][1-9A-HJ-NP-Za-km-z]{50,51}$/.test(token);
}

/** A value short enough to quote in an error without reproducing a key. */
export function abbreviate(token: string): string {
  return token.length <= 16 ? token : `${token.slice(0, 12)}…`;
}

export function keyNetworkOf(network: Network): KeyNetwork {
  return network === 'mainnet' ? 'mainnet' : 'test';
}

/** Parses one extended public key; `where` names it in errors ("key 2"). */
export function parseExtendedPublicKey(token: string, where: string): ParsedXpub {
  if (looksLikePrivateExtendedKey(token) || looksLikeWif(token)) {
    throw privateKeyError(where);
  }
  const payload = base58CheckDecode(token);
  if (payload === undefined || payload.length !== 78) {
    throw new CustodyError(
      'DESCRIPTOR_KEY',
      `${where}: "${abbreviate(token)}" is not a valid extended public key (bad Base58Check encoding or length; BIP32 §Serialization format)`,
      { key: where },
    );
  }
  // Byte 45 starts the key data: 0x00 and a 32-byte secret for private keys, whatever the version says.
  if (payload[45] === 0x00) throw privateKeyError(where);
  const version = ((payload[0] as number) << 24) | ((payload[1] as number) << 16) | ((payload[2] as number) << 8) | (payload[3] as number);
  const unsigned = version >>> 0;
  const wrapped = WRAPPED_VERSIONS.get(unsigned);
  if (wrapped !== undefined) {
    throw new CustodyError(
      'DESCRIPTOR_UNSUPPORTED',
      `${where}: a ${wrapped} (SLIP-132 P2SH-wrapped segwit) was given; this daemon issues only native segwit (wpkh, wsh): export the xpub/tpub instead`,
      { key: where, version: wrapped },
    );
  }
  const info = PUBLIC_VERSIONS.get(unsigned);
  if (info === undefined) {
    throw new CustodyError(
      'DESCRIPTOR_KEY',
      `${where}: unknown extended key version 0x${unsigned.toString(16).padStart(8, '0')}; expected xpub or tpub (or SLIP-132 zpub, vpub, Zpub, Vpub)`,
      { key: where },
    );
  }
  let xpub = token;
  if (info.slip132 !== undefined) {
    const rewritten = Uint8Array.from(payload);
    const target = info.net === 'mainnet' ? XPUB_VERSION : TPUB_VERSION;
    rewritten[0] = target >>> 24;
    rewritten[1] = (target >>> 16) & 0xff;
    rewritten[2] = (target >>> 8) & 0xff;
    rewritten[3] = target & 0xff;
    xpub = base58CheckEncode(rewritten);
  }
  let node: BIP32Interface;
  try {
    node = bip32.fromBase58(xpub, info.net === 'mainnet' ? BIP32_MAINNET : BIP32_TESTNET);
  } catch (err) {
    throw new CustodyError(
      'DESCRIPTOR_KEY',
      `${where}: "${abbreviate(token)}" is not a valid extended public key (${err instanceof Error ? err.message : 'invalid'})`,
      { key: where },
    );
  }
  return info.slip132 === undefined
    ? { xpub, net: info.net, node }
    : { xpub, net: info.net, node, convertedFrom: { name: info.name, slip132: info.slip132 } };
}

export function privateKeyError(where: string): CustodyError {
  return new CustodyError(
    'DESCRIPTOR_KEY',
    `${where}: a private key was given where only an extended public key (xpub/tpub) belongs; the daemon must never hold cold private keys. The value is not repeated here: treat it as exposed`,
    { key: where },
  );
}
