/**
 * The composition root, and nothing else (DESIGN §7): config → crypto self-test → store → audit check →
 * keystore (locked) → services → RPC doors. Every other module receives what it needs from here.
 */
import { join } from 'node:path';
import { CustodyError } from './errors.js';
import type { Config } from './config/schema.js';
import { selfTest } from './crypto/self-test.js';
import { Store } from './store/db.js';
import { AuditLog, verifyAudit } from './audit/log.js';
import { Keystore } from './keystore/keystore.js';
import { parseDescriptor } from './wallet/descriptor.js';
import { DepositAddresses, type AddressRecord } from './service/deposits.js';
import type { BatchOp } from './store/db.js';
import { EventLog } from './service/events.js';
import { Journal } from './service/journal.js';
import { Operator } from './service/operator.js';
import { DaemonServices } from './service/daemon-services.js';
import { ChainTracking } from './service/chain-tracking.js';
import { BitcoindClient, type BitcoindAuth } from './chain/bitcoind.js';
import { BlockNotifier } from './chain/block-notify.js';
import { depositConfirmations } from './config/schema.js';
import { readFileSync, statSync } from 'node:fs';
import { Withdrawals } from './service/withdrawals.js';
import { Payouts, type PayoutOptions } from './service/payouts.js';
import { Sweeps } from './service/sweeps.js';
import { AuditSink } from './service/audit-sink.js';
import { Watchdog } from './service/watchdog.js';
import { Metrics } from './service/metrics.js';
import { MetricsServer } from './rpc/metrics-server.js';
import { METHODS } from './rpc/methods.js';
import type { WithdrawalPolicy } from './policy/rules.js';
import { parseDestination } from './wallet/destination.js';
import { readKeyPairFile, type ServerKeyPairFile } from './rpc/curve-keys.js';
import { DEFAULT_AUTH_WINDOW_MS, deriveClientKey, RateLimiter, RequestVerifier, startZapHandler, Throttle, type ZapHandler } from './rpc/auth.js';
import { AppServer, APP_ZAP_DOMAIN } from './rpc/app-server.js';
import { AdminServer, ADMIN_ZAP_DOMAIN } from './rpc/admin-server.js';
import { EventPublisher, EVENTS_ZAP_DOMAIN } from './rpc/events.js';
import type { Role } from './rpc/methods.js';
import type { RpcRequest } from './rpc/protocol.js';

export const VERSION = '0.1.0';

export interface DaemonEndpoints {
  readonly app: string | null;
  readonly events: string | null;
  readonly admin: string | null;
  /** The remote admin door ([admin] tcpEndpoint), when configured. */
  readonly adminTcp: string | null;
  readonly metrics: string | null;
}

export interface RunningDaemon {
  readonly services: DaemonServices;
  readonly endpoints: DaemonEndpoints;
  /** SIGHUP: a new client (and operator) list from a re-read config (other changes need a restart). */
  reloadClients(config: Config): Promise<void>;
  /** SIGTERM/SIGINT: stop taking requests, finish writes in flight, lock, close. */
  stop(reason: string): Promise<void>;
}

type Log = (line: string) => void;

interface ClientEntry {
  readonly roles: readonly Role[];
  readonly publicKey: string;
  readonly limiter: RateLimiter;
}

export interface DaemonOptions {
  /** Test-only fault injection (custodyd reads CUSTODY_FAULT_INJECT): called at each payout step. */
  readonly fault?: PayoutOptions['fault'];
}

