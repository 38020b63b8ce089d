/**
 * Crash safety of deposit-address issuance with a real child process: SIGKILL (no chance to clean up)
 * and SIGTERM (graceful) in the middle of heavy concurrent issuance. Every address the process returned
 * must be in the store under its requestId, repeats must answer the same, and no index is ever reused.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../src/store/db.js';
import { DepositAddresses } from '../../src/service/deposits.js';
import { regtestDescriptor } from '../support/wallets.js';
import { REPO } from '../support/cli.js';

interface Line {
  requestId: string;
  account: string;
  index: number;
  address: string;
}

/** Runs the issuer child; after `stopAfter` returned addresses sends `signal`. Resolves with what it printed. */
function runIssuer(dir: string, prefix: string, stopAfter: number, signal: NodeJS.Signals): Promise<{ lines: Line[]; code: number | null; sig: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, join(REPO, 'build/test/support/issuer-child.js'), dir, prefix, '1000000', '64'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines: Line[] = [];
    let buf = '';
    let sent = false;
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('{')) lines.push(JSON.parse(line) as Line);
      }
      if (!sent && lines.length >= stopAfter) {
        sent = true;
        child.kill(signal);
      }
    });
    child.on('error', reject);
    child.on('close', (code, sig) => resolve({ lines, code, sig }));
  });
}

async function check(t: Test, dir: string, returned: Map<string, Line>): Promise<void> {
  const descriptor = regtestDescriptor();
  const store = await Store.open(dir, { network: 'regtest', descriptorChecksum: descriptor.checksum });
  const deposits = await DepositAddresses.open(store, descriptor, { pool: { size: 64, batch: 64, workers: 0 } });
  let lost = 0;
  for (const l of returned.values()) {
    const again = await deposits.newAddress({ requestId: l.requestId, account: l.account }, 'app');
    if (again.created || again.address !== l.address || again.index !== l.index) lost++;
  }
  t.equal(lost, 0, `all ${returned.size} returned addresses are still theirs`);
  const all = await deposits.list({ limit: 10_000_000 });
  t.equal(new Set(all.map((r) => r.address)).size, all.length, 'no address issued twice');
  t.ok(all.every((r, i) => r.index === i), 'indexes contiguous from 0');
  t.equal(deposits.gap().highestIssued, all.length - 1);
  await deposits.close();
  await store.close();
}

t.test('SIGKILL mid-issuance, three times over, loses no returned address and never re-issues one', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'custody-crash-')), 'data');
  const returned = new Map<string, Line>();
  for (const [round, stopAfter] of [[1, 3_000], [2, 1_500], [3, 5_000]] as const) {
    const r = await runIssuer(dir, `kill${round}`, stopAfter, 'SIGKILL');
    t.equal(r.sig, 'SIGKILL', `round ${round} was killed`);
    t.ok(r.lines.length >= stopAfter, `round ${round}: ${r.lines.length} addresses returned before the kill`);
    for (const l of r.lines) {
      const prev = returned.get(l.requestId);
      if (prev && prev.address !== l.address) t.fail(`${l.requestId} answered ${prev.address} then ${l.address}`);
      returned.set(l.requestId, l);
    }
  }
  await check(t, dir, returned);
});

t.test('SIGTERM mid-issuance finishes the writes in flight and exits 0, losing nothing', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'custody-crash-')), 'data');
  const r = await runIssuer(dir, 'term', 4_000, 'SIGTERM');
  t.equal(r.code, 0, 'graceful exit');
  const returned = new Map(r.lines.map((l) => [l.requestId, l]));
  await check(t, dir, returned);
});
