/**
 * The Prometheus endpoint end to end: a real MetricsServer on 127.0.0.1:0 scraped with fetch().
 * Request counters and latency histograms (exact values), unknown methods and codes bucketed to
 * "(other)", gauges read from the sources at scrape time, every label value checked against its fixed
 * set (an address passed as a method name never shows), loopback-only binding, 403/404/405 paths, and
 * a source that throws answering 500 while the server keeps serving.
 */
import t, { type Test } from 'tap';
import { request } from 'node:http';
import { connect } from 'node:net';
import { ERROR_CODES, isCustodyError } from '../../../src/errors.js';
import { METHODS } from '../../../src/rpc/methods.js';
import { MetricsServer, isLoopbackAddress, loopbackHost } from '../../../src/rpc/metrics-server.js';
import { LATENCY_BUCKETS, MAX_ALERT_TYPES, METRIC_NAMES, Metrics, OTHER, UNDECODED, type MetricsSources } from '../../../src/service/metrics.js';

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** The text exposition format (0.0.4): comment lines, then `name{label="value",...} value`. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let pos = 0;
    while (pos < body.length) {
      re.lastIndex = pos;
      const l = re.exec(body);
      if (l === null) throw new Error(`unparsable labels: ${body}`);
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
      pos = re.lastIndex;
    }
    const raw = m[3] as string;
    out.push({ name: m[1] as string, labels, value: raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw) });
  }
  return out;
}

const find = (samples: readonly Sample[], name: string, labels: Record<string, string> = {}): Sample[] =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