export async function startDaemon(config: Config, log: Log, daemonOpts: DaemonOptions = {}): Promise<RunningDaemon> {
  await selfTest();
  const descriptor = parseDescriptor(config.cold.descriptor, { network: config.network, requireChecksum: true });
  for (const w of descriptor.warnings) log(`warning: cold.descriptor: ${w}`);
  const { keystore, warnings } = Keystore.open(config.keystore.file, {
    progressTimeoutMs: config.unlock.progressTimeoutSeconds * 1000,
    backoffAfterFailures: config.unlock.backoffAfterFailures,
    maxBackoffMs: config.unlock.maxBackoffSeconds * 1000,
  });
  if (warnings.some((w) => w.includes('readable or writable by other users'))) {
    // Fail closed, as for the server key: the keystore is the one file whose theft matters most.
    throw new CustodyError('KEYSTORE_INVALID', `${config.keystore.file}: readable or writable by other users; chmod 600 it (and check who could have copied it)`);
  }
  for (const w of warnings) log(`warning: ${w}`);
  if (keystore.body.network !== config.network) {
    throw new CustodyError('CONFIG_INVALID', `keystore.file: the keystore is for ${keystore.body.network}, the configuration says ${config.network}`);
  }

  const store = await Store.open(config.dataDir, { network: config.network, descriptorChecksum: descriptor.checksum });
  const opened: Array<() => Promise<void>> = [() => store.close()];
  try {
    const audit = await AuditLog.open(store);
    // Fail closed on a broken audit trail: check the most recent records at every start (full check: custody audit verify).
    const head = audit.head();
    const check = await verifyAudit(store, { from: Math.max(0, head.seq - 1_000) });
    if (!check.ok) throw new CustodyError('AUDIT_BROKEN', `the audit chain is broken at record ${check.brokenAt}: ${check.reason}; refusing to start`);

    const events = await EventLog.open(store);
    const journal = new Journal(store, audit, events);
    let auditSink: AuditSink | null = null;
    if (config.audit !== undefined) {
      const a = config.audit;
      auditSink = await AuditSink.open(store, audit, events, { target: a.syslog, facility: a.facility, headEverySeconds: a.headEverySeconds, failClosedAfterSeconds: a.failClosedAfterSeconds ?? null, log });
      const sink = auditSink;
      opened.unshift(() => sink.close());
      // Every event follows a commit; most audit records ride in the same batches. The shipper also polls.
      events.subscribe(() => sink.nudge());
    }
    const operator = await Operator.open(journal, keystore);
    const deposits = await DepositAddresses.open(store, descriptor, {
      pool: { size: config.addresses.poolSize, batch: 256, workers: config.addresses.poolWorkers },
      gapWarning: config.addresses.gapWarning,
      // Every address issued is on record, in the same batch as the address itself: one record per client
      // and group (up to 100 addresses), since hashing a record per address cost as much as issuing it.
      onIssue: (records) => auditIssued(audit, records),
    });
    opened.unshift(() => deposits.close());
    let chain: ChainTracking | null = null;
    if (config.chain !== undefined) {
      const c = config.chain;
      const backend = new BitcoindClient({ url: c.url, auth: nodeAuth(c, log), timeoutMs: c.timeoutSeconds * 1000, retries: 2 });
      chain = await ChainTracking.open(store, events, deposits, descriptor, keystore.body.hot, backend, {
        network: config.network,
        birthdayHeight: c.birthdayHeight,
        confirmations: depositConfirmations(config),
        pollMs: c.pollMilliseconds,
        lookahead: c.lookahead,
        mempool: c.mempool,
        log,
      });
      const tracking = chain;
      opened.unshift(() => tracking.stop());
      if (c.zmqHashblock !== undefined) {
        const notifier = new BlockNotifier(c.zmqHashblock, () => tracking.follower.wake());
        notifier.start();
        opened.unshift(() => notifier.close());
      }
    }
    let payments: { withdrawals: Withdrawals; payouts: Payouts; sweeps: Sweeps } | null = null;
    if (chain !== null && (config.withdrawals !== undefined || config.hot !== undefined)) {
      const w = config.withdrawals;
      const withdrawals = await Withdrawals.open(store, events, {
        network: config.network,
        policy: withdrawalPolicy(config),
        whenLocked: w?.whenLocked ?? 'refuse',
        isLocked: () => keystore.status().state !== 'unlocked',
        frozen: () => operator.frozen,
        audit,
      });
      const payouts = await Payouts.open(store, events, withdrawals, chain.ledger, chain.watch, keystore, operator, chain.backend, chain.derivers, {
        batchWindowMs: w?.batch.windowMs ?? 2_000,
        maxOutputs: w?.batch.maxOutputs ?? 100,
        fee: w?.fee ?? { targetBlocks: 6, minSatPerVb: 1, maxSatPerVb: 500, fallbackSatPerVb: 10, maxFeeSats: 1_000_000n },
        bumpAfterBlocks: w?.bumpAfterBlocks ?? 3,
        hot: config.hot ?? null,
        lookahead: config.chain?.lookahead ?? 100,
        audit,
        log,
        ...(auditSink === null ? {} : { signingBlocked: () => (auditSink as AuditSink).signingBlocked() }),
        ...(daemonOpts.fault === undefined ? {} : { fault: daemonOpts.fault }),
      });
      opened.unshift(() => payouts.stop());
      const sweeps = await Sweeps.open(store, events, chain.ledger, payouts, chain.backend, chain.derivers, {
        outbox: config.sweeps.outbox ?? join(config.dataDir, 'outbox'),
        maxFeeSats: config.sweeps.maxFeeSats,
        maxInputs: config.sweeps.maxInputs,
        minConfirmations: depositConfirmations(config),
        lookahead: config.chain?.lookahead ?? 100,
        autoRefill: config.sweeps.autoRefill && config.hot !== undefined,
        audit,
        log,
      });
      payments = { withdrawals, payouts, sweeps };
    }
    const services = new DaemonServices(VERSION, config.network, store, journal, audit, events, keystore, operator, deposits, chain, payments);
    services.auditSink = auditSink;
    const watchdog = new Watchdog(
      store,
      events,
      operator,
      {
        chain: () => (chain === null ? null : chain.status()),
        velocity: () => {
          if (payments === null || chain === null) return [];
          const b = chain.balances();
          return payments.withdrawals.velocity(b.hot.confirmedSats + b.hot.unconfirmedSats).windows.map((w) => ({ name: w.name, usedSats: w.globalUsedSats, limitSats: w.globalLimitSats }));
        },
      },
      { alerts: config.alerts, freeze: config.autoFreeze, log },
    );
    const metrics = new Metrics(
      {
        balances: () => chain?.balances() ?? null,
        chain: () => chain?.status() ?? null,
        velocity: () => {
          if (chain === null || payments === null) return null;
          const b = chain.balances();
          return payments.withdrawals.velocity(b.hot.confirmedSats + b.hot.unconfirmedSats).windows.map((w) => ({ name: w.name, usedSats: w.globalUsedSats, limitSats: w.globalLimitSats }));
        },
        frozen: () => operator.frozen !== null,
        locked: () => keystore.status().state !== 'unlocked',
        auditShippedLag: () => auditSink?.status().waiting ?? null,
        eventsHead: () => events.head,
      },
      { methods: Object.keys(METHODS), ...(config.withdrawals === undefined ? {} : { windows: config.withdrawals.windows.map((w) => w.name) }) },
    );
    events.subscribe((batch) => {
      for (const e of batch) if (e.type.startsWith('alert.')) metrics.alert(e.type);
    });
    let metricsEndpoint: string | null = null;
    if (config.metrics !== undefined) {
      const server = new MetricsServer({ host: config.metrics.host, port: config.metrics.port, metrics, log });
      const bound = await server.start();
      metricsEndpoint = `http://${bound.host.includes(':') ? `[${bound.host}]` : bound.host}:${bound.port}/metrics`;
      opened.unshift(() => server.close());
    }
    operator.onUnlockFailure = (custodian, code) => watchdog.unlockFailed(custodian, code);
    if (chain !== null) chain.follower.onReorg = (depth, fork) => watchdog.reorganised(depth, fork);
    if (auditSink !== null) {
      const sink = auditSink;
      sink.onDown = (ms) => watchdog.auditSinkDown(ms);
      events.subscribe((batch) => sink.forwardAlerts(batch));
    }
    watchdog.start();
    opened.unshift(async () => watchdog.stop());

    let app: AppServer | undefined;
    let publisher: EventPublisher | undefined;
    let admin: AdminServer | undefined;
    let zap: ZapHandler | undefined;
    let clients = clientTable(config);
    /** [[operators]]: name → public key; only these keys pass ZAP on the remote admin door. */
    let operators = new Map(config.operators.map((o) => [o.name, o.publicKey]));
    let appEndpoint: string | null = null;
    let eventsEndpoint: string | null = null;
    let adminTcpEndpoint: string | null = null;
    const authFailures = new Throttle({ max: 20, windowMs: 60_000 });
    const auditAuthFailure = (who: string, code: string, extra: Record<string, unknown> = {}): void => {
      watchdog.authFailed(who);
      if (!authFailures.allow(who, Date.now())) return;
      const suppressed = authFailures.takeSuppressed(who);
      void audit.appendNow('system', 'rpc.auth_failed', { who, code, ...extra, ...(suppressed > 0 ? { suppressedSinceLast: suppressed } : {}) }).catch(() => undefined);
    };
    if (config.rpc !== undefined || config.admin?.tcpEndpoint !== undefined) {
      // One handler for every CURVE door; the domain keeps the key sets apart (an app key never opens the admin door).
      zap = startZapHandler({
        isAllowed: (key, domain) =>
          domain === ADMIN_ZAP_DOMAIN
            ? [...operators.values()].includes(key)
            : (domain === APP_ZAP_DOMAIN || domain === EVENTS_ZAP_DOMAIN) && [...clients.values()].some((c) => c.publicKey === key),
        onDenied: (d) => auditAuthFailure(`key:${d.publicKey.slice(0, 8)}`, 'UNKNOWN_KEY', { publicKey: d.publicKey, address: d.address, domain: d.domain }),
      });
      opened.unshift(() => (zap as ZapHandler).close());
    }

    if (config.rpc !== undefined) {
      const serverKeys = readServerKeyFile(config.rpc.serverKeyFile);
      const macKeys = (table: Map<string, ClientEntry>): Map<string, Uint8Array> =>
        new Map(
          [...table].map(([name, c]) => [
            name,
            deriveClientKey({ secretKey: serverKeys.secretKey, peerPublicKey: c.publicKey, clientPublicKey: c.publicKey, serverPublicKey: serverKeys.publicKey }),
          ]),
        );
      const verifier = new RequestVerifier(macKeys(clients), { windowMs: config.rpc.authWindowSeconds * 1000 });
      app = new AppServer({
        endpoint: config.rpc.endpoint,
        serverSecretKey: serverKeys.secretKey,
        services,
        maxFrameBytes: config.rpc.maxFrameBytes,
        authenticate: (req: RpcRequest) => {
          let name: string;
          try {
            name = verifier.verify({ method: req.method, id: req.id, params: req.params, auth: req.auth });
          } catch (err) {
            const claimed = typeof (req.auth as { client?: unknown } | undefined)?.client === 'string' ? String((req.auth as { client: string }).client).slice(0, 32) : '?';
            auditAuthFailure(`client:${claimed}`, err instanceof CustodyError ? err.code : 'UNAUTHENTICATED');
            throw err;
          }
          const entry = clients.get(name);
          if (entry === undefined) throw new CustodyError('UNAUTHENTICATED', `auth.client: no client named "${name}"`);
          return { name, roles: entry.roles };
        },
        allow: (name) => clients.get(name)?.limiter.take(name) ?? false,
        onDone: (info) => {
          metrics.observeRequest(info, 'app');
          if (info.code.startsWith('POLICY_')) watchdog.policyRejected(info.caller, info.code);
        },
      });
      appEndpoint = await app.start();
      opened.unshift(() => (app as AppServer).close());
      if (config.events !== undefined) {
        publisher = new EventPublisher(config.events.endpoint, serverKeys.secretKey);
        eventsEndpoint = await publisher.start();
        events.subscribe((batch) => publisher?.publish(batch));
        opened.unshift(() => (publisher as EventPublisher).close());
      }
      services.reloadHook = async (next: Config) => {
        clients = clientTable(next);
        verifier.replaceClients(macKeys(clients));
      };
    }
    if (config.admin !== undefined) {
      // 16 MiB: sweep.import carries several signed PSBTs in one request (the admin socket is local and operators only).
      admin = new AdminServer({ endpoint: config.admin.endpoint, services, maxFrameBytes: 16 * 1024 * 1024, onDone: (info) => metrics.observeRequest(info, 'admin') });
      await admin.start();
      opened.unshift(() => (admin as AdminServer).close());
    }
    if (config.admin?.tcpEndpoint !== undefined) {
      // The schema guarantees one of the two key files; by default the admin door shares the app server's key.
      const keyFile = config.admin.serverKeyFile ?? (config.rpc?.serverKeyFile as string);
      const adminKeys = readServerKeyFile(keyFile);
      const macKeys = (table: ReadonlyMap<string, string>): Map<string, Uint8Array> =>
        new Map([...table].map(([name, publicKey]) => [name, deriveClientKey({ secretKey: adminKeys.secretKey, peerPublicKey: publicKey, clientPublicKey: publicKey, serverPublicKey: adminKeys.publicKey })]));
      const verifier = new RequestVerifier(macKeys(operators), { windowMs: config.rpc === undefined ? DEFAULT_AUTH_WINDOW_MS : config.rpc.authWindowSeconds * 1000 });
      const remote = new AdminServer({
        endpoint: config.admin.tcpEndpoint,
        curve: { serverSecretKey: adminKeys.secretKey },
        services,
        maxFrameBytes: 16 * 1024 * 1024,
        // The audit names the operator whose key signed the request, never the request's `operator` member.
        operatorAuth: (req: RpcRequest) => {
          try {
            return verifier.verify({ method: req.method, id: req.id, params: req.params, auth: req.auth });
          } catch (err) {
            const claimed = typeof (req.auth as { client?: unknown } | undefined)?.client === 'string' ? String((req.auth as { client: string }).client).slice(0, 32) : '?';
            auditAuthFailure(`operator:${claimed}`, err instanceof CustodyError ? err.code : 'UNAUTHENTICATED');
            throw err;
          }
        },
        onDone: (info) => metrics.observeRequest(info, 'admin'),
      });
      adminTcpEndpoint = await remote.start();
      opened.unshift(() => remote.close());
      const previous = services.reloadHook;
      services.reloadHook = async (next: Config) => {
        await previous?.(next);
        operators = new Map(next.operators.map((o) => [o.name, o.publicKey]));
        verifier.replaceClients(macKeys(operators));
      };
    }

    chain?.start();
    payments?.payouts.start();
    await audit.appendNow('system', 'daemon.start', { version: VERSION, network: config.network, clients: clients.size, keystore: keystore.body.id });
    const endpoints: DaemonEndpoints = { app: appEndpoint, events: eventsEndpoint, admin: config.admin?.endpoint ?? null, adminTcp: adminTcpEndpoint, metrics: metricsEndpoint };

    let stopping: Promise<void> | undefined;
    return {
      services,
      endpoints,
      async reloadClients(next: Config) {
        await services.reloadHook?.(next);
        await audit.appendNow('system', 'config.reload', { clients: next.clients.length, operators: next.operators.length });
        log(`reloaded ${next.clients.length} client(s)`);
      },
      stop(reason: string) {
        stopping ??= (async () => {
          log(`stopping (${reason})`);
          // Doors first (in-flight requests finish and are answered), then the writers, then the key.
          for (const close of opened.slice(0, -1)) await close().catch((err: unknown) => log(`close: ${(err as Error).message}`));
          keystore.lock();
          await audit.appendNow('system', 'daemon.stop', { reason }).catch(() => undefined);
          await store.close();
        })();
        return stopping;
      },
    };
  } catch (err) {
    keystore.lock();
    for (const close of opened) await close().catch(() => undefined);
    throw err;
  }
}

