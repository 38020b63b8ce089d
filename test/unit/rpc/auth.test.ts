import t from 'tap';
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { newCurveKeyPair, type CurveKeyPair } from '../../../src/rpc/curve-keys.js';
import { deriveClientKey, macInput, RequestSigner, RequestVerifier, signRequest, type RequestAuth } from '../../../src/rpc/auth.js';
import { z85Encode } from '../../../src/rpc/z85.js';

const T0 = 1_750_000_000_000;
const server = newCurveKeyPair();
const alice = newCurveKeyPair();
const bob = newCurveKeyPair();

const clientSide = (c: CurveKeyPair): Buffer => deriveClientKey({ secretKey: c.secretKey, peerPublicKey: server.publicKey, clientPublicKey: c.publicKey, serverPublicKey: server.publicKey });
const serverSide = (c: CurveKeyPair): Buffer => deriveClientKey({ secretKey: server.secretKey, peerPublicKey: c.publicKey, clientPublicKey: c.publicKey, serverPublicKey: server.publicKey });

function setup(opts: { maxNonces?: number } = {}) {
  const clock = { now: T0 };
  const verifier = new RequestVerifier(new Map([['alice', serverSide(alice)], ['bob', serverSide(bob)]]), opts, () => clock.now);
  const aliceKey = clientSide(alice);
  const sign = (req: { method: string; id: unknown; params?: unknown }, opts2: { client?: string; key?: Buffer; at?: number } = {}) => ({
    ...req,
    auth: signRequest(opts2.key ?? aliceKey, { client: opts2.client ?? 'alice', ...req }, opts2.at ?? clock.now, randomBytes),
  });
  return { clock, verifier, sign };
}

const REQ = { method: 'withdrawal.create', id: 7, params: { requestId: 'w-1', address: 'bcrt1qexample', amountSats: 10_000 } };

t.test('client and server derive the same per-client key; other clients get other keys', async (t) => {
  t.same(clientSide(alice), serverSide(alice));
  t.equal(clientSide(alice).length, 32);
  t.notSame(clientSide(alice), clientSide(bob));
});

t.test('the key is HKDF-SHA256(X25519, salt "custody-rpc-v1", info client public ‖ server public)', async (t) => {
  // Independent route to the same shared secret: the server side's X25519 is the client side's.
  const { diffieHellman, createPrivateKey, createPublicKey } = await import('node:crypto');
  const { z85Decode } = await import('../../../src/rpc/z85.js');
  const b64 = (z: string): string => Buffer.from(z85Decode(z)).toString('base64url');
  const priv = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64(alice.secretKey), x: b64(alice.publicKey) }, format: 'jwk' });
  const pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64(server.publicKey) }, format: 'jwk' });
  const info = Buffer.concat([z85Decode(alice.publicKey), z85Decode(server.publicKey)]);
  const expected = Buffer.from(hkdfSync('sha256', diffieHellman({ privateKey: priv, publicKey: pub }), 'custody-rpc-v1', info, 32));
  t.same(clientSide(alice), expected);
});

t.test('deriveClientKey refuses a secret key that is not the caller\'s, a stray peer, and a low-order peer key', async (t) => {
  t.throws(() => deriveClientKey({ secretKey: bob.secretKey, peerPublicKey: server.publicKey, clientPublicKey: alice.publicKey, serverPublicKey: server.publicKey }), { code: 'KEY_FILE', message: /does not match/ });
  t.throws(() => deriveClientKey({ secretKey: alice.secretKey, peerPublicKey: bob.publicKey, clientPublicKey: alice.publicKey, serverPublicKey: server.publicKey }), { code: 'KEY_FILE', message: /peerPublicKey/ });
  const zero = z85Encode(new Uint8Array(32));
  t.throws(() => deriveClientKey({ secretKey: alice.secretKey, peerPublicKey: zero, clientPublicKey: alice.publicKey, serverPublicKey: zero }), { code: 'KEY_FILE', message: /X25519/ });
  t.throws(() => deriveClientKey({ secretKey: 'HelloWorld', peerPublicKey: server.publicKey, clientPublicKey: alice.publicKey, serverPublicKey: server.publicKey }), { code: 'KEY_FILE' });
});

