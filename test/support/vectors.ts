/** Loads the JSON vectors of test/fixtures/ (see its README.md for provenance) from the source tree. */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isCustodyError, type ErrorCode } from '../../src/errors.js';

// Compiled, this file runs from build/test/support; the fixtures stay in test/fixtures at the repo root.
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.includes('/build/') ? '../../..' : '../..');

export function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(resolve(root, 'test/fixtures', name), 'utf8')) as T;
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

/** What `fn` throws (undefined if it returns): tap's t.throws wants a pattern, not a predicate. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** True when `fn` throws a CustodyError with `code` whose message matches `pattern`. */
export function refusedWith(fn: () => unknown, code: ErrorCode, pattern?: RegExp): boolean {
  const err = thrown(fn);
  return isCustodyError(err, code) && (pattern === undefined || pattern.test(err.message));
}
