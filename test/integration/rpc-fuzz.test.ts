/**
 * Black-box fuzzing of custodyd's app socket: one real daemon, one RawDealer holding a valid client key
 * ('app', role deposits), and more than 10,000 random and mutated frames pipelined at it: random bytes
 * (0 to ~70 KB, past the 64 KiB limit), truncations and byte flips of signed requests, valid JSON of the
 * wrong shape, signed requests with mutated params, and multi-frame messages.
 *
 * Every frame must get exactly one well-formed JSON-RPC reply whose error code is from a fixed set,
 * with no stack trace or file path in it; the daemon must stay up and keep serving; and the only
 * addresses issued are those asked for by valid signed deposit.newAddress requests.
 *
 * The run is reproducible: FUZZ_SEED=<n> replays the same frames (the seed is printed).
 */
import t from 'tap';
import { seededPrng } from '../support/prng.js';
import { randomBytes } from 'node:crypto';
import { jsonDepth, jsonRpcCode, MAX_JSON_DEPTH } from '../../src/rpc/protocol.js';
import type { ErrorCode } from '../../src/errors.js';
import { REPO } from '../support/cli.js';
import { appClient, custody, makeDaemonFixture, startTestDaemon, type DaemonFixture, type RunningTestDaemon } from '../support/daemon.js';
import { RawDealer } from '../support/raw-dealer.js';

const FRAMES = Number(process.env['FUZZ_FRAMES'] ?? 12_000);
const MIN_FRAMES = 10_000;
const SEND_BUDGET_MS = 35_000;
const DRAIN_MS = 10_000;
const WINDOW = 256;
const MAX_FRAME = 64 * 1024;

/** Every code a fuzzed frame may legitimately be answered with. INTERNAL is not among them. */
const ALLOWED: ReadonlySet<string> = new Set<ErrorCode>([
  'PARSE_ERROR',
  'FRAME_TOO_LARGE',
  'INVALID_REQUEST',
  'METHOD_NOT_FOUND',
  'INVALID_PARAMS',
  'INVALID_ARGUMENT',
  'UNAUTHENTICATED',
  'REPLAYED',
  'FORBIDDEN',
  'RATE_LIMITED',
  'REQUEST_ID_CONFLICT',
]);

// ---------------------------------------------------------------------------------------------------
// A seeded PRNG so a failing run can be replayed.

const prng = seededPrng();
const SEED = prng.seed;
const { rnd, int, chance, pick, bytes } = prng;

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const ODD = [
  '\u0000', '\u0007', '\u001b[31m', '\n', '\r', '\t', '\u007f', '\u0085', '\u009b', // control characters
  '\u2028', '\u2029', '\ufeff', '\u200b', '\u202e', 'é', 'e\u0301', 'Ω', '中文', '🙂', '👩‍👩‍👧', 'ｆｕｌｌ', // unicode
  '\ud800', '\udfff', // lone surrogates
  '"', '\\', "'", '<script>', '%s%n', '${x}', ' ', '',
];
function str(maxLen: number, alphabet: 'alnum' | 'any' = 'any'): string {
  const n = int(0, maxLen);
  let s = '';
  while (s.length < n) s += alphabet === 'alnum' || chance(0.7) ? ALNUM[int(0, ALNUM.length - 1)] : pick(ODD);
  return s;
}
const KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'then', 'length', 'requestId', 'account', 'label', 'x', ''];

/** An object with an own property of any name, `__proto__` included (as JSON.parse would make it). */
function withKey(obj: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  return obj;
}

function junkValue(depth = 0): unknown {
  const r = int(0, depth > 3 ? 6 : 10);
  switch (r) {
    case 0: return null;
    case 1: return chance(0.5);
    case 2: return pick([0, -1, 1.5, -0, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 1e308, 5e-324, Number.MAX_SAFE_INTEGER, int(-1e9, 1e9)]);
    case 3: return str(40);
    case 4: return str(int(0, 1) === 0 ? 300 : 5_000, 'alnum');
    case 5: return [];
    case 6: return {};
    case 7: return Array.from({ length: int(1, 5) }, () => junkValue(depth + 1));
    case 8: {
      const o: Record<string, unknown> = {};
      for (let i = int(1, 4); i > 0; i--) withKey(o, chance(0.5) ? pick(KEYS) : str(12, 'alnum'), junkValue(depth + 1));
      return o;
    }
    case 9: return JSON.parse('{"__proto__":{"polluted":"yes","account":"mallory","isAdmin":true}}') as unknown;
    default: return JSON.parse('{"constructor":{"prototype":{"polluted":"yes","roles":["approver"]}}}') as unknown;
  }
}

