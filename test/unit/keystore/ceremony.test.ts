import t from 'tap';
import { randomBytes } from 'node:crypto';
import { changePassphrase, createKeystore, recoverEntropy, rekeyKeystore } from '../../../src/keystore/ceremony.js';
import { checkPassphraseStrength } from '../../../src/keystore/passphrase-policy.js';
import { custodians, fastDeps, makeKeystore, passphraseFor, subsets } from '../../support/keystore.js';

const opts = { clock: () => 0, random: (n: number) => randomBytes(n) };

t.test('init: the keystore records the hot xpub of its seed and the custodian set', async (t) => {
  const { body } = await makeKeystore(['a1', 'b2', 'c3'], 2, 'testnet');
  t.equal(body.network, 'testnet');
  t.equal(body.threshold, 2);
  t.same(body.custodians.map((c) => [c.name, c.index]), [['a1', 1], ['b2', 2], ['c3', 3]]);
  t.match(body.hot.xpub, /^tpub/);
  t.equal(body.hot.path, '84h/1h/0h');
  const mainnet = await makeKeystore(['a1'], 1, 'mainnet');
  t.match(mainnet.body.hot.xpub, /^xpub/);
  t.equal(mainnet.body.hot.path, '84h/0h/0h');
});

t.test('init refuses bad custodian sets and thresholds with a message naming the rule', async (t) => {
  const deps = fastDeps();
  await t.rejects(createKeystore({ network: 'regtest', threshold: 3, custodians: custodians(['a1', 'b2']) }, deps), { code: 'USAGE', message: /threshold/ });
  await t.rejects(createKeystore({ network: 'regtest', threshold: 0, custodians: custodians(['a1', 'b2']) }, deps), { code: 'USAGE', message: /threshold/ });
  await t.rejects(createKeystore({ network: 'regtest', threshold: 1, custodians: custodians(['a1', 'a1']) }, deps), { code: 'USAGE', message: /twice/ });
  await t.rejects(createKeystore({ network: 'regtest', threshold: 1, custodians: custodians(['Bad Name']) }, deps), { code: 'USAGE', message: /not a valid name/ });
  await t.rejects(createKeystore({ network: 'regtest', threshold: 1, custodians: custodians(['a1']) }, { ...deps, unsafeFastKdf: false }), {
    code: 'USAGE',
    message: /below the minimum/,
  });
});

t.test('rekey to 3-of-5: every 3 of the new set unlocks, no 2 do, and the old set no longer does', async (t) => {
  const { body, entropy } = await makeKeystore(['ops1', 'ops2', 'ops3'], 2);
  const next = ['ops1', 'new2', 'new3', 'new4', 'new5'];
  const nextSecrets = next.map((name) => ({ name, passphrase: passphraseFor(`${name}-v2`) }));
  const rekeyed = await rekeyKeystore(body, custodians(['ops2', 'ops3']), { threshold: 3, custodians: nextSecrets }, fastDeps());
  t.equal(rekeyed.id, body.id, 'same keystore id');
  t.same(rekeyed.hot, body.hot, 'same hot account');
  t.not(rekeyed.seed.ciphertext, body.seed.ciphertext, 'seed re-encrypted under a new data key');
  for (const trio of subsets(nextSecrets, 3)) {
    t.same(await recoverEntropy(rekeyed, trio, opts), entropy, trio.map((c) => c.name).join('+'));
  }
  for (const pair of subsets(nextSecrets, 2).slice(0, 3)) {
    await t.rejects(recoverEntropy(rekeyed, pair, opts), { code: 'NOT_ENOUGH_CUSTODIANS' });
  }
  await t.rejects(recoverEntropy(rekeyed, custodians(['ops1', 'ops2', 'ops3']), opts), { code: /^(BAD_PASSPHRASE|UNKNOWN_CUSTODIAN)$/ }, 'old passphrases fail');
  await t.rejects(recoverEntropy(rekeyed, [custodians(['ops1'])[0]!, nextSecrets[1]!, nextSecrets[2]!], opts), { code: 'BAD_PASSPHRASE' }, "ops1's old passphrase fails");
});

t.test('rekey needs the threshold of current custodians with their right passphrases', async (t) => {
  const { body } = await makeKeystore();
  const next = { threshold: 2, custodians: custodians(['x1', 'x2', 'x3']) };
  await t.rejects(rekeyKeystore(body, custodians(['ops1']), next, fastDeps()), { code: 'NOT_ENOUGH_CUSTODIANS' });
  await t.rejects(rekeyKeystore(body, [{ name: 'ops1', passphrase: passphraseFor('ops1') }, { name: 'ops2', passphrase: Buffer.from('wrong-wrong-wrong') }], next, fastDeps()), {
    code: 'BAD_PASSPHRASE',
  });
});

t.test('passwd: the custodian\'s new passphrase works, the old one does not, others are unaffected', async (t) => {
  const { body, entropy } = await makeKeystore();
  const fresh = Buffer.from('ops2-Brand-New-Lantern-Passphrase-8');
  const changed = await changePassphrase(body, 'ops2', passphraseFor('ops2'), fresh, fastDeps());
  t.equal(changed.id, body.id);
  t.equal(changed.seed.ciphertext, body.seed.ciphertext, 'the seed ciphertext is untouched');
  t.same(changed.custodians[0], body.custodians[0], 'ops1 untouched');
  t.same(await recoverEntropy(changed, [{ name: 'ops2', passphrase: fresh }, ...custodians(['ops3'])], opts), entropy);
  await t.rejects(recoverEntropy(changed, custodians(['ops2', 'ops3']), opts), { code: 'BAD_PASSPHRASE' });
  await t.rejects(changePassphrase(body, 'ops2', Buffer.from('not-the-current-one'), fresh, fastDeps()), { code: 'BAD_PASSPHRASE' });
  await t.rejects(changePassphrase(body, 'nobody', passphraseFor('ops2'), fresh, fastDeps()), { code: 'UNKNOWN_CUSTODIAN' });
});

t.test('passphrases: unicode typed in either normal form unlocks alike (NFKC)', async (t) => {
  const composed = Buffer.from('Caf\u00e9-Lantern-Quartz-91', 'utf8');
  const decomposed = Buffer.from('Cafe\u0301-Lantern-Quartz-91', 'utf8');
  const { body, entropy } = await createKeystore({ network: 'regtest', threshold: 1, custodians: [{ name: 'ops1', passphrase: composed }] }, fastDeps());
  t.same(await recoverEntropy(body, [{ name: 'ops1', passphrase: decomposed }], opts), entropy);
});

t.test('the passphrase strength rule: 12 characters and a zxcvbn score of 3, with the reason', async (t) => {
  await t.rejects(checkPassphraseStrength(Buffer.from('short-one'), 'ops1'), { code: 'WEAK_PASSPHRASE', message: /9 characters; at least 12/ });
  await t.rejects(checkPassphraseStrength(Buffer.from('password1234'), 'ops1'), { code: 'WEAK_PASSPHRASE', message: /too easy to guess.*commonly used/ });
  await t.rejects(checkPassphraseStrength(Buffer.from('aaaaaaaaaaaaaaaa'), 'ops1'), { code: 'WEAK_PASSPHRASE', message: /Repeated/ });
  await t.rejects(checkPassphraseStrength(Buffer.from([0xff, 0xfe, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41]), 'ops1'), { code: 'WEAK_PASSPHRASE', message: /UTF-8/ });
  await t.resolves(checkPassphraseStrength(passphraseFor('ops1'), 'ops1'));
  await t.resolves(checkPassphraseStrength(Buffer.from('correct horse battery staple'), 'ops1'));
});
