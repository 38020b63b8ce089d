import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { AddressPool, WORKER_NICE } from '../../../src/service/address-pool.js';
import { Deriver } from '../../../src/wallet/derive.js';
import { regtestDescriptor } from '../../support/wallets.js';

const descriptor = regtestDescriptor();

/** Nice value of each thread of this process (field 19 of /proc/self/task/TID/stat). */
function threadNices(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      /* the thread ended meanwhile */
    }
  }
  return out;
}

t.test('the pool hands out the descriptor\'s addresses in index order, from worker threads as from inline derivation', async (t) => {
  const deriver = new Deriver(descriptor, descriptor.network);
  for (const workers of [0, 2]) {
    const pool = new AddressPool(descriptor, descriptor.network, 0, 5, { size: 64, batch: 16, workers });
    const got = [...(await pool.take(40)), ...(await pool.take(100))];
    t.same(
      got.map((a) => a.index),
      Array.from({ length: 140 }, (_, i) => 5 + i),
      `${workers} workers: contiguous from the start index`,
    );
    for (const a of [got[0], got[77], got[139]]) t.equal(a?.address, deriver.output(0, a?.index ?? -1).address);
    await pool.close();
  }
});

t.test('derivation threads run at a lower priority than the request path (Linux)', { skip: existsSync('/proc/thread-self') ? false : 'no /proc/thread-self' }, async (t) => {
  const before = threadNices();
  t.equal(before.get(process.pid), 0, 'the main thread starts at nice 0');
  const pool = new AddressPool(descriptor, descriptor.network, 0, 0, { size: 512, batch: 64, workers: 2 });
  await pool.warm(512);
  const after = threadNices();
  const lowered = [...after].filter(([tid, nice]) => !before.has(tid) && nice === WORKER_NICE);
  t.equal(lowered.length, 2, `both worker threads at nice ${WORKER_NICE}`);
  t.equal(after.get(process.pid), 0, 'the main thread is untouched');
  await pool.close();
});
