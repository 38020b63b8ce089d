import t from 'tap';
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configPath, loadConfig, parseConfig } from '../../../src/config/load.js';
import { depositConfirmations } from '../../../src/config/schema.js';

const REGTEST_DESCRIPTOR = 'wpkh([73c5da0a/84h/1h/0h]tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M/<0;1>/*)#lxek0ef2';
const minimal = `network = "regtest"\ndataDir = "/tmp/d"\n[keystore]\nfile = "/tmp/d/ks.json"\n[cold]\ndescriptor = "${REGTEST_DESCRIPTOR}"\n`;
/** [hot] and [withdrawals] need a node to follow. */
const withChain = `${minimal}[chain]\nurl = "http://127.0.0.1:18443/"\ncookieFile = "/c"\nbirthdayHeight = 0\n`;

t.test('every shipped config file parses, and example.toml sets every key the schema knows', async (t) => {
  for (const f of ['config/example.toml', 'config/regtest.toml']) {
    const c = parseConfig(readFileSync(f, 'utf8'), f);
    t.ok(c.network, f);
  }
  const example = parseConfig(readFileSync('config/example.toml', 'utf8'));
  t.same(example, {
    network: 'mainnet',
    dataDir: '/var/lib/custody',
    keystore: { file: '/var/lib/custody/keystore.json' },
    cold: {
      descriptor:
        'wpkh([73c5da0a/84h/0h/0h]xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V/<0;1>/*)#qf45pmyh',
    },
    addresses: { poolSize: 4096, poolWorkers: 1, gapWarning: 1000 },
    rpc: { endpoint: 'tcp://0.0.0.0:7010', serverKeyFile: '/etc/custody/server.key', maxFrameBytes: 65536, authWindowSeconds: 30 },
    events: { endpoint: 'tcp://0.0.0.0:7011' },
    admin: { endpoint: 'ipc:///var/lib/custody/admin/admin.sock', tcpEndpoint: 'tcp://10.0.9.1:7012', serverKeyFile: '/etc/custody/admin-server.key' },
    chain: {
      url: 'http://127.0.0.1:8332/',
      cookieFile: '/var/lib/bitcoind/.cookie',
      birthdayHeight: 870000,
      confirmations: 6,
      pollMilliseconds: 2000,
      timeoutSeconds: 30,
      zmqHashblock: 'tcp://127.0.0.1:28332',
      lookahead: 100,
      mempool: true,
    },
    clients: [{ name: 'app1', publicKey: 'REPLACE-WITH-40-CHAR-Z85-KEY-FROM-CUSTOD', roles: ['deposits'], ratePerSecond: 2000, burst: 4000 }],
    operators: [{ name: 'alice', publicKey: 'REPLACE-WITH-OPERATOR-Z85-KEY-FROM-CUSTO' }],
    unlock: { progressTimeoutSeconds: 600, backoffAfterFailures: 3, maxBackoffSeconds: 300 },
    withdrawals: {
      whenLocked: 'queue',
      maxAmountSats: 100_000_000n,
      deny: [],
      bumpAfterBlocks: 3,
      approval: { aboveSats: 10_000_000n, approvals: 1 },
      windows: [
        { name: '1h', seconds: 3600, perClientSats: 50_000_000n, globalSats: 100_000_000n },
        { name: '24h', seconds: 86400, perClientSats: 200_000_000n, globalSats: 500_000_000n },
      ],
      batch: { windowMs: 2000, maxOutputs: 100 },
      fee: { targetBlocks: 6, minSatPerVb: 1, maxSatPerVb: 500, fallbackSatPerVb: 10, maxFeeSats: 1_000_000n },
    },
    metrics: { host: '127.0.0.1', port: 9464 },
    alerts: { tipStaleSeconds: 3600, velocityWarnPercent: 80, authFailuresPerMinute: 20, policyRejectionsPer10Minutes: 20 },
    autoFreeze: { policyRejections: 50, policyRejectionsMinutes: 10, reorgDepth: 3, tipStaleSeconds: 7200, auditSinkDownSeconds: 900, failedUnlocks: 5, failedUnlocksMinutes: 10 },
    audit: { syslog: 'tcp://10.0.9.2:6514', facility: 10, headEverySeconds: 60, failClosedAfterSeconds: 300 },
    sweeps: { outbox: '/var/lib/custody/outbox', maxFeeSats: 1_000_000n, maxInputs: 100, autoRefill: true },
    hot: { minSats: 10_000_000n, targetSats: 50_000_000n, maxSats: 100_000_000n },
  });
});

