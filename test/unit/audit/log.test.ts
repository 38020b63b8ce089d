import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { Store, type BatchOp } from '../../../src/store/db.js';
import { AUDIT } from '../../../src/store/layout.js';
import { fixture } from '../../support/vectors.js';
import { AuditLog, canonicalJson, recordHash, tailAudit, verifyAudit, ZERO_HASH, type AuditRecord } from '../../../src/audit/log.js';

const identity = { network: 'regtest', descriptorChecksum: 'lxek0ef2' } as const;
const newDir = (): string => join(mkdtempSync(join(tmpdir(), 'custody-audit-')), 'data');
/** A clock that ticks one second per call from a fixed start, so times are known and distinct. */
const ticking = (start = Date.UTC(2025, 0, 2, 3, 4, 5)): (() => Date) => {
  let i = 0;
  return () => new Date(start + 1000 * i++);
};

async function withLog(dir: string, records: number): Promise<AuditRecord[]> {
  const store = await Store.open(dir, identity);
  const log = await AuditLog.open(store, ticking());
  const out: AuditRecord[] = [];
  for (let i = 0; i < records; i++) {
    out.push(await log.appendNow(i % 2 === 0 ? 'operator:alice' : 'client:app1', 'withdrawal.create', { id: `w${i}`, amountSats: String(1000n * BigInt(i)), n: i }));
  }
  await store.close();
  return out;
}

