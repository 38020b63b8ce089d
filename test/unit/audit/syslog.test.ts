import t from 'tap';
import { createServer, type Server, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../../src/store/db.js';
import { AuditLog, recordHash, ZERO_HASH, type AuditHead } from '../../../src/audit/log.js';
import { encodeRfc5424, formatRfc5424, parseSyslogTarget, TcpSyslog, UdpSyslog, UDP_MAX_BYTES, type SyslogMessage } from '../../../src/audit/syslog.js';
import { AuditShipper } from '../../../src/audit/shipper.js';
import { isCustodyError } from '../../../src/errors.js';

const identity = { network: 'regtest', descriptorChecksum: 'lxek0ef2' } as const;
const newDir = (): string => join(mkdtempSync(join(tmpdir(), 'custody-syslog-')), 'data');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await sleep(10);
  }
}

const base: SyslogMessage = {
  facility: 10,
  severity: 5,
  time: new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 67)),
  hostname: 'wallet1',
  appName: 'custodyd',
  procId: '1234',
  msgId: 'audit',
  message: '{"a":1}',
};

// ---------------------------------------------------------------- a collector's side, for the tests

interface Parsed {
  pri: number;
  time: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  sdId: string | undefined;
  sd: Record<string, string>;
  msg: string | undefined;
  bom: boolean;
}

/** Parses one RFC 5424 message as a collector would (SD values unescaped, BOM noted and stripped). */
function parse5424(bytes: Buffer): Parsed {
  const s = bytes.toString('utf8');
  const m = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(s);
  if (!m) throw new Error(`not RFC 5424: ${s.slice(0, 80)}`);
  let i = m[0].length;
  const sd: Record<string, string> = {};
  let sdId: string | undefined;
  if (s[i] === '-') i++;
  else {
    if (s[i] !== '[') throw new Error('bad SD');
    const idEnd = s.slice(i).search(/[ \]]/) + i;
    sdId = s.slice(i + 1, idEnd);
    i = idEnd;
    while (s[i] === ' ') {
      const eq = s.indexOf('="', i);
      const name = s.slice(i + 1, eq);
      let v = '';
      i = eq + 2;
      while (s[i] !== '"') {
        if (s[i] === '\\' && ['"', '\\', ']'].includes(s[i + 1] as string)) i++;
        v += s[i];
        i++;
      }
      sd[name] = v;
      i++;
    }
    if (s[i] !== ']') throw new Error('bad SD end');
    i++;
  }
  let msg: string | undefined;
  let bom = false;
  if (i < s.length) {
    if (s[i] !== ' ') throw new Error('no SP before MSG');
    msg = s.slice(i + 1);
    if (msg.startsWith('\uFEFF')) (bom = true), (msg = msg.slice(1));
  }
  const [, pri, time, hostname, appName, procId, msgId] = m as unknown as string[];
  return { pri: Number(pri), time: time as string, hostname: hostname as string, appName: appName as string, procId: procId as string, msgId: msgId as string, sdId, sd, msg, bom };
}

/** An RFC 6587 octet-counting TCP collector on 127.0.0.1. */
class Collector {
  readonly messages: Parsed[] = [];
  /** Per connection, the messages it carried. */
  readonly connections: Parsed[][] = [];
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  port = 0;

