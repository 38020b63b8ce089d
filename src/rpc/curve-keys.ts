/**
 * CURVE key pairs (CurveZMQ, RFC 26) and their key files. A key file holds a secret key, so it is
 * written 0600 and never overwritten (writeFileAtomic `create`), and a file that group or others could
 * read is refused outright: a secret key that may have leaked must be replaced, not used (fail closed).
 *
 * Format (TOML): a comment saying what it is and to keep it secret, then
 *   kind = "server" | "client" | "operator", name (client and operator) and roles (client only; roles are
 *   informational, the daemon's [[clients]] table is what grants them), publicKey = "<z85>", secretKey = "<z85>".
 * An operator key opens only the remote admin door ([admin] tcpEndpoint, [[operators]]), never the app one.
 */
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { parse, TomlError } from 'smol-toml';
import { curveKeyPair } from 'zeromq';
import { CustodyError } from '../errors.js';
import { AtomicWriteError, writeFileAtomic } from '../files/atomic-write.js';
import { x25519PrivateKey, X25519_KEY_BYTES } from './x25519.js';
import { z85Decode } from './z85.js';

export const CLIENT_ROLES = ['deposits', 'withdrawals', 'approver', 'monitor'] as const;
export type ClientRole = (typeof CLIENT_ROLES)[number];
/** Client names appear in audit lines and request authenticators: short, lowercase, no spaces or quotes. */
export const CLIENT_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,31}$/;
/** A 32-byte key is 40 Z85 characters (RFC 32). */
export const Z85_KEY_LENGTH = 40;
/** Key files are a few hundred bytes; anything much larger is not one. */
const MAX_KEY_FILE_BYTES = 16 * 1024;

export interface CurveKeyPair {
  readonly publicKey: string;
  readonly secretKey: string;
}
export interface ServerKeyPairFile extends CurveKeyPair {
  readonly kind: 'server';
}
export interface ClientKeyPairFile extends CurveKeyPair {
  readonly kind: 'client';
  readonly name: string;
  readonly roles: readonly ClientRole[];
}
export interface OperatorKeyPairFile extends CurveKeyPair {
  readonly kind: 'operator';
  readonly name: string;
}
export type KeyPairFile = ServerKeyPairFile | ClientKeyPairFile | OperatorKeyPairFile;

export function isClientRole(s: unknown): s is ClientRole {
  return typeof s === 'string' && (CLIENT_ROLES as readonly string[]).includes(s);
}

export function isClientName(s: unknown): s is string {
  return typeof s === 'string' && CLIENT_NAME_PATTERN.test(s);
}

export function isZ85Key(s: unknown): s is string {
  if (typeof s !== 'string' || s.length !== Z85_KEY_LENGTH) return false;
  try {
    return z85Decode(s).length === X25519_KEY_BYTES;
  } catch {
    return false;
  }
}

/** A fresh key pair from libzmq (its CSPRNG), as Z85 strings. */
export function newCurveKeyPair(): CurveKeyPair {
  const { publicKey, secretKey } = curveKeyPair();
  return { publicKey, secretKey };
}

export function serializeKeyPairFile(file: KeyPairFile): string {
  checkKeyPair(file);
  // Z85 has no quote or backslash and names match CLIENT_NAME_PATTERN, so plain "…" strings are valid TOML.
  if (file.kind === 'server') {
    return [
      '# custody CURVE server key pair (custodyd app RPC). SECRET: keep this file private (mode 0600);',
      '# share only publicKey, never secretKey.',
      'kind = "server"',
      `publicKey = "${file.publicKey}"`,
      `secretKey = "${file.secretKey}"`,
      '',
    ].join('\n');
  }
  if (!isClientName(file.name)) throw new CustodyError('KEY_FILE', `name: expected ${CLIENT_NAME_PATTERN.source}`);
  if (file.kind === 'operator') {
    return [
      `# custody CURVE operator key pair for "${file.name}" (custodyd remote admin door). SECRET: keep this file private`,
      '# (mode 0600) on that operator\'s host; the daemon needs only publicKey (in its [[operators]] table).',
      'kind = "operator"',
      `name = "${file.name}"`,
      `publicKey = "${file.publicKey}"`,
      `secretKey = "${file.secretKey}"`,
      '',
    ].join('\n');
  }
  checkRoles(file.roles, 'roles');
  return [
    `# custody CURVE client key pair for "${file.name}". SECRET: keep this file private (mode 0600) on that app server;`,
    '# the daemon needs only publicKey (in its [[clients]] table), never secretKey.',
    'kind = "client"',
    `name = "${file.name}"`,
    `roles = [${file.roles.map((r) => `"${r}"`).join(', ')}]`,
    `publicKey = "${file.publicKey}"`,
    `secretKey = "${file.secretKey}"`,
    '',
  ].join('\n');
}