t.test('the MAC covers exactly the documented string', async (t) => {
  const key = Buffer.alloc(32, 7);
  const auth = signRequest(key, { client: 'alice', ...REQ }, T0, (n) => Buffer.alloc(n, 0xab));
  t.same(Object.keys(auth).sort(), ['client', 'mac', 'nonce', 'ts']);
  t.equal(auth.nonce, 'ab'.repeat(16));
  t.equal(auth.ts, T0);
  const text = `custody-rpc-v1\nalice\n${T0}\n${'ab'.repeat(16)}\nwithdrawal.create\n7\n${JSON.stringify(REQ.params)}`;
  t.equal(macInput('alice', T0, auth.nonce, REQ.method, REQ.id, REQ.params).toString('utf8'), text);
  t.equal(auth.mac, createHmac('sha256', key).update(text, 'utf8').digest('hex'));
  t.match(signRequest(key, { client: 'alice', method: 'status', id: 'a' }, T0, randomBytes).mac, /^[0-9a-f]{64}$/);
});

t.test('RequestSigner writes the same frame as JSON.stringify of the request with signRequest\'s auth', async (t) => {
  const key = clientSide(alice);
  const signer = new RequestSigner(key, 'alice');
  const nonce = 'ab'.repeat(16);
  const cases: Array<{ method: string; id: number | string; params?: unknown }> = [
    REQ,
    { method: 'status', id: 'a"b\\c' },
    { method: 'deposit.newAddress', id: 0, params: { requestId: 'r-1', account: 'ünïcödé ✓ \u2028', label: '"quoted"\n' } },
    { method: 'deposit.list', id: 9, params: null },
    // Longer than the pads' scratch space: the MAC then comes from createHmac, and must be the same.
    { method: 'deposit.newAddress', id: 10, params: { requestId: 'r-2', account: 'a', label: 'é'.repeat(3_000) } },
  ];
  for (const req of cases) {
    const frame = signer.frame(req.method, req.id, req.params, T0 + 0.7, nonce);
    const auth = signRequest(key, { client: 'alice', ...req }, T0, (n) => Buffer.from(nonce, 'hex').subarray(0, n));
    t.equal(frame, JSON.stringify({ jsonrpc: '2.0', id: req.id, method: req.method, ...(req.params === undefined ? {} : { params: req.params }), auth }), req.method);
    const { verifier } = setup();
    const parsed = JSON.parse(frame) as { method: string; id: unknown; params?: unknown; auth: unknown };
    t.equal(verifier.verify(parsed), 'alice', `${req.method}: verifies`);
  }
  t.throws(() => signer.frame('status', 1, undefined, T0, 'AB'.repeat(16)), { code: 'INTERNAL' }, 'a nonce must be lowercase hex');
  signer.wipe();
  const { verifier } = setup();
  t.throws(() => verifier.verify(JSON.parse(signer.frame('status', 2, undefined, T0, nonce)) as never), { code: 'UNAUTHENTICATED' }, 'a wiped signer signs nothing valid');
});

t.test('the verifier\'s HMAC (two one-shot SHA-256 over the key pads) equals createHmac for any message length', async (t) => {
  const { verifier, sign } = setup();
  // Around the SHA-256 block boundaries and the scratch size, ASCII and multi-byte.
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 2_700, 2_731, 2_740, 8_200, 20_000]) {
    for (const ch of ['x', 'é', '✓']) {
      const req = { method: 'deposit.newAddress', id: `${n}${ch}`, params: { requestId: 'r', account: 'a', label: ch.repeat(n) } };
      t.equal(verifier.verify(sign(req)), 'alice', `${n} × ${ch}`);
      const forged = sign(req);
      (forged.params as { label: string }).label += '!';
      t.throws(() => verifier.verify(forged), { code: 'UNAUTHENTICATED', message: /^auth\.mac:/ }, `${n} × ${ch}, changed`);
    }
  }
});

