import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { Store } from '../../src/store/db.js';
import { AUDIT } from '../../src/store/layout.js';
import { AuditLog, type AuditRecord } from '../../src/audit/log.js';
import { REGTEST_WPKH, regtestDescriptor } from '../support/wallets.js';
import { runCli } from '../support/cli.js';

const descriptor = regtestDescriptor();

/** 16 hex digits that occur nowhere else in the data dir, so a test can find this record's bytes on disk. */
const marker = (i: number): string => createHash('sha256').update(`marker ${i}`).digest('hex').slice(0, 16);

interface Fixture {
  readonly dataDir: string;
  readonly config: string;
  readonly records: AuditRecord[];
}

/** A data dir holding `n` audit records (written at fixed times), and a configuration pointing at it. */
async function fixture(n: number): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'custody-audit-cli-'));
  const dataDir = join(dir, 'data');
  const store = await Store.open(dataDir, { network: 'regtest', descriptorChecksum: descriptor.checksum });
  let tick = Date.UTC(2025, 5, 1, 12, 0, 0);
  const log = await AuditLog.open(store, () => new Date((tick += 1000)));
  const records: AuditRecord[] = [];
  const actors = ['operator:alice', 'client:app1', 'custodian:ops1', 'system'];
  for (let i = 0; i < n; i++) {
    records.push(await log.appendNow(actors[i % actors.length]!, i % 2 === 0 ? 'withdrawal.create' : 'unlock.submit', { id: `w${i}`, amountSats: `${50_000 + i}`, ref: marker(i) }));
  }
  await store.close();
  const config = join(dir, 'custody.toml');
  writeFileSync(config, `network = "regtest"\ndataDir = "${dataDir}"\n[keystore]\nfile = "${dir}/ks.json"\n[cold]\ndescriptor = "${REGTEST_WPKH}"\n`);
  return { dataDir, config, records };
}

