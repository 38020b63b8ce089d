import t from 'tap';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../../src/store/db.js';
import { META } from '../../../src/store/layout.js';

const dir = (): string => join(mkdtempSync(join(tmpdir(), 'custody-store-')), 'data');
const id = { network: 'regtest', descriptorChecksum: 'lxek0ef2' } as const;

t.test('a new data dir records its identity and is created mode 0700', async (t) => {
  const d = dir();
  const s = await Store.open(d, id);
  t.equal(statSync(d).mode & 0o777, 0o700);
  t.equal(await s.get(META.network), 'regtest');
  t.equal(await s.get(META.descriptor), 'lxek0ef2');
  t.equal(await s.get(META.schema), '1');
  await s.close();
  const again = await Store.open(d, id);
  await again.close();
});

t.test('a data dir made for another network or descriptor is refused, saying which', async (t) => {
  const d = dir();
  await (await Store.open(d, id)).close();
  await t.rejects(Store.open(d, { ...id, network: 'mainnet' }), { code: 'STORE_MISMATCH', message: /made for network regtest, but the configuration says mainnet/ });
  await t.rejects(Store.open(d, { ...id, descriptorChecksum: 'qf45pmyh' }), { code: 'STORE_MISMATCH', message: /checksum #lxek0ef2, but the configured descriptor has #qf45pmyh/ });
});

t.test('a newer schema version is refused', async (t) => {
  const d = dir();
  const s = await Store.open(d, id);
  await s.commit([{ type: 'put', key: META.schema, value: '99' }]);
  await s.close();
  await t.rejects(Store.open(d, id), { code: 'STORE_VERSION', message: /schema version 99 is newer/ });
});

t.test('a second process (or open) on the same data dir is refused while the first holds it', async (t) => {
  const d = dir();
  const s = await Store.open(d, id);
  await t.rejects(Store.open(d, id), { code: 'STORE_LOCKED', message: /in use by another process/ });
  await s.close();
});

t.test('range reads keys in order within bounds', async (t) => {
  const s = await Store.open(dir(), id);
  await s.commit([
    { type: 'put', key: 'x!2', value: 'b' },
    { type: 'put', key: 'x!1', value: 'a' },
    { type: 'put', key: 'y!1', value: 'z' },
  ]);
  t.same(await s.range('x!', 'x!~'), [['x!1', 'a'], ['x!2', 'b']]);
  t.same(await s.range('x!', 'x!~', 1, true), [['x!2', 'b']]);
  await s.close();
});
