import t from 'tap';
import { randomBytes } from 'node:crypto';
import { ScriptIndex } from '../../../src/chain/script-index.js';

t.test('finds every script added (through growth and rehashing) and nothing else', async (t) => {
  const idx = new ScriptIndex();
  // Short scripts (under 4 bytes) are made unique from i: random 3-byte ones would collide by the birthday bound.
  const scripts = Array.from({ length: 50_000 }, (_, i) => (i % 3 === 0 ? randomBytes(34) : i % 7 === 0 ? Buffer.from([i & 255, (i >> 8) & 255, i >> 16]) : randomBytes(22)));
  scripts.forEach((s, i) => idx.add(s, i));
  t.equal(idx.size, 50_000);
  let wrong = 0;
  scripts.forEach((s, i) => {
    if (idx.get(s) !== i) wrong++;
  });
  t.equal(wrong, 0, 'every script found with its tag');
  let false_ = 0;
  for (let i = 0; i < 50_000; i++) if (idx.get(randomBytes(22)) !== undefined) false_++;
  t.equal(false_, 0, 'no false positives');
  const first = scripts[0]!;
  idx.add(first, 999);
  t.equal(idx.get(first), 0, 'a repeated add keeps the first tag');
  t.equal(idx.get(first.subarray(0, 21)), undefined, 'a prefix is not a match');
  t.throws(() => idx.add(randomBytes(256), 1), RangeError);
});
