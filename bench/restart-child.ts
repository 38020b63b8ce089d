/**
 * Child process of the restart benchmark: from process start to "ready" (data dir open, identity checked,
 * pool deriving, one address issued and fsync'd), then its time and resident memory as JSON.
 */
import { performance } from 'node:perf_hooks';
import { Store } from '../src/store/db.js';
import { DepositAddresses } from '../src/service/deposits.js';
import { parseDescriptor } from '../src/wallet/descriptor.js';

const [dir, desc] = process.argv.slice(2) as [string, string];
const descriptor = parseDescriptor(desc, { network: 'regtest' });
const store = await Store.open(dir, { network: 'regtest', descriptorChecksum: descriptor.checksum });
const deposits = await DepositAddresses.open(store, descriptor);
const r = await deposits.newAddress({ requestId: `restart-${Date.now()}`, account: 'bench' }, 'bench');
const readyMs = performance.now();
const rssMB = process.memoryUsage().rss / 2 ** 20;
await deposits.close();
await store.close();
process.stdout.write(`${JSON.stringify({ readyMs, rssMB, index: r.index })}\n`);
