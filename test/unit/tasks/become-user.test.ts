import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { buildProbeBatch, parseProbeBatch } from '../../../src/engine/probe-batch.js';
import { stepScript } from '../../../src/engine/steps.js';
import type { RunStep, Task, WriteStep } from '../../../src/engine/types.js';
import { apt } from '../../../src/tasks/apt.js';
import { NO_SUCH_USER } from '../../../src/tasks/become-user.js';
import { command, shell, shellOf } from '../../../src/tasks/command.js';
import { copy } from '../../../src/tasks/copy.js';
import { directory } from '../../../src/tasks/directory.js';
import { git } from '../../../src/tasks/git.js';
import { postgresUser } from '../../../src/tasks/postgres-user.js';
import { service } from '../../../src/tasks/service.js';
import { user } from '../../../src/tasks/user.js';
import { UserError } from '../../../src/util/errors.js';
import { scriptAsUser } from '../../../src/util/shell.js';
import { isRoot } from './local-host.js';

/** The user the local runs use: every Debian system has it, with no usable home. */
const NOBODY = 'nobody';
const NOBODY_UID = 65534;
const runner = isRoot && spawnSync('sh', ['-c', 'command -v runuser']).status === 0 ? test : test.skip;

const sh = (script: string, input = '') => spawnSync('sh', ['-c', script], { input, encoding: 'utf8' });

/** The probe of `task`, run in a batch the engine's way. */
function probeLocally(task: Task) {
  const batch = buildProbeBatch([['0', task.probe, task.files]]);
  const got = parseProbeBatch(sh(batch.script).stdout, batch).get('0');
  if (!got) throw new Error('the probe batch did not complete');
  return got;
}

/** A directory anyone may write to, without the sticky bit: `nobody` may replace root's file in it. */
function openDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vd-become-'));
  chmodSync(dir, 0o777);
  return dir;
}

test('scriptAsUser: runuser with a fixed command line, the script on a here-document', (t) => {
  const wrapped = scriptAsUser('app', 'echo SECRET_MARK');
  const [first] = wrapped.split('\n');
  t.true(first.startsWith('runuser -u app -- sh -c \'cd "$HOME" 2>/dev/null || cd /;'), first);
  t.false(first.includes('SECRET_MARK'));
  t.true(wrapped.includes('\necho SECRET_MARK\n'));
});

test('the probe runs as the user, and says when the user does not exist', (t) => {
  const task = command({ argv: ['make'], creates: '/srv/app/bin', becomeUser: 'app' });
  const lines = task.probe.split('\n');
  t.is(lines[0], `if ! id -u app >/dev/null 2>&1; then echo ${NO_SUCH_USER}; exit 1; fi`);
  t.true(lines[1].startsWith('runuser -u app -- sh -c '), lines[1]);
  t.is(task.becomeUser, 'app');
  // A task with an empty probe still learns whether the user exists.
  const always = command({ argv: ['make'], becomeUser: 'app' });
  t.is(always.probe, `id -u app >/dev/null 2>&1 || echo ${NO_SUCH_USER}`);
});

test('a missing user: a step that fails naming the user, and why (check mode shows it as a change)', (t) => {
  const task = copy({ path: '/srv/app/a', content: 'x', becomeUser: 'app' });
  const plan = task.plan({ stdout: `${NO_SUCH_USER}\n`, exitCode: 1 });
  t.is(plan.reason, 'user app does not exist (yet)');
  t.is(plan.steps.length, 1);
  const step = stepScript(plan.steps[0], '', 'app');
  t.is(step.display, 'becomeUser app');
  const ran = sh(step.script.replace(/\bapp\b/g, 'verdandi-no-such-user'));
  t.is(ran.status, 1);
  t.is(ran.stderr.trim(), 'becomeUser: there is no user verdandi-no-such-user on the host');
});

test('a write step as the user: the content stays on stdin; the user check and the root record come first', (t) => {
  const write: WriteStep = { kind: 'write', path: '/srv/app/.env', content: 'TOKEN=SECRET_VALUE\n' };
  const step = stepScript(write, 'echo RECORD', 'app');
  t.is(step.stdin, write.content);
  t.false(step.script.includes('SECRET_VALUE'));
  t.is(step.display, 'write /srv/app/.env');
  const check = step.script.indexOf('id -u app');
  const record = step.script.indexOf('echo RECORD');
  const runuser = step.script.indexOf('runuser -u app --');
  t.true(check >= 0 && check < record && record < runuser, step.script);
  // The record is root's: it is not in the user's script (after runuser).
  t.false(step.script.slice(runuser).includes('echo RECORD'));
  // Without an owner, the old owner is kept only when the user may give it.
  t.true(step.script.includes('chown --reference=/srv/app/.env "$vd_f" 2>/dev/null || :'));
});

test('a run step as the user: the command is in the here-document, its stdin and ok codes kept', (t) => {
  const run: RunStep = { kind: 'run', command: 'make SECRET_ARG', stdin: 'in\n', okCodes: [0, 2] };
  const step = stepScript(run, '', 'app');
  t.is(step.stdin, 'in\n');
  t.deepEqual(step.okCodes, [0, 2]);
  t.is(step.script.split('\n')[1], scriptAsUser('app', 'make SECRET_ARG').split('\n')[0]);
  t.true(step.script.endsWith(scriptAsUser('app', 'make SECRET_ARG')));
});

