/**
 * The keystore file: format, integrity check, and atomic writes.
 *
 * One JSON document, mode 0600. A SHA-256 checksum over the canonical body catches accidental damage
 * on every read (info included, no passphrase needed). Deliberate tampering with a recomputed checksum
 * is caught at unlock: the seed's AES-GCM associated data binds the whole public header (id, network,
 * threshold, custodians, hot xpub), and each share's binds the keystore id, custodian name and index.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { AtomicWriteError, writeFileAtomic } from '../files/atomic-write.js';
import { z } from 'zod';
import { CustodyError } from '../errors.js';
import { NETWORKS, type Network } from '../types.js';
import { checkScryptParams, NONCE_BYTES, SALT_BYTES, TAG_BYTES, type Sealed } from '../crypto/envelope.js';

export const KEYSTORE_FORMAT = 'custody-keystore';
export const KEYSTORE_VERSION = 1;
export const ENTROPY_BYTES = 32; // 24 BIP39 words
export const DATA_KEY_BYTES = 32;
export const SHARE_BYTES = DATA_KEY_BYTES + 1; // Shamir share: y bytes + x coordinate
export const MAX_CUSTODIANS = 32;
export const CUSTODIAN_NAME = /^[a-z0-9][a-z0-9._-]{0,31}$/;

export interface CustodianEntry {
  readonly name: string;
  readonly index: number; // 1-based position, bound into the share's associated data
  readonly share: Sealed;
}

export interface KeystoreBody {
  readonly format: typeof KEYSTORE_FORMAT;
  readonly version: typeof KEYSTORE_VERSION;
  readonly id: string;
  readonly network: Network;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly hot: { readonly fingerprint: string; readonly path: string; readonly xpub: string };
  readonly threshold: number;
  readonly custodians: readonly CustodianEntry[];
  readonly seed: { readonly cipher: 'aes-256-gcm'; readonly nonce: string; readonly ciphertext: string };
}

const b64 = (bytes: number, what: string) =>
  z.string().refine((s) => /^[A-Za-z0-9+/]*={0,2}$/.test(s) && s.length % 4 === 0 && Buffer.from(s, 'base64').length === bytes, {
    message: `${what}: expected ${bytes} bytes of base64`,
  });

const sealedSchema = z
  .strictObject({
    kdf: z.literal('scrypt'),
    N: z.number().int(),
    r: z.number().int(),
    p: z.number().int(),
    salt: b64(SALT_BYTES, 'salt'),
    nonce: b64(NONCE_BYTES, 'nonce'),
    ciphertext: b64(SHARE_BYTES + TAG_BYTES, 'share ciphertext'),
  })
  .superRefine((s, ctx) => {
    const problem = checkScryptParams(s);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, path: ['N'] });
  });

const bodySchema = z
  .strictObject({
    format: z.literal(KEYSTORE_FORMAT),
    version: z.literal(KEYSTORE_VERSION),
    id: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'expected a UUID'),
    network: z.enum(NETWORKS),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime(),
    hot: z.strictObject({
      fingerprint: z.string().regex(/^[0-9a-f]{8}$/, 'expected 8 hex digits'),
      path: z.string().regex(/^84h\/[01]h\/0h$/, 'expected 84h/<coin>h/0h'),
      xpub: z.string().regex(/^[tx]pub[1-9A-HJ-NP-Za-km-z]{100,112}$/, 'expected an xpub or tpub'),
    }),
    threshold: z.number().int().min(1).max(MAX_CUSTODIANS),
    custodians: z
      .array(z.strictObject({ name: z.string().regex(CUSTODIAN_NAME, 'expected a custodian name'), index: z.number().int(), share: sealedSchema }))
      .min(1)
      .max(MAX_CUSTODIANS),
    seed: z.strictObject({
      cipher: z.literal('aes-256-gcm'),
      nonce: b64(NONCE_BYTES, 'nonce'),
      ciphertext: b64(ENTROPY_BYTES + TAG_BYTES, 'seed ciphertext'),
    }),
  })
  .superRefine((body, ctx) => {
    if (body.threshold > body.custodians.length) {
      ctx.addIssue({ code: 'custom', path: ['threshold'], message: `threshold ${body.threshold} exceeds ${body.custodians.length} custodians` });
    }
    const names = new Set<string>();
    body.custodians.forEach((c, i) => {
      if (c.index !== i + 1) ctx.addIssue({ code: 'custom', path: ['custodians', i, 'index'], message: `expected index ${i + 1}` });
      if (names.has(c.name)) ctx.addIssue({ code: 'custom', path: ['custodians', i, 'name'], message: `duplicate custodian "${c.name}"` });
      names.add(c.name);
    });
    const coin = body.network === 'mainnet' ? '0h' : '1h';
    if (body.hot.path !== `84h/${coin}/0h`) ctx.addIssue({ code: 'custom', path: ['hot', 'path'], message: `expected 84h/${coin}/0h for ${body.network}` });
    if ((body.network === 'mainnet') !== body.hot.xpub.startsWith('xpub')) {
      ctx.addIssue({ code: 'custom', path: ['hot', 'xpub'], message: `key version does not match network ${body.network}` });
    }
  });

function orderedSealed(s: Sealed): Sealed {
  return { kdf: s.kdf, N: s.N, r: s.r, p: s.p, salt: s.salt, nonce: s.nonce, ciphertext: s.ciphertext };
}

/** Rebuilds a body in the one key order the format fixes, whatever order its parts were made in. */
export function orderedBody(b: KeystoreBody): KeystoreBody {
  return {
    format: b.format,
    version: b.version,
    id: b.id,
    network: b.network,
    createdAt: b.createdAt,
    updatedAt: b.updatedAt,
    hot: { fingerprint: b.hot.fingerprint, path: b.hot.path, xpub: b.hot.xpub },
    threshold: b.threshold,
    custodians: b.custodians.map((c) => ({ name: c.name, index: c.index, share: orderedSealed(c.share) })),
    seed: { cipher: b.seed.cipher, nonce: b.seed.nonce, ciphertext: b.seed.ciphertext },
  };
}

