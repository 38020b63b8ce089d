#!/usr/bin/env node
// Launcher for a throw-away bcoin regtest full node that looks like Core's regtest from outside.
// Started by the test harness as a child process:
//   BCOIN_API_KEY=<password> node bcoin-launcher.mjs [--http-port=N] [--data-dir=DIR] [--log-level=warning]
// --http-port=0 (default) lets the OS pick a free loopback port; the launcher prints ONE line on
// stdout when the RPC server is listening:  {"ready":true,"port":N,"height":H,"pid":P}
// RPC: HTTP JSON-RPC on 127.0.0.1:N, Basic auth, any user name, password = the API key.
import bcoin from 'bcoin';

// --- make addresses/keys match Bitcoin Core's regtest -------------------------------------------
// Must happen in this process before the node is built; the objects are shared by reference, so
// Network.get('regtest') (cached or not) sees the patched prefixes.
const rt = bcoin.networks.regtest;
rt.addressPrefix.bech32 = 'bcrt';        // bcoin default 'rb'
rt.addressPrefix.pubkeyhash = 0x6f;      // bcoin default 0x3c  (Core regtest: m/n...)
rt.addressPrefix.scripthash = 0xc4;      // bcoin default 0x26  (Core regtest: 2...)
rt.keyPrefix.privkey = 0xef;             // bcoin default 0x5a  (Core regtest WIF: c...)
rt.keyPrefix.xpubkey = 0x043587cf;       // tpub (bcoin default rpub)
rt.keyPrefix.xprivkey = 0x04358394;      // tprv (bcoin default rprv)
rt.keyPrefix.xpubkey58 = 'tpub';
rt.keyPrefix.xprivkey58 = 'tprv';

const arg = (name, dflt) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};

const apiKey = process.env.BCOIN_API_KEY;
if (!apiKey) {
  console.error('BCOIN_API_KEY must be set (the RPC password)');
  process.exit(2);
}

const dataDir = arg('data-dir', '');
const node = new bcoin.FullNode({
  network: 'regtest',
  // In memory by default; --data-dir keeps the chain on disk so a killed node restarts where it was.
  memory: dataDir === '',
  ...(dataDir === '' ? {} : { prefix: dataDir }),
  workers: false,                 // no worker processes
  listen: false,                  // no P2P listening socket (no port clashes between nodes)
  logConsole: true,               // logs go to stderr/stdout of the child; no log file
  logFile: false,
  logLevel: arg('log-level', 'none'), // none|error|warning|info|debug|spam (errors to stderr, others to stdout)
  httpHost: '127.0.0.1',
  httpPort: Number(arg('http-port', '0')),
  apiKey,
  indexTX: arg('index-tx', 'true') === 'true', // getrawtransaction for confirmed txs (like -txindex)
  // no wallet plugin: nothing else opens a port
});

// We never connect the P2P pool (no peers wanted). But the pool's chain 'reset' handler, which
// invalidateblock triggers, asserts that it is connected and, by throwing, keeps the mempool from
// following the rewound chain ("Mempool/chain tip mismatch! Unsafe to create block." on the next
// generatetoaddress). With no peers there is nothing to resync, so make it a no-op.
node.pool.forceSync = () => {};

node.on('error', (err) => {
  // relay() failures (e.g. sendrawtransaction of a double spend) arrive here; keep running
  if (process.env.BCOIN_DEBUG) console.error('bcoin error:', err.message);
});

const shutdown = async () => {
  try { await node.close(); } finally { process.exit(0); }
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.on('unhandledRejection', (err) => { console.error(err); process.exit(1); });
// if the parent dies (stdin closed), exit too, so no orphan nodes are left behind
process.stdin.on('end', shutdown);
process.stdin.resume();

if (dataDir !== '') await node.ensure(); // creates the chain's directories
await node.open();                // no node.connect()/startSync(): no outbound P2P attempts
const { port } = node.http.http.address();
process.stdout.write(JSON.stringify({ ready: true, port, height: node.chain.height, pid: process.pid }) + '\n');