/** What an attacker with LevelDB tools does: reads and writes rows directly, daemon stopped. */
async function tamper(dir: string, fn: (db: Level<string, string>) => Promise<void>): Promise<void> {
  const db = new Level<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await db.open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

async function verifyDir(dir: string): Promise<Awaited<ReturnType<typeof verifyAudit>>> {
  const store = await Store.open(dir, identity);
  try {
    return await verifyAudit(store);
  } finally {
    await store.close();
  }
}

t.test('a chain of appended records links genesis to head and verifies', async (t) => {
  const dir = newDir();
  const store = await Store.open(dir, identity);
  const log = await AuditLog.open(store, ticking());
  t.same(log.head(), { seq: -1, hash: ZERO_HASH }, 'an empty log has head seq -1 and the zero hash');
  t.same(await verifyAudit(store), { ok: true, count: 0, head: { seq: -1, hash: ZERO_HASH } });
  const a = await log.appendNow('system', 'daemon.start', { version: '0.1.0' });
  const b = await log.appendNow('operator:alice', 'freeze', { reason: 'incident 42', at: null, flags: [true, false] });
  t.equal(a.seq, 0);
  t.equal(a.prevHash, ZERO_HASH);
  t.equal(a.time, '2025-01-02T03:04:05.000Z');
  t.equal(b.seq, 1);
  t.equal(b.prevHash, a.hash);
  t.match(a.hash, /^[0-9a-f]{64}$/);
  t.same(log.head(), { seq: 1, hash: b.hash });
  // The hash is recomputable from the stored JSON alone, as an outside verifier would.
  const stored = JSON.parse((await store.get(AUDIT.record(1)))!) as AuditRecord;
  const { hash, ...fields } = stored;
  const text = canonicalJson(fields);
  t.equal(text, `{"action":"freeze","actor":"operator:alice","details":{"at":null,"flags":[true,false],"reason":"incident 42"},"prevHash":"${a.hash}","seq":1,"time":"2025-01-02T03:04:06.000Z"}`);
  t.equal(createHash('sha256').update(text, 'utf8').digest('hex'), hash);
  const progress: number[] = [];
  t.same(await verifyAudit(store, { onProgress: (s) => progress.push(s) }), { ok: true, count: 2, head: { seq: 1, hash: b.hash } });
  t.same(progress, [1]);
  t.same(await verifyAudit(store, { from: 1 }), { ok: true, count: 1, head: { seq: 1, hash: b.hash } }, 'verification can start mid-chain');
  await store.close();
});

t.test('records survive a reopen and the head is recovered from the last record', async (t) => {
  const dir = newDir();
  const written = await withLog(dir, 5);
  const store = await Store.open(dir, identity);
  const log = await AuditLog.open(store, ticking(Date.UTC(2026, 0, 1)));
  t.same(log.head(), { seq: 4, hash: written[4]!.hash });
  const next = await log.appendNow('system', 'daemon.start');
  t.equal(next.seq, 5);
  t.equal(next.prevHash, written[4]!.hash);
  t.same((await log.tail(3)).map((r) => r.seq), [3, 4, 5], 'tail is oldest first');
  t.same((await log.range(1, 2)).map((r) => r.details['id']), ['w1', 'w2']);
  t.same(await log.tail(100), [...written, next], 'stored records read back equal to what append returned');
  t.equal((await verifyAudit(store)).ok, true);
  t.equal(await AuditLog.open(store), log, 'one AuditLog per store: a second head would fork the chain');
  await store.close();
});

t.test('appends from concurrent writers committed through Store.commit in call order verify', async (t) => {
  const dir = newDir();
  const store = await Store.open(dir, identity);
  const log = await AuditLog.open(store, ticking());
  const commits: Array<Promise<void>> = [];
  for (let i = 0; i < 2_000; i++) {
    // Each writer's state op and its record go in one batch; none awaits the others (group commit).
    const { ops } = log.append(`client:app${i % 7}`, 'deposit.new_address', { index: i });
    const state: BatchOp = { type: 'put', key: `test!${i}`, value: String(i) };
    commits.push(store.commit([state, ...ops]));
    if (i % 3 === 0) commits.push(log.appendNow('system', 'tick', { i }).then(() => undefined));
  }
  await Promise.all(commits);
  const r = await verifyAudit(store);
  t.same(r.ok && r.count, 2_000 + 667);
  t.same(r.ok && r.head, log.head());
  await store.close();
});

t.test('verification names the first broken record, whatever the attack', async (t) => {
  const cases: Array<{ name: string; attack: (db: Level<string, string>, recs: AuditRecord[]) => Promise<void>; brokenAt: number; reason: RegExp }> = [
    {
      name: 'details changed in place',
      attack: async (db) => {
        const v = (await db.get(AUDIT.record(3)))!;
        await db.put(AUDIT.record(3), v.replace('"w3"', '"w9"'));
      },
      brokenAt: 3,
      reason: /^hash mismatch: the stored hash does not match/,
    },
    {
      name: 'a record deleted',
      attack: (db) => db.del(AUDIT.record(4)),
      brokenAt: 4,
      reason: /record 4 is missing \(the next stored record is 5\)/,
    },
    {
      name: 'a record rewritten and re-hashed consistently',
      attack: async (db, recs) => {
        const r = recs[2]!;
        const fields = { seq: r.seq, time: r.time, actor: r.actor, action: r.action, details: { ...r.details, amountSats: '99999999' }, prevHash: r.prevHash };
        await db.put(AUDIT.record(2), JSON.stringify({ ...fields, hash: recordHash(fields) }));
      },
      // Record 2 is self-consistent now; the break shows where record 3 no longer links to it.
      brokenAt: 3,
      reason: /^prevHash does not link to record 2/,
    },
    {
      name: 'a value that is not JSON',
      attack: (db) => db.put(AUDIT.record(5), '{"seq":5,'),
      brokenAt: 5,
      reason: /^unparsable record: the stored value is not JSON/,
    },
    {
      name: 'a record copied under the next key',
      attack: async (db) => db.put(AUDIT.record(6), (await db.get(AUDIT.record(5)))!),
      brokenAt: 6,
      reason: /^key\/seq mismatch: stored under the key of record 6 but says seq 5/,
    },
    {
      name: 'a float smuggled into details with a matching hash',
      attack: async (db, recs) => {
        const r = recs[1]!;
        const fields = { ...r, details: { ...r.details, n: 1.5 } };
        // Hashed the way a careless tool would (plain JSON.stringify), since canonical.ts refuses floats.
        const hash = createHash('sha256').update(JSON.stringify(fields)).digest('hex');
        await db.put(AUDIT.record(1), JSON.stringify({ ...fields, hash }));
      },
      brokenAt: 1,
      reason: /^unparsable record: .*details\.n: numbers must be safe integers/,
    },
    {
      name: 'two breaks: the earlier is reported',
      attack: async (db) => {
        await db.del(AUDIT.record(6));
        await db.put(AUDIT.record(2), 'garbage');
      },
      brokenAt: 2,
      reason: /not JSON/,
    },
  ];
  for (const c of cases) {
    const dir = newDir();
    const recs = await withLog(dir, 8);
    await tamper(dir, (db) => c.attack(db, recs));
    const r = await verifyDir(dir);
    t.equal(r.ok, false, c.name);
    if (!r.ok) {
      t.equal(r.brokenAt, c.brokenAt, `${c.name}: broken at`);
      t.match(r.reason, c.reason, `${c.name}: reason`);
      t.equal(r.count, c.brokenAt, `${c.name}: the records before it verified`);
    }
  }
});

t.test('the log refuses to append onto a last record that does not verify, but tail still reads it', async (t) => {
  const dir = newDir();
  await withLog(dir, 3);
  await tamper(dir, async (db) => db.put(AUDIT.record(2), (await db.get(AUDIT.record(2)))!.replace('"w2"', '"wX"')));
  const store = await Store.open(dir, identity);
  await t.rejects(AuditLog.open(store), { code: 'AUDIT_BROKEN', message: /last audit record .*hash mismatch/ });
  t.same((await tailAudit(store, 2)).map((r) => r.details['id']), ['w1', 'wX']);
  await store.close();
});

t.test('details that look like secrets are refused without echoing them, and consume no seq', async (t) => {
  const store = await Store.open(newDir(), identity);
  const log = await AuditLog.open(store, ticking());
  // Published test data only: BIP39's English vectors and BIP32's test-vector xprvs (test/fixtures, with provenance), and the WIF of private key 1.
  const mnemonic = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
  const xprvs = fixture<{ vectors: Array<{ chains: Array<{ xprv: string }> }> }>('bip32-vectors.json').vectors.flatMap((v) => v.chains.map((c) => c.xprv));
  const xprv = xprvs[0]!;
  const wif = 'KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn';
  // The same key uncompressed (mainnet) and compressed for testnet/regtest.
  const uncompressedWif = '5HpHagT65TZzG1PH3CSu63k8DbpvD8s5ip4nEB3kEsreAnchuDf';
  const testnetWif = 'cMahea7zqjxrtgAbB7LSGbcQUr1uX1ojuat9jZodMN87JcbXMTcA';
  const bip39 = fixture<{ vectors: Array<{ mnemonic: string }> }>('bip39-vectors.json').vectors;
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ passphrase: 'hunter2' }, /details\.passphrase: refused, the field name/],
    [{ nested: { list: [{ mnemonicWords: 'x' }] } }, /details\.nested\.list\[0\]\.mnemonicWords: refused/],
    [{ custodianShare: 1 }, /details\.custodianShare: refused/],
    [{ SeedHex: 'ab' }, /details\.SeedHex: refused/],
    [{ privateKey: 'ab' }, /details\.privateKey: refused/],
    [{ note: mnemonic }, /details\.note: refused, the value looks like a BIP39 mnemonic/],
    [{ note: `please keep ${mnemonic.toUpperCase()} safe` }, /looks like a BIP39 mnemonic/],
    [{ words: mnemonic.split(' ') }, /details\.words: refused, the array looks like the words/],
    [{ descriptor: `wpkh(${xprv}/84h/0h/0h/0/*)` }, /details\.descriptor: refused, the value looks like an extended private key/],
    [{ tprvLike: 'x' }, /details\.tprvLike: refused/],
    [{ key: wif }, /details\.key: refused, the value looks like a WIF private key/],
    [{ note: `imported (${wif}) by mistake` }, /details\.note: refused, the value looks like a WIF private key/],
    [{ key: uncompressedWif }, /details\.key: refused, the value looks like a WIF private key/],
    [{ key: testnetWif }, /details\.key: refused, the value looks like a WIF private key/],
    [{ keys: xprvs.map((x) => `[note] ${x.replace(/^xprv/, 'tprv')}`) }, /details\.keys\[0\]: refused, the value looks like an extended private key/],
    ...xprvs.map((x): [Record<string, unknown>, RegExp] => [{ k: x }, /details\.k: refused, the value looks like an extended private key/]),
    ...bip39.map((v): [Record<string, unknown>, RegExp] => [{ m: v.mnemonic }, /details\.m: refused, the value looks like a BIP39 mnemonic/]),
  ];
  for (const [details, message] of cases) {
    const err = await log.appendNow('operator:alice', 'test.secret', details).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    t.equal(err?.code, 'INTERNAL', JSON.stringify(Object.keys(details)));
    t.match(err?.message, message);
    t.notMatch(err?.message, /hunter2|abandon|ABANDON|[xt]prv[1-9A-Za-z]{8}|KwDiBf89/, 'the value is not echoed');
  }
  t.same(log.head(), { seq: -1, hash: ZERO_HASH }, 'nothing was appended');
  // Prose, identifiers and public data pass: a freeze reason mid-incident must not be refused.
  const ok = await log.appendNow('operator:alice', 'freeze', {
    reason: 'the app server at 10.0.0.7 sent twelve withdrawals in one minute, all to new addresses; freezing until we know why',
    txid: 'a'.repeat(64),
    // Hex whose zeros cut out a 51-character base58 run from 5 and a 52-character one from c: the shapes of
    // a WIF key, without its checksum. (A payout naming such a txid was refused for ever.)
    txids: [`05${'a'.repeat(50)}0${'b'.repeat(12)}`, `0c${'1'.repeat(51)}0${'2'.repeat(11)}`, `${'9'.repeat(51)}0${'e'.repeat(12)}`],
    address: 'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080',
    xpub: 'tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M',
  });
  t.equal(ok.seq, 0);
  await store.close();
});