/** Opens the data dir with LevelDB itself, as someone with LevelDB tools and no custody code would. */
async function withLevel<T>(dataDir: string, fn: (db: Level<string, string>) => Promise<T>): Promise<T> {
  const db = new Level<string, string>(dataDir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await db.open();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/**
 * Moves everything into one table file: LevelDB first writes to its .log, and on the next open converts
 * that log into a level-0 .ldb table (observed with classic-level 3 / LevelDB 1.23: after one reopen the
 * data dir holds one .ldb and an empty .log).
 */
async function onlyTable(dataDir: string): Promise<string> {
  await withLevel(dataDir, async () => undefined);
  const tables = readdirSync(dataDir).filter((f) => f.endsWith('.ldb'));
  const logs = readdirSync(dataDir).filter((f) => f.endsWith('.log'));
  if (tables.length !== 1 || logs.some((f) => statSync(join(dataDir, f)).size > 0)) throw new Error(`expected one table and empty logs, found ${readdirSync(dataDir).join(' ')}`);
  return join(dataDir, tables[0]!);
}

t.test('custody audit verify and tail read a sound chain; one changed byte in a record is named by seq', async (t) => {
  const { dataDir, config, records } = await fixture(6);
  const head = records[5]!;

  const ok = await runCli('custody', ['audit', 'verify', '--config', config]);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(ok.stdout, `audit chain OK: 6 records, head seq 5 hash ${head.hash}\n`);
  const offline = await runCli('custody', ['audit', 'verify', '--offline'], { env: { CUSTODY_CONFIG: config } });
  t.equal(offline.code, 0, offline.stderr);

  const tail = await runCli('custody', ['audit', 'tail', '--config', config, '-n', '3']);
  t.equal(tail.code, 0, tail.stderr);
  t.same(tail.stdout.trimEnd().split('\n'), [
    `2025-06-01T12:00:04.000Z 3 system unlock.submit {"amountSats":"50003","id":"w3","ref":"${marker(3)}"}`,
    `2025-06-01T12:00:05.000Z 4 operator:alice withdrawal.create {"amountSats":"50004","id":"w4","ref":"${marker(4)}"}`,
    `2025-06-01T12:00:06.000Z 5 client:app1 unlock.submit {"amountSats":"50005","id":"w5","ref":"${marker(5)}"}`,
  ]);
  const json = await runCli('custody', ['audit', 'tail', '--config', config, '-n', '2', '--json']);
  t.equal(json.code, 0, json.stderr);
  t.same(json.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as AuditRecord), records.slice(4), '--json gives whole records, hashes included');
  const badN = await runCli('custody', ['audit', 'tail', '--config', config, '-n', '0']);
  t.equal(badN.code, 2, 'a bad -n is a usage error');

  // One byte: the "4" of "w4" in record 4's details becomes "5", written with LevelDB directly.
  await withLevel(dataDir, async (db) => {
    const value = (await db.get(AUDIT.record(4)))!;
    const at = value.indexOf('"w4"') + 2;
    await db.put(AUDIT.record(4), `${value.slice(0, at)}5${value.slice(at + 1)}`);
  });
  const broken = await runCli('custody', ['audit', 'verify', '--config', config]);
  t.equal(broken.code, 1);
  t.equal(broken.stdout, '');
  t.match(broken.stderr, /^error \[AUDIT_BROKEN\]: audit chain BROKEN at record 4: hash mismatch: the stored hash does not match the record's contents/);
  t.match(broken.stderr, /\(4 records before it verified\)/);
});

t.test('a byte flipped inside a table file on disk is caught, and verify never crashes', async (t) => {
  const { dataDir, config } = await fixture(40);
  const table = await onlyTable(dataDir);
  const pristine = readFileSync(table);
  const reset = (): void => writeFileSync(table, pristine);
  const flip = (offset: number, to?: number): void => {
    const b = Buffer.from(pristine);
    b[offset] = to ?? (b[offset]! ^ 0x01);
    writeFileSync(table, b);
  };

  // (1) Inside record 17's value. LevelDB does not check block checksums on reads by default
  // (ReadOptions.verify_checksums is false), and a changed byte inside a snappy literal still
  // decompresses, so LevelDB hands back the altered value; the chain is what notices.
  const at = pristine.indexOf(marker(17), 0, 'latin1');
  t.ok(at > 0, 'record 17\'s marker is stored as a literal in the table');
  const digit = pristine[at + 8]!;
  flip(at + 8, digit === 0x30 ? 0x31 : 0x30); // another hex digit: the JSON stays valid, only the hash breaks
  let r = await runCli('custody', ['audit', 'verify', '--config', config]);
  t.equal(r.code, 1, r.stdout);
  t.match(r.stderr, /^error \[AUDIT_BROKEN\]: audit chain BROKEN at record 17: hash mismatch/);

  // (2) Anywhere in the file, a spread of offsets: each flip is either tolerated by LevelDB (index,
  // filter or footer bytes it does not need for these reads: exit 0 with all 40 records, or a shorter
  // chain when the bytes of the last keys were hit, which no chain can tell from truncation), caught by
  // LevelDB ("Corruption: corrupted compressed block contents" when the snappy framing breaks), or
  // caught by the chain. Never a crash, a stack trace or an INTERNAL error.
  const outcomes = new Set<string>();
  const step = Math.max(1, Math.floor(pristine.length / 12));
  for (let offset = 0; offset < pristine.length; offset += step) {
    flip(offset);
    r = await runCli('custody', ['audit', 'verify', '--config', config]);
    t.ok(r.code === 0 || r.code === 1, `offset ${offset}: exit ${r.code}`);
    t.notMatch(r.stderr, /INTERNAL|\n\s+at /, `offset ${offset}: a clear error, no stack trace`);
    if (r.code === 0) {
      t.match(r.stdout, /^audit chain OK: \d+ records/, `offset ${offset}`);
      outcomes.add('tolerated');
    } else {
      t.match(r.stderr, /^error \[(AUDIT_BROKEN|STORE_IO)\]: /, `offset ${offset}: ${r.stderr.trim()}`);
      outcomes.add(/Corruption/.test(r.stderr) ? 'leveldb' : 'chain');
    }
  }
  reset();
  t.ok(outcomes.has('leveldb'), `LevelDB itself reported corruption for some offsets (saw: ${[...outcomes].join(', ')})`);
  r = await runCli('custody', ['audit', 'verify', '--config', config]);
  t.equal(r.code, 0, 'the restored file verifies again');
  t.match(r.stdout, /^audit chain OK: 40 records, head seq 39 /);
});

t.test('while another process holds the data dir, the commands say to stop the daemon', async (t) => {
  const { dataDir, config } = await fixture(1);
  const store = await Store.open(dataDir, { network: 'regtest', descriptorChecksum: descriptor.checksum });
  const r = await runCli('custody', ['audit', 'tail', '--config', config]);
  await store.close();
  t.equal(r.code, 1);
  t.match(r.stderr, /^error \[STORE_LOCKED\]: .*custodyd holds the data dir; stop the daemon/);
});

t.test('an empty log verifies with head seq -1 and tails nothing', async (t) => {
  const { config } = await fixture(0);
  const v = await runCli('custody', ['audit', 'verify', '--config', config]);
  t.equal(v.code, 0, v.stderr);
  t.equal(v.stdout, `audit chain OK: 0 records, head seq -1 hash ${'0'.repeat(64)}\n`);
  const tail = await runCli('custody', ['audit', 'tail', '--config', config]);
  t.equal(tail.code, 0);
  t.equal(tail.stdout, '');
  t.match(tail.stderr, /the audit log is empty/);
});
