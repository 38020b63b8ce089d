/**
 * Audit shipping with a real local syslog listener (RFC 5424 over TCP, RFC 6587 octet counting) and a
 * real daemon: every audit record arrives, in order, and re-hashes to the chain the daemon keeps; the
 * head is published; with the sink down and fail-closed on, signing stops, and it resumes when the sink
 * returns and the backlog is delivered.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordHash, type AuditRecord } from '../../src/audit/log.js';
import type { WithdrawalView } from '../../src/service/withdrawals.js';
import { Deriver } from '../../src/wallet/derive.js';
import { adminClient, appClient, custody, freePort, makeDaemonFixture, startTestDaemon, type DaemonFixture, type RunningTestDaemon } from '../support/daemon.js';
import { Funder, mine, startRegtestNode, type RegtestNode } from '../support/regtest.js';
import { chainConfig, eventually, hotAddress, unlockDaemon, waitForTip } from '../support/chain.js';
import { regtestDescriptor } from '../support/wallets.js';

interface Received {
  msgId: string;
  seq: number;
  hash: string;
  body: string;
}

/** A syslog collector: octet-counted frames, parsed into MSGID, SD seq/hash and the message. */
class Collector {
  readonly messages: Received[] = [];
  readonly alerts: Array<{ severity: number; type: string }> = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  constructor(readonly port: number) {}

  async start(): Promise<void> {
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      let buf = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const sp = buf.indexOf(0x20);
          if (sp < 0) return;
          const len = Number(buf.subarray(0, sp).toString('ascii'));
          if (buf.length < sp + 1 + len) return;
          this.parse(buf.subarray(sp + 1, sp + 1 + len).toString('utf8'));
          buf = buf.subarray(sp + 1 + len);
        }
      });
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }

  private parse(line: string): void {
    // <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG
    const m = /^<(\d+)>1 \S+ \S+ \S+ \S+ (\S+) \[custody@32473 ([^\]]*)\] ?\uFEFF?(.*)$/s.exec(line);
    if (m === null) throw new Error(`unparsable syslog line: ${line}`);
    const sd = Object.fromEntries([...m[3]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (m[2] === 'alert') {
      this.alerts.push({ severity: Number(m[1]) % 8, type: sd['type'] ?? '' });
      return;
    }
    this.messages.push({ msgId: m[2]!, seq: Number(sd['seq']), hash: sd['hash'] ?? '', body: m[4]! });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }

  records(): Map<number, Received> {
    const out = new Map<number, Received>();
    for (const m of this.messages) if (m.msgId === 'audit') out.set(m.seq, m);
    return out;
  }
}

let node: RegtestNode;
let funder: Funder;
let fixture: DaemonFixture;
let daemon: RunningTestDaemon;
let collector: Collector;

t.before(async () => {
  node = await startRegtestNode();
  funder = await Funder.create(node);
  collector = new Collector(await freePort());
  await collector.start();
  const dir = mkdtempSync(join(tmpdir(), 'custody-syslog-'));
  fixture = await makeDaemonFixture({
    clients: { payer: ['withdrawals'], app: ['deposits'] },
    poolSize: 64,
    poolWorkers: 0,
    extraConfig: [
      chainConfig(dir, node, (await node.client.getBlockCount()) + 1),
      '[audit]',
      `syslog = "tcp://127.0.0.1:${collector.port}"`,
      'headEverySeconds = 1',
      'failClosedAfterSeconds = 2',
      '[withdrawals]',
      'maxAmountSats = 100_000_000',
      '[withdrawals.batch]',
      'windowMs = 200',
      '[withdrawals.fee]',
      'fallbackSatPerVb = 2',
    ].join('\n'),
  });
  daemon = await startTestDaemon(fixture);
  await unlockDaemon(fixture);
  await funder.pay([{ address: hotAddress(fixture, 0), sats: 100_000_000n }, { address: hotAddress(fixture, 1), sats: 100_000_000n }]);
  await mine(node, 1, funder.address);
});

t.teardown(async () => {
  if (!t.passing() && daemon !== undefined) console.error(`custodyd stderr (last 20,000 chars):\n${daemon.stderr().slice(-20_000)}`);
  await daemon?.stop();
  await collector?.stop().catch(() => undefined);
  await node?.stop();
});

