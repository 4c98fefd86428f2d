import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { ProbeResult } from '../../../src/engine/types.js';
import { DEFAULT_SYSCTL_FILE, editSysctlFile, normalizeValue, sysctl } from '../../../src/tasks/sysctl.js';
import { UserError } from '../../../src/util/errors.js';
import { runProbe, scratchDir } from './local-host.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const probed = (...lines: string[]): ProbeResult => ({ stdout: `${lines.join('\n')}\n`, exitCode: 0 });
const fileLine = (content: string, mode = '644') =>
  `verdandi-sysctl file 0 root 0 root ${mode} ${b64(content)}`;
const live = (value: string) => `verdandi-sysctl live ${b64(value)}`;

test('a fresh host: the file is written and the live value set', (t) => {
  const task = sysctl({ key: 'net.core.somaxconn', value: 1024 });
  t.is(task.name, 'sysctl net.core.somaxconn');
  t.deepEqual(task.plan(probed('verdandi-sysctl absent', live('4096'))), {
    steps: [
      { kind: 'write', path: DEFAULT_SYSCTL_FILE, content: 'net.core.somaxconn = 1024\n', mode: '0644' },
      { kind: 'run', command: 'sysctl -q -w net.core.somaxconn=1024' },
    ],
    reason: `${DEFAULT_SYSCTL_FILE} is missing, live value is 4096`,
    diff: { path: DEFAULT_SYSCTL_FILE, after: 'net.core.somaxconn = 1024\n' },
  });
});

test('converged: the file sets the key and the live value matches, tabs and spaces alike', (t) => {
  const task = sysctl({
    key: 'net.ipv4.ip_local_port_range',
    value: '32768 60000',
    file: '/etc/sysctl.d/10-ports.conf',
  });
  t.deepEqual(
    task.plan(probed(fileLine('# ports\nnet.ipv4.ip_local_port_range=32768 60000\n'), live('32768\t60000'))),
    { steps: [] },
    'a line written differently but setting the same value is left alone',
  );
});

test('only the live value differs: sysctl -w, the file is not rewritten', (t) => {
  const task = sysctl({ key: 'vm.swappiness', value: '10' });
  const plan = task.plan(probed(fileLine('vm.swappiness = 10\n'), live('60')));
  t.deepEqual(plan.steps, [{ kind: 'run', command: 'sysctl -q -w vm.swappiness=10' }]);
  t.is(plan.reason, 'live value is 60');
});

test('reload false: the file only, the live value is not read', (t) => {
  const task = sysctl({ key: 'vm.swappiness', value: '10', reload: false });
  t.notRegex(task.probe, /sysctl -n/);
  const plan = task.plan(probed(fileLine('vm.swappiness = 60\n', '600')));
  t.deepEqual(plan.steps, [
    {
      kind: 'write',
      path: DEFAULT_SYSCTL_FILE,
      content: 'vm.swappiness = 10\n',
      mode: '0600',
      owner: 'root',
      group: 'root',
    },
  ]);
});

test('editing keeps other lines, replaces the first setting and drops later duplicates', (t) => {
  t.deepEqual(
    editSysctlFile(['# c', 'vm.swappiness=1', 'a.b = 2', ' vm/swappiness = 3'], 'vm.swappiness', '10'),
    {
      lines: ['# c', 'vm.swappiness = 10', 'a.b = 2'],
      changed: true,
    },
  );
  t.deepEqual(editSysctlFile(['a.b = 2'], 'vm.swappiness', '10'), {
    lines: ['a.b = 2', 'vm.swappiness = 10'],
    changed: true,
  });
  t.deepEqual(editSysctlFile(['a.b = 2', '# vm.swappiness = 1'], 'vm.swappiness', undefined), {
    lines: ['a.b = 2', '# vm.swappiness = 1'],
    changed: false,
  });
  t.is(normalizeValue(' 1\t 2 '), '1 2');
});

test('state absent removes the key from the file and leaves the kernel alone', (t) => {
  const task = sysctl({ key: 'vm.swappiness', state: 'absent' });
  t.notRegex(task.probe, /sysctl -n/);
  const plan = task.plan(probed(fileLine('a.b = 1\nvm.swappiness = 10\n')));
  t.deepEqual(
    plan.steps.map((s) => s.kind),
    ['write'],
  );
  t.is(plan.diff?.after, 'a.b = 1\n');
  t.deepEqual(task.plan(probed('verdandi-sysctl absent')), { steps: [] });
});

test('a key the kernel does not have is an error saying so', (t) => {
  const task = sysctl({ key: 'net.nope.nothing', value: 1 });
  const plan = task.plan(
    probed(
      'verdandi-sysctl absent',
      `verdandi-sysctl unknown ${b64('sysctl: cannot stat /proc/sys/net/nope/nothing: No such file or directory')}`,
    ),
  );
  t.regex(
    plan.error ?? '',
    /sysctl net\.nope\.nothing: the host's kernel has no parameter net\.nope\.nothing \(sysctl: cannot stat/,
  );
});

test('the probe reads a real file and a real key on this machine', (t) => {
  const file = join(scratchDir(t), '99-test.conf');
  writeFileSync(file, 'kernel.pid_max = 1\n');
  const task = sysctl({ key: 'kernel.pid_max', value: 1, file });
  const result = runProbe(task);
  t.regex(
    result.stdout,
    new RegExp(`verdandi-sysctl file \\d+ \\S+ \\d+ \\S+ 644 ${b64('kernel.pid_max = 1\n')}`),
  );
  t.regex(result.stdout, /verdandi-sysctl live \S+/);
  t.regex(runProbe(sysctl({ key: 'net.nope.nothing', value: 1, file })).stdout, /verdandi-sysctl unknown/);
});

test('wrong options are errors naming the option', (t) => {
  const error = (make: () => unknown, message: RegExp) => t.throws(make, { instanceOf: UserError, message });
  error(() => sysctl({ key: 'swappiness', value: 1 }), /key must be a dotted sysctl key/);
  error(() => sysctl({ key: 'vm.swappiness' }), /value is required with state present/);
  error(() => sysctl({ key: 'vm.swappiness', value: '1\n2' }), /value must be one non-empty line/);
  error(
    () => sysctl({ key: 'vm.swappiness', value: true as unknown as string }),
    /value must be a string or a number, got true/,
  );
  error(() => sysctl({ key: 'vm.swappiness', value: 1, file: 'x.conf' }), /file must be an absolute path/);
});
