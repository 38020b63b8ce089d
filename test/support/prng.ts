/** A seeded PRNG (mulberry32) for the fuzz tests, so a failing run can be replayed with FUZZ_SEED. */
import { randomBytes } from 'node:crypto';

export interface Prng {
  readonly seed: number;
  rnd(): number;
  int(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(xs: readonly T[]): T;
  /** n seeded random bytes, copied from a 1 MiB pool (fast, and still reproducible). */
  bytes(n: number): Buffer;
}

export function seededPrng(seed = Number(process.env['FUZZ_SEED'] ?? randomBytes(4).readUInt32LE(0))): Prng {
  let state = seed >>> 0;
  const rnd = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const pool = Buffer.from(Uint32Array.from({ length: 1 << 18 }, () => (rnd() * 4294967296) >>> 0).buffer);
  return {
    seed,
    rnd,
    int,
    chance: (p) => rnd() < p,
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T,
    bytes: (n) => {
      const at = int(0, pool.length - n);
      return Buffer.from(pool.subarray(at, at + n));
    },
  };
}
