import t from 'tap';
import { CustodyError, isCustodyError } from '../../src/errors.js';

t.test('a CustodyError serialises to code, message and details only, never its stack or cause', async (t) => {
  const cause = new Error('secret-bearing cause');
  const err = new CustodyError('BAD_PASSPHRASE', 'custodian "ops1": passphrase does not open the share', { custodian: 'ops1' }, { cause });
  const wire = JSON.parse(JSON.stringify(err)) as Record<string, unknown>;
  t.same(wire, { code: 'BAD_PASSPHRASE', message: 'custodian "ops1": passphrase does not open the share', details: { custodian: 'ops1' } });
  t.notOk(JSON.stringify(err).includes('secret-bearing'));
  t.ok(isCustodyError(err, 'BAD_PASSPHRASE'));
  t.notOk(isCustodyError(err, 'UNLOCK_FAILED'));
  t.notOk(isCustodyError(new Error('x')));
});
