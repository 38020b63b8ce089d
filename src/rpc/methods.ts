/**
 * Every RPC method in one table: which socket serves it, which client roles may call it, the strict
 * schema of its params (unknown fields rejected; errors name the field and rule), and the service call.
 * Data flows one way: rpc → service.
 */
import { z } from 'zod';
import { CustodyError } from '../errors.js';
import type { DaemonServices } from '../service/daemon-services.js';

export const ROLES = ['deposits', 'withdrawals', 'approver', 'monitor'] as const;
export type Role = (typeof ROLES)[number];

export interface CallContext {
  /** "client:<name>" on the app socket, "operator:<login>" on the admin socket. */
  readonly actor: string;
  /** The client name (app socket) used to scope requestIds, or "admin". */
  readonly scope: string;
  /** Extra frames after the JSON (admin unlock.submit carries the passphrase there, never in JSON). */
  readonly secrets: readonly Buffer[];
  /** The app client's roles (undefined on the admin socket). */
  readonly roles?: readonly Role[];
}

/**
 * What each client role may call, by exact name or "prefix." (DESIGN §4). Checked before the method
 * is looked up, so a client learns nothing about methods outside its roles: it gets FORBIDDEN.
 * Admin methods (unlock, lock, freeze, audit) belong to no role: only the admin socket serves them.
 */
export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly string[]>> = {
  deposits: ['status', 'events.', 'deposit.newAddress', 'deposit.lookup', 'deposit.list'],
  withdrawals: ['status', 'events.', 'withdrawal.create', 'withdrawal.get', 'withdrawal.list', 'withdrawal.cancel'],
  approver: ['status', 'events.', 'withdrawal.approve', 'withdrawal.reject', 'withdrawal.get', 'withdrawal.list'],
  monitor: ['status', 'events.', 'deposit.lookup'],
};

export function roleAllows(roles: readonly Role[], method: string): boolean {
  // Plain loops: this runs on every request.
  for (const r of roles) {
    for (const m of ROLE_PERMISSIONS[r]) if (m.endsWith('.') ? method.startsWith(m) : method === m) return true;
  }
  return false;
}

export interface MethodSpec<P extends z.ZodType = z.ZodType> {
  readonly params: P;
  /**
   * Optional hot-path check: returns what `params.parse` would for input it certainly accepts, or
   * undefined for anything else, which then goes through the schema (so every error is the schema's).
   */
  readonly accept?: (params: unknown) => z.output<P> | undefined;
  /** Served on the app socket (to the roles that ROLE_PERMISSIONS allow). */
  readonly app: boolean;
  /** Served on the admin socket. */
  readonly admin: boolean;
  readonly handler: (svc: DaemonServices, params: z.output<P>, ctx: CallContext) => Promise<unknown> | unknown;
}

const none = z.strictObject({}).optional();
const withdrawalIdParam = z.string().regex(/^wd-[0-9a-f]{12}$/, 'expected a withdrawal id (wd- and 12 hex digits)');
const sweepIdParam = z.string().regex(/^sw-[0-9a-f]{8}$/, 'expected a sweep id (sw- and 8 hex digits)');
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const requestId = z.string().regex(REQUEST_ID, 'expected 1 to 64 characters of A-Z a-z 0-9 . _ : -');

function spec<P extends z.ZodType>(s: MethodSpec<P>): MethodSpec {
  return s as unknown as MethodSpec;
}

/**
 * deposit.newAddress params that the schema below certainly accepts, checked by hand (zod took ~5 µs of
 * the ~100 µs a request costs the daemon): a plain object with exactly requestId, account and optionally
 * label, of the right types and lengths. Anything else returns undefined and goes through zod.
 */
