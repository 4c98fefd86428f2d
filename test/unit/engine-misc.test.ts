import test from 'ava';
import { classifySshError, remoteCommand } from '../../src/connection/ssh.js';
import { parseFacts } from '../../src/engine/facts.js';
import { batchSizes } from '../../src/engine/session.js';

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

test('remote commands: sudo only with become, password mode reads stdin', (t) => {
  t.is(remoteCommand('echo hi', false, false, false), "sh -c 'echo hi'");
  t.is(remoteCommand('echo hi', true, false, false), "sudo -n -H -- sh -c 'echo hi'");
  t.is(remoteCommand('echo hi', true, true, false), "sudo -S -p '' -H -- sh -c 'echo hi'");
  t.is(remoteCommand('x', false, false, true), 'sh -s');
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
