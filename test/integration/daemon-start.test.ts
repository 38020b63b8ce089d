/** custodyd refuses to start, saying why, when a secret file is open to others or the config is wrong. */
import t from 'tap';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { makeDaemonFixture, startTestDaemon } from '../support/daemon.js';
import { runCli } from '../support/cli.js';

t.test('a keystore or server key readable by others, or a missing config, stops custodyd at start with exit 1', async (t) => {
  const f = await makeDaemonFixture();
  chmodSync(join(f.dir, 'keystore.json'), 0o644);
  const ks = await runCli('custodyd', ['--config', f.configFile]);
  t.equal(ks.code, 1);
  t.match(ks.stderr, /KEYSTORE_INVALID.*keystore\.json: readable or writable by other users; chmod 600/);
  chmodSync(join(f.dir, 'keystore.json'), 0o600);

  chmodSync(join(f.dir, 'server.key'), 0o640);
  const key = await runCli('custodyd', ['--config', f.configFile]);
  t.equal(key.code, 1);
  t.match(key.stderr, /KEY_FILE.*server\.key/);
  chmodSync(join(f.dir, 'server.key'), 0o600);

  const none = await runCli('custodyd', ['--config', join(f.dir, 'nope.toml')]);
  t.equal(none.code, 1);
  t.match(none.stderr, /CONFIG_NOT_FOUND/);

  const d = await startTestDaemon(f);
  t.equal(await d.stop('SIGINT'), 0, 'with the modes fixed it starts, and SIGINT stops it cleanly');
});