function acceptNewAddress(p: unknown): { requestId: string; account: string; label?: string } | undefined {
  if (typeof p !== 'object' || p === null || Object.getPrototypeOf(p) !== Object.prototype) return undefined;
  let n = 0;
  for (const k in p) {
    if (k !== 'requestId' && k !== 'account' && k !== 'label') return undefined;
    n++;
  }
  const { requestId, account, label } = p as Record<string, unknown>;
  if (typeof requestId !== 'string' || !REQUEST_ID.test(requestId)) return undefined;
  if (typeof account !== 'string' || account.length < 1 || account.length > 128) return undefined;
  if (label === undefined) return n === 2 ? { requestId, account } : undefined;
  if (typeof label !== 'string' || label.length > 256 || n !== 3) return undefined;
  return { requestId, account, label };
}

export const METHODS: Readonly<Record<string, MethodSpec>> = {
  status: spec({ params: none, app: true, admin: true, handler: (svc) => svc.status() }),
  'deposit.newAddress': spec({
    params: z.strictObject({ requestId, account: z.string().min(1).max(128), label: z.string().max(256).optional() }),
    accept: acceptNewAddress,
    app: true,
    admin: false,
    // p is exactly {requestId, account, label?} (the schema's output, or acceptNewAddress's).
    handler: (svc, p, ctx) =>
      svc.deposits
        .newAddress(p, ctx.scope)
        .then((r) =>
          r.label === undefined
            ? { address: r.address, index: r.index, path: r.path, account: r.account, created: r.created }
            : { address: r.address, index: r.index, path: r.path, account: r.account, label: r.label, created: r.created },
        ),
  }),
  'deposit.lookup': spec({
    params: z.strictObject({ address: z.string().min(1).max(128) }),
    app: true,
    admin: true,
    handler: async (svc, p) => {
      const r = await svc.deposits.lookup(p.address);
      return r === undefined ? null : { address: r.address, index: r.index, path: r.path, account: r.account, ...(r.label === undefined ? {} : { label: r.label }), issuedAt: r.issuedAt };
    },
  }),
  'deposit.list': spec({
    params: z
      .strictObject({
        account: z.string().min(1).max(128).optional(),
        sinceSeq: z.number().int().min(-1).optional(),
        limit: z.number().int().min(1).max(1000).optional(),
      })
      .optional(),
    app: true,
    admin: true,
    handler: (svc, p) =>
      chainOf(svc).ledger.listDeposits({
        ...(p?.account === undefined ? {} : { account: p.account }),
        ...(p?.sinceSeq === undefined ? {} : { sinceSeq: p.sinceSeq }),
        ...(p?.limit === undefined ? {} : { limit: p.limit }),
      }),
  }),
  'chain.status': spec({ params: none, app: false, admin: true, handler: (svc) => ({ chain: chainOf(svc).status(), balances: svc.status().balances }) }),
  'chain.rescan': spec({
    params: z.strictObject({ from: z.number().int().min(0) }),
    app: false,
    admin: true,
    handler: async (svc, p, ctx) => {
      const range = chainOf(svc).follower.requestRescan(p.from);
      await svc.audit.appendNow(ctx.actor, 'chain.rescan', range);
      return range;
    },
  }),
  'withdrawal.create': spec({
    params: z.strictObject({
      requestId,
      address: z.string().min(1).max(128),
      amountSats: z.number().int('expected an integer of satoshis').min(1, 'expected a positive integer of satoshis').max(2_100_000_000_000_000, 'expected at most 21,000,000 BTC in satoshis'),
      account: z.string().min(1).max(128).optional(),
      memo: z.string().max(256).optional(),
    }),
    app: true,
    admin: false,
    handler: async (svc, p, ctx) =>
      paymentsOf(svc).withdrawals.create(
        { requestId: p.requestId, address: p.address, amountSats: BigInt(p.amountSats), ...(p.account === undefined ? {} : { account: p.account }), ...(p.memo === undefined ? {} : { memo: p.memo }) },
        ctx.scope,
      ),
  }),
  'withdrawal.get': spec({
    params: z.strictObject({ id: withdrawalIdParam }),
    app: true,
    admin: true,
    handler: async (svc, p, ctx) => {
      const w = await paymentsOf(svc).withdrawals.get(p.id);
      if (!seesAll(ctx) && w.client !== ctx.scope) throw new CustodyError('WITHDRAWAL_NOT_FOUND', `id: no withdrawal ${p.id}`, { field: 'id' });
      return w;
    },
  }),
  'withdrawal.list': spec({
    params: z
      .strictObject({
        state: z.enum(['pending_approval', 'approved', 'signed', 'broadcast', 'confirmed', 'failed', 'cancelled', 'rejected']).optional(),
        account: z.string().min(1).max(128).optional(),
        afterId: withdrawalIdParam.optional(),
        limit: z.number().int().min(1).max(1000).optional(),
      })
      .optional(),
    app: true,
    admin: true,
    handler: async (svc, p, ctx) => ({
      withdrawals: await paymentsOf(svc).withdrawals.list({
        ...(seesAll(ctx) ? {} : { client: ctx.scope }),
        ...(p?.state === undefined ? {} : { state: p.state }),
        ...(p?.account === undefined ? {} : { account: p.account }),
        ...(p?.afterId === undefined ? {} : { afterId: p.afterId }),
        ...(p?.limit === undefined ? {} : { limit: p.limit }),
      }),
    }),
  }),
  'withdrawal.cancel': spec({
    params: z.strictObject({ id: withdrawalIdParam }),
    app: true,
    admin: true,
    handler: (svc, p, ctx) => paymentsOf(svc).withdrawals.cancel(p.id, ctx.actor, ctx.scope === 'admin' ? undefined : ctx.scope),
  }),
  'withdrawal.approve': spec({
    params: z.strictObject({ id: withdrawalIdParam }),
    app: true,
    admin: true,
    handler: (svc, p, ctx) => paymentsOf(svc).withdrawals.approve(p.id, ctx.actor),
  }),
  'withdrawal.reject': spec({
    params: z.strictObject({ id: withdrawalIdParam }),
    app: true,
    admin: true,
    handler: (svc, p, ctx) => paymentsOf(svc).withdrawals.reject(p.id, ctx.actor),
  }),
  'sweep.create': spec({
    params: z.union([
      z.strictObject({ refillSats: z.number().int('expected an integer of satoshis').min(1).max(2_100_000_000_000_000), feeRate: z.number().positive().max(10_000).optional() }),
      z.strictObject({ consolidate: z.literal(true), maxInputs: z.number().int().min(2).max(1_000).optional(), feeRate: z.number().positive().max(10_000).optional() }),
    ], { message: 'expected {refillSats} or {consolidate: true}' }),
    app: false,
    admin: true,
    handler: (svc, p, ctx) =>
      paymentsOf(svc).sweeps.create(
        'refillSats' in p ? { kind: 'refill', amountSats: BigInt(p.refillSats) } : { kind: 'consolidate', ...(p.maxInputs === undefined ? {} : { maxInputs: p.maxInputs }) },
        p.feeRate,
        ctx.actor,
      ),
  }),
  'sweep.import': spec({
    params: z.strictObject({
      files: z
        .array(z.strictObject({ name: z.string().min(1).max(256), base64: z.string().min(1).max(6_000_000).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64') }))
        .min(1, 'expected at least one signed PSBT')
        .max(16),
    }),
    app: false,
    admin: true,
    handler: (svc, p, ctx) => paymentsOf(svc).sweeps.import(p.files.map((f) => ({ name: f.name, content: Buffer.from(f.base64, 'base64') })), ctx.actor),
  }),
  'sweep.list': spec({ params: none, app: false, admin: true, handler: async (svc) => ({ sweeps: await paymentsOf(svc).sweeps.list() }) }),
  'sweep.get': spec({ params: z.strictObject({ id: sweepIdParam }), app: false, admin: true, handler: (svc, p) => paymentsOf(svc).sweeps.get(p.id) }),
  'sweep.cancel': spec({ params: z.strictObject({ id: sweepIdParam }), app: false, admin: true, handler: (svc, p, ctx) => paymentsOf(svc).sweeps.cancel(p.id, ctx.actor) }),
  'events.since': spec({
    params: z.strictObject({ seq: z.number().int().min(-1), limit: z.number().int().min(1).max(1000).optional() }),
    app: true,
    admin: true,
    handler: async (svc, p) => ({ events: await svc.events.since(p.seq, p.limit ?? 100), head: svc.events.head }),
  }),
  'unlock.submit': spec({
    params: z.strictObject({ custodian: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,31}$/, 'expected a custodian name') }),
    app: false,
    admin: true,
    handler: async (svc, p, ctx) => {
      const passphrase = ctx.secrets[0];
      if (passphrase === undefined || passphrase.length === 0) {
        throw new CustodyError('INVALID_PARAMS', 'passphrase: expected in the second frame of the message, never in the JSON', { field: 'passphrase' });
      }
      const r = await svc.operator.submitUnlock(ctx.actor.replace(/^operator:/, ''), p.custodian, passphrase);
      return { state: r.state, alreadyCounted: r.alreadyCounted, progress: { received: r.progress.received, threshold: r.progress.threshold, nonce: r.progress.nonce } };
    },
  }),
  'unlock.status': spec({ params: none, app: false, admin: true, handler: (svc) => svc.status().wallet }),
  'unlock.reset': spec({ params: none, app: false, admin: true, handler: async (svc, _p, ctx) => (await svc.operator.resetUnlock(login(ctx)), svc.status().wallet) }),
  lock: spec({ params: none, app: false, admin: true, handler: async (svc, _p, ctx) => (await svc.operator.lock(login(ctx)), svc.status().wallet) }),
  freeze: spec({
    params: z.strictObject({ reason: z.string().min(1).max(500) }),
    app: false,
    admin: true,
    handler: async (svc, p, ctx) => svc.operator.freeze(login(ctx), p.reason),
  }),
  unfreeze: spec({ params: none, app: false, admin: true, handler: async (svc, _p, ctx) => (await svc.operator.unfreeze(login(ctx)), { frozen: null }) }),
  'audit.verify': spec({ params: none, app: false, admin: true, handler: (svc) => svc.verifyAudit() }),
  'audit.tail': spec({
    params: z.strictObject({ n: z.number().int().min(1).max(1000).optional() }).optional(),
    app: false,
    admin: true,
    handler: async (svc, p) => ({ records: await svc.audit.tail(p?.n ?? 20) }),
  }),
};

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function paymentsOf(svc: DaemonServices): NonNullable<DaemonServices['payments']> {
  if (svc.payments === null) throw new CustodyError('WITHDRAWALS_DISABLED', 'this daemon has no [chain] with a [withdrawals] or [hot] section in its configuration');
  return svc.payments;
}

/** Operators and approvers see every client's withdrawals; a withdrawals client only its own. */
function seesAll(ctx: CallContext): boolean {
  return ctx.scope === 'admin' || (ctx.roles?.includes('approver') ?? false);
}

function chainOf(svc: DaemonServices): NonNullable<DaemonServices['chain']> {
  if (svc.chain === null) throw new CustodyError('CHAIN_DISABLED', 'this daemon has no [chain] section in its configuration: deposits are not tracked');
  return svc.chain;
}

function login(ctx: CallContext): string {
  return ctx.actor.replace(/^operator:/, '');
}

/** Validates params against the method's schema; the error names the first bad field and its rule. */
export function parseParams(method: string, spec: MethodSpec, params: unknown): unknown {
  const fast = spec.accept?.(params);
  if (fast !== undefined) return fast;
  let r: ReturnType<typeof spec.params.safeParse>;
  try {
    r = spec.params.safeParse(params);
  } catch {
    // zod 4 runs length checks even after a type check failed, so {length: {…}} in place of a string
    // can throw while being compared; it is still just a bad parameter.
    throw new CustodyError('INVALID_PARAMS', `${method}: params: malformed value (expected the documented types)`, { field: 'params' });
  }
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = issue?.path.map(String).join('.') ?? '';
  let message = issue?.message ?? 'invalid';
  if (issue?.code === 'unrecognized_keys') message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
  else if (issue?.code === 'invalid_type' && valueAt(params, issue.path) === undefined) message = 'required field is missing';
  const field = path === '' ? 'params' : `params.${path}`;
  throw new CustodyError('INVALID_PARAMS', `${method}: ${field}: ${message}`, { field });
}
