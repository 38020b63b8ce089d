/**
 * The configuration schema. Validation happens once, here at the boundary: unknown keys are rejected,
 * every error names the key path and the rule, and amounts become bigint satoshis (never floats).
 * TOML integers arrive as bigint (smol-toml `integersAsBigInt`), so no amount ever passes through a double.
 */
import { z } from 'zod';
import { NETWORKS } from '../types.js';

const MAX_SATS = 21_000_000n * 100_000_000n;

function describe(value: unknown): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'nothing';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return typeof value;
  }
}

/** A positive integer amount of satoshis, at most the 21M BTC supply. */
export const sats = (opts: { allowZero?: boolean } = {}) =>
  z.unknown().transform((value, ctx): bigint => {
    const min = opts.allowZero ? 0n : 1n;
    const rule = opts.allowZero ? 'a non-negative integer of satoshis' : 'a positive integer of satoshis';
    if (typeof value === 'bigint' && value >= min && value <= MAX_SATS) return value;
    ctx.addIssue({ code: 'custom', message: `expected ${rule} (at most ${MAX_SATS}), got ${describe(value)}` });
    return z.NEVER;
  });

/** A whole number in [min, max] (TOML integers arrive as bigint). */
export const whole = (min: number, max: number, unit = '') =>
  z.unknown().transform((value, ctx): number => {
    if (typeof value === 'bigint' && value >= BigInt(min) && value <= BigInt(max)) return Number(value);
    ctx.addIssue({ code: 'custom', message: `expected a whole number${unit ? ` of ${unit}` : ''} from ${min} to ${max}, got ${describe(value)}` });
    return z.NEVER;
  });

const path = z.string().min(1, 'expected a non-empty file path');

export const configSchema = z
  .strictObject({
    network: z.enum(NETWORKS, { message: `expected one of ${NETWORKS.join(', ')}` }),
    dataDir: path,
    keystore: z.strictObject({
      file: path,
    }),
    cold: z.strictObject({
      descriptor: z.string().min(1, 'expected an output descriptor'),
    }),
    addresses: z
      .strictObject({
        poolSize: whole(16, 1_000_000, 'addresses').default(4096),
        poolWorkers: whole(0, 8, 'threads').default(1),
        gapWarning: whole(20, 10_000_000, 'addresses').default(1000),
      })
      .prefault({}),
    unlock: z
      .strictObject({
        progressTimeoutSeconds: whole(30, 86_400, 'seconds').default(600),
        backoffAfterFailures: whole(1, 100).default(3),
        maxBackoffSeconds: whole(1, 86_400, 'seconds').default(300),
      })
      .prefault({}),
    hot: z
      .strictObject({
        minSats: sats({ allowZero: true }),
        targetSats: sats(),
        maxSats: sats(),
      })
      .superRefine((hot, ctx) => {
        if (!(hot.minSats < hot.targetSats && hot.targetSats < hot.maxSats)) {
          ctx.addIssue({
            code: 'custom',
            path: ['targetSats'],
            message: `expected minSats < targetSats < maxSats, got ${hot.minSats} / ${hot.targetSats} / ${hot.maxSats}`,
          });
        }
      })
      .optional(),
  });

export type Config = z.output<typeof configSchema>;