function auditIssued(audit: AuditLog, records: readonly AddressRecord[]): BatchOp[] {
  const byScope = new Map<string, AddressRecord[]>();
  for (const r of records) byScope.set(r.scope, [...(byScope.get(r.scope) ?? []), r]);
  const entries: Array<{ actor: string; action: string; details: Record<string, unknown> }> = [];
  for (const [scope, list] of byScope) {
    for (let i = 0; i < list.length; i += 100) {
      const chunk = list.slice(i, i + 100);
      entries.push({ actor: `client:${scope}`, action: 'address.issue', details: { addresses: chunk.map((r) => [r.index, r.requestId]) } });
    }
  }
  return audit.appendAll(entries);
}

/** The node's RPC credentials: Core's cookie file (read at each call), or a user and a password file. */
function nodeAuth(c: NonNullable<Config['chain']>, log: Log): BitcoindAuth {
  if (c.cookieFile !== undefined) return { cookieFile: c.cookieFile };
  const file = c.passwordFile as string;
  let password: string;
  try {
    if ((statSync(file).mode & 0o077) !== 0) log(`warning: chain.passwordFile: ${file} is readable by other users; chmod 600 it`);
    password = readFileSync(file, 'utf8').split('\n')[0]?.trim() ?? '';
  } catch (err) {
    throw new CustodyError('CONFIG_INVALID', `chain.passwordFile: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { field: 'chain.passwordFile' });
  }
  if (password === '') throw new CustodyError('CONFIG_INVALID', `chain.passwordFile: ${file} is empty`, { field: 'chain.passwordFile' });
  return { user: c.user as string, password };
}

/** The policy of [withdrawals]; without the section nothing may be withdrawn (only the hot cap runs). */
function withdrawalPolicy(config: Config): WithdrawalPolicy {
  const w = config.withdrawals;
  if (w === undefined) return { maxAmountSats: 0n, windows: [], approval: null, allow: [], deny: [] };
  return {
    maxAmountSats: w.maxAmountSats,
    windows: w.windows.map((x) => ({ name: x.name, seconds: x.seconds, ...(x.perClientSats === undefined ? {} : { perClientSats: x.perClientSats }), ...(x.globalSats === undefined ? {} : { globalSats: x.globalSats }) })),
    approval: w.approval ?? null,
    allow: w.allow === undefined ? null : w.allow.map((a, i) => canonicalListed(a, config, `withdrawals.allow[${i}]`)),
    deny: w.deny.map((a, i) => canonicalListed(a, config, `withdrawals.deny[${i}]`)),
  };
}

/** List entries compared as the canonical address (lower-case bech32), so case cannot slip past them. */
function canonicalListed(address: string, config: Config, key: string): string {
  try {
    return parseDestination(address, config.network).address;
  } catch (err) {
    throw new CustodyError('CONFIG_INVALID', `${key}: ${err instanceof Error ? err.message : String(err)}`, { field: key });
  }
}

function readServerKeyFile(file: string): ServerKeyPairFile {
  const keys = readKeyPairFile(file);
  if (keys.kind !== 'server') throw new CustodyError('KEY_FILE', `${file}: a ${keys.kind} key file, expected the server's`);
  return keys;
}

function clientTable(config: Config): Map<string, ClientEntry> {
  return new Map(
    config.clients.map((c) => [c.name, { roles: c.roles, publicKey: c.publicKey, limiter: new RateLimiter({ ratePerSecond: c.ratePerSecond, burst: c.burst }) }]),
  );
}

