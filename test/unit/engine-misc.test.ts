import test from 'ava';
import { BOOTSTRAP, remoteCommand } from '../../src/connection/protocol.js';
import { classifySshError } from '../../src/connection/ssh.js';
import { parseFacts } from '../../src/engine/facts.js';
import { batchSizes } from '../../src/engine/walker.js';

test('serial batches: numbers and percentages', (t) => {
  t.deepEqual(batchSizes(5), [5]);
  t.deepEqual(batchSizes(5, 2), [2, 2, 1]);
  t.deepEqual(batchSizes(10, '30%'), [3, 3, 3, 1]);
  t.deepEqual(batchSizes(2, '10%'), [1, 1]);
  t.throws(() => batchSizes(3, 0), { message: /serial must be a positive number/ });
});

test('facts are parsed from the facts script output', (t) => {
  const f = parseFacts(
    'os_id=debian\nos_version=12\nos_codename=bookworm\nos_pretty=Debian GNU/Linux 12 (bookworm)\n' +
      'arch=x86_64\nkernel=6.1\nhostname=web1\nmem_kb=2048000\ncpus=2\npackages=321\nservice=ssh.service\nservice=cron.service\n',
  );
  t.is(f.os.codename, 'bookworm');
  t.is(f.memoryMb, 2000);
  t.is(f.packageCount, 321);
  t.deepEqual(f.services, ['ssh', 'cron']);
});

test('remote commands are fixed: sudo only with become, password mode reads stdin', (t) => {
  const boot = `sh -c '${BOOTSTRAP}'`;
  t.is(remoteCommand(false, false), boot);
  t.is(remoteCommand(true, false), `sudo -n -H -- ${boot}`);
  t.is(remoteCommand(true, true), `sudo -S -p '' -H -- ${boot}`);
  t.false(BOOTSTRAP.includes("'"));
});

test('ssh errors are classified into reasons', (t) => {
  t.is(classifySshError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })).reason, 'refused');
  t.is(
    classifySshError(
      Object.assign(new Error('Timed out while waiting for handshake'), { level: 'client-timeout' }),
    ).reason,
    'timeout',
  );
  t.is(
    classifySshError(
      Object.assign(new Error('All configured authentication methods failed'), {
        level: 'client-authentication',
      }),
    ).reason,
    'auth',
  );
});
