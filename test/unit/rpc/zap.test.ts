import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Dealer, Router } from 'zeromq';
import { newCurveKeyPair, type CurveKeyPair } from '../../../src/rpc/curve-keys.js';
import { decideZap, startZapHandler, type ZapDenial } from '../../../src/rpc/zap.js';
import { deriveClientKey, RequestVerifier, signRequest } from '../../../src/rpc/auth.js';
import { z85Decode } from '../../../src/rpc/z85.js';

const DOMAIN = 'custody-app';

/** A CURVE Router like the daemon's app socket, echoing each frame back to its sender. */
async function curveServer(server: CurveKeyPair, onRequest?: (body: Buffer) => Buffer): Promise<{ endpoint: string; close(): Promise<void> }> {
  const router = new Router({ curveServer: true, curveSecretKey: server.secretKey, zapDomain: DOMAIN, linger: 0 });
  await router.bind('tcp://127.0.0.1:0');
  const endpoint = router.lastEndpoint!;
  const loop = (async () => {
    try {
      for (;;) {
        const [id, body] = await router.receive();
        await router.send([id!, onRequest === undefined ? body! : onRequest(body!)]);
      }
    } catch {
      /* closed */
    }
  })();
  return {
    endpoint,
    async close() {
      router.close();
      await loop;
    },
  };
}

/** `timeoutMs`: 500 for clients that must get no reply; generous for those that must, so a slow machine cannot fail them. */
function curveClient(endpoint: string, server: CurveKeyPair, client: CurveKeyPair, timeoutMs = 5000): Dealer {
  const dealer = new Dealer({ curveServerKey: server.publicKey, curvePublicKey: client.publicKey, curveSecretKey: client.secretKey, linger: 0, receiveTimeout: timeoutMs, sendTimeout: timeoutMs });
  dealer.connect(endpoint);
  return dealer;
}

/** The reply to one frame, or null if none arrives within the dealer's receiveTimeout. */
async function roundTrip(dealer: Dealer, body: string): Promise<string | null> {
  try {
    await dealer.send(body);
    const [reply] = await dealer.receive();
    return reply!.toString('utf8');
  } catch {
    return null;
  }
}

t.test('over real CURVE sockets: an allowed key gets a reply, an unknown key gets none and is reported', async (t) => {
  const server = newCurveKeyPair();
  const good = newCurveKeyPair();
  const stranger = newCurveKeyPair();
  const asked: Array<[string, string]> = [];
  const denied: ZapDenial[] = [];
  const zap = startZapHandler({
    isAllowed: (key, domain) => {
      asked.push([key, domain]);
      return key === good.publicKey;
    },
    onDenied: (info) => denied.push(info),
  });
  const srv = await curveServer(server);
  const ok = curveClient(srv.endpoint, server, good);
  const bad = curveClient(srv.endpoint, server, stranger, 500);
  try {
    t.equal(await roundTrip(ok, 'ping'), 'ping', 'the allowed client is answered');
    t.equal(await roundTrip(bad, 'ping'), null, 'the unknown client gets nothing within 500 ms');
    t.ok(denied.length >= 1, 'onDenied was called');
    t.same(denied[0], { publicKey: stranger.publicKey, address: '127.0.0.1', domain: DOMAIN });
    t.ok(asked.some(([k, d]) => k === good.publicKey && d === DOMAIN), 'the predicate saw the allowed key and the domain');
  } finally {
    ok.close();
    bad.close();
    await srv.close();
    await zap.close();
  }
});

t.test('the allowlist is consulted per connection, so a reload admits a new client on its next connection', async (t) => {
  const server = newCurveKeyPair();
  const late = newCurveKeyPair();
  const allowed = new Set<string>();
  const zap = startZapHandler({ isAllowed: (key) => allowed.has(key) });
  const srv = await curveServer(server);
  const before = curveClient(srv.endpoint, server, late, 500);
  try {
    t.equal(await roundTrip(before, 'one'), null, 'refused before the reload');
    before.close();
    allowed.add(late.publicKey);
    const after = curveClient(srv.endpoint, server, late);
    t.equal(await roundTrip(after, 'two'), 'two', 'admitted after the reload');
    after.close();
  } finally {
    before.close();
    await srv.close();
    await zap.close();
  }
});

t.test('an allowlist that throws admits nobody', async (t) => {
  const server = newCurveKeyPair();
  const denied: ZapDenial[] = [];
  const zap = startZapHandler({
    isAllowed: () => {
      throw new Error('config half-loaded');
    },
    onDenied: (d) => denied.push(d),
  });
  const srv = await curveServer(server);
  const c = curveClient(srv.endpoint, server, newCurveKeyPair(), 500);
  try {
    t.equal(await roundTrip(c, 'x'), null);
    t.ok(denied.length >= 1);
  } finally {
    c.close();
    await srv.close();
    await zap.close();
  }
});

