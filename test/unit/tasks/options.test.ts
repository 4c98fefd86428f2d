/** Option validation of every task type: the schema pieces, TaskOptionError, the renamed `name` option. */
import test from 'ava';
import {
  copy,
  directory,
  dockerContainer,
  dockerImage,
  dockerStack,
  file,
  git,
  group,
  lineinfile,
  link,
  postgresDb,
  postgresUser,
  prune,
  service,
  template,
  user,
} from '../../../src/tasks/index.js';
import { absolutePath, fileMode, TaskOptionError } from '../../../src/tasks/options.js';
import { UserError } from '../../../src/util/errors.js';

test('mode normalises 3 digits and rejects anything but an octal string', (t) => {
  t.is(fileMode.parse('644'), '0644');
  t.is(fileMode.parse('2775'), '2775');
  t.is(fileMode.optional().parse(undefined), undefined);
  t.throws(() => file({ path: '/x', mode: '0x644' }), {
    instanceOf: UserError,
    message: /mode must be an octal string/,
  });
  t.throws(() => file({ path: '/x', mode: '899' }), { instanceOf: UserError });
  const error = t.throws(() => file({ path: '/x', mode: 0o644 as unknown as string }), {
    instanceOf: UserError,
  });
  t.is(error?.hint, "write it as a string: mode: '0644'");
});

test('path wants an absolute path, drops trailing slashes, and points at the calling line', (t) => {
  t.is(absolutePath().parse('/etc/nginx/'), '/etc/nginx');
  t.is(absolutePath().parse('/'), '/');
  const error = t.throws(() => file({ path: 'etc/x' }), { instanceOf: UserError });
  t.regex(
    error?.message ?? '',
    /^file etc\/x: path must be an absolute path, got "etc\/x" \(at .*options\.test\.ts:\d+\)$/,
  );
});

test('every task path is normalised, and a .. segment is refused in every task type taking a path', (t) => {
  t.is(absolutePath().parse('/etc//nginx/./sites/'), '/etc/nginx/sites');
  t.is(absolutePath().parse('/.'), '/');
  const cases: Array<[string, () => unknown]> = [
    ['file', () => file({ path: '/srv/../etc/shadow' })],
    ['directory', () => directory({ path: '/srv/..' })],
    ['copy', () => copy({ path: '/srv/app/../x', content: '' })],
    ['template', () => template({ path: '/srv/..', src: '/nonexistent.hbs' })],
    ['link', () => link({ path: '/srv/..', target: '/x' })],
    ['lineinfile', () => lineinfile({ path: '/etc/../etc/hosts', line: 'x' })],
    ['prune', () => prune({ dir: '/srv/..', match: '*' })],
    ['git', () => git({ repo: '/r', dest: '/srv/..' })],
    ['dockerImage', () => dockerImage({ tag: 'x:1', context: '/srv/..' })],
  ];
  for (const [type, build] of cases) {
    const e = t.throws(build, { instanceOf: TaskOptionError }, type) as TaskOptionError;
    t.is(e.taskType, type);
    t.regex(e.message, /must not contain \.\. segments, got ".*"/, type);
  }
  t.is(directory({ path: '/srv/./app//' }).name, 'directory /srv/app');
});

test('a wrong option is a TaskOptionError naming the task type and the option; its stack passes through the caller', (t) => {
  const e = t.throws(() => service({ unit: 'nginx', state: 'running' as 'started' }), {
    instanceOf: TaskOptionError,
  }) as TaskOptionError;
  t.true(e instanceof UserError);
  t.is(e.taskType, 'service');
  t.is(e.option, 'state');
  t.is(e.exitCode, 1);
  t.regex(
    e.message,
    /^service nginx: state must be started, stopped, restarted or reloaded, got "running" \(at .*options\.test\.ts:\d+\)$/,
  );
  // The stack itself holds this file's frame: a caller catching the error can point at the role's line.
  t.regex(e.stack ?? '', /options\.test\.ts:\d+/);
});

test('nested options are named with their path', (t) => {
  const error = t.throws(
    () =>
      dockerContainer({
        container: 'web',
        image: 'nginx',
        healthcheck: { test: 'x', interval: '10 seconds' },
      }),
    { instanceOf: TaskOptionError },
  );
  t.is((error as TaskOptionError).option, 'healthcheck.interval');
  t.regex(
    error?.message ?? '',
    /healthcheck\.interval must be a duration like 30s or 1m30s, got "10 seconds"/,
  );
});

test('an unknown option is an error listing the options (a typo is never ignored)', (t) => {
  const error = t.throws(() => service({ unit: 'nginx', stat: 'started' } as never), {
    instanceOf: TaskOptionError,
  });
  t.regex(error?.message ?? '', /^service nginx: unknown option stat \(at /);
  t.regex(error?.hint ?? '', /the options are unit, state, enabled, masked, daemonReload, name, notify/);
});

test('a password never shows in an option error', (t) => {
  const error = t.throws(() => postgresUser({ user: 'app', password: 'hunter2\0' }), {
    instanceOf: TaskOptionError,
  });
  t.false(error?.message.includes('hunter2'));
});

test('name is the label of every task type; the resource has its own option', (t) => {
  t.is(service({ unit: 'nginx' }).name, 'service nginx');
  t.is(service({ unit: 'nginx', name: 'web server' }).name, 'web server');
  t.is(user({ user: 'app', name: 'the app account' }).name, 'the app account');
  t.is(group({ group: 'app' }).name, 'group app');
  t.is(postgresDb({ db: 'app' }).name, 'postgres database app');
  t.is(postgresUser({ user: 'app' }).name, 'postgres user app');
  t.is(dockerContainer({ container: 'web', image: 'nginx' }).name, 'docker container web');
  t.is(
    dockerStack({ stack: 'app', compose: 'services:\n  web:\n    image: nginx\n' }).name,
    'docker stack app',
  );
});

test('the old spelling (name as the resource) still builds the same task, with one deprecation warning per type', async (t) => {
  const warnings: Error[] = [];
  const listen = (warning: Error) => warnings.push(warning);
  process.on('warning', listen);
  try {
    const old = service({ name: 'cron', state: 'started' });
    const again = service({ name: 'cron', state: 'stopped' });
    const current = service({ unit: 'cron', state: 'started' });
    t.is(old.name, current.name);
    t.is(old.probe, current.probe);
    t.is(again.name, 'service cron');
    const probe = { stdout: 'LoadState=loaded\nActiveState=inactive\nUnitFileState=enabled\n', exitCode: 0 };
    t.deepEqual(old.plan(probe), current.plan(probe));
    // Warnings are emitted on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', listen);
  }
  const ours = warnings.filter((w) => (w as { code?: string }).code === 'VERDANDI_TASK_NAME');
  t.is(ours.length, 1);
  t.is(ours[0].name, 'DeprecationWarning');
  t.regex(
    ours[0].message,
    /service\(\{ name \}\) naming the unit is deprecated: write service\(\{ unit \}\) \(at .*options\.test\.ts:\d+\)/,
  );
});
