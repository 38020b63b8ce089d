/**
 * The Prometheus scrape endpoint: `GET /metrics` over plain HTTP, on loopback only. A wallet host's
 * balances and traffic are nobody else's business, so a host that is not loopback is refused before
 * anything binds, and the bound address is checked again (a `localhost` that resolves elsewhere is
 * refused too). The Host header must name loopback as well, so a web page in a local browser cannot
 * read the scrape through DNS rebinding.
 *
 * Nothing leaves a request handler as an exception: a failed collection answers 500 with a short text
 * (never a stack), and the server goes on serving.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CustodyError } from '../errors.js';

/** What the server scrapes: service/metrics.ts's Metrics. */
export interface MetricsText {
  readonly contentType: string;
  text(): Promise<string>;
}

export interface MetricsServerOptions {
  /** 127.0.0.1, ::1 (or [::1]) or localhost; anything else is refused. */
  readonly host: string;
  /** 0 picks a free port (see start()). */
  readonly port: number;
  readonly metrics: MetricsText;
  /** One line per failed scrape (the error's message only). */
  readonly log?: (line: string) => void;
}

const LOOPBACK_HOSTS: ReadonlyMap<string, string> = new Map([
  ['127.0.0.1', '127.0.0.1'],
  ['::1', '::1'],
  ['[::1]', '::1'],
  ['localhost', 'localhost'],
]);

/** The host to bind, or CONFIG_INVALID naming the value. */
export function loopbackHost(host: string): string {
  const h = LOOPBACK_HOSTS.get(host.toLowerCase());
  if (h === undefined) {
    throw new CustodyError('CONFIG_INVALID', `metrics.host: "${host.slice(0, 100)}" is not loopback; the metrics endpoint binds only to 127.0.0.1, ::1 or localhost`, {
      field: 'metrics.host',
    });
  }
  return h;
}

/** A bound address on the loopback interface (IPv4 127/8, ::1, or IPv4-mapped 127/8). */
export function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase();
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a) || /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** The Host header names loopback (with or without a port): 127.x, [::1] or localhost. */
function loopbackHostHeader(value: string | undefined): boolean {
  if (value === undefined) return false;
  const v = value.toLowerCase();
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(v);
  if (m === null) return false;
  const host = m[1] ?? '';
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export class MetricsServer {
  private server: Server | undefined;
  private readonly host: string;
  private readonly port: number;

  constructor(private readonly opts: MetricsServerOptions) {
    this.host = loopbackHost(opts.host);
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65_535) {
      throw new CustodyError('CONFIG_INVALID', `metrics.port: ${String(opts.port).slice(0, 32)} is not a port (0 to 65535; 0 picks a free one)`, { field: 'metrics.port' });
    }
    this.port = opts.port;
  }

  /** Binds and serves; resolves with the bound address (the real port when 0 was asked). */
  async start(): Promise<{ host: string; port: number }> {
    if (this.server !== undefined) throw new CustodyError('INTERNAL', 'metrics server: already started');
    const server = createServer((req, res) => this.handle(req, res));
    server.headersTimeout = 10_000;
    server.requestTimeout = 15_000;
    server.keepAliveTimeout = 5_000;
    server.maxHeadersCount = 50;
    server.on('clientError', (_err, socket) => socket.destroy());
    this.server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: this.host, port: this.port, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.server = undefined;
      const e = err as NodeJS.ErrnoException;
      throw new CustodyError('CONFIG_INVALID', `metrics: cannot listen on ${this.host}:${this.port} (${e.code ?? e.message})`, { field: 'metrics' }, { cause: err });
    }
    server.on('error', (err) => this.opts.log?.(`metrics: server error: ${err.message.slice(0, 200)}`));
    const bound = server.address() as AddressInfo;
    if (!isLoopbackAddress(bound.address)) {
      await this.close();
      throw new CustodyError('CONFIG_INVALID', `metrics.host: "${this.opts.host}" resolved to ${bound.address}, which is not loopback`, { field: 'metrics.host' });
    }
    return { host: bound.address, port: bound.port };
  }

  /** Stops listening and drops open (keep-alive) connections. */
  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    void this.answer(req, res).catch(() => {
      // Only a write to a dead socket lands here; nothing to tell anyone.
      if (!res.headersSent) reply(res, 500, 'internal error\n');
      else res.destroy();
    });
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!loopbackHostHeader(req.headers.host)) return reply(res, 403, 'forbidden: the Host header must name loopback\n');
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') return reply(res, 404, 'not found: GET /metrics\n');
    if (req.method !== 'GET') return reply(res, 405, 'method not allowed: GET /metrics\n', { Allow: 'GET' });
    let body: string;
    try {
      body = await this.opts.metrics.text();
    } catch (err) {
      this.opts.log?.(`metrics: scrape failed: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}`);
      return reply(res, 500, 'metrics collection failed\n');
    }
    reply(res, 200, body, { 'Content-Type': this.opts.metrics.contentType });
  }
}

function reply(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}
