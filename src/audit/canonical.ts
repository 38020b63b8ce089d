/**
 * The canonical serialization an audit record's hash is computed over. An outside verifier (a script,
 * another language) must be able to recompute every hash from the stored JSON alone, so the rule is
 * short and exact:
 *
 *   hash = lowercase hex of SHA-256( UTF-8( canonical({ seq, time, actor, action, details, prevHash }) ) )
 *
 *   canonical(v):
 *     null, true, false  → `null`, `true`, `false`
 *     integer            → its shortest decimal form, `-` for negatives, no exponent, no `+`, no `-0`
 *                          (only safe integers, |v| ≤ 2^53 − 1, are allowed; bigint amounts are decimal strings)
 *     string             → as ECMAScript JSON.stringify writes it: `"`, with `\"` `\\` `\b` `\f` `\n` `\r` `\t`,
 *                          other U+0000–U+001F as `\u00xx` (lowercase hex), everything else literal (no
 *                          escaping of `/` or non-ASCII); strings with unpaired surrogates are refused
 *     array              → `[` elements joined by `,` `]`
 *     object             → `{` `"key":value` pairs joined by `,` `}`, keys sorted by UTF-16 code units
 *                          (JavaScript's default string sort), no whitespace anywhere
 *
 * For this value subset that is exactly RFC 8785 (JSON Canonicalization Scheme), so any JCS library
 * verifies these records too. Floats, NaN, undefined, bigint, functions, symbols, Dates, Buffers, Maps,
 * class instances and cycles are refused: each has no single JSON form, and a value that serializes
 * differently on the way in and the way back out would break verification for no fault of the chain.
 */
import { createHash } from 'node:crypto';
import { CustodyError } from '../errors.js';

/** Nesting beyond this is a bug in the caller, not a record anyone needs to read. */
export const MAX_DEPTH = 16;

/** prevHash of record 0: there is no record before the genesis one. */
export const ZERO_HASH = '0'.repeat(64);

// With the `u` flag a surrogate that is part of a pair is consumed as one code point, so this matches
// only unpaired ones, which UTF-8 cannot encode (RFC 8785 §3.2.2.2 requires refusing them).
const LONE_SURROGATE = /\p{Cs}/u;

function refuse(path: string, rule: string): CustodyError {
  // The path names where the bad value sits; the value itself is never echoed (it may be anything).
  const where = path === '' ? 'value' : path;
  return new CustodyError('INTERNAL', `${where}: ${rule}`, { field: where });
}

function isPlainObject(v: object): boolean {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

const child = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

/**
 * The canonical JSON text of `value`; throws CustodyError INTERNAL naming the path of a value outside
 * the subset (`path` names the value itself; '' for a record, so its fields read "details.amount").
 */
export function canonicalJson(value: unknown, path = ''): string {
  const seen = new Set<object>();
  const walk = (v: unknown, p: string, depth: number): string => {
    if (v === null) return 'null';
    switch (typeof v) {
      case 'boolean':
        return v ? 'true' : 'false';
      case 'number':
        if (!Number.isSafeInteger(v)) throw refuse(p, 'numbers must be safe integers (give amounts and other large values as decimal strings)');
        return Object.is(v, -0) ? '0' : String(v);
      case 'string':
        if (LONE_SURROGATE.test(v)) throw refuse(p, 'string holds an unpaired UTF-16 surrogate');
        return JSON.stringify(v);
      case 'object':
        break;
      default:
        throw refuse(p, `${typeof v} is not allowed (strings, integers, booleans, null, arrays and plain objects only)`);
    }
    const o = v as object;
    if (depth >= MAX_DEPTH) throw refuse(p, `nested deeper than ${MAX_DEPTH} levels`);
    if (seen.has(o)) throw refuse(p, 'refers to itself');
    seen.add(o);
    let out: string;
    if (Array.isArray(o)) {
      out = `[${o.map((e: unknown, i) => walk(e, `${p}[${i}]`, depth + 1)).join(',')}]`;
    } else {
      if (!isPlainObject(o)) throw refuse(p, 'only plain objects are allowed (no Date, Buffer, Map or class instance)');
      if (Object.getOwnPropertySymbols(o).length > 0) throw refuse(p, 'symbol keys are not allowed');
      const rec = o as Record<string, unknown>;
      const keys = Object.keys(rec).sort();
      out = `{${keys
        .map((k) => {
          if (LONE_SURROGATE.test(k)) throw refuse(child(p, k), 'key holds an unpaired UTF-16 surrogate');
          return `${JSON.stringify(k)}:${walk(rec[k], child(p, k), depth + 1)}`;
        })
        .join(',')}}`;
    }
    seen.delete(o);
    return out;
  };
  return walk(value, path, 0);
}

/** The fields a record's hash covers, in the record's own terms. */
export interface HashedFields {
  readonly seq: number;
  readonly time: string;
  readonly actor: string;
  readonly action: string;
  readonly details: Readonly<Record<string, unknown>>;
  readonly prevHash: string;
}

export function recordHash(f: HashedFields): string {
  const text = canonicalJson({ seq: f.seq, time: f.time, actor: f.actor, action: f.action, details: f.details, prevHash: f.prevHash });
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
