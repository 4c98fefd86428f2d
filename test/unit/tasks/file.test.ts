import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { file } from '../../../src/tasks/file.js';
import { applySymbolicMode, isSymbolicMode } from '../../../src/tasks/file-state.js';
import { UserError } from '../../../src/util/errors.js';
import { convergeLocally, isRoot, planLocally, probed, scratchDir } from './local-host.js';

const asRoot = isRoot ? test : test.skip;

test('a missing file is touched, then given the attributes asked for', (t) => {
  const task = file({ path: '/etc/app/it is.conf', owner: 'www-data', group: 'adm', mode: '640' });
  t.is(task.type, 'file');
  t.is(task.name, 'file /etc/app/it is.conf');
  t.deepEqual(
    task.plan(probed(task, 'verdandi-stat absent', 'verdandi-account user 1', 'verdandi-account group 1')),
    {
      steps: [
        { kind: 'run', command: "touch '/etc/app/it is.conf'" },
        { kind: 'run', command: "chown www-data:adm '/etc/app/it is.conf'" },
        { kind: 'run', command: "chmod 00640 '/etc/app/it is.conf'" },
      ],
      reason: 'file is missing',
    },
  );
});

test('a missing file without attributes is only touched', (t) => {
  const bare = file({ path: '/tmp/x' });
  t.deepEqual(bare.plan(probed(bare, 'verdandi-stat absent')).steps, [
    { kind: 'run', command: 'touch /tmp/x' },
  ]);
});

test('a file with the right attributes needs nothing', (t) => {
  const task = file({ path: '/etc/x', owner: 'root', group: 'root', mode: '0644' });
  t.deepEqual(
    task.plan(probed(task, 'verdandi-stat file 0 root 0 root 644 - -', 'verdandi-account user 1')),
    {
      steps: [],
      reason: undefined,
    },
  );
});

test('wrong mode and owner give chown then chmod, with the reasons', (t) => {
  const task = file({ path: '/etc/x', owner: 'www-data', mode: '0600' });
  t.deepEqual(
    task.plan(probed(task, 'verdandi-stat file 0 root 0 root 644 - -', 'verdandi-account user 1')),
    {
      steps: [
        { kind: 'run', command: 'chown www-data /etc/x' },
        { kind: 'run', command: 'chmod 00600 /etc/x' },
      ],
      reason: 'owner root → www-data, mode 0644 → 0600',
    },
  );
});

test('an unknown user or group is a clear error, before anything is created', (t) => {
  const task = file({ path: '/etc/x', owner: 'deploy', group: 'deploy' });
  t.deepEqual(
    task.plan(probed(task, 'verdandi-stat absent', 'verdandi-account user 0', 'verdandi-account group 1')),
    {
      steps: [],
      error:
        'file /etc/x: user "deploy" does not exist on the host: create it with a user()/group() task before this one',
    },
  );
});

test('a directory or link where the file should be is an error, never replaced', (t) => {
  const task = file({ path: '/etc/x' });
  t.regex(
    task.plan(probed(task, 'verdandi-stat dir 0 root 0 root 755 - -')).error ?? '',
    /\/etc\/x is a directory, not a file/,
  );
  t.regex(
    task.plan(probed(task, 'verdandi-stat link 0 root 0 root 777 - eA==')).error ?? '',
    /is a symbolic link, not a file/,
  );
});

test('a path whose state the host did not print is an error naming the exit code', (t) => {
  t.deepEqual(file({ path: '/etc/x' }).plan({ stdout: 'sh: 1: stat: not found\n', exitCode: 127 }), {
    steps: [],
    error: 'could not read the state of /etc/x (the host printed no state for it, exit code 127)',
  });
});

test('bad options fail when the task is built', (t) => {
  t.throws(() => file({ path: 'relative/x' }), {
    instanceOf: UserError,
    message: /path must be an absolute path/,
  });
  // Symbolic modes are taken, but every clause names whom it is for (no umask involved).
  t.throws(() => file({ path: '/x', mode: '+x' }), {
    instanceOf: UserError,
    message: /mode must be an octal string like '0644' or a symbolic mode/,
  });
  t.throws(() => file({ path: '/x', owner: 'bad name' }), {
    instanceOf: UserError,
    message: /owner must be/,
  });
});

test('locally: a missing file is created and the second probe is converged', (t) => {
  const path = join(scratchDir(t), 'new "file".txt');
  const { first, second } = convergeLocally(file({ path, mode: '0640' }));
  t.is(first.reason, 'file is missing');
  t.deepEqual(second.steps, []);
  t.is(statSync(path).mode & 0o7777, 0o640);
  t.is(statSync(path).size, 0);
});

test('locally: an existing file keeps its content; only its mode changes', (t) => {
  const path = join(scratchDir(t), 'keep me');
  writeFileSync(path, 'content', { mode: 0o600 });
  const { first, second } = convergeLocally(file({ path, mode: '644' }));
  t.is(first.reason, 'mode 0600 → 0644');
  t.deepEqual(second.steps, []);
});