function nested(depth: number, open = '[', close = ']'): string {
  return open.repeat(depth) + '1' + close.repeat(depth);
}
function nestedObj(depth: number): string {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

// ---------------------------------------------------------------------------------------------------
// What each frame is, and what its reply may be.

type Expect = { kind: 'result' } | { kind: 'error'; codes: ReadonlySet<string> } | { kind: 'any' };

interface FrameInfo {
  readonly category: string;
  readonly expect: Expect;
  /** A signed, valid deposit.newAddress: the only frames allowed to issue an address. */
  readonly validNewAddress?: boolean;
}

const errs = (...codes: ErrorCode[]): Expect => ({ kind: 'error', codes: new Set(codes) });

/** deposit.newAddress params as DESIGN §4 and the schema define them (an independent oracle). */
function newAddressParamsValid(p: unknown): boolean {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return false;
  const o = p as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.some((k) => k !== 'requestId' && k !== 'account' && k !== 'label')) return false;
  const printable = (s: string): boolean => !/[\u0000-\u001f\u007f-\u009f]/.test(s);
  const { requestId, account, label } = o;
  if (typeof requestId !== 'string' || !/^[A-Za-z0-9._:-]{1,64}$/.test(requestId)) return false;
  if (typeof account !== 'string' || account.length < 1 || account.length > 128 || !printable(account)) return false;
  if (label !== undefined && (typeof label !== 'string' || label.length > 256 || !printable(label))) return false;
  return true;
}

/**
 * Found by this fuzzer and fixed: params nested ~5,000 levels deep behind a well-formed (even forged)
 * authenticator made JSON.stringify in the MAC check overflow the stack (INTERNAL); frames nested deeper
 * than MAX_JSON_DEPTH are now INVALID_REQUEST before anything walks them.
 */
const DEEP_AUTHED = 'deep-params-authshape(deep)';
/**
 * Found by this fuzzer and fixed: zod's string length checks also ran on a non-string with a `length`
 * member and coerced it (TypeError → INTERNAL); parseParams now answers INVALID_PARAMS.
 */
const LENGTH_CAT = 'length-member';
const FORBIDDEN_METHODS = ['withdrawal.create', 'withdrawal.approve', 'withdrawal.list', 'unlock.submit', 'lock', 'freeze', 'audit.verify', 'audit.tail'];

