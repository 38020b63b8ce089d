import t from 'tap';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '../../../src/errors.js';
import { METHODS } from '../../../src/rpc/methods.js';

const doc = readFileSync('docs/rpc.md', 'utf8');

t.test('docs/rpc.md lists every stable error code and every method the daemon serves', async (t) => {
  for (const code of Object.keys(ERROR_CODES)) t.ok(doc.includes(`\`${code}\``), `error code ${code}`);
  for (const method of Object.keys(METHODS)) t.ok(doc.includes(`\`${method}`), `method ${method}`);
});