t.test('[chain]: cookie file or user and password file, never both; confirmations default to 6, 1 on regtest', async (t) => {
  const chain = (body: string, network = 'regtest'): string => `${minimal.replace('network = "regtest"', `network = "${network}"`)}[chain]\nurl = "http://127.0.0.1:18443/"\nbirthdayHeight = 100\n${body}\n`;
  const withPassword = parseConfig(chain('user = "custody"\npasswordFile = "/etc/custody/node.pass"'));
  t.match(withPassword.chain, { user: 'custody', passwordFile: '/etc/custody/node.pass', pollMilliseconds: 2000, lookahead: 100, mempool: true, timeoutSeconds: 30 });
  t.equal(depositConfirmations(withPassword), 1, 'regtest default');
  t.equal(depositConfirmations(parseConfig(chain('cookieFile = "/c"', 'testnet'))), 6, 'default elsewhere');
  t.equal(depositConfirmations(parseConfig(chain('cookieFile = "/c"\nconfirmations = 3'))), 3);
  t.throws(() => parseConfig(chain('')), { code: 'CONFIG_INVALID', message: /chain\.cookieFile: expected either cookieFile, or user and passwordFile/ });
  t.throws(() => parseConfig(chain('cookieFile = "/c"\nuser = "u"\npasswordFile = "/p"')), { message: /chain\.cookieFile: expected either cookieFile, or user and passwordFile \(not both\)/ });
  t.throws(() => parseConfig(chain('user = "u"')), { message: /chain\.passwordFile: expected user and passwordFile together/ });
  t.throws(() => parseConfig(chain('cookieFile = "/c"\npassword = "hunter2"')), { message: /chain\.password: unknown key/ });
  t.throws(() => parseConfig(chain('cookieFile = "/c"\nconfirmations = 0')), { message: /chain\.confirmations: expected a whole number of blocks from 1 to 1000, got 0/ });
  t.throws(() => parseConfig(minimal + '[chain]\nurl = "127.0.0.1:8332"\nbirthdayHeight = 1\ncookieFile = "/c"\n'), { message: /chain\.url: expected http:\/\/HOST:PORT\// });
});

t.test('defaults fill what a minimal file leaves out; the result is frozen', async (t) => {
  const c = parseConfig(minimal);
  t.same(c.unlock, { progressTimeoutSeconds: 600, backoffAfterFailures: 3, maxBackoffSeconds: 300 });
  t.equal(c.hot, undefined);
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.unlock));
});

t.test('amounts are exact bigint satoshis up to the 21M BTC supply', async (t) => {
  const c = parseConfig(`${withChain}[hot]\nminSats = 0\ntargetSats = 2099999999999999\nmaxSats = 2100000000000000\n`);
  t.equal(c.hot?.targetSats, 2099999999999999n);
  t.equal(c.hot?.maxSats, 2_100_000_000_000_000n);
  t.equal(typeof c.hot?.maxSats, 'bigint');
});