function value(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = find(samples, name, labels);
  if (hits.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${hits.length} samples`);
  return hits[0]?.value;
}

const METHOD_NAMES = Object.keys(METHODS);
const CODES = [...Object.keys(ERROR_CODES), 'OK'];
const ADDRESS = 'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080';
const TXID = 'f'.repeat(64);
const ADDRESS_LIKE = /(bc|tb|bcrt)1[0-9a-z]{20,}|\b[123mn][1-9A-HJ-NP-Za-km-z]{25,34}\b|[0-9a-f]{64}|client:/i;

/** The fixed set of every label of every custody_* metric this module defines. */
function allowedLabels(windows: readonly string[], alerts: readonly string[]): Record<string, Record<string, ReadonlySet<string>>> {
  const set = (xs: readonly string[]): ReadonlySet<string> => new Set(xs);
  const le = set([...LATENCY_BUCKETS.map(String), '+Inf']);
  const door = set(['app', 'admin']);
  const method = set([...METHOD_NAMES, OTHER, UNDECODED]);
  return {
    [METRIC_NAMES.requests]: { door, method, code: set([...CODES, OTHER]) },
    [`${METRIC_NAMES.duration}_bucket`]: { door, method, le },
    [`${METRIC_NAMES.duration}_sum`]: { door, method },
    [`${METRIC_NAMES.duration}_count`]: { door, method },
    [METRIC_NAMES.balance]: { wallet: set(['hot', 'cold']), state: set(['confirmed', 'unconfirmed', 'reserved']) },
    [METRIC_NAMES.velocityUsed]: { window: set(windows) },
    [METRIC_NAMES.velocityLimit]: { window: set(windows) },
    [METRIC_NAMES.alerts]: { type: set([...alerts, OTHER]) },
  };
}

/** Every label value in the scrape is from its fixed set; process metrics carry only Node's own short names. */
function checkLabels(t: Test, samples: readonly Sample[], windows: readonly string[], alerts: readonly string[]): void {
  const allowed = allowedLabels(windows, alerts);
  const custody = new Set<string>(Object.values(METRIC_NAMES));
  let bad = 0;
  for (const s of samples) {
    for (const [k, v] of Object.entries(s.labels)) {
      if (ADDRESS_LIKE.test(v)) {
        bad++;
        t.fail(`${s.name}{${k}="${v}"}: address-like label value`);
      }
    }
    const rule = allowed[s.name];
    if (rule !== undefined) {
      if (Object.keys(s.labels).sort().join() !== Object.keys(rule).sort().join()) {
        bad++;
        t.fail(`${s.name}: label names ${Object.keys(s.labels).join()}`);
      }
      for (const [k, v] of Object.entries(s.labels)) {
        if (!(rule[k]?.has(v) ?? false)) {
          bad++;
          t.fail(`${s.name}{${k}="${v}"}: not in the fixed set`);
        }
      }
    } else if (custody.has(s.name)) {
      if (Object.keys(s.labels).length !== 0) {
        bad++;
        t.fail(`${s.name}: unlabelled gauge has labels ${JSON.stringify(s.labels)}`);
      }
    } else {
      // prom-client's process metrics (custody_ prefix): version numbers, GC kinds, heap spaces, handle types.
      if (!s.name.startsWith('custody_')) {
        bad++;
        t.fail(`${s.name}: metric without the custody_ prefix`);
      }
      for (const [k, v] of Object.entries(s.labels)) {
        const ok = k === 'le' ? v === '+Inf' || Number.isFinite(Number(v)) : ['version', 'major', 'minor', 'patch', 'kind', 'space', 'type'].includes(k) && /^[A-Za-z0-9_.]{1,40}$/.test(v);
        if (!ok) {
          bad++;
          t.fail(`${s.name}{${k}="${v}"}: unexpected process metric label`);
        }
      }
    }
  }
  t.equal(bad, 0, `${samples.length} samples, every label value from its fixed set`);
}

interface State {
  balances: ReturnType<MetricsSources['balances']>;
  chain: ReturnType<MetricsSources['chain']>;
  velocity: ReturnType<MetricsSources['velocity']>;
  frozen: boolean;
  locked: boolean;
  audit: number | null;
  head: number;
  throwIn: string | null;
}

function sourcesOf(st: State): MetricsSources {
  const check = (name: string): void => {
    if (st.throwIn === name) throw new Error(`${name} source failed`);
  };
  return {
    balances: () => (check('balances'), st.balances),
    chain: () => (check('chain'), st.chain),
    velocity: () => (check('velocity'), st.velocity),
    frozen: () => (check('frozen'), st.frozen),
    locked: () => (check('locked'), st.locked),
    auditShippedLag: () => (check('audit'), st.audit),
    eventsHead: () => (check('head'), st.head),
  };
}

async function startServer(metrics: Metrics, host = '127.0.0.1'): Promise<{ server: MetricsServer; url: string; port: number }> {
  const server = new MetricsServer({ host, port: 0, metrics });
  const bound = await server.start();
  const h = bound.host.includes(':') ? `[${bound.host}]` : bound.host;
  return { server, url: `http://${h}:${bound.port}`, port: bound.port };
}

async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(`${url}/metrics`);
  if (res.status !== 200) throw new Error(`scrape: HTTP ${res.status}: ${await res.text()}`);
  return parse(await res.text());
}