t.test('values outside the canonical subset and malformed actors or actions are refused', async (t) => {
  const store = await Store.open(newDir(), identity);
  const log = await AuditLog.open(store, ticking());
  const cyclic: Record<string, unknown> = {};
  cyclic['self'] = cyclic;
  const bad: Array<[string, string, unknown, RegExp]> = [
    ['system', 'x', { amount: 1.5 }, /details\.amount: numbers must be safe integers/],
    ['system', 'x', { amount: 10n }, /details\.amount: bigint is not allowed/],
    ['system', 'x', { n: Number.MAX_SAFE_INTEGER + 1 }, /details\.n: numbers must be safe integers/],
    ['system', 'x', { n: Number.NaN }, /details\.n: numbers must be/],
    ['system', 'x', { u: undefined }, /details\.u: undefined is not allowed/],
    ['system', 'x', { at: new Date(0) }, /details\.at: only plain objects/],
    ['system', 'x', { b: Buffer.from('x') }, /details\.b: only plain objects/],
    ['system', 'x', { s: 'bad \ud800 surrogate' }, /details\.s: string holds an unpaired/],
    ['system', 'x', cyclic, /details\.self: refers to itself/],
    ['system', 'x', { big: 'x'.repeat(17_000) }, /more than the 16384-byte limit/],
    ['Operator:alice', 'x', {}, /actor: expected/],
    ['operator alice', 'x', {}, /actor: expected/],
    ['', 'x', {}, /actor: expected/],
    ['system', 'Unlock.submit', {}, /action: expected/],
    ['system', 'unlock-submit', {}, /action: expected/],
    ['system', 'x'.repeat(65), {}, /action: expected/],
    ['system', 'x', [1, 2], /details: expected a plain object/],
  ];
  for (const [actor, action, details, message] of bad) {
    t.throws(() => log.append(actor, action, details as Record<string, unknown>), { code: 'INTERNAL', message }, String(message));
  }
  t.same(log.head().seq, -1);
  for (const actor of ['client:app1', 'operator:alice', 'custodian:ops1', 'system', 'operator:bob@host-1']) t.doesNotThrow(() => log.append(actor, 'unlock.submit', {}));
  await store.close();
});