const bad: Array<[string, string, RegExp]> = [
  ['a string amount', `${withChain}[hot]\nminSats = 1\ntargetSats = 2\nmaxSats = "abc"\n`, /hot\.maxSats: expected a positive integer of satoshis \(at most 2100000000000000\), got "abc"/],
  ['a fractional amount', `${withChain}[hot]\nminSats = 1\ntargetSats = 2\nmaxSats = 1.5\n`, /hot\.maxSats: expected a positive integer of satoshis.*got 1\.5/],
  ['a negative amount', `${withChain}[hot]\nminSats = -1\ntargetSats = 2\nmaxSats = 3\n`, /hot\.minSats: expected a non-negative integer of satoshis.*got -1/],
  ['more than 21M BTC', `${withChain}[hot]\nminSats = 1\ntargetSats = 2\nmaxSats = 2100000000000001\n`, /hot\.maxSats: .*got 2100000000000001/],
  ['min/target/max out of order', `${withChain}[hot]\nminSats = 5\ntargetSats = 2\nmaxSats = 3\n`, /hot\.targetSats: expected minSats < targetSats < maxSats, got 5 \/ 2 \/ 3/],
  ['[hot] without [chain]', `${minimal}[hot]\nminSats = 1\ntargetSats = 2\nmaxSats = 3\n`, /hot: needs a \[chain\] section/],
  ['[withdrawals] without [chain]', `${minimal}[withdrawals]\nmaxAmountSats = 1000\n`, /withdrawals: needs a \[chain\] section/],
  ['a window with no cap', `${withChain}[withdrawals]\nmaxAmountSats = 1000\n[[withdrawals.windows]]\nname = "1h"\nseconds = 3600\n`, /withdrawals\.windows\.0: expected perClientSats or globalSats/],
  ['min fee rate above max', `${withChain}[withdrawals]\nmaxAmountSats = 1000\n[withdrawals.fee]\nminSatPerVb = 9\nmaxSatPerVb = 2\n`, /withdrawals\.fee\.minSatPerVb: expected minSatPerVb <= maxSatPerVb, got 9 > 2/],
  ['an unknown top-level key', `${minimal}colour = "blue"\n`, /colour: unknown key/],
  ['an unknown nested key', `${minimal}[unlock]\ntimeout = 5\n`, /unlock\.timeout: unknown key/],
  ['a missing required key', `network = "regtest"\n[keystore]\nfile = "x"\n[cold]\ndescriptor = "x"\n`, /dataDir: required key is missing/],
  ['a descriptor of the wrong network', minimal.replace('"regtest"', '"mainnet"'), /cold\.descriptor: \[DESCRIPTOR_NETWORK\]/],
  ['a descriptor with a bad checksum', minimal.replace('#lxek0ef2', '#lxek0ef3'), /cold\.descriptor: \[DESCRIPTOR_CHECKSUM\]/],
  ['a descriptor without its checksum', minimal.replace('#lxek0ef2', ''), /cold\.descriptor: \[DESCRIPTOR_CHECKSUM\]/],
  ['a bad network', minimal.replace('regtest', 'moonnet'), /network: expected one of mainnet, testnet, signet, regtest/],
  ['a duplicate client', `${minimal}[[clients]]\nname = "a"\npublicKey = "${'x'.repeat(40)}"\nroles = ["deposits"]\n[[clients]]\nname = "a"\npublicKey = "${'y'.repeat(40)}"\nroles = ["monitor"]\n`, /clients\.1\.name: duplicate client name "a"/],
  ['a remote admin door with no operators', `${minimal}[rpc]\nendpoint = "tcp://127.0.0.1:7010"\nserverKeyFile = "/k"\n[admin]\nendpoint = "ipc:///tmp/a.sock"\ntcpEndpoint = "tcp://127.0.0.1:7012"\n`, /admin\.tcpEndpoint: needs at least one \[\[operators\]\] entry/],
  ['a remote admin door with no server key', `${minimal}[admin]\nendpoint = "ipc:///tmp/a.sock"\ntcpEndpoint = "tcp://127.0.0.1:7012"\n[[operators]]\nname = "alice"\npublicKey = "${'x'.repeat(40)}"\n`, /admin\.serverKeyFile: needed by tcpEndpoint/],
  ['a duplicate operator key', `${minimal}[[operators]]\nname = "a"\npublicKey = "${'x'.repeat(40)}"\n[[operators]]\nname = "b"\npublicKey = "${'x'.repeat(40)}"\n`, /operators\.1\.publicKey: the same public key is listed twice/],
  ['a duplicate operator name', `${minimal}[[operators]]\nname = "a"\npublicKey = "${'x'.repeat(40)}"\n[[operators]]\nname = "a"\npublicKey = "${'y'.repeat(40)}"\n`, /operators\.1\.name: duplicate operator name "a"/],
  ['an operator key that is also a client key', `${minimal}[[clients]]\nname = "a"\npublicKey = "${'x'.repeat(40)}"\nroles = ["deposits"]\n[[operators]]\nname = "a"\npublicKey = "${'x'.repeat(40)}"\n`, /operators\.0\.publicKey: this key is also a \[\[clients\]\] key/],
  ['an operator key that is not Z85', `${minimal}[[operators]]\nname = "a"\npublicKey = "short"\n`, /operators\.0\.publicKey: expected a 40-character Z85 CURVE public key/],
  ['a client role that does not exist', `${minimal}[[clients]]\nname = "a"\npublicKey = "${'x'.repeat(40)}"\nroles = ["admin"]\n`, /clients\.0\.roles\.0: /],
  ['an rpc endpoint that is not tcp', `${minimal}[rpc]\nendpoint = "ipc:///x"\nserverKeyFile = "k"\n`, /rpc\.endpoint: expected tcp:\/\/HOST:PORT/],
  ['an out-of-range number', `${minimal}[unlock]\nprogressTimeoutSeconds = 5\n`, /unlock\.progressTimeoutSeconds: expected a whole number of seconds from 30 to 86400, got 5/],
  ['invalid TOML', `network = "regtest\n`, /config:1:\d+: not valid TOML/],
];
for (const [what, text, message] of bad) {
  t.test(`rejects ${what}, naming the key and the rule`, async (t) => {
    t.throws(() => parseConfig(text), { code: 'CONFIG_INVALID', message });
  });
}

t.test('the file comes from --config, else CUSTODY_CONFIG, else a usage error', async (t) => {
  t.equal(configPath('/a.toml', { CUSTODY_CONFIG: '/b.toml' }), '/a.toml');
  t.equal(configPath(undefined, { CUSTODY_CONFIG: '/b.toml' }), '/b.toml');
  t.throws(() => configPath(undefined, {}), { code: 'USAGE', message: /--config/ });
  const dir = mkdtempSync(join(tmpdir(), 'custody-config-'));
  writeFileSync(join(dir, 'c.toml'), minimal);
  t.equal(loadConfig(join(dir, 'c.toml')).network, 'regtest');
  t.throws(() => loadConfig(join(dir, 'missing.toml')), { code: 'CONFIG_NOT_FOUND', message: /missing\.toml.*ENOENT/ });
});
