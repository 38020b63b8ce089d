import t from 'tap';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../src/store/db.js';
import { DepositAddresses } from '../../src/service/deposits.js';
import { REGTEST_WPKH, regtestDescriptor } from '../support/wallets.js';
import { runCli } from '../support/cli.js';

t.test('custody addresses export writes the recovery manifest from the data dir, and refuses a foreign one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'custody-export-'));
  const dataDir = join(dir, 'data');
  const descriptor = regtestDescriptor();
  const store = await Store.open(dataDir, { network: 'regtest', descriptorChecksum: descriptor.checksum });
  const deposits = await DepositAddresses.open(store, descriptor, { pool: { size: 32, batch: 32, workers: 0 } });
  for (let i = 0; i < 25; i++) await deposits.newAddress({ requestId: `r${i}`, account: `customer-${i % 3}` }, 'app');
  await deposits.markUsed(4);
  await deposits.close();
  await store.close();

  const config = join(dir, 'custody.toml');
  writeFileSync(config, `network = "regtest"\ndataDir = "${dataDir}"\n[keystore]\nfile = "${dir}/ks.json"\n[cold]\ndescriptor = "${REGTEST_WPKH}"\n`);
  const out = join(dir, 'manifest.json');
  const r = await runCli('custody', ['addresses', 'export', '--config', config, '--out', out]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /25 addresses, restore with a gap limit of at least 21/);
  t.equal(statSync(out).mode & 0o777, 0o600);
  const m = JSON.parse(readFileSync(out, 'utf8')) as { descriptor: string; highestIssued: number; highestUsed: number; gapLimit: number; accounts: Array<{ index: number; account: string }> };
  t.equal(m.descriptor, descriptor.canonical);
  t.same([m.highestIssued, m.highestUsed, m.gapLimit], [24, 4, 21]);
  t.same(m.accounts[5], { index: 5, account: 'customer-2' });

  const again = await runCli('custody', ['addresses', 'export', '--config', config, '--out', out]);
  t.equal(again.code, 2);
  t.match(again.stderr, /refusing to overwrite/);

  const viaEnv = await runCli('custody', ['addresses', 'export'], { env: { CUSTODY_CONFIG: config } });
  t.equal(viaEnv.code, 0);
  t.equal((JSON.parse(viaEnv.stdout) as { accounts: unknown[] }).accounts.length, 25);

  writeFileSync(config, readFileSync(config, 'utf8').replace('network = "regtest"', 'network = "testnet"'));
  const foreign = await runCli('custody', ['addresses', 'export', '--config', config]);
  t.equal(foreign.code, 1);
  t.match(foreign.stderr, /STORE_MISMATCH.*made for network regtest, but the configuration says testnet/);
});