t.test('a correctly signed request verifies to its client name', async (t) => {
  const { verifier, sign } = setup();
  t.equal(verifier.verify(sign(REQ)), 'alice');
  t.equal(verifier.verify(sign({ method: 'status', id: 'x' })), 'alice', 'no params');
  t.equal(verifier.verify(sign({ method: 'status', id: null, params: null })), 'alice', 'null id and params');
});

t.test('a request signed with client A\'s key but claiming client B\'s name is refused', async (t) => {
  const { verifier, sign } = setup();
  t.throws(() => verifier.verify(sign(REQ, { client: 'bob' })), { code: 'UNAUTHENTICATED', message: /^auth\.mac: does not match/ });
  // And the honest path for B still works.
  t.equal(verifier.verify(sign(REQ, { client: 'bob', key: clientSide(bob) })), 'bob');
});

t.test('a replayed request is refused with REPLAYED, also after a SIGHUP reload', async (t) => {
  const { verifier, sign } = setup();
  const req = sign(REQ);
  t.equal(verifier.verify(req), 'alice');
  t.throws(() => verifier.verify(req), { code: 'REPLAYED', message: /auth\.nonce/ });
  t.throws(() => verifier.verify(structuredClone(req)), { code: 'REPLAYED' }, 'a copy is the same request');
  verifier.replaceClients(new Map([['alice', serverSide(alice)]]));
  t.throws(() => verifier.verify(req), { code: 'REPLAYED' }, 'the reload keeps the nonces of clients that remain');
});