async function allRecords(f: DaemonFixture): Promise<AuditRecord[]> {
  const admin = adminClient(f);
  try {
    return ((await admin.call('audit.tail', { n: 1000 })) as { records: AuditRecord[] }).records;
  } finally {
    await admin.close();
  }
}

const dest = new Deriver(regtestDescriptor(), 'regtest').address(1, 4242);

t.test('every audit record reaches the collector, in order, and re-hashes to the daemon\'s chain; the head is published', async (t) => {
  const payer = appClient(fixture, 'payer', 20_000);
  try {
    await waitForTip(payer, node);
    const w = (await payer.call('withdrawal.create', { requestId: 'sys-1', address: dest, amountSats: 1_000_000 })) as WithdrawalView;
    await eventually('signed', async () => (((await payer.call('withdrawal.get', { id: w.id })) as WithdrawalView).state === 'broadcast' ? true : undefined), 60_000);
  } finally {
    await payer.close();
  }
  const records = await allRecords(fixture);
  const last = records[records.length - 1]!;
  await eventually('every record shipped', async () => (collector.records().has(last.seq) ? true : undefined), 30_000);
  const got = collector.records();
  for (const r of records) {
    const m = got.get(r.seq);
    t.ok(m !== undefined, `record ${r.seq} (${r.action}) arrived`);
    if (m === undefined) continue;
    const shipped = JSON.parse(m.body) as AuditRecord;
    t.equal(m.hash, r.hash, `record ${r.seq}: the SD hash is the daemon's`);
    t.equal(recordHash(shipped), r.hash, `record ${r.seq}: the shipped copy re-hashes to it`);
  }
  const order = collector.messages.filter((m) => m.msgId === 'audit').map((m) => m.seq);
  t.same(order.slice(0, records.length), records.map((r) => r.seq), 'in seq order');
  t.ok(records.some((r) => r.action === 'payout.sign'), 'including the signature');
  const head = await eventually('a published head at the last record', async () => collector.messages.find((m) => m.msgId === 'audit-head' && m.seq >= last.seq));
  t.equal(head.hash, records.find((r) => r.seq === head.seq)?.hash ?? (await allRecords(fixture)).find((r) => r.seq === head.seq)?.hash, 'the head names a record the daemon has');
  const status = await custody(fixture, ['status']);
  t.match(status.stdout, new RegExp(`shipped to tcp://127\\.0\\.0\\.1:${collector.port} through seq \\d+, \\d+ waiting, reachable`));
});

t.test('sink down with fail-closed: signing stops, and resumes when the sink returns', async (t) => {
  await collector.stop();
  // Something to ship while it is down: an address issued (audited).
  const app = appClient(fixture, 'app', 20_000);
  await app.newAddress({ requestId: 'while-down', account: 'x' });
  await app.close();
  const blocked = await eventually('signing blocked', async () => {
    const s = await custody(fixture, ['status']);
    return /SIGNING STOPPED: the audit sink tcp:\/\/127\.0\.0\.1:\d+ has been unreachable for \d+ s \(fail-closed after 2 s\)/.test(s.stdout) ? s.stdout : undefined;
  }, 30_000);
  t.match(blocked, /UNREACHABLE since/);
  const payer = appClient(fixture, 'payer', 20_000);
  try {
    const w = (await payer.call('withdrawal.create', { requestId: 'sys-2', address: dest, amountSats: 2_000_000 })) as WithdrawalView;
    await new Promise((r) => setTimeout(r, 3_000));
    t.equal(((await payer.call('withdrawal.get', { id: w.id })) as WithdrawalView).state, 'approved', 'not signed while the sink is down');
    await collector.start();
    const paid = await eventually('signed after the sink returned', async () => {
      const v = (await payer.call('withdrawal.get', { id: w.id })) as WithdrawalView;
      return v.state === 'broadcast' ? v : undefined;
    }, 90_000);
    t.ok(paid.txid !== null);
  } finally {
    await payer.close();
  }
  const records = await allRecords(fixture);
  await eventually('the backlog delivered', async () => (records.every((r) => collector.records().has(r.seq)) ? true : undefined), 30_000);
  t.pass('every record, including those written while it was down, reached the collector');
  const alert = await eventually('alert.audit_sink_down at WARNING', async () => collector.alerts.find((a) => a.type === 'alert.audit_sink_down'), 30_000);
  t.equal(alert.severity, 4, 'alerts go to syslog at WARNING (severity 4)');
});
