import t from 'tap';
import { randomBytes } from 'node:crypto';
import { UnlockSession, type UnlockOptions } from '../../../src/keystore/unlock-session.js';
import type { KeystoreBody } from '../../../src/keystore/keyfile.js';
import { makeKeystore, passphraseFor, subsets } from '../../support/keystore.js';

function session(body: KeystoreBody, clock: { now: number }, over: Partial<UnlockOptions> = {}): UnlockSession {
  return new UnlockSession(body, {
    clock: () => clock.now,
    random: (n) => randomBytes(n),
    progressTimeoutMs: 600_000,
    backoffAfterFailures: 3,
    maxBackoffMs: 300_000,
    ...over,
  });
}

t.test('2-of-3: every pair of custodians unlocks, in either order, to the same seed', async (t) => {
  const { body, entropy } = await makeKeystore();
  for (const pair of subsets(['ops1', 'ops2', 'ops3'], 2)) {
    for (const order of [pair, [...pair].reverse()]) {
      const s = session(body, { now: 0 });
      const first = await s.submit(order[0]!, passphraseFor(order[0]!));
      t.equal(first.unlocked, false);
      t.same(first.progress.received, 1);
      const second = await s.submit(order[1]!, passphraseFor(order[1]!));
      t.equal(second.unlocked, true, `${order.join('+')} unlocks`);
      if (second.unlocked) t.same(second.entropy, entropy);
      t.equal(s.progress().received, 0, 'progress cleared after unlock');
    }
  }
});

t.test('no single custodian can unlock, even submitting twice', async (t) => {
  const { body } = await makeKeystore();
  for (const name of ['ops1', 'ops2', 'ops3']) {
    const s = session(body, { now: 0 });
    const a = await s.submit(name, passphraseFor(name));
    const b = await s.submit(name, passphraseFor(name));
    t.equal(a.unlocked, false);
    t.equal(b.unlocked, false);
    t.equal(b.unlocked === false && b.alreadyCounted, true, 'the repeat counts once');
    t.equal(s.progress().received, 1);
    t.same(s.progress().custodians, [name]);
  }
});

t.test('a wrong passphrase gives BAD_PASSPHRASE for that custodian only and leaves progress unchanged', async (t) => {
  const { body } = await makeKeystore();
  const s = session(body, { now: 0 });
  await s.submit('ops1', passphraseFor('ops1'));
  const before = s.progress();
  await t.rejects(s.submit('ops2', Buffer.from('not-the-passphrase-of-ops2')), { code: 'BAD_PASSPHRASE' });
  t.same(s.progress(), before);
  // ops1's passphrase typed for ops2 is wrong too: shares are bound to their custodian.
  await t.rejects(s.submit('ops2', passphraseFor('ops1')), { code: 'BAD_PASSPHRASE' });
  const done = await s.submit('ops3', passphraseFor('ops3'));
  t.equal(done.unlocked, true);
});

t.test('an unknown custodian is refused by name', async (t) => {
  const { body } = await makeKeystore();
  await t.rejects(session(body, { now: 0 }).submit('mallory', Buffer.from('whatever-it-is-here')), {
    code: 'UNKNOWN_CUSTODIAN',
    message: /mallory/,
  });
});

t.test('partial progress expires after the configured time, and reset forgets it', async (t) => {
  const { body } = await makeKeystore();
  const clock = { now: 1_000 };
  const s = session(body, clock, { progressTimeoutMs: 60_000 });
  const r = await s.submit('ops1', passphraseFor('ops1'));
  t.equal(r.progress.expiresAt, 61_000);
  t.match(r.progress.nonce, /^[0-9a-f]{8}$/);
  clock.now = 60_999;
  t.equal(s.progress().received, 1, 'still held just before expiry');
  clock.now = 61_000;
  t.equal(s.progress().received, 0, 'gone at expiry');
  t.equal(s.progress().nonce, null);
  const again = await s.submit('ops2', passphraseFor('ops2'));
  t.equal(again.unlocked, false, 'a share after expiry starts a new attempt instead of completing the old one');
  t.not(again.progress.nonce, r.progress.nonce);
  s.reset();
  t.equal(s.progress().received, 0);
});

