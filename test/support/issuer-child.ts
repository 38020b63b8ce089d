/**
 * A real process that issues deposit addresses as fast as it can and prints each one as soon as it is
 * returned, so a test can SIGKILL or SIGTERM it mid-way and check that nothing returned was lost.
 * argv: dataDir requestPrefix count concurrency
 */
import { Store } from '../../src/store/db.js';
import { DepositAddresses } from '../../src/service/deposits.js';
import { regtestDescriptor } from './wallets.js';

const [dir, prefix, countText, concurrencyText] = process.argv.slice(2);
const count = Number(countText);
const concurrency = Number(concurrencyText);
const descriptor = regtestDescriptor();
const store = await Store.open(dir as string, { network: 'regtest', descriptorChecksum: descriptor.checksum });
const deposits = await DepositAddresses.open(store, descriptor, { pool: { size: 512, batch: 128, workers: 1 } });

let next = 0;
let out = '';
const flush = (): void => {
  if (out !== '') {
    process.stdout.write(out);
    out = '';
  }
};
const timer = setInterval(flush, 2);
process.on('SIGTERM', () => {
  // Graceful stop: finish the writes in flight, report them, close the store, exit 0.
  next = count;
  void deposits.close().then(async () => {
    flush();
    await store.close();
    process.exit(0);
  });
});

async function worker(): Promise<void> {
  while (next < count) {
    const i = next++;
    // Every fifth request repeats one of a small set of ids, so repeats race with each other and with fresh ones.
    const requestId = i % 5 === 0 ? `rep-${i % 50}` : `${prefix}-${i}`;
    const account = requestId.startsWith('rep-') ? `acct-${requestId}` : `acct-${i % 97}`;
    const r = await deposits.newAddress({ requestId, account }, 'app');
    out += `${JSON.stringify({ requestId, account, index: r.index, address: r.address })}\n`;
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
clearInterval(timer);
flush();
await deposits.close();
await store.close();
process.stdout.write('DONE\n');
