import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { RunStep } from '../../../src/engine/types.js';
import { command, envFromStdin, shell, shellOf } from '../../../src/tasks/command.js';
import { UserError } from '../../../src/util/errors.js';

const guards = (lines: string[]) => ({
  stdout: `${lines.map((l) => `verdandi-guard ${l}`).join('\n')}\n`,
  exitCode: 0,
});

test('no guard: always runs, says so, alwaysRuns set, empty probe', (t) => {
  const task = command({ argv: ['/usr/local/bin/migrate', '--all'] });
  t.true(task.alwaysRuns);
  t.is(task.probe, '');
  const plan = task.plan({ stdout: '', exitCode: 0 });
  t.is(plan.reason, 'no creates/removes/unless/onlyIf guard: always runs');
  t.deepEqual(plan.steps, [
    {
      kind: 'run',
      command: '/usr/local/bin/migrate --all',
      description: 'command /usr/local/bin/migrate --all',
    },
  ]);
});

test('argv words are quoted for the shell', (t) => {
  const plan = command({ argv: ['echo', "it's", '$HOME', 'a b'] }).plan({ stdout: '', exitCode: 0 });
  t.is((plan.steps[0] as RunStep).command, `echo 'it'\\''s' '$HOME' 'a b'`);
});

test('creates: skipped when the path exists, runs when it does not', (t) => {
  const task = command({ argv: ['tar', 'xf', '/tmp/a.tar'], creates: '/opt/a' });
  t.falsy(task.alwaysRuns);
  t.true(task.probe.includes('test -e /opt/a'));
  t.deepEqual(task.plan(guards(['creates yes'])), { steps: [], reason: '/opt/a exists' });
  const plan = task.plan(guards(['creates no']));
  t.is(plan.steps.length, 1);
  t.is(plan.reason, '/opt/a does not exist');
});

test('removes: runs only when the path exists', (t) => {
  const task = shell({ script: 'rm -rf /opt/old', removes: '/opt/old' });
  t.deepEqual(task.plan(guards(['removes no'])).steps, []);
  t.is(task.plan(guards(['removes yes'])).steps.length, 1);
});

test('unless: exit 0 skips; onlyIf: non-zero skips; both reported', (t) => {
  const unless = shell({ script: 'pyenv install 3.12', unless: 'pyenv versions --bare | grep -qx 3.12' });
  // The guard is a here-document of the probe, not an argument of `sh -c` (see the ps test below).
  t.true(
    unless.probe.includes(
      `${shellOf('pyenv versions --bare | grep -qx 3.12')}\n) </dev/null >/dev/null 2>&1`,
    ),
  );
  t.false(unless.probe.includes("sh -c 'pyenv"));
  t.deepEqual(unless.plan(guards(['unless 0'])), { steps: [], reason: 'unless guard exited 0' });
  t.is(unless.plan(guards(['unless 1'])).reason, 'unless guard exited 1');
  const onlyIf = shell({ script: 'systemctl restart x', onlyIf: 'test -f /run/x.flag' });
  t.deepEqual(onlyIf.plan(guards(['onlyIf 1'])), { steps: [], reason: 'onlyIf guard exited 1' });
  t.is(onlyIf.plan(guards(['onlyIf 0'])).steps.length, 1);
});

test('all guards must agree to run', (t) => {
  const task = shell({ script: 'x', creates: '/a', unless: 'false' });
  t.deepEqual(task.plan(guards(['creates yes', 'unless 1'])).steps, []);
  const plan = task.plan(guards(['creates no', 'unless 1']));
  t.is(plan.steps.length, 1);
  t.is(plan.reason, '/a does not exist, unless guard exited 1');
});

test('a guard the probe did not report is an error, not a run', (t) => {
  const plan = shell({ script: 'x', creates: '/a' }).plan({ stdout: '', exitCode: 2 });
  t.deepEqual(plan.steps, []);
  t.regex(plan.error ?? '', /did not report the creates guard/);
});

test('user and cwd: cd, then runuser; guards run the same way', (t) => {
  const task = shell({ script: 'make install', user: 'app', cwd: '/srv/app', unless: 'test -x bin/app' });
  const plan = task.plan(guards(['unless 1']));
  t.is((plan.steps[0] as RunStep).command, `cd /srv/app && runuser -u app -- ${shellOf('make install')}`);
  t.true(task.probe.includes(`( cd /srv/app && runuser -u app -- ${shellOf('test -x bin/app')}\n)`));
});

test('stdin is passed as RunStep.stdin', (t) => {
  const plan = command({ argv: ['psql'], stdin: 'select 1;\n' }).plan({ stdout: '', exitCode: 0 });
  t.is((plan.steps[0] as RunStep).stdin, 'select 1;\n');
});