t.test('repeated failures for one custodian back off exponentially, others are unaffected', async (t) => {
  const { body } = await makeKeystore();
  const clock = { now: 0 };
  const s = session(body, clock, { backoffAfterFailures: 3, maxBackoffMs: 4_000 });
  const wrong = Buffer.from('definitely-the-wrong-one');
  for (let i = 0; i < 3; i++) await t.rejects(s.submit('ops1', wrong), { code: 'BAD_PASSPHRASE' });
  await t.rejects(s.submit('ops1', passphraseFor('ops1')), { code: 'UNLOCK_BACKOFF', details: { retryAfterSeconds: 1 } });
  const other = await s.submit('ops2', passphraseFor('ops2'));
  t.equal(other.unlocked, false, 'ops2 is not blocked');
  clock.now += 1_000;
  await t.rejects(s.submit('ops1', wrong), { code: 'BAD_PASSPHRASE' });
  await t.rejects(s.submit('ops1', passphraseFor('ops1')), { code: 'UNLOCK_BACKOFF', details: { retryAfterSeconds: 2 } });
  clock.now += 2_000;
  const ok = await s.submit('ops1', passphraseFor('ops1'));
  t.equal(ok.unlocked, true, 'the right passphrase after the wait still works');
});

t.test('concurrent submissions are serialised and both count', async (t) => {
  const { body, entropy } = await makeKeystore();
  const s = session(body, { now: 0 });
  const [a, b] = await Promise.all([s.submit('ops1', passphraseFor('ops1')), s.submit('ops3', passphraseFor('ops3'))]);
  t.equal(a.unlocked, false);
  t.equal(b.unlocked, true);
  if (b.unlocked) t.same(b.entropy, entropy);
});

t.test('shares that combine to a wrong data key give UNLOCK_FAILED, never a wrong seed', async (t) => {
  // Two keystores with the same custodians: ops1's share from one and ops2's from the other each open
  // with the right passphrase only if the keystore id matches, so splice a foreign share with its id bound in:
  // the realistic fault is a share sealed for this keystore but from another split (an old file after rekey).
  const a = await makeKeystore();
  const b = await makeKeystore();
  const spliced: KeystoreBody = { ...a.body, custodians: a.body.custodians.map((c, i) => (i === 1 ? { ...c } : c)) };
  // Re-seal b's ops2 share for a's id, as an attacker holding ops2's passphrase and an old split could.
  const { openWithPassphrase, sealWithPassphrase } = await import('../../../src/crypto/envelope.js');
  const { shareAad } = await import('../../../src/keystore/keyfile.js');
  const bEntry = b.body.custodians[1]!;
  const foreign = await openWithPassphrase(bEntry.share, passphraseFor('ops2'), shareAad(b.body.id, 'ops2', 2, 2));
  t.ok(foreign);
  const resealed = await sealWithPassphrase(foreign!, passphraseFor('ops2'), shareAad(a.body.id, 'ops2', 2, 2), (n) => randomBytes(n), { N: 1024, r: 8, p: 1 });
  const body: KeystoreBody = { ...spliced, custodians: spliced.custodians.map((c, i) => (i === 1 ? { ...c, share: resealed } : c)) };
  const s = session(body, { now: 0 });
  await s.submit('ops1', passphraseFor('ops1'));
  await t.rejects(s.submit('ops2', passphraseFor('ops2')), { code: 'UNLOCK_FAILED' });
  t.equal(s.progress().received, 0, 'a failed combination resets progress');
  const ok = await s.submit('ops1', passphraseFor('ops1'));
  t.equal(ok.unlocked, false);
  const done = await s.submit('ops3', passphraseFor('ops3'));
  t.equal(done.unlocked, true, 'the honest shares still unlock');
  if (done.unlocked) t.same(done.entropy, a.entropy);
});
