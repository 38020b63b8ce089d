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
const keyName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,31}$/, 'expected a client name (lowercase letters, digits, . _ -)');
const z85PublicKey = z.string().regex(/^[0-9A-Za-z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/, 'expected a 40-character Z85 CURVE public key');

/** [[clients]] and [[operators]]: each name and each key once. */
function uniqueNamesAndKeys(kind: string) {
  return (entries: ReadonlyArray<{ name: string; publicKey: string }>, ctx: z.RefinementCtx): void => {
    const names = new Set<string>();
    const keys = new Set<string>();
    entries.forEach((c, i) => {
      if (names.has(c.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate ${kind} name "${c.name}"` });
      if (keys.has(c.publicKey)) ctx.addIssue({ code: 'custom', path: [i, 'publicKey'], message: 'the same public key is listed twice' });
      names.add(c.name);
      keys.add(c.publicKey);
    });
  };
}

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
    rpc: z
      .strictObject({
        endpoint: z.string().regex(/^tcp:\/\/[^\s]+:\d+$/, 'expected tcp://HOST:PORT'),
        serverKeyFile: path,
        maxFrameBytes: whole(1024, 1_048_576, 'bytes').default(65_536),
        authWindowSeconds: whole(5, 300, 'seconds').default(30),
      })
      .optional(),
    events: z
      .strictObject({
        endpoint: z.string().regex(/^tcp:\/\/[^\s]+:\d+$/, 'expected tcp://HOST:PORT'),
      })
      .optional(),
    admin: z
      .strictObject({
        endpoint: z.string().regex(/^ipc:\/\/\/.+/, 'expected ipc:///absolute/path/admin.sock'),
        // The remote door (CURVE, [[operators]] keys only); the ipc socket above stays.
        tcpEndpoint: z.string().regex(/^tcp:\/\/[^\s]+:\d+$/, 'expected tcp://HOST:PORT').optional(),
        serverKeyFile: path.optional(),
      })
      .optional(),
    chain: z
      .strictObject({
        url: z.string().regex(/^https?:\/\/[^\s/]+(:\d+)?\/?$/, 'expected http://HOST:PORT/ of the node\'s JSON-RPC'),
        cookieFile: path.optional(),
        user: z.string().min(1).max(128).optional(),
        passwordFile: path.optional(),
        birthdayHeight: whole(0, 10_000_000, 'blocks'),
        confirmations: whole(1, 1_000, 'blocks').optional(),
        pollMilliseconds: whole(50, 600_000, 'milliseconds').default(2_000),
        timeoutSeconds: whole(1, 600, 'seconds').default(30),
        zmqHashblock: z.string().regex(/^(tcp:\/\/[^\s]+:\d+|ipc:\/\/\/.+)$/, 'expected tcp://HOST:PORT or ipc:///path').optional(),
        lookahead: whole(1, 100_000, 'addresses').default(100),
        mempool: z.boolean({ message: 'expected true or false' }).default(true),
      })
      .superRefine((c, ctx) => {
        const cookie = c.cookieFile !== undefined;
        const password = c.user !== undefined || c.passwordFile !== undefined;
        if (cookie === password) ctx.addIssue({ code: 'custom', path: ['cookieFile'], message: 'expected either cookieFile, or user and passwordFile (not both)' });
        else if (password && (c.user === undefined || c.passwordFile === undefined)) ctx.addIssue({ code: 'custom', path: [c.user === undefined ? 'user' : 'passwordFile'], message: 'expected user and passwordFile together' });
      })
      .optional(),
    clients: z
      .array(
        z.strictObject({
          name: keyName,
          publicKey: z85PublicKey,
          roles: z.array(z.enum(['deposits', 'withdrawals', 'approver', 'monitor'])).min(1, 'expected at least one role'),
          ratePerSecond: whole(1, 1_000_000, 'requests per second').default(2_000),
          burst: whole(1, 1_000_000, 'requests').default(4_000),
        }),
      )
      .default([])
      .superRefine(uniqueNamesAndKeys('client')),
    operators: z
      .array(z.strictObject({ name: keyName, publicKey: z85PublicKey }))
      .default([])
      .superRefine(uniqueNamesAndKeys('operator')),
    unlock: z
      .strictObject({
        progressTimeoutSeconds: whole(30, 86_400, 'seconds').default(600),
        backoffAfterFailures: whole(1, 100).default(3),
        maxBackoffSeconds: whole(1, 86_400, 'seconds').default(300),
      })
      .prefault({}),
    withdrawals: z
      .strictObject({
        whenLocked: z.enum(['queue', 'refuse'], { message: 'expected "queue" or "refuse"' }).default('queue'),
        maxAmountSats: sats(),
        allow: z.array(z.string().min(1)).optional(),
        deny: z.array(z.string().min(1)).default([]),
        approval: z.strictObject({ aboveSats: sats({ allowZero: true }), approvals: whole(1, 10, 'approvals').default(1) }).optional(),
        windows: z
          .array(
            z.strictObject({
              name: z.string().regex(/^[A-Za-z0-9_-]{1,16}$/, 'expected a short name such as "24h"'),
              seconds: whole(60, 31 * 86_400, 'seconds'),
              perClientSats: sats().optional(),
              globalSats: sats().optional(),
            }),
          )
          .default([]),
        batch: z.strictObject({ windowMs: whole(0, 600_000, 'milliseconds').default(2_000), maxOutputs: whole(1, 1_000, 'outputs').default(100) }).prefault({}),
        fee: z
          .strictObject({
            targetBlocks: whole(1, 1_008, 'blocks').default(6),
            minSatPerVb: whole(1, 10_000, 'sat/vB').default(1),
            maxSatPerVb: whole(1, 10_000, 'sat/vB').default(500),
            fallbackSatPerVb: whole(1, 10_000, 'sat/vB').default(10),
            maxFeeSats: sats().default(1_000_000n),
          })
          .prefault({}),
        bumpAfterBlocks: whole(1, 1_000, 'blocks').default(3),
      })
      .optional(),
    audit: z
      .strictObject({
        syslog: z.string().regex(/^(tcp|udp):\/\/[^\s/]+:\d+$/, 'expected tcp://HOST:PORT or udp://HOST:PORT of a syslog collector (RFC 5424)'),
        facility: whole(0, 23, 'syslog facility').default(10),
        headEverySeconds: whole(1, 86_400, 'seconds').default(60),
        failClosedAfterSeconds: whole(1, 7 * 86_400, 'seconds').optional(),
      })
      .optional(),
    metrics: z
      .strictObject({
        // Loopback only (rpc/metrics-server.ts refuses anything else): balances are not for the network.
        host: z.enum(['127.0.0.1', '::1', 'localhost'], { message: 'expected a loopback host: 127.0.0.1, ::1 or localhost' }).default('127.0.0.1'),
        port: whole(0, 65_535, 'port'),
      })
      .optional(),
    alerts: z
      .strictObject({
        tipStaleSeconds: whole(60, 7 * 86_400, 'seconds').default(3_600),
        velocityWarnPercent: whole(1, 100, 'percent').default(80),
        authFailuresPerMinute: whole(1, 100_000, 'failures').default(20),
        policyRejectionsPer10Minutes: whole(1, 100_000, 'rejections').default(20),
      })
      .prefault({}),
    autoFreeze: z
      .strictObject({
        policyRejections: whole(1, 100_000, 'rejections').optional(),
        policyRejectionsMinutes: whole(1, 1_440, 'minutes').default(10),
        reorgDepth: whole(1, 1_000, 'blocks').optional(),
        tipStaleSeconds: whole(1, 7 * 86_400, 'seconds').optional(),
        auditSinkDownSeconds: whole(1, 7 * 86_400, 'seconds').optional(),
        failedUnlocks: whole(1, 1_000, 'attempts').optional(),
        failedUnlocksMinutes: whole(1, 1_440, 'minutes').default(10),
      })
      .prefault({}),
    sweeps: z
      .strictObject({
        outbox: path.optional(),
        maxFeeSats: sats().default(1_000_000n),
        maxInputs: whole(1, 1_000, 'inputs').default(100),
        autoRefill: z.boolean({ message: 'expected true or false' }).default(true),
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
  })
  .superRefine((c, ctx) => {
    // Both need coins, and coins come from following the chain.
    if (c.withdrawals !== undefined && c.chain === undefined) ctx.addIssue({ code: 'custom', path: ['withdrawals'], message: 'needs a [chain] section (withdrawals are paid from coins the follower tracks)' });
    if (c.hot !== undefined && c.chain === undefined) ctx.addIssue({ code: 'custom', path: ['hot'], message: 'needs a [chain] section (the cap is enforced on the balance the follower tracks)' });
    if (c.admin?.tcpEndpoint !== undefined) {
      if (c.operators.length === 0) ctx.addIssue({ code: 'custom', path: ['admin', 'tcpEndpoint'], message: 'needs at least one [[operators]] entry (only operator keys may use the remote admin door)' });
      if (c.admin.serverKeyFile === undefined && c.rpc === undefined) ctx.addIssue({ code: 'custom', path: ['admin', 'serverKeyFile'], message: 'needed by tcpEndpoint when there is no [rpc] serverKeyFile to default to' });
    }
    // One key, one door: an app key listed as an operator would open the admin door too.
    const clientKeys = new Set(c.clients.map((x) => x.publicKey));
    c.operators.forEach((o, i) => {
      if (clientKeys.has(o.publicKey)) ctx.addIssue({ code: 'custom', path: ['operators', i, 'publicKey'], message: 'this key is also a [[clients]] key; operators need keys of their own' });
    });
    if (c.autoFreeze.auditSinkDownSeconds !== undefined && c.audit === undefined) ctx.addIssue({ code: 'custom', path: ['autoFreeze', 'auditSinkDownSeconds'], message: 'needs an [audit] section with syslog (there is no sink to watch)' });
    if ((c.autoFreeze.reorgDepth !== undefined || c.autoFreeze.tipStaleSeconds !== undefined) && c.chain === undefined) ctx.addIssue({ code: 'custom', path: ['autoFreeze'], message: 'reorgDepth and tipStaleSeconds need a [chain] section' });
    const w = c.withdrawals;
    if (w !== undefined && w.fee.minSatPerVb > w.fee.maxSatPerVb) ctx.addIssue({ code: 'custom', path: ['withdrawals', 'fee', 'minSatPerVb'], message: `expected minSatPerVb <= maxSatPerVb, got ${w.fee.minSatPerVb} > ${w.fee.maxSatPerVb}` });
    const names = new Set<string>();
    w?.windows.forEach((win, i) => {
      if (names.has(win.name)) ctx.addIssue({ code: 'custom', path: ['withdrawals', 'windows', i, 'name'], message: `duplicate window name "${win.name}"` });
      names.add(win.name);
      if (win.perClientSats === undefined && win.globalSats === undefined) ctx.addIssue({ code: 'custom', path: ['withdrawals', 'windows', i], message: 'expected perClientSats or globalSats (or both)' });
    });
  });

export type Config = z.output<typeof configSchema>;

/** Confirmations at which a deposit counts as confirmed: configured, else 6 (1 on regtest, where blocks are on demand). */
export function depositConfirmations(config: Config): number {
  return config.chain?.confirmations ?? (config.network === 'regtest' ? 1 : 6);
}