test('env values never appear in the command; they travel on stdin before the user stdin', (t) => {
  const secret = 'postgres://app:S3cr3t-P4ss@db/app';
  const task = command({
    argv: ['./manage.py', 'migrate'],
    env: { DATABASE_URL: secret, MODE: 'prod' },
    stdin: 'yes\n',
  });
  const step = task.plan({ stdout: '', exitCode: 0 }).steps[0] as RunStep;
  t.false(step.command.includes(secret));
  t.false(step.command.includes('S3cr3t'));
  t.false(step.command.includes('prod'));
  t.true(step.stdin?.endsWith('\n\nyes\n'));
  t.false(step.stdin?.includes(secret), 'values are base64 on stdin, not clear text');
});

test('env prelude: the shell gets the exact values, the command the rest of stdin', (t) => {
  const env = { A: "it's\n multi-line\n\n", B: 'x y $HOME `id`', EMPTY: '' };
  const { prelude, stdin } = envFromStdin(env);
  const script = `${prelude} && printf '[%s][%s][%s]' "$A" "$B" "$EMPTY" && cat`;
  const result = spawnSync('sh', ['-c', script], { input: `${stdin}rest of stdin\n`, encoding: 'utf8' });
  t.is(result.status, 0, result.stderr);
  t.is(result.stdout, `[${env.A}][${env.B}][]rest of stdin\n`);
});

test('shell script runs in a shell of its own; default name from its first line', (t) => {
  const task = shell({ script: 'set -e\necho one\necho two' });
  t.is(task.name, 'shell set -e');
  t.is(
    (task.plan({ stdout: '', exitCode: 0 }).steps[0] as RunStep).command,
    shellOf('set -e\necho one\necho two'),
  );
});

test('a sensitive task without a name is labelled by its type alone: nothing of its script or argv', (t) => {
  const secret = 'hunter2-in-the-script';
  const script = shell({ script: `echo ${secret} | chpasswd`, sensitive: true });
  const argv = command({ argv: ['mysqladmin', `--password=${secret}`, 'reload'], sensitive: true });
  t.is(script.name, 'shell (sensitive)');
  t.is(argv.name, 'command (sensitive)');
  // The step's description is the label too (what a failure or -v would name).
  for (const task of [script, argv]) {
    const step = task.plan({ stdout: '', exitCode: 0 }).steps[0] as RunStep;
    t.is(step.description, task.name);
  }
  // A name given is the label, as for any task; a task that is not sensitive keeps its default label.
  t.is(
    shell({ script: `echo ${secret}`, sensitive: true, name: 'set the password' }).name,
    'set the password',
  );
  t.is(shell({ script: 'echo hello', sensitive: false }).name, 'shell echo hello');
  // Option errors, from the schema or from prepare, are prefixed with the same label.
  const wrong = (options: Record<string, unknown>) =>
    t.throws(() => shell({ script: `echo ${secret}`, sensitive: true, ...options } as never), {
      instanceOf: UserError,
    })?.message ?? '';
  for (const message of [wrong({ timeout: 0 }), wrong({ delay: 3 }), wrong({ user: 'root; rm' })]) {
    t.regex(message, /^shell \(sensitive\): /);
    t.false(message.includes(secret), message);
  }
  const argvError =
    t.throws(() => command({ argv: ['mysql', `-p${secret}`], sensitive: true, retries: 0 }), {
      instanceOf: UserError,
    })?.message ?? '';
  t.regex(argvError, /^command \(sensitive\): retries must be a positive integer/);
  t.false(argvError.includes(secret));
});

test('a shell script and its guards are on no command line; the script keeps its stdin and exit code', (t) => {
  // The script prints the command line of the shell running it, then what it reads, then exits 3.
  const script = `SECRET_MARK=1\ntr '\\0' ' ' < /proc/$$/cmdline; echo; cat; exit 3`;
  const task = shell({
    script,
    stdin: 'from stdin\n',
    unless: 'SECRET_GUARD=1; tr "\\0" " " < /proc/$$/cmdline >&2; false',
  });
  const step = task.plan(guards(['unless 1'])).steps[0] as RunStep;
  const run = spawnSync('sh', ['-c', `${step.command}\n`], { input: step.stdin, encoding: 'utf8' });
  t.is(run.status, 3, run.stderr);
  const [cmdline, read] = run.stdout.split('\n');
  t.true(cmdline.startsWith('sh -c vd_s='), cmdline);
  t.false(cmdline.includes('SECRET_MARK'));
  t.is(read, 'from stdin');
  // The guard's shell (its stderr is silenced in the probe: read it here).
  const probe = spawnSync('sh', ['-c', task.probe.replace('>/dev/null 2>&1', '>/dev/null')], {
    encoding: 'utf8',
  });
  t.is(probe.stdout, 'verdandi-guard unless 1\n');
  t.true(probe.stderr.startsWith('sh -c vd_s='), probe.stderr);
  t.false(probe.stderr.includes('SECRET_GUARD'));
});