t.test('the canonical hash does not depend on key order, and a caller mutating details later changes nothing', async (t) => {
  const fields = (details: Record<string, unknown>): Parameters<typeof recordHash>[0] => ({ seq: 7, time: '2025-01-01T00:00:00.000Z', actor: 'system', action: 'x', details, prevHash: ZERO_HASH });
  const a = recordHash(fields({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'é' } }));
  const b = recordHash(fields({ a: { c: 'é', d: [1, { y: 2, z: 1 }] }, b: 1 }));
  t.equal(a, b);
  t.not(recordHash(fields({ a: { c: 'é', d: [{ y: 2, z: 1 }, 1] }, b: 1 })), a, 'array order does count');
  t.equal(canonicalJson({ b: -0, a: 'line\nbreak "q" \u0001 ✓', c: [] }), '{"a":"line\\nbreak \\"q\\" \\u0001 ✓","b":0,"c":[]}', 'RFC 8785 escapes and no whitespace');
  t.equal(canonicalJson({ '\u00e9': 1, z: 2, Z: 3, '10': 4, '9': 5 }), '{"10":4,"9":5,"Z":3,"z":2,"é":1}', 'keys sort by UTF-16 code unit');

  const store = await Store.open(newDir(), identity);
  const log = await AuditLog.open(store, ticking());
  const details = { list: ['a'] };
  const { record, ops } = log.append('system', 'x', details);
  details.list.push('b');
  await store.commit(ops);
  t.same(record.details, { list: ['a'] });
  t.ok(Object.isFrozen(record.details['list']), 'records handed out are frozen');
  t.equal((await verifyAudit(store)).ok, true);
  await store.close();
});