t.test('ts more than 30 s from the daemon clock is refused either way; exactly 30 s is accepted', async (t) => {
  const { clock, verifier, sign } = setup();
  t.throws(() => verifier.verify(sign(REQ, { at: clock.now - 31_000 })), { code: 'UNAUTHENTICATED', message: /^auth\.ts: 31000 ms behind the daemon's clock, outside the 30000 ms window/ });
  t.throws(() => verifier.verify(sign(REQ, { at: clock.now + 31_000 })), { code: 'UNAUTHENTICATED', message: /ahead of/ });
  t.equal(verifier.verify(sign(REQ, { at: clock.now - 30_000 })), 'alice');
  t.equal(verifier.verify(sign(REQ, { at: clock.now + 30_000 })), 'alice');
  const captured = sign(REQ);
  clock.now += 31_000;
  t.throws(() => verifier.verify(captured), { code: 'UNAUTHENTICATED', message: /auth\.ts/ }, 'a captured request dies with its window');
});

t.test('changing the method, id, params, ts or nonce after signing breaks the MAC', async (t) => {
  const { verifier, sign } = setup();
  const req = sign(REQ);
  const auth = req.auth;
  const tampered: Array<[string, { method: string; id: unknown; params?: unknown; auth: RequestAuth }]> = [
    ['method', { ...req, method: 'withdrawal.approve' }],
    ['id', { ...req, id: 8 }],
    ['id type', { ...req, id: '7' }],
    ['a param value', { ...req, params: { ...REQ.params, amountSats: 10_001 } }],
    ['a param added', { ...req, params: { ...REQ.params, note: 'x' } }],
    ['params dropped', { method: req.method, id: req.id, auth }],
    ['ts', { ...req, auth: { ...auth, ts: auth.ts + 1 } }],
    ['nonce', { ...req, auth: { ...auth, nonce: auth.nonce.replace(/^./, (c) => (c === '0' ? '1' : '0')) } }],
    ['mac', { ...req, auth: { ...auth, mac: auth.mac.replace(/^./, (c) => (c === '0' ? '1' : '0')) } }],
  ];
  for (const [what, bad] of tampered) t.throws(() => verifier.verify(bad), { code: 'UNAUTHENTICATED', message: /^auth\.mac:/ }, what);
  t.equal(verifier.verify(req), 'alice', 'the untouched request still verifies: the forgeries did not use up its nonce');
});

t.test('malformed or unknown authenticators are refused, naming the rule and never the key', async (t) => {
  const { verifier, sign } = setup();
  const good = sign(REQ).auth;
  const cases: Array<[string, unknown, RegExp]> = [
    ['missing', undefined, /^auth: missing/],
    ['an array', [], /^auth: missing or not an object/],
    ['a string', 'alice', /^auth: missing or not an object/],
    ['extra member', { ...good, extra: 1 }, /^auth: unknown member "extra"/],
    ['unknown client', { ...good, client: 'mallory' }, /^auth\.client: no client named "mallory"/],
    ['bad client name', { ...good, client: 'Alice Smith' }, /^auth\.client: expected a client name/],
    ['ts as string', { ...good, ts: String(good.ts) }, /^auth\.ts: expected milliseconds/],
    ['fractional ts', { ...good, ts: good.ts + 0.5 }, /^auth\.ts: expected/],
    ['uppercase nonce', { ...good, nonce: good.nonce.toUpperCase().replace(/^[0-9]/, 'A') }, /^auth\.nonce: expected 32 lowercase hex/],
    ['short nonce', { ...good, nonce: good.nonce.slice(2) }, /^auth\.nonce/],
    ['short mac', { ...good, mac: good.mac.slice(2) }, /^auth\.mac: expected 64 lowercase hex/],
    ['no mac', { client: good.client, ts: good.ts, nonce: good.nonce }, /^auth\.mac/],
  ];
  const keyHex = serverSide(alice).toString('hex');
  for (const [what, auth, message] of cases) {
    let err: { code?: string; message?: string } = {};
    try {
      verifier.verify({ ...REQ, auth });
    } catch (e) {
      err = e as typeof err;
    }
    t.equal(err.code, 'UNAUTHENTICATED', what);
    t.match(err.message, message, what);
    t.notOk(err.message?.includes(keyHex.slice(0, 16)), `${what}: no key material`);
  }
});

t.test('nonces are forgotten once their window has passed, so memory stays bounded', async (t) => {
  const { clock, verifier, sign } = setup();
  for (let i = 0; i < 100; i++) verifier.verify(sign(REQ));
  t.equal(verifier.nonceCount('alice'), 100);
  clock.now += 30_001;
  verifier.verify(sign(REQ));
  t.equal(verifier.nonceCount('alice'), 1);
  // An idle client's cache is pruned too, by another client's traffic.
  for (let i = 0; i < 10; i++) verifier.verify(sign(REQ, { client: 'bob', key: clientSide(bob) }));
  clock.now += 60_001;
  verifier.verify(sign(REQ));
  t.equal(verifier.nonceCount('bob'), 0);
});

t.test('a client flooding past the live-nonce cap gets RATE_LIMITED instead of growing the cache', async (t) => {
  const { clock, verifier, sign } = setup({ maxNonces: 50 });
  for (let i = 0; i < 50; i++) verifier.verify(sign(REQ));
  t.throws(() => verifier.verify(sign(REQ)), { code: 'RATE_LIMITED' });
  t.equal(verifier.nonceCount('alice'), 50);
  t.equal(verifier.verify(sign(REQ, { client: 'bob', key: clientSide(bob) })), 'bob', 'other clients are unaffected');
  clock.now += 30_001;
  t.equal(verifier.verify(sign(REQ)), 'alice', 'accepted again once the window passed');
});

t.test('replaceClients: a removed client is refused, a new one admitted', async (t) => {
  const { verifier, sign } = setup();
  const carol = newCurveKeyPair();
  verifier.replaceClients(new Map([['carol', serverSide(carol)]]));
  t.throws(() => verifier.verify(sign(REQ)), { code: 'UNAUTHENTICATED', message: /no client named "alice"/ });
  t.equal(verifier.verify(sign(REQ, { client: 'carol', key: clientSide(carol) })), 'carol');
  t.throws(() => verifier.replaceClients(new Map([['dave', Buffer.alloc(16)]])), { code: 'INVALID_ARGUMENT' });
});

t.test('the verifier keeps its own copy of the keys: wiping the caller\'s buffer changes nothing', async (t) => {
  const key = serverSide(alice);
  const clock = { now: T0 };
  const verifier = new RequestVerifier(new Map([['alice', key]]), {}, () => clock.now);
  key.fill(0);
  const auth = signRequest(clientSide(alice), { client: 'alice', ...REQ }, T0, randomBytes);
  t.equal(verifier.verify({ ...REQ, auth }), 'alice');
});