test('timeout: positive whole seconds, carried by the step', (t) => {
  const step = shell({ script: 'sleep 100', timeout: 5 }).plan({ stdout: '', exitCode: 0 })
    .steps[0] as RunStep;
  t.is(step.timeoutSeconds, 5);
  const none = command({ argv: ['true'] }).plan({ stdout: '', exitCode: 0 }).steps[0] as RunStep;
  t.is(none.timeoutSeconds, undefined);
  const err = t.throws(() => shell({ script: 'x', timeout: 0 }), { instanceOf: UserError });
  t.regex(err?.message ?? '', /timeout must be a positive integer, got 0/);
});

test('the guard probe, run by sh, reports what the plan reads (relative paths from cwd)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'verdandi-guard-'));
  writeFileSync(join(dir, 'present'), '');
  const run = (task: ReturnType<typeof shell>) => {
    const result = spawnSync('sh', ['-c', task.probe], { encoding: 'utf8' });
    return task.plan({ stdout: result.stdout, exitCode: result.status ?? -1 });
  };
  t.deepEqual(run(shell({ script: 'x', cwd: dir, creates: 'present' })).steps, []);
  t.is(run(shell({ script: 'x', cwd: dir, creates: 'absent' })).steps.length, 1);
  t.deepEqual(run(shell({ script: 'x', removes: join(dir, 'absent') })).steps, []);
  t.deepEqual(run(shell({ script: 'x', cwd: dir, unless: 'test -f present' })).steps, []);
  t.is(run(shell({ script: 'x', cwd: dir, unless: 'exit 3' })).reason, 'unless guard exited 3');
  t.deepEqual(run(shell({ script: 'x', onlyIf: 'false' })).steps, []);
});

test('validation', (t) => {
  t.throws(() => command({ argv: [] }), { instanceOf: UserError });
  t.throws(() => shell({ script: '  ' }), { instanceOf: UserError });
  t.throws(() => command({ argv: ['x'], user: 'root; rm' }), { instanceOf: UserError });
  t.throws(() => command({ argv: ['x'], env: { 'BAD-NAME': 'v' } }), { instanceOf: UserError });
  t.throws(() => command({ argv: ['x'], env: { PORT: 8080 as unknown as string } }), {
    instanceOf: UserError,
  });
});

test('changedWhen, failedWhen, retries, delay and until travel on the run step as its verdict', (t) => {
  const changedWhen = (r: { stdout: string }) => r.stdout.includes('created');
  const failedWhen = (r: { rc: number }) => r.rc > 1;
  const until = (r: { stdout: string }) => r.stdout === 'up\n';
  const step = shell({ script: 'x', changedWhen, failedWhen, retries: 4, delay: 2, until }).plan({
    stdout: '',
    exitCode: 0,
  }).steps[0] as RunStep;
  t.deepEqual(step.verdict, { changedWhen, failedWhen, retries: 4, delay: 2, until });
  const constant = command({ argv: ['x'], changedWhen: false }).plan({ stdout: '', exitCode: 0 });
  t.deepEqual((constant.steps[0] as RunStep).verdict, { changedWhen: false });
  // Without them the step has no verdict of its own: the engine's default rule.
  t.false('verdict' in (command({ argv: ['x'] }).plan({ stdout: '', exitCode: 0 }).steps[0] as RunStep));
  // Still a command that always runs: check mode says "would run" (changedWhen is unknown there).
  t.true(command({ argv: ['x'], changedWhen: false }).alwaysRuns);
});

test('wrong verdict options are errors when the task is built', (t) => {
  const wrong = (options: Record<string, unknown>) =>
    t.throws(() => command({ argv: ['x'], ...options } as never), { instanceOf: UserError })?.message ?? '';
  t.regex(
    wrong({ changedWhen: true }),
    /changedWhen must be a function of the result .*, or false, got true/,
  );
  t.regex(wrong({ failedWhen: false }), /failedWhen must be a function of the result .* got false/);
  t.regex(wrong({ until: 'ready' }), /until must be a function/);
  t.regex(wrong({ retries: 0 }), /retries must be a positive integer, got 0/);
  t.regex(wrong({ retries: 1.5 }), /retries must be a positive integer/);
  t.regex(wrong({ retries: 2, delay: -1 }), /delay must be a number of seconds \(0 or more\), got -1/);
  t.regex(wrong({ delay: 3 }), /delay is the wait between two tries: it needs retries or until/);
  t.notThrows(() => command({ argv: ['x'], delay: 3, until: () => true }));
});
