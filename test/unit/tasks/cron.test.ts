import { createHash } from 'node:crypto';
import test from 'ava';
import type { FileState, ProbeResult, Task } from '../../../src/engine/types.js';
import { cron } from '../../../src/tasks/cron.js';
import { UserError } from '../../../src/util/errors.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const probed = (task: Task, state: FileState): ProbeResult => ({
  stdout: '',
  exitCode: 0,
  files: new Map((task.files ?? []).map(({ path }) => [path, state])),
});
const file = (content: string, mode = 0o644): FileState => ({
  type: 'file',
  uid: 0,
  user: 'root',
  gid: 0,
  group: 'root',
  mode,
  sha256: sha(content),
});

const CONTENT = [
  '# Managed by verdandi (cron backup): changes made here are overwritten.',
  'MAILTO=ops@example.org',
  'PATH=/usr/local/bin:/usr/bin:/bin',
  '*/15 3 * * mon-fri backup /usr/local/bin/backup --quiet',
  '',
].join('\n');

const task = () =>
  cron({
    job: 'backup',
    schedule: '*/15  3 * * mon-fri',
    user: 'backup',
    command: '/usr/local/bin/backup --quiet',
    environment: { MAILTO: 'ops@example.org', PATH: '/usr/local/bin:/usr/bin:/bin' },
  });

test('a missing job file is written root-owned 0644, with the variables before the job', (t) => {
  const job = task();
  t.is(job.name, 'cron backup');
  t.deepEqual(job.plan(probed(job, { type: 'absent' })), {
    steps: [
      {
        kind: 'write',
        path: '/etc/cron.d/backup',
        content: CONTENT,
        mode: '0644',
        owner: 'root',
        group: 'root',
      },
    ],
    reason: 'file is missing',
    diff: { path: '/etc/cron.d/backup', after: CONTENT },
  });
});

test('the same file needs nothing; another content or a writable mode is repaired', (t) => {
  const job = task();
  t.deepEqual(job.plan(probed(job, file(CONTENT))).steps, []);
  t.is(job.plan(probed(job, file('other'))).steps[0].kind, 'write');
  t.deepEqual(job.plan(probed(job, file(CONTENT, 0o666))).steps, [
    { kind: 'run', command: 'chmod 00644 /etc/cron.d/backup' },
  ]);
});

test('a nickname schedule, and state absent', (t) => {
  const daily = cron({ job: 'rotate', schedule: '@daily', command: 'rotate' });
  const write = daily.plan(probed(daily, { type: 'absent' })).steps[0];
  t.is(write.kind === 'write' && write.content.split('\n')[1], '@daily root rotate');
  const gone = cron({ job: 'rotate', state: 'absent' });
  t.deepEqual(gone.plan(probed(gone, file('x'))).steps, [
    { kind: 'run', command: 'rm -f -- /etc/cron.d/rotate' },
  ]);
  t.deepEqual(gone.plan(probed(gone, { type: 'absent' })), { steps: [] });
});

test('wrong options are errors naming the option', (t) => {
  const error = (make: () => unknown, message: RegExp) => t.throws(make, { instanceOf: UserError, message });
  error(
    () => cron({ job: 'my.job', schedule: '@daily', command: 'x' }),
    /job must be a file name .*cron ignores names with a dot/,
  );
  error(
    () => cron({ job: 'j', schedule: '* * * *', command: 'x' }),
    /schedule must be five cron fields or one of @reboot/,
  );
  error(() => cron({ job: 'j', schedule: '@sometimes', command: 'x' }), /schedule must be five cron fields/);
  error(() => cron({ job: 'j', command: 'x' }), /schedule is required with state present/);
  error(() => cron({ job: 'j', schedule: '@daily', command: 'a\nb' }), /command must be one non-empty line/);
  error(
    () => cron({ job: 'j', schedule: '@daily', command: 'x', environment: { A: 'a\nb' } }),
    /environment A must be one line/,
  );
  error(
    () => cron({ job: 'j', schedule: '@daily', command: 'x', environment: { 'A-B': '1' } }),
    /not a valid variable name/,
  );
});