asRoot('locally: owner and group are set by name', (t) => {
  const path = join(scratchDir(t), 'owned');
  writeFileSync(path, '');
  const { first, second } = convergeLocally(file({ path, owner: 'nobody', group: 'nogroup' }));
  t.is(first.steps.length, 1);
  t.deepEqual(second.steps, []);
  t.is(statSync(path).uid, 65534);
});

test('locally: a directory at the path is refused', (t) => {
  const path = join(scratchDir(t), 'a dir');
  mkdirSync(path);
  t.regex(planLocally(file({ path })).error ?? '', /is a directory, not a file/);
});

// --- state touch, times, symbolic modes ---

test('symbolic modes are computed against the probed mode, as chmod would', (t) => {
  t.is(applySymbolicMode(0o644, 'u+rwx,g-w'), 0o744);
  t.is(applySymbolicMode(0o777, 'a=r'), 0o444);
  t.is(applySymbolicMode(0o640, 'o=g'), 0o644);
  t.is(applySymbolicMode(0o644, 'a+X'), 0o644);
  t.is(applySymbolicMode(0o744, 'go+X'), 0o755);
  t.is(applySymbolicMode(0o755, 'u+s,g+s,o+t'), 0o7755);
  t.is(applySymbolicMode(0o4755, 'u=rwx'), 0o755);
  t.is(applySymbolicMode(0o2755, 'g=rx', true), 0o2755);
  t.is(applySymbolicMode(0o600, 'ug+rw-x,o='), 0o660);
  t.true(isSymbolicMode('u+rwx,g-w'));
  t.false(isSymbolicMode('+x'));
  t.false(isSymbolicMode('0644'));
  t.false(isSymbolicMode('u+q'));
});

test('a symbolic mode: chmod with the computed octal mode when it differs, nothing when it matches', (t) => {
  const task = file({ path: '/etc/x', mode: 'u+x,go-w' });
  t.deepEqual(task.plan(probed(task, 'verdandi-stat file 0 root 0 root 664 - -')), {
    steps: [{ kind: 'run', command: 'chmod 00744 /etc/x' }],
    reason: 'mode 0664 → 0744',
  });
  t.deepEqual(task.plan(probed(task, 'verdandi-stat file 0 root 0 root 744 - -')).steps, []);
  // A new file gets the symbolic mode from chmod itself.
  t.deepEqual(task.plan(probed(task, 'verdandi-stat absent')).steps, [
    { kind: 'run', command: 'touch /etc/x' },
    { kind: 'run', command: 'chmod u+x,go-w -- /etc/x' },
  ]);
});

test('state touch creates a missing file and, by default, changes nothing on an existing one', (t) => {
  const task = file({ path: '/etc/x', state: 'touch' });
  t.deepEqual(task.plan(probed(task, 'verdandi-stat absent')), {
    steps: [{ kind: 'run', command: 'touch /etc/x' }],
    reason: 'file is missing',
  });
  t.deepEqual(task.plan(probed(task, 'verdandi-stat file 0 root 0 root 644 - -')).steps, []);
});

test("modificationTime / accessTime 'now' touch an existing file on every run", (t) => {
  const existing = 'verdandi-stat file 0 root 0 root 644 - -';
  const both = file({ path: '/etc/x', state: 'touch', modificationTime: 'now', accessTime: 'now' });
  t.deepEqual(both.plan(probed(both, existing)), {
    steps: [{ kind: 'run', command: 'touch -- /etc/x' }],
    reason: 'access and modification times set to now',
  });
  const mtime = file({ path: '/etc/x', state: 'touch', modificationTime: 'now' });
  t.deepEqual(mtime.plan(probed(mtime, existing)).steps, [{ kind: 'run', command: 'touch -m -- /etc/x' }]);
  const atime = file({ path: '/etc/x', state: 'touch', accessTime: 'now', mode: '0600' });
  t.deepEqual(atime.plan(probed(atime, existing)), {
    steps: [
      { kind: 'run', command: 'chmod 00600 /etc/x' },
      { kind: 'run', command: 'touch -a -- /etc/x' },
    ],
    reason: 'mode 0644 → 0600, access time set to now',
  });
  t.throws(() => file({ path: '/x', modificationTime: 'now' }), { message: /needs state: 'touch'/ });
  t.throws(() => file({ path: '/x', state: 'absent' as 'touch' }), {
    message: /state must be file or touch/,
  });
});

test('locally: a symbolic mode converges a real file, then nothing changes', (t) => {
  const path = join(scratchDir(t), 'script');
  writeFileSync(path, '');
  chmodSync(path, 0o664);
  const { first, second } = convergeLocally(file({ path, mode: 'u+x,g-w,o=' }));
  t.is(first.reason, 'mode 0664 → 0740');
  t.deepEqual(second.steps, []);
  t.is(statSync(path).mode & 0o7777, 0o740);
  const created = join(scratchDir(t), 'new');
  const fresh = convergeLocally(file({ path: created, mode: 'a=r,u+w', state: 'touch' }));
  t.deepEqual(fresh.second.steps, []);
  t.is(statSync(created).mode & 0o7777, 0o644);
});
