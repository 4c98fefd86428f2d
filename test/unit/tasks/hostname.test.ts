import test from 'ava';
import type { ProbeResult } from '../../../src/engine/types.js';
import { hostname, hostsWithName } from '../../../src/tasks/hostname.js';
import { sha256Hex } from '../../../src/tasks/probe-output.js';
import { UserError } from '../../../src/util/errors.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const HOSTS = '127.0.0.1\tlocalhost\n127.0.1.1\told\n::1\tlocalhost ip6-localhost\n';

function probed(live: string, hostnameFile: string, hosts: string): ProbeResult {
  return {
    stdout: `verdandi-hostname live ${b64(live)}\nverdandi-hostname hosts 0 root 0 root 644 ${b64(hosts)}\n`,
    exitCode: 0,
    files: new Map([
      [
        '/etc/hostname',
        {
          type: 'file',
          uid: 0,
          user: 'root',
          gid: 0,
          group: 'root',
          mode: 0o644,
          sha256: sha256Hex(hostnameFile),
        },
      ],
    ]),
  };
}

test('a new name: /etc/hostname, the running name and the hosts line', (t) => {
  const task = hostname({ hostname: 'web1.example.org' });
  t.is(task.name, 'hostname web1.example.org');
  const plan = task.plan(probed('old\n', 'old\n', HOSTS));
  const after = '127.0.0.1\tlocalhost\n127.0.1.1\tweb1.example.org web1\n::1\tlocalhost ip6-localhost\n';
  t.deepEqual(plan, {
    steps: [
      { kind: 'write', path: '/etc/hostname', content: 'web1\n', mode: '0644' },
      { kind: 'run', command: 'hostname web1' },
      { kind: 'write', path: '/etc/hosts', content: after, mode: '0644', owner: 'root', group: 'root' },
    ],
    reason:
      '/etc/hostname differs, running name is old, /etc/hosts does not map 127.0.1.1 to web1.example.org',
    diff: { path: '/etc/hosts', after },
  });
});

test('converged: nothing, however the hosts line is spaced', (t) => {
  const task = hostname({ hostname: 'web1' });
  t.deepEqual(task.plan(probed('web1\n', 'web1\n', '127.0.0.1 localhost\n127.0.1.1   web1\n')), {
    steps: [],
  });
});

test('a hosts file without the line gets it after 127.0.0.1', (t) => {
  t.deepEqual(hostsWithName(['# hosts', '127.0.0.1 localhost', '::1 localhost'], 'db'), [
    '# hosts',
    '127.0.0.1 localhost',
    '127.0.1.1\tdb',
    '::1 localhost',
  ]);
  t.deepEqual(hostsWithName([], 'db'), ['127.0.1.1\tdb']);
});

test('a name that is not a host name is an option error', (t) => {
  for (const name of ['-web', 'web_1', 'a..b', 'web 1', `${'a'.repeat(64)}.org`]) {
    t.throws(() => hostname({ hostname: name }), {
      instanceOf: UserError,
      message: /hostname must be a host name/,
    });
  }
});