  async listen(port = 0): Promise<void> {
    const server = createServer((sock) => {
      this.sockets.add(sock);
      const conn: Parsed[] = [];
      this.connections.push(conn);
      let buf = Buffer.alloc(0);
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const sp = buf.indexOf(0x20);
          if (sp < 0) break;
          const lenText = buf.subarray(0, sp).toString('ascii');
          if (!/^[1-9]\d*$/.test(lenText)) throw new Error(`bad frame length ${JSON.stringify(lenText)}`);
          const len = Number(lenText);
          if (buf.length < sp + 1 + len) break;
          const p = parse5424(buf.subarray(sp + 1, sp + 1 + len));
          conn.push(p);
          this.messages.push(p);
          buf = buf.subarray(sp + 1 + len);
        }
      });
      sock.on('error', () => undefined);
      sock.on('close', () => this.sockets.delete(sock));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
  }

  /** The collector dies: the listener and every connection go. */
  async kill(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  records(): Parsed[] {
    return this.messages.filter((m) => m.msgId === 'audit');
  }

  /** Seqs in first-arrival order, duplicates dropped (what a collector deduping on seq keeps). */
  seqs(): number[] {
    const seen = new Set<number>();
    const out: number[] = [];
    for (const m of this.records()) {
      const seq = Number(m.sd['seq']);
      if (!seen.has(seq)) seen.add(seq), out.push(seq);
    }
    return out;
  }
}

/** Recomputes a shipped record's hash from its MSG, and checks it against the record and the SD param. */
function verifyShipped(p: Parsed): { seq: number; ok: boolean } {
  const rec = JSON.parse(p.msg as string) as { seq: number; time: string; actor: string; action: string; details: Record<string, unknown>; prevHash: string; hash: string };
  const h = recordHash(rec);
  return { seq: rec.seq, ok: h === rec.hash && h === p.sd['hash'] && String(rec.seq) === p.sd['seq'] };
}

// ---------------------------------------------------------------- formatting

t.test('formatRfc5424 writes the known answer: PRI = facility*8 + severity, version 1, SD, BOM before MSG', async (t) => {
  const line = formatRfc5424({ ...base, structuredData: { seq: '7', hash: 'ab12' } });
  t.equal(line, '<85>1 2025-01-02T03:04:05.067Z wallet1 custodyd 1234 audit [custody@32473 seq="7" hash="ab12"] \uFEFF{"a":1}');
  t.same([...encodeRfc5424({ ...base, message: 'x' }).bytes.subarray(-4)], [0xef, 0xbb, 0xbf, 0x78], 'the MSG starts with the UTF-8 BOM EF BB BF');
  for (const [facility, severity, pri] of [[0, 0, 0], [0, 7, 7], [1, 0, 8], [4, 2, 34], [13, 5, 109], [23, 7, 191]] as const) {
    t.ok(formatRfc5424({ ...base, facility, severity }).startsWith(`<${pri}>1 `), `facility ${facility} severity ${severity} → <${pri}>`);
  }
  for (const [facility, severity] of [[24, 0], [-1, 0], [1.5, 0], [0, 8], [0, -1]] as const) {
    t.throws(() => formatRfc5424({ ...base, facility, severity }), /syslog (facility|severity): expected a whole number/, `facility ${facility} severity ${severity} refused`);
  }
});

