import t from 'tap';
import { METHODS, parseParams, roleAllows, type MethodSpec } from '../../../src/rpc/methods.js';
import { seededPrng } from '../../support/prng.js';

const METHOD = 'deposit.newAddress';
const spec = METHODS[METHOD] as MethodSpec;
const schemaOnly: MethodSpec = { ...spec, accept: undefined };

/** parseParams' outcome as data: the value, or the error's code, message and details. */
function outcome(s: MethodSpec, params: unknown): unknown {
  try {
    return { ok: parseParams(METHOD, s, params) };
  } catch (err) {
    const e = err as { code: string; message: string; details?: unknown };
    return { code: e.code, message: e.message, details: e.details };
  }
}

const s64 = 'r'.repeat(64);
const CORPUS: unknown[] = [
  { requestId: 'order-1', account: 'alice' },
  { requestId: 'order-1', account: 'alice', label: 'first' },
  { requestId: 'order-1', account: 'alice', label: '' },
  { account: 'alice', requestId: 'a.b_c:d-e' },
  { requestId: s64, account: 'a'.repeat(128), label: 'l'.repeat(256) },
  { requestId: 'x', account: 'ünï ✓', label: '\u0000' },
  // Everything below is refused, by the schema's own message.
  { requestId: `${s64}r`, account: 'alice' },
  { requestId: '', account: 'alice' },
  { requestId: 'bad id', account: 'alice' },
  { requestId: 7, account: 'alice' },
  { requestId: 'ok', account: '' },
  { requestId: 'ok', account: 'a'.repeat(129) },
  { requestId: 'ok', account: 5 },
  { requestId: 'ok', account: 'a', label: 'l'.repeat(257) },
  { requestId: 'ok', account: 'a', label: null },
  { requestId: 'ok', account: 'a', label: 1 },
  { requestId: 'ok' },
  { account: 'a' },
  {},
  { requestId: 'ok', account: 'a', extra: 1 },
  { requestId: 'ok', account: 'a', label: 'x', extra: 1 },
  JSON.parse('{"requestId":"ok","account":"a","__proto__":{"x":1}}'),
  Object.assign(Object.create({ inherited: 1 }) as object, { requestId: 'ok', account: 'a' }),
  Object.assign(Object.create(null) as object, { requestId: 'ok', account: 'a' }),
  ['ok', 'a'],
  'params',
  null,
  undefined,
  42,
  { requestId: { length: 3 }, account: 'a' },
  { requestId: 'ok', account: ['a'] },
];

t.test('deposit.newAddress: the hand check accepts only what the schema accepts, with the same value; errors are the schema\'s', async (t) => {
  for (const params of CORPUS) t.same(outcome(spec, params), outcome(schemaOnly, params), JSON.stringify(params) ?? String(params));
});

t.test('deposit.newAddress: the same for random mutations of valid params', async (t) => {
  const prng = seededPrng();
  const { pick } = prng;
  const values: unknown[] = ['', 'ok', 'bad id', s64, `${s64}x`, 'a'.repeat(128), 'a'.repeat(129), 'l'.repeat(256), 'l'.repeat(257), 0, -1, null, true, [], {}, '\u2028'];
  for (let i = 0; i < 2_000; i++) {
    const p: Record<string, unknown> = {};
    for (const k of ['requestId', 'account', 'label', 'extra']) if (prng.chance(k === 'extra' ? 0.1 : 0.8)) p[k] = pick(values);
    const a = outcome(spec, p);
    const b = outcome(schemaOnly, p);
    if (JSON.stringify(a) !== JSON.stringify(b)) t.same(a, b, `${JSON.stringify(p)} (FUZZ_SEED=${prng.seed})`);
  }
  t.pass('2,000 random params agree');
});

t.test('roleAllows: exact names and "prefix." entries, nothing else', async (t) => {
  t.ok(roleAllows(['deposits'], 'deposit.newAddress'));
  t.ok(roleAllows(['monitor', 'deposits'], 'events.since'));
  t.notOk(roleAllows(['monitor'], 'deposit.newAddress'));
  t.notOk(roleAllows([], 'status'));
  t.notOk(roleAllows(['deposits'], 'deposit.newAddressX'));
  t.notOk(roleAllows(['deposits'], 'events'));
});