t.test('a second ZAP handler in the same process is refused while the first runs, and allowed after it closes', async (t) => {
  const first = startZapHandler({ isAllowed: () => false });
  t.throws(() => startZapHandler({ isAllowed: () => true }), { code: 'INTERNAL', message: /cannot bind the ZAP handler/ });
  await first.close();
  const again = startZapHandler({ isAllowed: () => false });
  await again.close();
});

t.test('a NULL-security socket without a zapDomain (like the admin ipc socket) is not subject to the handler', async (t) => {
  const zap = startZapHandler({ isAllowed: () => false });
  const router = new Router({ linger: 0 });
  const endpoint = `ipc://${join(mkdtempSync(join(tmpdir(), 'custody-zap-')), 'admin.sock')}`;
  await router.bind(endpoint);
  const dealer = new Dealer({ linger: 0, receiveTimeout: 500, sendTimeout: 500 });
  dealer.connect(endpoint);
  try {
    await dealer.send('hello');
    const [id, body] = await router.receive();
    t.equal(body!.toString(), 'hello');
    await router.send([id!, 'back']);
    t.equal((await dealer.receive())[0]!.toString(), 'back');
  } finally {
    dealer.close();
    router.close();
    await zap.close();
  }
});

t.test('decideZap follows RFC 27: CURVE keys are judged, other mechanisms and malformed requests are refused', async (t) => {
  const key = newCurveKeyPair();
  const raw = Buffer.from(z85Decode(key.publicKey));
  const req = (mechanism: string, ...creds: Buffer[]): Buffer[] => [...['1.0', '1', DOMAIN, '10.0.0.7', '', mechanism].map((s): Buffer => Buffer.from(s)), ...creds];
  t.same(decideZap(req('CURVE', raw), () => true), { status: '200', text: 'OK' });
  t.match(decideZap(req('CURVE', raw), () => false), { status: '400', denial: { publicKey: key.publicKey, address: '10.0.0.7', domain: DOMAIN } });
  t.match(decideZap(req('NULL'), () => true), { status: '400', denial: { publicKey: '' } });
  t.match(decideZap(req('PLAIN', Buffer.from('u'), Buffer.from('p')), () => true), { status: '400' });
  t.match(decideZap(req('CURVE', raw.subarray(1)), () => true), { status: '500' });
  t.match(decideZap(req('CURVE'), () => true), { status: '500' });
  const wrongVersion = req('CURVE', raw);
  wrongVersion[0] = Buffer.from('2.0');
  t.match(decideZap(wrongVersion, () => true), { status: '500' });
  t.match(decideZap([Buffer.from('1.0')], () => true), { status: '500' });
});

t.test('end to end: a ZAP-admitted client signs a request and the server verifies it as that client', async (t) => {
  const server = newCurveKeyPair();
  const shop = newCurveKeyPair();
  const zap = startZapHandler({ isAllowed: (k) => k === shop.publicKey });
  const serverKey = deriveClientKey({ secretKey: server.secretKey, peerPublicKey: shop.publicKey, clientPublicKey: shop.publicKey, serverPublicKey: server.publicKey });
  const verifier = new RequestVerifier(new Map([['shop', serverKey]]));
  const srv = await curveServer(server, (body) => {
    const req = JSON.parse(body.toString('utf8')) as { method: string; id: number; params: unknown; auth: unknown };
    try {
      return Buffer.from(`ok:${verifier.verify(req)}`);
    } catch (err) {
      return Buffer.from(`err:${(err as { code: string }).code}`);
    }
  });
  const dealer = curveClient(srv.endpoint, server, shop);
  try {
    const key = deriveClientKey({ secretKey: shop.secretKey, peerPublicKey: server.publicKey, clientPublicKey: shop.publicKey, serverPublicKey: server.publicKey });
    const req = { jsonrpc: '2.0', method: 'deposit.newAddress', id: 1, params: { requestId: 'r-1' } };
    const auth = signRequest(key, { client: 'shop', ...req }, Date.now(), randomBytes);
    const frame = JSON.stringify({ ...req, auth });
    t.equal(await roundTrip(dealer, frame), 'ok:shop');
    t.equal(await roundTrip(dealer, frame), 'err:REPLAYED', 'the same frame sent again is a replay');
  } finally {
    dealer.close();
    await srv.close();
    await zap.close();
  }
});