/** The stable text of a body: fixed key order, two-space indent. What the checksum covers. */
export function canonicalBody(body: KeystoreBody): string {
  return JSON.stringify(orderedBody(body), null, 2);
}

export function checksumOf(body: KeystoreBody): string {
  return `sha256:${createHash('sha256').update(canonicalBody(body)).digest('hex')}`;
}

export function serializeKeystore(body: KeystoreBody): string {
  const text = canonicalBody(body);
  // The checksum goes last so the canonical body is a prefix of what a human sees.
  return `${text.slice(0, -2)},\n  "checksum": "${checksumOf(body)}"\n}\n`;
}

/** The associated data of the seed ciphertext: the whole public header, so any edit to it fails AEAD. */
export function seedAad(body: Pick<KeystoreBody, 'id' | 'network' | 'hot' | 'threshold' | 'custodians'>): Buffer {
  const header = {
    format: KEYSTORE_FORMAT,
    version: KEYSTORE_VERSION,
    id: body.id,
    network: body.network,
    hot: { fingerprint: body.hot.fingerprint, path: body.hot.path, xpub: body.hot.xpub },
    threshold: body.threshold,
    custodians: body.custodians.map((c) => ({ name: c.name, index: c.index })),
  };
  return Buffer.from(`${KEYSTORE_FORMAT}/v${KEYSTORE_VERSION}/seed\n${JSON.stringify(header)}`, 'utf8');
}

/** The associated data of one custodian's sealed share (DESIGN §2: keystore id, custodian name and index). */
export function shareAad(id: string, name: string, index: number, threshold: number): Buffer {
  return Buffer.from(`${KEYSTORE_FORMAT}/v${KEYSTORE_VERSION}/share\n${id}\n${name}\n${index}\n${threshold}`, 'utf8');
}

/** Parses and checks a keystore document. `source` names the file in error messages. */
export function parseKeystore(text: string, source: string): KeystoreBody {
  if (text.trim() === '') throw new CustodyError('KEYSTORE_INVALID', `${source}: the file is empty`, { file: source });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new CustodyError('KEYSTORE_INVALID', `${source}: not valid JSON (damaged or truncated?)`, { file: source });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new CustodyError('KEYSTORE_INVALID', `${source}: expected a JSON object`, { file: source });
  }
  const { checksum, ...rest } = doc as Record<string, unknown>;
  if ((rest as { format?: unknown }).format !== KEYSTORE_FORMAT) {
    throw new CustodyError('KEYSTORE_INVALID', `${source}: not a custody keystore (format is not "${KEYSTORE_FORMAT}")`, { file: source });
  }
  if (typeof checksum !== 'string') {
    throw new CustodyError('KEYSTORE_CORRUPT', `${source}: the checksum field is missing or damaged`, { file: source });
  }
  const actual = `sha256:${createHash('sha256').update(JSON.stringify(rest, null, 2)).digest('hex')}`;
  if (actual !== checksum) {
    throw new CustodyError('KEYSTORE_CORRUPT', `${source}: checksum mismatch: the file was damaged or edited; restore it from a backup`, {
      file: source,
    });
  }
  const result = bodySchema.safeParse(rest);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`);
    throw new CustodyError('KEYSTORE_INVALID', `${source}: ${problems.join('; ')}`, { file: source, problems });
  }
  return result.data as KeystoreBody;
}

export interface LoadedKeystore {
  readonly body: KeystoreBody;
  readonly path: string;
  /** The exact bytes read, so a later replace can check nobody changed the file in between. */
  readonly raw: Buffer;
  readonly warnings: readonly string[];
}

export function readKeystore(path: string): LoadedKeystore {
  let raw: Buffer;
  let mode: number;
  try {
    raw = readFileSync(path);
    mode = statSync(path).mode;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CustodyError('KEYSTORE_NOT_FOUND', `${path}: no such keystore file`, { file: path });
    throw new CustodyError('KEYSTORE_IO', `${path}: cannot read the keystore (${code ?? 'error'})`, { file: path });
  }
  const warnings: string[] = [];
  if ((mode & 0o077) !== 0) warnings.push(`${path}: readable or writable by other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  return { body: parseKeystore(raw.toString('utf8'), path), path, raw, warnings };
}

/**
 * Writes the keystore atomically (files/atomic-write.ts): `create` refuses to replace an existing file;
 * `replace` requires the file on disk to still be exactly what was read, so two ceremonies never clobber
 * each other.
 */
export function writeKeystore(path: string, body: KeystoreBody, mode: { create: true } | { replace: Buffer }): void {
  try {
    writeFileAtomic(path, Buffer.from(serializeKeystore(body), 'utf8'), mode);
  } catch (err) {
    const code = err instanceof AtomicWriteError ? err.code : 'EIO';
    if (code === 'EEXIST') throw new CustodyError('KEYSTORE_EXISTS', `${path}: a keystore already exists there; refusing to overwrite it`, { file: path });
    if (code === 'ENOENT' && 'replace' in mode) throw new CustodyError('KEYSTORE_NOT_FOUND', `${path}: the keystore to replace is gone`, { file: path });
    if (code === 'ECHANGED') {
      throw new CustodyError('KEYSTORE_IO', `${path}: the keystore changed on disk during this operation; nothing was written, start again`, { file: path });
    }
    throw new CustodyError('KEYSTORE_IO', `${path}: cannot write the keystore (${code})`, { file: path });
  }
}