t.test('fuzzing the app socket', async (t) => {
  t.comment(`FUZZ_SEED=${SEED}`);
  const f: DaemonFixture = await makeDaemonFixture();
  const d: RunningTestDaemon = await startTestDaemon(f);
  t.teardown(async () => {
    if (d.child.exitCode === null && d.child.signalCode === null) await d.stop();
  });

  const app = appClient(f, 'app');
  const before = (await app.status()).deposits.highestIssued;
  const raw = new RawDealer(f, 'app');

  let nextNum = 1_000_000; // numeric ids: frames with exact expectations (a byte flip cannot turn a string id into one)
  let nextStr = 0; // string ids: mutated frames
  let nextReq = 0;
  let validNewAddressSent = 0;
  const byId = new Map<string, FrameInfo>();
  const key = (id: unknown): string => `${typeof id}:${String(id)}`;
  // Any frame nested deeper than MAX_JSON_DEPTH is refused at decoding, whatever else it holds.
  const tooDeep = (frame: string | Buffer | undefined): boolean => frame !== undefined && jsonDepth(frame.toString()) > MAX_JSON_DEPTH;
  const reg = (id: number | string, info: FrameInfo, frame?: string | Buffer): void =>
    void byId.set(key(id), tooDeep(frame) ? { category: info.category, expect: errs('INVALID_REQUEST') } : info);

  const signedParamsFrame = (method: string, params: unknown, info: FrameInfo): string => {
    const id = nextNum++;
    const frame = raw.signed(method, params, id);
    reg(id, info, frame);
    if (info.validNewAddress === true && !tooDeep(frame)) validNewAddressSent++;
    return frame;
  };
  const validNewAddressParams = (): Record<string, unknown> => ({
    requestId: `fz-${SEED.toString(36)}-${nextReq++}`,
    account: `acct-${int(0, 50)}`,
    ...(chance(0.3) ? { label: str(40, 'alnum') } : {}),
  });
  /** A correctly signed request that the daemon should serve. */
  const validSigned = (): { method: string; params: unknown; info: FrameInfo } => {
    const r = int(0, 9);
    if (r < 5) return { method: 'deposit.newAddress', params: validNewAddressParams(), info: { category: 'valid', expect: { kind: 'result' }, validNewAddress: true } };
    if (r < 7) return { method: 'status', params: chance(0.5) ? undefined : {}, info: { category: 'valid', expect: { kind: 'result' } } };
    if (r < 8) return { method: 'deposit.lookup', params: { address: `bcrt1q${str(30, 'alnum').toLowerCase()}` }, info: { category: 'valid', expect: { kind: 'result' } } };
    return { method: 'events.since', params: { seq: int(-1, 100), limit: int(1, 1000) }, info: { category: 'valid', expect: { kind: 'result' } } };
  };

  /** A signed deposit.newAddress (or another method) whose params were mutated; the oracle says what to expect. */
  const mutatedParams = (): string => {
    const r = int(0, 19);
    if (r === 0) {
      const m = pick(FORBIDDEN_METHODS);
      return signedParamsFrame(m, chance(0.5) ? junkValue() : {}, { category: 'forbidden', expect: errs('FORBIDDEN') });
    }
    if (r === 1) {
      const m = pick(['events.nope', 'events.since.x', 'events.a1']);
      return signedParamsFrame(m, chance(0.5) ? junkValue() : {}, { category: 'unknown-method', expect: errs('METHOD_NOT_FOUND') });
    }
    if (r === 19 && chance(0.5)) {
      // A string param given an object with a `length` member (see LENGTH_BUG).
      const p = { requestId: `fz-${SEED.toString(36)}-${nextReq++}`, account: JSON.parse(pick(['{"length":{"toString":0}}', '{"length":[{"valueOf":1,"toString":2}]}', '{"length":"5"}', '{"length":200}'])) as unknown };
      return signedParamsFrame('deposit.newAddress', p, { category: LENGTH_CAT, expect: errs('INVALID_PARAMS', 'INVALID_ARGUMENT') });
    }
    if (r === 2) {
      const p = chance(0.5) ? junkValue() : withKey({}, pick(KEYS), junkValue());
      const ok = p === undefined || (p !== null && typeof p === 'object' && !Array.isArray(p) && Object.keys(p).length === 0);
      return signedParamsFrame('status', p, { category: 'status-params', expect: ok ? { kind: 'result' } : errs('INVALID_PARAMS') });
    }
    if (r === 3) {
      const p: Record<string, unknown> = { seq: chance(0.5) ? junkValue() : int(-5, 5) };
      if (chance(0.5)) p['limit'] = chance(0.5) ? junkValue() : int(-5, 2000);
      if (chance(0.2)) withKey(p, pick(KEYS), junkValue());
      const seq = p['seq'];
      const limit = p['limit'];
      const keysOk = Object.keys(p).every((k) => k === 'seq' || k === 'limit');
      const ok = keysOk && Number.isInteger(seq) && (seq as number) >= -1 && Number.isSafeInteger(seq) &&
        (limit === undefined || (Number.isInteger(limit) && (limit as number) >= 1 && (limit as number) <= 1000));
      return signedParamsFrame('events.since', p, { category: 'events-params', expect: ok ? { kind: 'result' } : errs('INVALID_PARAMS') });
    }
    // deposit.newAddress with one to three mutations
    let p: unknown = validNewAddressParams();
    for (let n = int(1, 3); n > 0; n--) {
      if (p === null || typeof p !== 'object' || Array.isArray(p)) break;
      const o = p as Record<string, unknown>;
      const field = pick(['requestId', 'account', 'label']);
      switch (int(0, 9)) {
        case 0: o[field] = junkValue(); break; // wrong type (or junk)
        case 1: delete o[field]; break;
        case 2: withKey(o, pick(KEYS.filter((k) => k !== 'requestId' && k !== 'account' && k !== 'label')), junkValue()); break; // unknown field
        case 3: o[field] = 'x'.repeat(pick([63, 64, 65, 127, 128, 129, 255, 256, 257, 10_000])); break; // length limits
        case 4: o[field] = `${field === 'requestId' ? '' : 'a'}${pick(ODD)}${str(10)}`; break; // control characters and unicode
        case 5: o[field] = pick(ODD) + str(20, 'alnum'); break;
        case 6: o[field] = ''; break;
        case 7: p = junkValue(); break; // params of the wrong shape
        case 8: o[field] = JSON.parse(nested(int(10, 2_000))) as unknown; break; // deep nesting (that a client can still sign)
        default: o['requestId'] = `${str(20, 'alnum')} ${str(5)}`; break; // a requestId outside its pattern
      }
    }
    const ok = newAddressParamsValid(p);
    if (ok && p !== null && typeof p === 'object') (p as Record<string, unknown>)['requestId'] = `fz-${SEED.toString(36)}-${nextReq++}`; // never collide
    return signedParamsFrame('deposit.newAddress', p, ok ? { category: 'mutated-valid', expect: { kind: 'result' }, validNewAddress: true } : { category: 'mutated-params', expect: errs('INVALID_PARAMS', 'INVALID_ARGUMENT') });
  };

  /** A string-id signed frame to be damaged (its expectations then only come from the global checks). */
  const damageable = (): Buffer => {
    const v = validSigned();
    return Buffer.from(raw.signed(v.method, v.params, `m${nextStr++}`));
  };

  /** An unsigned but syntactically valid authenticator: passes the shape check, fails the MAC. */
  const fakeAuth = (): Record<string, unknown> => ({ client: 'app', ts: Date.now(), nonce: randomBytes(16).toString('hex'), mac: randomBytes(32).toString('hex') });

  /** Valid JSON of the wrong shape. */
  const wrongShape = (): { frame: string | Buffer; info?: { id: number; info: FrameInfo } } => {
    const id = nextNum++;
    const withId = (info: FrameInfo) => ({ id, info });
    const r = int(0, 17);
    switch (r) {
      case 0: return { frame: JSON.stringify(Array.from({ length: int(0, 3) }, () => ({ jsonrpc: '2.0', id, method: 'status' }))) }; // batches
      case 1: return { frame: JSON.stringify(junkValue()) };
      case 2: return { frame: pick(['1', '-0', '1e999', '"str"', 'null', 'true', '[]', '{}', '""', '0x10', 'NaN', '  {} ', '\ufeff{}']) };
      case 3: return { frame: JSON.stringify({ jsonrpc: '2.0', id: pick([2 ** 53, 1e300, -(2 ** 60), 1.5, '9'.repeat(129), 'x'.repeat(5_000), [1], { a: 1 }, true, null]), method: 'status' }) }; // unusable ids
      case 4: return { frame: `{"jsonrpc":"2.0","id":${'9'.repeat(int(20, 5_000))},"method":"status"}` }; // a huge number literal
      case 5: return { frame: JSON.stringify({ jsonrpc: pick(['1.0', 2, null, '2.0 ', '']), id, method: 'status' }), info: withId({ category: 'bad-jsonrpc', expect: errs('INVALID_REQUEST') }) };
      case 6: return { frame: `{"jsonrpc":"2.0","id":${id},"method":"status","__proto__":{"isAdmin":true,"roles":["approver"]}}`, info: withId({ category: 'proto-top', expect: errs('INVALID_REQUEST') }) };
      case 7: return { frame: `{"jsonrpc":"2.0","id":${id},"method":"status","constructor":{"prototype":{"isAdmin":true}}}`, info: withId({ category: 'constructor-top', expect: errs('INVALID_REQUEST') }) };
      case 8: return { frame: JSON.stringify({ jsonrpc: '2.0', id, method: pick(['', 'Status', 'status ', 'a..b', '.status', 'status.', '__proto__', 'constructor', 'x'.repeat(65), 'deposit/newAddress', 'toString', 'hasOwnProperty', 'valueOf', 'ü']), auth: fakeAuth() }), info: withId({ category: 'bad-method', expect: errs('INVALID_REQUEST', 'UNAUTHENTICATED', 'METHOD_NOT_FOUND', 'FORBIDDEN') }) };
      case 9: return { frame: JSON.stringify({ jsonrpc: '2.0', id, method: 'status', auth: junkValue() }), info: withId({ category: 'bad-auth', expect: errs('UNAUTHENTICATED') }) };
      case 10: return { frame: JSON.stringify({ jsonrpc: '2.0', id, method: 'deposit.newAddress', params: validNewAddressParams(), auth: { ...fakeAuth(), client: pick(['app', 'watcher', 'payer', 'nobody', 'APP', '']) } }), info: withId({ category: 'forged-mac', expect: errs('UNAUTHENTICATED') }) };
      case 11: return { frame: JSON.stringify({ jsonrpc: '2.0', id, method: 'status', auth: { ...fakeAuth(), ts: pick([0, -1, Date.now() - 3_600_000, Date.now() + 3_600_000, 1e300, 1.5, '1']) } }), info: withId({ category: 'bad-ts', expect: errs('UNAUTHENTICATED') }) };
      case 12: return { frame: JSON.stringify({ jsonrpc: '2.0', id, method: 'status', operator: 'root' }), info: withId({ category: 'operator', expect: errs('INVALID_REQUEST') }) };
      case 13: return { frame: `{"jsonrpc":"2.0","id":${id},"id":"dup","method":"status","method":"lock"}` }; // duplicate keys: the last one wins in JSON.parse
      case 14: return { frame: nested(int(1_000, 30_000), pick(['[', '{"a":[']), pick([']', ']}'])) }; // deep nesting, top level
      case 15: return { frame: `{"jsonrpc":"2.0","id":${id},"method":"status","params":${nested(int(100, 30_000))}}`, info: withId({ category: 'deep-unsigned', expect: errs('UNAUTHENTICATED') }) };
      case 16: return { frame: `{"jsonrpc":"2.0","id":${id},"method":"status","auth":${nestedObj(int(100, 8_000))}}`, info: withId({ category: 'deep-auth', expect: errs('UNAUTHENTICATED') }) };
      default: {
        // Deep params behind a well-formed (but forged) authenticator: reaches the MAC computation.
        const depth = int(100, 20_000);
        const a = fakeAuth();
        return {
          frame: `{"jsonrpc":"2.0","id":${id},"method":"deposit.newAddress","params":{"requestId":"d","account":${nested(depth)}},"auth":${JSON.stringify(a)}}`,
          info: withId({ category: depth > 3_000 ? DEEP_AUTHED : 'deep-params-authshape', expect: errs('UNAUTHENTICATED', 'INVALID_PARAMS', 'INVALID_REQUEST') }),
        };
      }
    }
  };

  const randomFrame = (): Buffer => {
    const r = rnd();
    if (r < 0.05) return Buffer.alloc(0);
    if (r < 0.1) return bytes(pick([MAX_FRAME - 1, MAX_FRAME, MAX_FRAME + 1]));
    if (r < 0.16) return bytes(int(MAX_FRAME - 2_000, 70_000));
    if (r < 0.25) return bytes(int(4_096, MAX_FRAME));
    if (r < 0.5) return bytes(int(65, 4_096));
    return bytes(int(1, 64));
  };

  // ---- the generator: one message (one or more frames) at a time -----------------------------------
  const counts = new Map<string, number>();
  /** Returns the frames of one message, or for a replay the same one-frame message twice. */
  const next = (): { frames: Array<Buffer | string>; twice: boolean } => {
    const r = rnd();
    let cat: string;
    let frames: Array<Buffer | string>;
    if (r < 0.15) {
      cat = 'random-bytes';
      frames = [randomFrame()];
    } else if (r < 0.27) {
      cat = 'truncated';
      const b = damageable();
      frames = [b.subarray(0, int(0, b.length - 1))];
    } else if (r < 0.42) {
      cat = 'byte-flips';
      const original = damageable();
      const b = Buffer.from(original);
      for (let n = int(1, 4); n > 0; n--) {
        const i = int(0, b.length - 1);
        b[i] = chance(0.5) ? (b[i] as number) ^ (1 << int(0, 7)) : int(0, 255);
      }
      // Flips can cancel out (or write the byte that was there): a frame left intact is not a damaged one.
      if (b.equals(original)) {
        const i = int(0, b.length - 1);
        b[i] = (b[i] as number) ^ 0x01;
      }
      frames = [b];
    } else if (r < 0.6) {
      cat = 'wrong-shape';
      const w = wrongShape();
      if (w.info !== undefined) reg(w.info.id, w.info.info, w.frame);
      frames = [w.frame];
    } else if (r < 0.88) {
      cat = 'mutated-params';
      frames = [mutatedParams()];
    } else if (r < 0.94) {
      cat = 'valid';
      const v = validSigned();
      frames = [signedParamsFrame(v.method, v.params, v.info)];
    } else if (r < 0.985) {
      cat = 'multi-frame';
      const first = chance(0.5) ? (() => {
        const v = validSigned();
        // Extra frames are refused before authentication: no address, and the nonce stays unused.
        return signedParamsFrame(v.method, v.params, { category: 'multi-frame', expect: errs('INVALID_REQUEST') });
      })() : randomFrame();
      frames = [first];
      for (let n = int(1, 4); n > 0; n--) frames.push(chance(0.3) ? Buffer.alloc(0) : chance(0.5) ? bytes(int(1, 2_000)) : raw.signed('status', undefined, `m${nextStr++}`));
    } else {
      cat = 'replay';
      const id = nextNum++;
      reg(id, { category: 'replay', expect: { kind: 'any' } }); // the first copy is answered, the second REPLAYED
      const frame = raw.signed('status', undefined, id);
      counts.set(cat, (counts.get(cat) ?? 0) + 1);
      return { frames: [frame], twice: true };
    }
    counts.set(cat, (counts.get(cat) ?? 0) + 1);
    return { frames, twice: false };
  };

  // ---- pipelined send / receive ------------------------------------------------------------------
  const problems: string[] = [];
  const problem = (s: string): void => {
    if (problems.length < 50) problems.push(s.length > 400 ? `${s.slice(0, 400)}…` : s);
  };
  /** Replies that hit DEEP_BUG (see below), kept apart so the rest of the run stays strict. */
  const knownBug: string[] = [];
  const codeCounts = new Map<string, number>();
  const perCategoryCodes = new Map<string, Map<string, number>>();
  const stackLike = new RegExp(`\\n\\s+at |\\bat [\\w.<>]+ \\(|node:internal|file://|${REPO.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}|/build/src/|\\.[jt]s:\\d+`);
  let sent = 0;
  let received = 0;
  let results = 0;
  let issuedByFuzz = 0;
  let replayedSeen = 0;
  const seenIds = new Set<string>();

  const checkReply = (msg: Buffer[]): void => {
    received++;
    if (msg.length !== 1) problem(`reply of ${msg.length} frames`);
    const text = (msg[0] ?? Buffer.alloc(0)).toString('utf8');
    if (stackLike.test(text)) problem(`stack trace or path in reply: ${text}`);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      problem(`reply is not JSON: ${text}`);
      return;
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return problem(`reply is not an object: ${text}`);
    const o = doc as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => !['jsonrpc', 'id', 'result', 'error'].includes(k));
    if (o['jsonrpc'] !== '2.0' || extra.length > 0 || !('id' in o)) return problem(`malformed envelope: ${text}`);
    const id = o['id'];
    if (id !== null && typeof id !== 'string' && typeof id !== 'number') return problem(`bad reply id: ${text}`);
    if (('result' in o) === ('error' in o)) return problem(`needs exactly one of result and error: ${text}`);
    const info = id === null ? undefined : byId.get(key(id));
    const cat = info?.category ?? (id === null ? '(no id)' : '(string id)');
    if ('result' in o) {
      results++;
      const codes = perCategoryCodes.get(cat) ?? new Map<string, number>();
      codes.set('result', (codes.get('result') ?? 0) + 1);
      perCategoryCodes.set(cat, codes);
      if (info === undefined) return problem(`a result for a frame that was damaged or unsigned: ${text}`);
      if (info.expect.kind === 'error') return problem(`${info.category}: expected an error (${[...info.expect.codes].join('|')}), got a result: ${text}`);
      const r = o['result'];
      if (r !== null && typeof r === 'object' && 'address' in r && 'created' in r) {
        if (!info.validNewAddress) problem(`an address was issued for a frame that is not a valid deposit.newAddress (${info.category}): ${text}`);
        else if ((r as { created: unknown }).created === true) issuedByFuzz++;
      }
      if (seenIds.has(key(id))) problem(`second result for id ${String(id)}`);
      seenIds.add(key(id));
      return;
    }
    const e = o['error'];
    if (e === null || typeof e !== 'object' || Array.isArray(e)) return problem(`error is not an object: ${text}`);
    const err = e as Record<string, unknown>;
    const data = err['data'] as Record<string, unknown> | undefined;
    const code = data !== null && typeof data === 'object' ? data['code'] : undefined;
    if (
      !Number.isInteger(err['code']) || typeof err['message'] !== 'string' || (err['message'] as string).length === 0 || typeof code !== 'string' ||
      Object.keys(err).some((k) => !['code', 'message', 'data'].includes(k)) || Object.keys(data ?? {}).some((k) => k !== 'code' && k !== 'details')
    ) return problem(`malformed error: ${text}`);
    codeCounts.set(code, (codeCounts.get(code) ?? 0) + 1);
    const codes = perCategoryCodes.get(cat) ?? new Map<string, number>();
    codes.set(code, (codes.get(code) ?? 0) + 1);
    perCategoryCodes.set(cat, codes);
    if (code === 'REPLAYED') replayedSeen++;
    if (code === 'INTERNAL' && (cat === DEEP_AUTHED || cat === LENGTH_CAT)) return void knownBug.push(`${cat}: ${text}`);
    if (!ALLOWED.has(code)) return problem(`code ${code} is not in the allowed set (${cat}): ${text}`);
    if (err['code'] !== jsonRpcCode(code as ErrorCode)) problem(`JSON-RPC code ${String(err['code'])} does not match ${code}: ${text}`);
    if (info !== undefined && info.expect.kind === 'result') problem(`${info.category}: expected a result, got ${code}: ${text}`);
    if (info !== undefined && info.expect.kind === 'error' && !info.expect.codes.has(code)) problem(`${info.category}: expected ${[...info.expect.codes].join('|')}, got ${code}: ${text}`);
  };

  let wake: (() => void) | undefined;
  let receiving = true;
  const receiver = (async () => {
    let idleSince = Date.now();
    while (receiving) {
      let msg: Buffer[];
      try {
        msg = await raw.socket.receive();
      } catch {
        // RawDealer's 3 s receive timeout: nothing came; give up only once sending is done and nothing is due.
        if (!receiving || Date.now() - idleSince > DRAIN_MS) break;
        continue;
      }
      idleSince = Date.now();
      checkReply(msg);
      wake?.();
    }
  })();

  const started = Date.now();
  let messages = 0;
  while (messages < FRAMES && Date.now() - started < SEND_BUDGET_MS) {
    while (sent - received >= WINDOW) await new Promise<void>((r) => (wake = r));
    const { frames, twice } = next();
    for (let n = twice ? 2 : 1; n > 0; n--) {
      // One send at a time (zeromq 6 allows one pending send per socket).
      await raw.send(...frames);
      sent++;
    }
    messages++;
  }
  const sendMs = Date.now() - started;
  const drainDeadline = Date.now() + DRAIN_MS;
  while (received < sent && Date.now() < drainDeadline) await new Promise((r) => setTimeout(r, 20));
  receiving = false;
  await receiver;
  raw.close();

  t.comment(`sent ${messages} messages (${sent} sends) in ${sendMs} ms; ${received} replies, ${results} results; by category: ${JSON.stringify(Object.fromEntries(counts))}`);
  t.comment(`error codes: ${JSON.stringify(Object.fromEntries(codeCounts))}`);
  for (const [cat, codes] of perCategoryCodes) t.comment(`  ${cat}: ${JSON.stringify(Object.fromEntries(codes))}`);

  t.ok(messages >= MIN_FRAMES || FRAMES < MIN_FRAMES, `at least ${MIN_FRAMES} messages sent within the time budget (sent ${messages})`);
  t.equal(received, sent, 'every frame got exactly one reply');
  t.same(problems, [], 'every reply well-formed, with an allowed code, the expected outcome, and no stack trace or path');
  t.ok(replayedSeen >= (counts.get('replay') ?? 0), 'each replayed frame was refused as REPLAYED');
  t.ok(d.child.exitCode === null && d.child.signalCode === null, 'the daemon is still running');
  t.doesNotThrow(() => process.kill(d.child.pid as number, 0), 'the daemon process exists');

  // Afterwards: the normal client works, issuance is exactly what the valid frames asked for, and the CLI works.
  const after = await app.status();
  t.equal(after.deposits.highestIssued - before, validNewAddressSent, `addresses issued (${after.deposits.highestIssued - before}) = valid signed deposit.newAddress frames sent (${validNewAddressSent})`);
  t.equal(issuedByFuzz, validNewAddressSent, 'each valid newAddress frame was answered with a new address');
  const a = await app.newAddress({ requestId: `after-fuzz-${SEED}`, account: 'after' });
  t.match(a, { address: /^bcrt1q/, created: true, index: after.deposits.highestIssued + 1 }, 'a normal deposit.newAddress succeeds');
  t.equal(Object.getPrototypeOf({}), Object.prototype);
  const cli = await custody(f, ['status']);
  t.equal(cli.code, 0, cli.stderr);
  t.match(cli.stdout, /wallet: +LOCKED/);
  await app.close();
  t.notMatch(d.stderr(), /TypeError|ReferenceError|unhandled|uncaught/i, 'no unexpected exceptions in the daemon log');
  const internal = [...new Set(d.stderr().match(/custodyd: internal error in [^\n]*/g) ?? [])];
  t.same(internal.filter((l) => !/Maximum call stack size exceeded|Cannot convert object to primitive value/.test(l)), [], 'the daemon logged no internal errors (other than the known ones)');
  t.comment(`known-bug replies: ${knownBug.length}`);
  t.same(knownBug.slice(0, 3), [], 'deeply nested params behind a well-formed authenticator, and {length: …} for a string param, are refused with an allowed code, not INTERNAL');
  t.same(internal, [], 'no internal errors at all in the daemon log');
});