t.test('a LevelDB read error is a verdict naming where verification got to, not a crash', async (t) => {
  const store = await Store.open(newDir(), identity);
  const log = await AuditLog.open(store, ticking());
  await store.commit(Array.from({ length: 600 }, (_, i) => log.append('system', 'tick', { i }).ops).flat());
  const real = store.range.bind(store);
  let calls = 0;
  // A corrupted table file surfaces as a rejected iterator read (the real one is in the integration
  // test); here every read after the first page fails, also the row-at-a-time retry.
  store.range = async (...args: Parameters<Store['range']>): Promise<Array<[string, string]>> => {
    if (++calls === 1) return real(...args);
    throw Object.assign(new Error('Iterator error'), { cause: new Error('Corruption: block checksum mismatch: 000005.ldb') });
  };
  t.same(await verifyAudit(store), {
    ok: false,
    count: 512,
    brokenAt: 512,
    reason: 'reading record 512 from the data dir failed (Corruption: block checksum mismatch: 000005.ldb)',
  });
  // A damaged block inside the second page: the page read fails, the row-at-a-time retry pins it to record 530.
  calls = 0;
  store.range = async (...args: Parameters<Store['range']>): Promise<Array<[string, string]>> => {
    ++calls;
    if (args[2] === 1 && args[0] < AUDIT.record(530)) return real(...args);
    if (calls === 1) return real(...args);
    throw new Error('Corruption: corrupted compressed block contents');
  };
  const r = await verifyAudit(store);
  t.same(r, { ok: false, count: 530, brokenAt: 530, reason: 'reading record 530 from the data dir failed (Corruption: corrupted compressed block contents)' });
  // A page that fails while every row read on its own is fine: still not a verified log (fail closed).
  store.range = async (...args: Parameters<Store['range']>): Promise<Array<[string, string]>> => {
    if (args[2] !== 1 && args[0] > AUDIT.record(0)) throw new Error('Corruption: bad block type');
    return real(...args);
  };
  t.same(await verifyAudit(store), {
    ok: false,
    count: 600,
    brokenAt: 600,
    reason: 'reading the data dir failed (Corruption: bad block type); every record that could be read, up to 599, verified',
  });
  store.range = real;
  t.same(await verifyAudit(store), { ok: true, count: 600, head: log.head() });
  await store.close();
});

t.test('appendAll is all or none: a refused record takes back the ones before it, and the chain stays whole', async (t) => {
  const store = await Store.open(newDir(), identity);
  const log = await AuditLog.open(store, ticking());
  await log.appendNow('system', 'first', {});
  const head = log.head();
  const refused = (() => {
    try {
      log.appendAll([
        { actor: 'system', action: 'payout.sign', details: { txid: 'a'.repeat(64) } },
        { actor: 'system', action: 'payout.sign.more', details: { passphrase: 'hunter2' } },
      ]);
      return undefined;
    } catch (err) {
      return err as Error & { code?: string };
    }
  })();
  t.equal(refused?.code, 'INTERNAL', 'the second record is refused');
  t.same(log.head(), head, 'the first record of the batch is taken back: its seq is free');
  const ops = log.appendAll([
    { actor: 'system', action: 'payout.sign', details: { txid: 'b'.repeat(64) } },
    { actor: 'system', action: 'payout.sign.more', details: { part: 2 } },
  ]);
  await store.commit(ops);
  t.equal(log.head().seq, head.seq + 2);
  t.same(await verifyAudit(store), { ok: true, count: 3, head: log.head() }, 'what is on disk chains without a hole');
  await store.close();
});