/** A raw request, for a Host header fetch() would not send. */
function raw(port: number, opts: { method?: string; path?: string; host?: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/metrics', headers: opts.host === undefined ? {} : { host: opts.host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const WINDOWS = ['1h', '24h', 'per-client'];

function refusal(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

t.test('requests, gauges and labels over a real scrape', async (t) => {
  const st: State = {
    balances: { hot: { confirmedSats: 150_000_000n, unconfirmedSats: 20_000n, reservedSats: 5_000n }, cold: { confirmedSats: 2_100_000_000_000_000n, unconfirmedSats: 0n } },
    chain: { height: 800_000, nodeHeight: 800_003, state: 'connected' },
    velocity: [
      { name: '1h', usedSats: 10_000n, limitSats: 1_000_000n },
      { name: '24h', usedSats: 250_000, limitSats: 5_000_000 },
      { name: 'per-client', usedSats: 0n, limitSats: null },
    ],
    frozen: false,
    locked: true,
    audit: 7,
    head: 41,
    throwIn: null,
  };
  const metrics = new Metrics(sourcesOf(st), { methods: METHOD_NAMES, windows: WINDOWS });
  const { server, url } = await startServer(metrics);
  t.teardown(() => server.close());

  // Before any request: no request samples, gauges read from the sources.
  let s = await scrape(url);
  t.same(find(s, METRIC_NAMES.requests), [], 'no request counted yet');
  t.equal(value(s, METRIC_NAMES.balance, { wallet: 'hot', state: 'confirmed' }), 150_000_000);
  t.equal(value(s, METRIC_NAMES.balance, { wallet: 'hot', state: 'unconfirmed' }), 20_000);
  t.equal(value(s, METRIC_NAMES.balance, { wallet: 'hot', state: 'reserved' }), 5_000);
  t.equal(value(s, METRIC_NAMES.balance, { wallet: 'cold', state: 'confirmed' }), 2_100_000_000_000_000, '21M BTC in satoshis is exact (< 2^53)');
  t.equal(value(s, METRIC_NAMES.balance, { wallet: 'cold', state: 'unconfirmed' }), 0);
  t.equal(find(s, METRIC_NAMES.balance, { wallet: 'cold', state: 'reserved' }).length, 0, 'no reserved figure for cold');
  t.equal(value(s, METRIC_NAMES.velocityUsed, { window: '1h' }), 10_000);
  t.equal(value(s, METRIC_NAMES.velocityUsed, { window: '24h' }), 250_000);
  t.equal(value(s, METRIC_NAMES.velocityUsed, { window: 'per-client' }), 0);
  t.equal(value(s, METRIC_NAMES.velocityLimit, { window: '1h' }), 1_000_000);
  t.equal(value(s, METRIC_NAMES.velocityLimit, { window: '24h' }), 5_000_000);
  t.equal(find(s, METRIC_NAMES.velocityLimit, { window: 'per-client' }).length, 0, 'no global limit: no limit sample');
  t.equal(value(s, METRIC_NAMES.tipHeight), 800_000);
  t.equal(value(s, METRIC_NAMES.nodeHeight), 800_003);
  t.equal(value(s, METRIC_NAMES.lag), 3);
  t.equal(value(s, METRIC_NAMES.connected), 1);
  t.equal(value(s, METRIC_NAMES.frozen), 0);
  t.equal(value(s, METRIC_NAMES.locked), 1);
  t.equal(value(s, METRIC_NAMES.auditUnshipped), 7);
  t.equal(value(s, METRIC_NAMES.eventsHead), 41);
  t.ok(find(s, 'custody_process_cpu_user_seconds_total').length === 1, 'process metrics under the custody_ prefix');
  t.equal(find(s, 'process_cpu_user_seconds_total').length, 0, 'nothing unprefixed');
  checkLabels(t, s, WINDOWS, []);

  // Requests, exactly as dispatch's onDone reports them.
  const done = (method: string, code: string, ms: number, door: 'app' | 'admin', caller = 'client:alice'): void => metrics.observeRequest({ method, code, ms, caller }, door);
  done('status', 'OK', 0.05, 'app');
  done('status', 'OK', 2, 'app');
  done('status', 'OK', 700, 'app');
  done('withdrawal.create', 'POLICY_VELOCITY', 10, 'app', `client:${ADDRESS}`);
  done('lock', 'OK', 0.3, 'admin', 'operator:bob');
  done('status', 'OK', 1, 'admin', 'operator:bob');
  // An attacker's method names and a code outside ERROR_CODES.
  done(ADDRESS, 'METHOD_NOT_FOUND', 0.2, 'app');
  done(TXID, 'METHOD_NOT_FOUND', 0.2, 'app');
  done('withdrawal.create\n{evil="1"}', 'METHOD_NOT_FOUND', 0.2, 'app');
  done('__proto__', 'METHOD_NOT_FOUND', 0.2, 'app');
  done('status', `WEIRD ${ADDRESS}`, 3, 'app');
  done(UNDECODED, 'PARSE_ERROR', 0.1, 'app');
  done('status', 'OK', Number.NaN, 'app');

  s = await scrape(url);
  t.equal(value(s, METRIC_NAMES.requests, { door: 'app', method: 'status', code: 'OK' }), 4);
  t.equal(value(s, METRIC_NAMES.requests, { door: 'admin', method: 'status', code: 'OK' }), 1);
  t.equal(value(s, METRIC_NAMES.requests, { door: 'admin', method: 'lock', code: 'OK' }), 1);
  t.equal(value(s, METRIC_NAMES.requests, { door: 'app', method: 'withdrawal.create', code: 'POLICY_VELOCITY' }), 1);
  t.equal(value(s, METRIC_NAMES.requests, { door: 'app', method: OTHER, code: 'METHOD_NOT_FOUND' }), 4, 'unknown methods → (other)');
  t.equal(value(s, METRIC_NAMES.requests, { door: 'app', method: 'status', code: OTHER }), 1, 'unknown code → (other)');
  t.equal(value(s, METRIC_NAMES.requests, { door: 'app', method: UNDECODED, code: 'PARSE_ERROR' }), 1);
  t.equal(find(s, METRIC_NAMES.requests).reduce((a, x) => a + x.value, 0), 13, 'every request counted once');

  const bucket = (le: string, door = 'app', method = 'status'): number | undefined => value(s, `${METRIC_NAMES.duration}_bucket`, { door, method, le });
  t.equal(bucket('0.0001'), 1, '0.05 ms in the first bucket');
  t.equal(bucket('0.001'), 1);
  t.equal(bucket('0.0025'), 2, '2 ms');
  t.equal(bucket('0.005'), 3, '3 ms (the request with an unknown code is timed too)');
  t.equal(bucket('0.5'), 3);
  t.equal(bucket('1'), 4, '700 ms');
  t.equal(bucket('5'), 4);
  t.equal(bucket('+Inf'), 4, 'NaN ms counted, not timed');
  t.equal(value(s, `${METRIC_NAMES.duration}_count`, { door: 'app', method: 'status' }), 4);
  t.ok(Math.abs((value(s, `${METRIC_NAMES.duration}_sum`, { door: 'app', method: 'status' }) ?? 0) - 0.70505) < 1e-9, 'sum in seconds');
  t.equal(value(s, `${METRIC_NAMES.duration}_bucket`, { door: 'admin', method: 'lock', le: '0.00025' }), 0);
  t.equal(value(s, `${METRIC_NAMES.duration}_bucket`, { door: 'admin', method: 'lock', le: '0.0005' }), 1, '0.3 ms');
  t.equal(value(s, `${METRIC_NAMES.duration}_count`, { door: 'app', method: OTHER }), 4);
  t.same(
    find(s, `${METRIC_NAMES.duration}_bucket`, { door: 'app', method: 'status' }).map((x) => x.labels.le),
    [...LATENCY_BUCKETS.map(String), '+Inf'],
    'buckets 0.1 ms … 5 s',
  );
  checkLabels(t, s, WINDOWS, []);
  const text = await (await fetch(`${url}/metrics`)).text();
  t.notMatch(text, ADDRESS, 'the address appears nowhere in the scrape');
  t.notMatch(text, TXID, 'nor the txid');
  t.notMatch(text, 'alice', 'nor a client name');
  t.notMatch(text, 'evil', 'nor injected label text');

  // Sources change between scrapes; the next scrape shows them.
  st.balances = { hot: { confirmedSats: 1n, unconfirmedSats: 2n }, cold: { confirmedSats: 3n, unconfirmedSats: 4n } };
  st.chain = { height: 800_010, nodeHeight: 800_010, state: 'disconnected' };
  st.velocity = [
    { name: '1h', usedSats: 20_000n, limitSats: 1_000_000n },
    { name: 'unknown-window', usedSats: 5n, limitSats: 6n },
    { name: ADDRESS, usedSats: 5n, limitSats: 6n },
  ];
  st.frozen = true;
  st.locked = false;
  st.audit = 0;
  st.head = 42;
  s = await scrape(url);
  t.equal(value(s, METRIC_NAMES.balance, { wallet: 'hot', state: 'confirmed' }), 1);
  t.equal(value(s, METRIC_NAMES.balance, { wallet: 'hot', state: 'unconfirmed' }), 2);
  t.equal(find(s, METRIC_NAMES.balance, { state: 'reserved' }).length, 0, 'reserved gone when the source drops it');
  t.equal(value(s, METRIC_NAMES.balance, { wallet: 'cold', state: 'confirmed' }), 3);
  t.equal(value(s, METRIC_NAMES.balance, { wallet: 'cold', state: 'unconfirmed' }), 4);
  t.equal(value(s, METRIC_NAMES.velocityUsed, { window: '1h' }), 20_000);
  t.same(
    find(s, METRIC_NAMES.velocityUsed).map((x) => x.labels.window),
    ['1h'],
    'windows gone from the source are gone; names outside the configured set are left out',
  );
  t.equal(value(s, METRIC_NAMES.tipHeight), 800_010);
  t.equal(value(s, METRIC_NAMES.lag), 0);
  t.equal(value(s, METRIC_NAMES.connected), 0);
  t.equal(value(s, METRIC_NAMES.frozen), 1);
  t.equal(value(s, METRIC_NAMES.locked), 0);
  t.equal(value(s, METRIC_NAMES.auditUnshipped), 0);
  t.equal(value(s, METRIC_NAMES.eventsHead), 42);
  t.equal(value(s, METRIC_NAMES.requests, { door: 'app', method: 'status', code: 'OK' }), 4, 'counters keep their values across scrapes');
  checkLabels(t, s, WINDOWS, []);

  // No chain, no [withdrawals], no audit sink: those gauges are absent rather than 0.
  st.balances = null;
  st.chain = null;
  st.velocity = null;
  st.audit = null;
  s = await scrape(url);
  for (const name of [METRIC_NAMES.balance, METRIC_NAMES.velocityUsed, METRIC_NAMES.velocityLimit, METRIC_NAMES.tipHeight, METRIC_NAMES.nodeHeight, METRIC_NAMES.lag, METRIC_NAMES.connected, METRIC_NAMES.auditUnshipped]) {
    t.equal(find(s, name).length, 0, `${name} absent`);
  }
  t.equal(value(s, METRIC_NAMES.frozen), 1);

  // Starting: heights unknown.
  st.chain = { height: null, nodeHeight: 800_020, state: 'starting' };
  s = await scrape(url);
  t.equal(find(s, METRIC_NAMES.tipHeight).length, 0, 'tip unknown: absent');
  t.equal(value(s, METRIC_NAMES.nodeHeight), 800_020);
  t.equal(find(s, METRIC_NAMES.lag).length, 0, 'lag unknown: absent');
  t.equal(value(s, METRIC_NAMES.connected), 0);
  checkLabels(t, s, WINDOWS, []);
});

t.test('a source that throws answers 500 and the server keeps serving', async (t) => {
  const st: State = { balances: null, chain: null, velocity: null, frozen: false, locked: false, audit: null, head: -1, throwIn: null };
  const metrics = new Metrics(sourcesOf(st), { methods: METHOD_NAMES, processMetrics: false });
  const lines: string[] = [];
  const server = new MetricsServer({ host: '127.0.0.1', port: 0, metrics, log: (l) => lines.push(l) });
  const { port } = await server.start();
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${port}/metrics`;
  for (const where of ['balances', 'chain', 'velocity', 'frozen', 'head']) {
    st.throwIn = where;
    const res = await fetch(url);
    t.equal(res.status, 500, `${where} throws: 500`);
    const body = await res.text();
    t.equal(body, 'metrics collection failed\n', 'a short text');
    t.notMatch(body, /at |\.js|source failed/, 'no stack, no message');
    st.throwIn = null;
    const ok = await fetch(url);
    t.equal(ok.status, 200, 'the next scrape works');
    t.equal(value(parse(await ok.text()), METRIC_NAMES.eventsHead), -1);
  }
  t.equal(lines.length, 5, 'each failure logged');
  t.match(lines[0], /scrape failed: balances source failed/);
  t.equal(find(parse(await metrics.text()), 'custody_process_cpu_user_seconds_total').length, 0, 'process metrics can be left out');
});

t.test('paths, methods and Host headers', async (t) => {
  const metrics = new Metrics(sourcesOf({ balances: null, chain: null, velocity: null, frozen: false, locked: false, audit: null, head: 0, throwIn: null }), {
    methods: METHOD_NAMES,
    processMetrics: false,
  });
  const { server, url, port } = await startServer(metrics);
  t.teardown(() => server.close());

  const ok = await fetch(`${url}/metrics`);
  t.equal(ok.status, 200);
  t.match(ok.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  t.equal(ok.headers.get('cache-control'), 'no-store');
  await ok.text();
  t.equal((await fetch(`${url}/metrics?name[]=x`)).status, 200, 'a query string is ignored');
  for (const path of ['/', '/metrics/', '/metrics/x', '/favicon.ico', '/METRICS', `/${ADDRESS}`]) {
    const res = await fetch(`${url}${path}`);
    t.equal(res.status, 404, `${path}: 404`);
    t.notMatch(await res.text(), ADDRESS, 'the path is not echoed');
  }
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']) {
    const res = await fetch(`${url}/metrics`, { method });
    t.equal(res.status, 405, `${method} /metrics: 405`);
    t.equal(res.headers.get('allow'), 'GET');
    await res.text();
  }
  t.equal((await fetch(`${url}/nope`, { method: 'POST' })).status, 404, 'POST elsewhere: 404');

  t.equal((await raw(port, { host: `127.0.0.1:${port}` })).status, 200);
  t.equal((await raw(port, { host: `localhost:${port}` })).status, 200);
  t.equal((await raw(port, { host: '[::1]' })).status, 200);
  for (const host of ['evil.example', `evil.example:${port}`, '10.0.0.1', '127.0.0.1.evil.example', 'localhost.evil.example']) {
    const res = await raw(port, { host });
    t.equal(res.status, 403, `Host "${host}": 403 (DNS rebinding)`);
    t.notMatch(res.body, /custody_/, 'no metrics');
  }
  const noHost = await new Promise<string>((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port }, () => sock.end('GET /metrics HTTP/1.0\r\n\r\n'));
    let got = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => (got += c));
    sock.on('end', () => resolve(got));
    sock.on('error', reject);
  });
  t.match(noHost, /^HTTP\/1\.[01] 403 /, 'no Host header (HTTP/1.0): 403');
});

t.test('binds only to loopback', async (t) => {
  const metrics = new Metrics(sourcesOf({ balances: null, chain: null, velocity: null, frozen: false, locked: false, audit: null, head: 0, throwIn: null }), {
    methods: METHOD_NAMES,
    processMetrics: false,
  });
  for (const host of ['0.0.0.0', '::', '', '10.0.0.1', '192.168.1.20', '8.8.8.8', '127.0.0.1.nip.io', 'localhost.', 'example.com', '::ffff:0.0.0.0', ' 127.0.0.1']) {
    const err = refusal(() => new MetricsServer({ host, port: 0, metrics }));
    t.ok(isCustodyError(err, 'CONFIG_INVALID') && err.message.includes(`"${host}"`), `"${host}" refused, the message naming it`);
  }
  for (const port of [-1, 65_536, 1.5, Number.NaN]) {
    t.ok(isCustodyError(refusal(() => new MetricsServer({ host: '127.0.0.1', port, metrics })), 'CONFIG_INVALID'), `port ${port} refused`);
  }
  t.equal(loopbackHost('LOCALHOST'), 'localhost');
  t.equal(loopbackHost('[::1]'), '::1');
  t.ok(isLoopbackAddress('127.0.0.1') && isLoopbackAddress('::1') && isLoopbackAddress('::ffff:127.0.0.1'));
  t.notOk(isLoopbackAddress('0.0.0.0') || isLoopbackAddress('::') || isLoopbackAddress('10.0.0.1'));

  const local = await startServer(metrics, 'localhost');
  t.ok(isLoopbackAddress(new URL(local.url).hostname.replace(/^\[|\]$/g, '')), `localhost bound to loopback (${local.url})`);
  t.equal((await fetch(`${local.url}/metrics`)).status, 200);
  await local.server.close();

  // A port in use is a configuration error, not a crash; the server can be closed twice.
  const a = new MetricsServer({ host: '127.0.0.1', port: 0, metrics });
  const { port } = await a.start();
  const b = new MetricsServer({ host: '127.0.0.1', port, metrics });
  await t.rejects(b.start(), { code: 'CONFIG_INVALID' });
  await t.rejects(a.start(), { code: 'INTERNAL' }, 'start twice refused');
  await a.close();
  await a.close();
  await b.close();
});

t.test('alerts: allowlist, or the alert.* pattern with a cap', async (t) => {
  const src = sourcesOf({ balances: null, chain: null, velocity: null, frozen: false, locked: false, audit: null, head: 0, throwIn: null });
  const listed = ['alert.hot_low', 'alert.stuck', 'alert.fee_cap'];
  const m1 = new Metrics(src, { methods: METHOD_NAMES, alertTypes: listed, processMetrics: false });
  let s = parse(await m1.text());
  for (const a of listed) t.equal(value(s, METRIC_NAMES.alerts, { type: a }), 0, `${a} starts at 0`);
  m1.alert('alert.hot_low');
  m1.alert('alert.hot_low');
  m1.alert('alert.audit_sink_down');
  m1.alert(`alert.${ADDRESS}`);
  s = parse(await m1.text());
  t.equal(value(s, METRIC_NAMES.alerts, { type: 'alert.hot_low' }), 2);
  t.equal(value(s, METRIC_NAMES.alerts, { type: OTHER }), 2, 'types off the list → (other)');
  checkLabels(t, s, [], listed);

  const m2 = new Metrics(src, { methods: METHOD_NAMES, processMetrics: false });
  const names = Array.from({ length: MAX_ALERT_TYPES + 10 }, (_, i) => `alert.t_${String.fromCharCode(97 + (i % 26))}_${String.fromCharCode(97 + Math.floor(i / 26))}`);
  for (const n of names) m2.alert(n);
  m2.alert('alert.t_a_a');
  for (const bad of [ADDRESS, `alert.${ADDRESS}`, 'alert.Hot', 'alert.x y', 'deposit.confirmed', `alert.${'a'.repeat(41)}`]) m2.alert(bad);
  s = parse(await m2.text());
  const series = find(s, METRIC_NAMES.alerts);
  t.equal(series.length, MAX_ALERT_TYPES + 1, `${MAX_ALERT_TYPES} types and (other)`);
  t.equal(value(s, METRIC_NAMES.alerts, { type: 'alert.t_a_a' }), 2, 'a type seen before the cap keeps counting');
  t.equal(value(s, METRIC_NAMES.alerts, { type: OTHER }), 10 + 6, 'past the cap and off the pattern → (other)');
  checkLabels(t, s, [], names.slice(0, MAX_ALERT_TYPES));
});

t.test('the constructor refuses label sets that are not of their form', async (t) => {
  const src = sourcesOf({ balances: null, chain: null, velocity: null, frozen: false, locked: false, audit: null, head: 0, throwIn: null });
  t.throws(() => new Metrics(src, { methods: ['status', ADDRESS.toUpperCase()], processMetrics: false }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => new Metrics(src, { methods: ['a b'], processMetrics: false }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => new Metrics(src, { methods: [], alertTypes: ['hot_low'], processMetrics: false }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => new Metrics(src, { methods: [], windows: ['a window'], processMetrics: false }), { code: 'INVALID_ARGUMENT' });
  t.doesNotThrow(() => new Metrics(src, { methods: METHOD_NAMES, processMetrics: false }), 'the daemon method table is accepted');
});
