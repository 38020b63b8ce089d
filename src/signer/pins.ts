/**
 * The signer's own configuration: the cold descriptor and the hot account key it proves outputs
 * against, and its fee caps. Written once at `custody-signer pin` (or `init --hot`) on the air-gapped
 * machine; a PSBT can never change it. Public data, but its integrity is the signer's whole defence,
 * so it is written atomically, 0600, and refused if others can write it.
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CustodyError } from '../errors.js';
import { writeFileAtomic } from '../files/atomic-write.js';
import { isNetwork, type Network } from '../types.js';
import { parseDescriptor, type ColdKey } from '../wallet/descriptor.js';
import type { SignerPins } from './offline.js';

export const DEFAULT_MAX_FEE_SATS = 1_000_000n;
export const DEFAULT_MAX_FEE_RATE = 200;

interface PinsFile {
  readonly version: 1;
  readonly network: Network;
  readonly descriptor: string;
  readonly hot: string;
  readonly maxFeeSats: string;
  readonly maxFeeRate: number;
}

export function defaultPinsPath(): string {
  return join(homedir(), '.config', 'custody-signer', 'signer.json');
}

/** Builds and checks pins: the descriptor (with checksum) and the hot key must both be of `network`. */
export function makePins(network: Network, descriptor: string, hot: string, maxFeeSats = DEFAULT_MAX_FEE_SATS, maxFeeRate = DEFAULT_MAX_FEE_RATE): SignerPins {
  const desc = parseDescriptor(descriptor, { network, requireChecksum: true });
  const hotKey = parseHotKey(hot, network);
  // The xpub alone decides: past depth 1 an origin fingerprint is an unchecked label, and the same key
  // written under another fingerprint is still the cold key (comparing both let that through).
  if (desc.keys.some((k) => k.xpub === hotKey.xpub)) {
    throw new CustodyError('SIGNER_CONFIG', 'hot: the hot key is one of the cold descriptor\'s keys; the hot wallet must have its own seed');
  }
  if (maxFeeSats <= 0n) throw new CustodyError('SIGNER_CONFIG', `maxFeeSats: ${maxFeeSats} must be positive`);
  if (!(maxFeeRate > 0)) throw new CustodyError('SIGNER_CONFIG', `maxFeeRate: ${maxFeeRate} must be positive`);
  return { network, descriptor: desc, hot: hotKey, maxFeeSats, maxFeeRate };
}

/** `[fp/84h/1h/0h]tpub…` (what `custody keystore info` prints as "hot account"). */
function parseHotKey(text: string, network: Network): ColdKey {
  const trimmed = text.trim().replace(/\/<0;1>\/\*$/, '');
  const desc = parseDescriptor(`wpkh(${trimmed}/<0;1>/*)`, { network });
  const key = desc.keys[0];
  if (key === undefined) throw new CustodyError('SIGNER_CONFIG', 'hot: no key');
  return key;
}

export function savePins(path: string, pins: SignerPins, overwrite: boolean): void {
  const body: PinsFile = {
    version: 1,
    network: pins.network,
    descriptor: pins.descriptor.canonical,
    hot: `[${pins.hot.fingerprint}/${pins.hot.originPath}]${pins.hot.xpub}`,
    maxFeeSats: pins.maxFeeSats.toString(),
    maxFeeRate: pins.maxFeeRate,
  };
  try {
    writeFileAtomic(path, Buffer.from(`${JSON.stringify(body, null, 2)}\n`), overwrite ? { overwrite: true } : { create: true });
  } catch (err) {
    if ((err as { code?: string }).code === 'EEXIST') throw new CustodyError('SIGNER_CONFIG', `${path} exists: pins are changed only deliberately (pass --force to replace them)`);
    throw new CustodyError('SIGNER_CONFIG', `${path}: cannot write (${(err as Error).message})`);
  }
}

export function loadPins(path: string): SignerPins {
  let text: string;
  try {
    const st = statSync(path);
    if ((st.mode & 0o022) !== 0) throw new CustodyError('SIGNER_CONFIG', `${path}: writable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it and check its contents`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof CustodyError) throw err;
    throw new CustodyError('SIGNER_CONFIG', `${path}: no signer configuration (run custody-signer pin first): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let raw: Partial<PinsFile>;
  try {
    raw = JSON.parse(text) as Partial<PinsFile>;
  } catch {
    throw new CustodyError('SIGNER_CONFIG', `${path}: not JSON`);
  }
  // JSON.parse also returns null, arrays and scalars: reading `version` off null would throw a TypeError.
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new CustodyError('SIGNER_CONFIG', `${path}: not a JSON object`);
  if (raw.version !== 1) throw new CustodyError('SIGNER_CONFIG', `${path}: version ${String(raw.version)} is not 1`);
  if (typeof raw.network !== 'string' || !isNetwork(raw.network)) throw new CustodyError('SIGNER_CONFIG', `${path}: network ${String(raw.network)} is not a network`);
  if (typeof raw.descriptor !== 'string' || typeof raw.hot !== 'string') throw new CustodyError('SIGNER_CONFIG', `${path}: descriptor and hot must be strings`);
  if (typeof raw.maxFeeSats !== 'string' || !/^[1-9][0-9]{0,15}$/.test(raw.maxFeeSats)) throw new CustodyError('SIGNER_CONFIG', `${path}: maxFeeSats must be a positive integer string`);
  if (typeof raw.maxFeeRate !== 'number') throw new CustodyError('SIGNER_CONFIG', `${path}: maxFeeRate must be a number`);
  return makePins(raw.network, raw.descriptor, raw.hot, BigInt(raw.maxFeeSats), raw.maxFeeRate);
}