t.test('the known bugs, one frame each', async (t) => {
  const f = await makeDaemonFixture();
  const d = await startTestDaemon(f);
  t.teardown(async () => {
    if (d.child.exitCode === null && d.child.signalCode === null) await d.stop();
  });
  const raw = new RawDealer(f, 'app');
  const auth = { client: 'app', ts: Date.now(), nonce: randomBytes(16).toString('hex'), mac: '0'.repeat(64) };
  await raw.send(`{"jsonrpc":"2.0","id":1,"method":"status","params":${nested(10_000)},"auth":${JSON.stringify(auth)}}`);
  const r = await raw.reply();
  t.equal(r.id, 1);
  t.not(r.error?.data.code, undefined, 'refused');
  t.ok(r.error !== undefined && ALLOWED.has(r.error.data.code), `refused with an allowed code (got ${r.error?.data.code})`);
  await raw.send(raw.signed('deposit.newAddress', JSON.parse('{"requestId":"len-1","account":{"length":{"toString":0}}}'), 3));
  const len = await raw.reply();
  t.ok(len.error !== undefined && ALLOWED.has(len.error.data.code), `a signed deposit.newAddress with account {"length":{"toString":0}} is refused with an allowed code (got ${len.error?.data.code})`);
  await raw.send(raw.signed('status', undefined, 2));
  t.equal(((await raw.reply()).result as { network?: string } | undefined)?.network, 'regtest', 'and the daemon keeps serving');
  raw.close();
});