test('root-only task types refuse becomeUser when the task is built, saying why and what to do', (t) => {
  const cases: Array<[() => Task, RegExp]> = [
    [() => apt({ packages: ['nginx'], becomeUser: 'app' }), /apt cannot run as another user: only root/],
    [() => service({ unit: 'nginx', state: 'started', becomeUser: 'app' }), /service cannot run as/],
    [() => user({ user: 'app', becomeUser: 'app' }), /user cannot run as another user/],
    [() => postgresUser({ user: 'app', becomeUser: 'postgres' }), /runs psql as postgres itself/],
  ];
  for (const [build, message] of cases) {
    const error = t.throws(build, { instanceOf: UserError });
    t.regex(error?.message ?? '', message);
    t.regex(error?.message ?? '', /\(at .*become-user\.test\.ts:\d+\)/);
    t.is((error as UserError).hint, 'remove becomeUser (the task runs as root)');
  }
});

test('command user / git owner: an error when they differ from becomeUser, dropped when the same', (t) => {
  const error = t.throws(() => command({ argv: ['id'], user: 'www', becomeUser: 'app' }), {
    instanceOf: UserError,
  });
  t.regex(error?.message ?? '', /becomeUser "app" and user "www" name different users/);
  t.throws(() => git({ dest: '/srv/a', repo: '/srv/r', owner: 'www', becomeUser: 'app' }), {
    message: /becomeUser "app" and owner "www" name different users/,
  });
  // The same user: one runuser, the engine's (a nested one would fail: runuser is root's only).
  const same = shell({ script: 'make', user: 'app', becomeUser: 'app' });
  t.is((same.plan({ stdout: '', exitCode: 0 }).steps[0] as RunStep).command, shellOf('make'));
  const checkout = git({
    dest: '/srv/a',
    repo: '/srv/r',
    version: 'a'.repeat(40),
    owner: 'app',
    becomeUser: 'app',
  });
  t.false(checkout.probe.split('\n').slice(2).join('\n').includes('runuser'), checkout.probe);
});

test('becomeUser must be a user name', (t) => {
  t.throws(() => directory({ path: '/srv/a', becomeUser: 'a b' }), {
    message: /becomeUser must be a user name, got "a b"/,
  });
});

runner('locally as root: the probe runs as the user, in a directory it may enter', (t) => {
  const task = shell({
    script: 'true',
    onlyIf: 'test "$(id -u)" = 65534 && test "$PWD" = /',
    becomeUser: NOBODY,
  });
  t.deepEqual(task.plan(probeLocally(task)).reason, 'onlyIf guard exited 0');
  const missing = shell({ script: 'true', onlyIf: 'true', becomeUser: 'verdandi-no-such-user' });
  t.is(missing.plan(probeLocally(missing)).reason, 'user verdandi-no-such-user does not exist (yet)');
});

runner('locally as root: a write as the user is atomic, and the file is the user’s even over root’s', (t) => {
  const dir = openDir();
  const path = join(dir, 'conf');
  writeFileSync(path, 'old\n', { mode: 0o640 });
  const step = stepScript({ kind: 'write', path, content: 'new\n' }, '', NOBODY);
  const ran = sh(step.script, step.stdin);
  t.is(ran.status, 0, ran.stderr);
  t.is(readFileSync(path, 'utf8'), 'new\n');
  t.is(statSync(path).uid, NOBODY_UID);
  t.is(statSync(path).mode & 0o777, 0o640);
  t.deepEqual(readdirSync(dir), ['conf']);
  // A run step as the user, its stdin through.
  const run = stepScript({ kind: 'run', command: `cat > ${dir}/out; id -u` }, '', NOBODY);
  const out = sh(run.script, 'hello\n');
  t.is(out.status, 0, out.stderr);
  t.is(out.stdout.trim(), String(NOBODY_UID));
  t.is(readFileSync(join(dir, 'out'), 'utf8'), 'hello\n');
  t.is(statSync(join(dir, 'out')).uid, NOBODY_UID);
});

runner('locally as root: a write the user may not make fails, and leaves nothing', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-become-closed-'));
  const step = stepScript({ kind: 'write', path: join(dir, 'conf'), content: 'x' }, '', NOBODY);
  const ran = sh(step.script, step.stdin);
  t.not(ran.status, 0);
  t.regex(ran.stderr, /Permission denied/);
  t.deepEqual(readdirSync(dir), []);
});

test('a write as the user keeps no owner the task does not set: the file becomes the user’s', (t) => {
  const files = new Map([
    [
      '/srv/app/a',
      { type: 'file' as const, uid: 0, user: 'root', gid: 0, group: 'root', mode: 0o640, sha256: 'old' },
    ],
  ]);
  const probe = { stdout: '', exitCode: 0, files };
  const mine = copy({ path: '/srv/app/a', content: 'x', becomeUser: 'app' }).plan(probe)
    .steps[0] as WriteStep;
  t.is(mine.owner, undefined);
  t.is(mine.group, undefined);
  t.is(mine.mode, '0640');
  // As root, a plan keeps them; an owner the task sets stays required as the user.
  const root = copy({ path: '/srv/app/a', content: 'x' }).plan(probe).steps[0] as WriteStep;
  t.is(root.owner, 'root');
  const given = copy({ path: '/srv/app/a', content: 'x', owner: 'www', becomeUser: 'app' }).plan(probe)
    .steps[0] as WriteStep;
  t.is(given.owner, 'www');
  t.is(given.group, undefined);
});