t.test('SD-PARAM values are escaped per RFC 5424 §6.3.3 and UTF-8 passes through', async (t) => {
  const line = formatRfc5424({ ...base, structuredData: { why: 'a"b\\c]d[e=f', who: 'zoë' } });
  t.match(line, / \[custody@32473 why="a\\"b\\\\c\\]d\[e=f" who="zoë"\] /);
  const p = parse5424(Buffer.from(line));
  t.same(p.sd, { why: 'a"b\\c]d[e=f', who: 'zoë' }, 'a collector unescapes to the original values');
  for (const name of ['', 'a=b', 'a b', 'a]', 'a"', 'x'.repeat(33), 'é']) {
    t.throws(() => formatRfc5424({ ...base, structuredData: { [name]: 'v' } }), /structured data param name/, `param name ${JSON.stringify(name)} refused`);
  }
});

t.test('NILVALUE "-" stands for empty header fields, no structured data and a time the sender does not have', async (t) => {
  t.equal(formatRfc5424({ ...base, hostname: '', appName: '', procId: '', msgId: '', message: 'm' }), '<85>1 2025-01-02T03:04:05.067Z - - - - - \uFEFFm');
  t.equal(formatRfc5424({ ...base, structuredData: {}, message: '' }), '<85>1 2025-01-02T03:04:05.067Z wallet1 custodyd 1234 audit -', 'no params and no MSG: "-" and nothing after');
  t.equal(formatRfc5424({ ...base, time: new Date(NaN), message: '' }), '<85>1 - wallet1 custodyd 1234 audit -', 'invalid Date → NILVALUE');
  t.equal(formatRfc5424({ ...base, time: new Date(Date.UTC(10000, 0, 1)), message: '' }), '<85>1 - wallet1 custodyd 1234 audit -', 'year 10000 has no RFC 5424 form → NILVALUE');
});

t.test('header fields: RFC 5424 length limits 255/48/128/32 and printable US-ASCII only', async (t) => {
  for (const [field, max] of [['hostname', 255], ['appName', 48], ['procId', 128], ['msgId', 32]] as const) {
    t.doesNotThrow(() => formatRfc5424({ ...base, [field]: 'x'.repeat(max) }), `${field} of ${max} characters is accepted`);
    t.throws(() => formatRfc5424({ ...base, [field]: 'x'.repeat(max + 1) }), new RegExp(`syslog ${field}: ${max + 1} characters, more than the ${max}`), `${field} of ${max + 1} is refused, naming the field`);
    for (const v of ['a b', 'caf\u00e9', 'a\x7f', 'a\nb']) {
      t.throws(() => formatRfc5424({ ...base, [field]: v }), new RegExp(`syslog ${field}: only printable US-ASCII`), `${field} ${JSON.stringify(v)} refused`);
    }
  }
});

t.test('encodeRfc5424 with a byte limit cuts MSG only, at a character boundary', async (t) => {
  const sd = { seq: '1', hash: 'f'.repeat(64) };
  const head = Buffer.byteLength(formatRfc5424({ ...base, structuredData: sd, message: '' }));
  const msg = 'é'.repeat(100); // 2 bytes each
  const full = encodeRfc5424({ ...base, structuredData: sd, message: msg });
  t.equal(full.truncated, false);
  t.equal(full.bytes.length, head + 1 + 3 + 200);
  const cut = encodeRfc5424({ ...base, structuredData: sd, message: msg }, head + 1 + 3 + 11);
  t.equal(cut.truncated, true);
  t.equal(cut.bytes.length, head + 1 + 3 + 10, '11 bytes of room hold 5 whole characters, not 5.5');
  const p = parse5424(cut.bytes);
  t.equal(p.msg, 'é'.repeat(5));
  t.same(p.sd, sd, 'the structured data is whole');
  t.equal(encodeRfc5424({ ...base, structuredData: sd, message: msg }, head + 2).bytes.length, head, 'no room for the BOM: the MSG is left out, the head kept');
  t.throws(() => encodeRfc5424({ ...base, structuredData: sd }, head - 1), /the header and structured data take \d+ bytes, more than the \d+-byte limit/);
});

// ---------------------------------------------------------------- targets

t.test('parseSyslogTarget accepts tcp:// and udp:// host:port and refuses the rest naming the value', async (t) => {
  t.same(parseSyslogTarget('tcp://127.0.0.1:514'), { protocol: 'tcp', host: '127.0.0.1', port: 514, target: 'tcp://127.0.0.1:514' });
  t.same(parseSyslogTarget('udp://[::1]:5514'), { protocol: 'udp', host: '::1', port: 5514, target: 'udp://[::1]:5514' });
  t.same(parseSyslogTarget('TCP://logs.example.com:6514'), { protocol: 'tcp', host: 'logs.example.com', port: 6514, target: 'tcp://logs.example.com:6514' });
  const cases: Array<[unknown, RegExp]> = [
    ['logs.example.com:514', /"logs\.example\.com:514" is not a syslog target: expected "tcp:\/\/host:port"/],
    ['http://logs:514', /"http:\/\/logs:514" is not a syslog target: the scheme must be tcp or udp, not "http"/],
    ['tcp://logs', /"tcp:\/\/logs" is not a syslog target: the port is missing/],
    ['tcp://logs:', /the port is missing/],
    ['tcp://:514', /"tcp:\/\/:514" is not a syslog target: the host is missing/],
    ['tcp://logs:0', /"tcp:\/\/logs:0" is not a syslog target: the port must be a whole number 1-65535/],
    ['tcp://logs:65536', /the port must be a whole number 1-65535/],
    ['tcp://logs:51x', /the port must be a whole number/],
    ['udp://[zz::1]:514', /"udp:\/\/\[zz::1\]:514" is not a syslog target: the bracketed host is not an IPv6 address/],
    ['tcp://lo_gs:514', /"tcp:\/\/lo_gs:514" is not a syslog target: the host is not a valid host name/],
    ['tcp://logs:514/path', /"tcp:\/\/logs:514\/path" is not a syslog target/],
    ['tcp://user@logs:514', /"tcp:\/\/user@logs:514" is not a syslog target: expected host:port/],
    [514, /audit\.syslog: number is not a syslog target/],
  ];
  for (const [value, re] of cases) {
    let err: unknown;
    try {
      parseSyslogTarget(value);
    } catch (e) {
      err = e;
    }
    t.ok(isCustodyError(err, 'CONFIG_INVALID'), `${String(value)}: CONFIG_INVALID`);
    t.match((err as Error).message, re, `${String(value)}: ${(err as Error).message}`);
  }
  t.throws(() => parseSyslogTarget('x', 'audit.target'), /^audit\.target: "x"/, 'the field name given is used');
});

// ---------------------------------------------------------------- TCP, end to end

t.test('TCP: every committed record arrives octet-framed, in order, and verifies; the head too; a dead collector queues and the backlog arrives when it is back', async (t) => {
  const collector = new Collector();
  await collector.listen();
  const port = collector.port;
  const store = await Store.open(newDir(), identity);
  const log = await AuditLog.open(store);
  const heads: AuditHead[] = [];
  const transport = new TcpSyslog('127.0.0.1', port, { backoffMinMs: 20, backoffMaxMs: 200, connectTimeoutMs: 1000 });
  const shipper = new AuditShipper({ log, transport, fromSeq: 0, hostname: 'wallet1', procId: '42', pollMs: 100, headEveryMs: 3_600_000, onHead: (h) => heads.push(h) });
  t.teardown(async () => {
    await shipper.close(500);
    await collector.kill();
    await store.close();
  });

  await until('the start head', () => collector.messages.some((m) => m.msgId === 'audit-head'));
  const startHead = collector.messages.find((m) => m.msgId === 'audit-head') as Parsed;
  t.same(startHead.sd, { seq: '-1', hash: ZERO_HASH }, 'the empty log publishes head seq -1 and the zero hash at start');

  for (let i = 0; i < 20; i++) {
    await log.appendNow(i % 2 ? 'operator:alice' : 'client:app1', 'withdrawal.create', { id: `wd-${i}`, amountSats: String(1000 * i), note: i === 3 ? 'naïve "quoted" ] text' : 'x' });
    shipper.nudge();
  }
  await until('20 records shipped', () => collector.seqs().length === 20);
  t.same(collector.seqs(), [...Array(20).keys()], 'records arrive in seq order');
  const recs = collector.records();
  t.ok(recs.every((m) => verifyShipped(m).ok), 'every shipped record recomputes to its hash (and matches the SD hash)');
  t.ok(recs.every((m) => m.pri === 85 && m.bom && m.hostname === 'wallet1' && m.appName === 'custodyd' && m.procId === '42' && m.sdId === 'custody@32473'), 'PRI 85 (authpriv.notice), BOM, header fields, SD-ID');
  t.equal((recs[0] as Parsed).time, JSON.parse((recs[0] as Parsed).msg as string).time, 'TIMESTAMP is the record time');
  await until('shipped seq 19', () => shipper.status().shippedSeq === 19);
  t.same(shipper.status(), { target: `tcp://127.0.0.1:${port}`, shippedSeq: 19, waiting: 0, downSince: null, lastError: null });
  t.equal(shipper.downForMs(), 0);

  await shipper.publishHead();
  const head = log.head();
  await until('the head message', () => collector.messages.some((m) => m.msgId === 'audit-head' && m.sd['seq'] === '19'));
  const hm = collector.messages.find((m) => m.msgId === 'audit-head' && m.sd['seq'] === '19') as Parsed;
  t.same(hm.sd, { seq: '19', hash: head.hash }, 'the head message carries the last committed seq and hash');
  t.same(JSON.parse(hm.msg as string), { seq: 19, hash: head.hash });
  t.same(heads.at(-1), { seq: 19, hash: head.hash }, 'onHead got the same head');

  // The collector dies.
  await collector.kill();
  await until('the shipper notices', () => shipper.status().downSince !== null);
  t.equal(shipper.downForMs(), 0, 'down but nothing waiting: not counted');
  for (let i = 20; i < 25; i++) await log.appendNow('operator:bob', 'freeze', { reason: `drill ${i}` });
  shipper.nudge();
  await until('downForMs > 0', () => shipper.downForMs() > 0);
  const d1 = shipper.downForMs();
  await sleep(300);
  const d2 = shipper.downForMs();
  t.ok(d2 >= d1 + 250, `downForMs grows while records wait (${d1} → ${d2})`);
  const st = shipper.status();
  t.equal(st.waiting, 5, 'the five new records wait');
  t.equal(st.shippedSeq, 19);
  t.match(st.lastError, /^syslog tcp:\/\/127\.0\.0\.1:\d+: (cannot connect \(ECONNREFUSED\)|the collector closed the connection)/, `lastError says why: ${st.lastError}`);
  t.ok(transport.backlog >= 5, 'the transport holds them, nothing is dropped');

  // Back on the same port.
  const before = collector.connections.length;
  await collector.listen(port);
  await until('the backlog arrives', () => collector.seqs().length === 25);
  t.same(collector.seqs(), [...Array(25).keys()], 'with duplicates dropped (as collectors do on seq), 0..24 in order');
  const again = collector.connections.slice(before).flat().filter((m) => m.msgId === 'audit').map((m) => Number(m.sd['seq']));
  t.ok(again.every((s, i) => i === 0 || s > (again[i - 1] as number)), `the new connection carries records in ascending order: ${again.join(',')}`);
  t.ok([20, 21, 22, 23, 24].every((s) => again.includes(s)), 'the backlog came over the new connection');
  t.ok(collector.records().every((m) => verifyShipped(m).ok), 'and every copy verifies');
  await until('downForMs back to 0', () => shipper.downForMs() === 0 && shipper.status().shippedSeq === 24);
  t.equal(shipper.status().waiting, 0);
  t.equal(shipper.status().downSince, null);
});

t.test('TCP: a full queue refuses the line and reports it, never drops it silently', async (t) => {
  // A port nobody listens on: take one, then free it.
  const c = new Collector();
  await c.listen();
  const port = c.port;
  await c.kill();
  const transport = new TcpSyslog('127.0.0.1', port, { queueLimit: 2, backoffMinMs: 50, backoffMaxMs: 50 });
  const errors: string[] = [];
  transport.onError((e) => errors.push(e.message));
  // Settled values, caught at once: the rejections come during close() below.
  const a = transport.send(base).then(() => 'sent', (e: unknown) => e);
  const b = transport.send(base).then(() => 'sent', (e: unknown) => e);
  await t.rejects(transport.send(base), { code: 'UNAVAILABLE', message: /the queue is full \(2 lines waiting, limit 2\); the line was refused, not queued/ });
  t.ok(errors.some((m) => /queue is full/.test(m)), 'the error listener heard it');
  await until('a connect failure reported', () => errors.some((m) => /cannot connect \(ECONNREFUSED\)/.test(m)));
  await transport.close(100);
  t.match(await a, { code: 'UNAVAILABLE', message: /closed before the line was written/ }, 'lines still queued at close are rejected, not lost silently');
  t.match(await b, { code: 'UNAVAILABLE', message: /closed before the line was written/ });
  await t.rejects(transport.send(base), { message: /the transport is closed/ });
});

// ---------------------------------------------------------------- UDP

t.test('UDP: a real listener receives one datagram per record; an oversized record is cut in MSG only, within 8 KB', async (t) => {
  const udp = createSocket('udp4');
  const got: Buffer[] = [];
  udp.on('message', (b) => got.push(b));
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  const port = udp.address().port;
  const store = await Store.open(newDir(), identity);
  const log = await AuditLog.open(store);
  const target = parseSyslogTarget(`udp://127.0.0.1:${port}`);
  const transport = new UdpSyslog(target.host, target.port);
  t.equal(transport.target, `udp://127.0.0.1:${port}`);
  const shipper = new AuditShipper({ log, transport, fromSeq: 0, facility: 13, hostname: 'wallet1', pollMs: 50, headEveryMs: 3_600_000 });
  t.teardown(async () => {
    await shipper.close(500);
    udp.close();
    await store.close();
  });
  await log.appendNow('system', 'daemon.start', { version: '0.1.0' });
  await log.appendNow('operator:alice', 'note', { text: 'ü'.repeat(6000) }); // 12,000 bytes of details
  await log.appendNow('system', 'daemon.stop', {});
  shipper.nudge();
  await until('three record datagrams', () => got.filter((b) => parse5424(b).msgId === 'audit').length === 3);
  const recs = got.map(parse5424).filter((p) => p.msgId === 'audit');
  t.ok(got.every((b) => b.length <= UDP_MAX_BYTES), `every datagram within ${UDP_MAX_BYTES} bytes`);
  t.same(recs.map((p) => p.sd['seq']), ['0', '1', '2']);
  t.ok(recs.every((p) => p.pri === 13 * 8 + 5), 'facility 13 as configured, severity notice');
  t.ok(verifyShipped(recs[0] as Parsed).ok && verifyShipped(recs[2] as Parsed).ok, 'whole records verify');
  const big = got.find((b) => parse5424(b).sd['seq'] === '1') as Buffer;
  t.ok(big.length > UDP_MAX_BYTES - 4, 'the big one fills the datagram');
  const p = parse5424(big);
  t.equal(p.sd['hash'], (await log.range(1, 1))[0]?.hash, 'its structured data (seq, hash) is whole');
  t.ok(p.msg !== undefined && !p.msg.includes('\uFFFD'), 'its MSG is cut at a character boundary');
  await until('shipped', () => shipper.status().shippedSeq === 2);
  t.equal(shipper.downForMs(), 0);
  t.ok(got.map(parse5424).some((m) => m.msgId === 'audit-head'), 'the head is published at start');
});

t.test('AuditShipper refuses bad configuration naming the field', async (t) => {
  const store = await Store.open(newDir(), identity);
  t.teardown(() => store.close());
  const log = await AuditLog.open(store);
  const transport = new UdpSyslog('127.0.0.1', 9);
  t.teardown(() => transport.close());
  t.throws(() => new AuditShipper({ log, transport, fromSeq: -1 }), { code: 'CONFIG_INVALID', message: /fromSeq/ });
  t.throws(() => new AuditShipper({ log, transport, fromSeq: 0, hostname: 'has space' }), { code: 'CONFIG_INVALID', message: /syslog hostname: only printable US-ASCII/ });
  t.throws(() => new AuditShipper({ log, transport, fromSeq: 0, facility: 24 }), { code: 'CONFIG_INVALID', message: /facility/ });
  t.throws(() => new AuditShipper({ log, transport, fromSeq: 0, pollMs: 0 }), { code: 'CONFIG_INVALID', message: /pollMs/ });
});
