import t from 'tap';
import { randomBytes } from 'node:crypto';
import { curveKeyPair } from 'zeromq';
import { z85Decode, z85Encode } from '../../../src/rpc/z85.js';

// ZeroMQ RFC 32/Z85, "Test Case": 86 4F D2 6F B5 59 F7 5B <-> "HelloWorld".
const RFC_BYTES = Uint8Array.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);

t.test('the RFC 32 test vector encodes to HelloWorld and decodes back', async (t) => {
  t.equal(z85Encode(RFC_BYTES), 'HelloWorld');
  t.same(Buffer.from(z85Decode('HelloWorld')), Buffer.from(RFC_BYTES));
});

t.test('random byte strings of every multiple of 4 up to 64 round-trip', async (t) => {
  for (let len = 0; len <= 64; len += 4) {
    const bytes = randomBytes(len);
    const text = z85Encode(bytes);
    t.equal(text.length, (len / 4) * 5, `${len} bytes -> ${text.length} chars`);
    t.same(Buffer.from(z85Decode(text)), bytes);
  }
  t.equal(z85Encode(new Uint8Array([0, 0, 0, 0])), '00000');
  t.equal(z85Encode(new Uint8Array([255, 255, 255, 255])), '%nSc0', 'the largest group');
});

t.test("zeromq's own curveKeyPair keys decode to 32 bytes and re-encode identically", async (t) => {
  for (let i = 0; i < 20; i++) {
    const { publicKey, secretKey } = curveKeyPair();
    for (const k of [publicKey, secretKey]) {
      const raw = z85Decode(k);
      t.equal(raw.length, 32);
      t.equal(z85Encode(raw), k);
    }
  }
});

t.test('bad lengths, characters outside the alphabet and 32-bit overflow are refused with a clear error', async (t) => {
  t.throws(() => z85Encode(new Uint8Array(3)), { code: 'INVALID_ARGUMENT', message: /3 bytes.*multiple of 4/ });
  t.throws(() => z85Decode('Hello!'), { code: 'INVALID_ARGUMENT', message: /6 characters.*multiple of 5/ });
  t.throws(() => z85Decode('Hell~World'), { code: 'INVALID_ARGUMENT', message: /character 5 is not in the Z85 alphabet/ });
  t.throws(() => z85Decode('Hello Worl'), { code: 'INVALID_ARGUMENT', message: /character 6 / });
  t.throws(() => z85Decode('Hell"'), { code: 'INVALID_ARGUMENT', message: /not in the Z85 alphabet/ });
  t.throws(() => z85Decode('Hellé'), { code: 'INVALID_ARGUMENT', message: /not in the Z85 alphabet/ });
  t.throws(() => z85Decode('%nSc1'), { code: 'INVALID_ARGUMENT', message: /exceeds 32 bits/ });
  t.throws(() => z85Decode('#####'), { code: 'INVALID_ARGUMENT', message: /exceeds 32 bits/ });
});

t.test('the error never echoes the input (it may be a secret key)', async (t) => {
  const { secretKey } = curveKeyPair();
  const broken = `${secretKey.slice(0, 39)}~`;
  let message = '';
  try {
    z85Decode(broken);
  } catch (err) {
    message = (err as Error).message;
  }
  t.match(message, /character 40 is not in the Z85 alphabet/);
  t.notOk(message.includes(secretKey.slice(0, 20)));
});