/** Parses key-file text; `source` (the path) prefixes every message. Unknown keys are refused. */
export function parseKeyPairFile(text: string, source: string): KeyPairFile {
  const fail = (problem: string): CustodyError => new CustodyError('KEY_FILE', `${source}: ${problem}`);
  let doc: Record<string, unknown>;
  try {
    doc = parse(text);
  } catch (err) {
    // TomlError messages quote the offending line, which may be the secret key: give only the position.
    const where = err instanceof TomlError ? ` (line ${err.line}, column ${err.column})` : '';
    throw fail(`not a valid TOML key file${where}`);
  }
  const kind = doc['kind'];
  if (kind !== 'server' && kind !== 'client' && kind !== 'operator') throw fail('kind: expected "server", "client" or "operator"');
  const allowed = kind === 'server' ? ['kind', 'publicKey', 'secretKey'] : kind === 'operator' ? ['kind', 'name', 'publicKey', 'secretKey'] : ['kind', 'name', 'roles', 'publicKey', 'secretKey'];
  for (const key of Object.keys(doc)) if (!allowed.includes(key)) throw fail(`${key}: unknown field in ${kind === 'operator' ? 'an' : 'a'} ${kind} key file`);
  const pair = { publicKey: doc['publicKey'], secretKey: doc['secretKey'] };
  try {
    checkKeyPair(pair);
  } catch (err) {
    throw fail(err instanceof CustodyError ? err.message : 'invalid key pair');
  }
  const { publicKey, secretKey } = pair as CurveKeyPair;
  if (kind === 'server') return { kind, publicKey, secretKey };
  const name = doc['name'];
  if (!isClientName(name)) throw fail(`name: expected a ${kind} name matching ${CLIENT_NAME_PATTERN.source}`);
  if (kind === 'operator') return { kind, name, publicKey, secretKey };
  const roles = doc['roles'];
  try {
    checkRoles(roles, 'roles');
  } catch (err) {
    throw fail(err instanceof CustodyError ? err.message : 'roles: invalid');
  }
  return { kind, name, roles: [...(roles as ClientRole[])], publicKey, secretKey };
}

export function writeKeyPairFile(path: string, file: KeyPairFile): void {
  const data = Buffer.from(serializeKeyPairFile(file), 'utf8');
  try {
    writeFileAtomic(path, data, { create: true }, 0o600);
  } catch (err) {
    const code = err instanceof AtomicWriteError ? err.code : 'EIO';
    throw new CustodyError('KEY_FILE', code === 'EEXIST' ? `${path}: exists already; refusing to overwrite a key file` : `${path}: cannot write the key file (${code})`);
  } finally {
    data.fill(0);
  }
}

/**
 * Reads and checks a key file. The mode is checked on the open descriptor (fstat), so the file checked
 * is the file read.
 */
export function readKeyPairFile(path: string): KeyPairFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new CustodyError('KEY_FILE', code === 'ENOENT' ? `${path}: key file does not exist` : `${path}: cannot open the key file (${code})`);
  }
  let raw: Buffer;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CustodyError('KEY_FILE', `${path}: not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(3, '0');
      throw new CustodyError('KEY_FILE', `${path}: mode ${mode} lets group or others read a secret key; refusing it (chmod 600, and replace the key if it may have leaked)`);
    }
    if (st.size > MAX_KEY_FILE_BYTES) throw new CustodyError('KEY_FILE', `${path}: ${st.size} bytes is too large for a key file`);
    raw = readFileSync(fd);
  } catch (err) {
    if (err instanceof CustodyError) throw err;
    throw new CustodyError('KEY_FILE', `${path}: cannot read the key file (${(err as NodeJS.ErrnoException).code ?? 'EIO'})`);
  } finally {
    closeSync(fd);
  }
  try {
    return parseKeyPairFile(raw.toString('utf8'), path);
  } finally {
    raw.fill(0);
  }
}

/** Both halves are Z85 keys and the secret key really produces the public key. */
function checkKeyPair(pair: { publicKey: unknown; secretKey: unknown }): void {
  if (!isZ85Key(pair.publicKey)) throw new CustodyError('KEY_FILE', `publicKey: expected a ${Z85_KEY_LENGTH}-character Z85 key`);
  if (!isZ85Key(pair.secretKey)) throw new CustodyError('KEY_FILE', `secretKey: expected a ${Z85_KEY_LENGTH}-character Z85 key`);
  try {
    x25519PrivateKey(z85Decode(pair.secretKey), z85Decode(pair.publicKey));
  } catch {
    throw new CustodyError('KEY_FILE', 'secretKey does not match publicKey');
  }
}

function checkRoles(roles: unknown, field: string): asserts roles is readonly ClientRole[] {
  if (!Array.isArray(roles) || roles.length === 0) throw new CustodyError('KEY_FILE', `${field}: expected a non-empty list of ${CLIENT_ROLES.join(', ')}`);
  for (const r of roles) if (!isClientRole(r)) throw new CustodyError('KEY_FILE', `${field}: expected each of ${CLIENT_ROLES.join(', ')}`);
  if (new Set(roles).size !== roles.length) throw new CustodyError('KEY_FILE', `${field}: a role is listed twice`);
}
