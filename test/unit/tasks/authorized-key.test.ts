import test from 'ava';
import {
  type AuthorizedKeyOptions,
  authorizedKey,
  editKeys,
  parseKeyLine,
} from '../../../src/tasks/authorized-key.js';
import { UserError } from '../../../src/util/errors.js';

const out = (...lines: string[]) => ({ stdout: `${lines.join('\n')}\n`, exitCode: 0 });
const b64 = (text: string) => Buffer.from(text).toString('base64');
const KEY_A = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA1 alice@laptop';
const KEY_B = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC2 bob';
const USER = `verdandi-authorized-key user 1000 1000 ${b64('/home/deploy')}`;
const DIR = 'verdandi-stat:dir dir 1000 deploy 1000 deploy 700 - -';
const FILE = 'verdandi-stat:file file 1000 deploy 1000 deploy 600 - -';
const content = (text: string) => `verdandi-authorized-key content ${b64(text)}`;

test('a key line is read with its options, type, blob and comment', (t) => {
  t.deepEqual(parseKeyLine(KEY_A), {
    type: 'ssh-ed25519',
    blob: 'AAAAC3NzaC1lZDI1NTE5AAAAIA1',
    comment: 'alice@laptop',
  });
  t.deepEqual(parseKeyLine(`no-pty,command="echo a b" ${KEY_B}`), {
    options: 'no-pty,command="echo a b"',
    type: 'ssh-rsa',
    blob: 'AAAAB3NzaC1yc2EAAAADAQABAAABAQC2',
    comment: 'bob',
  });
  t.is(parseKeyLine('# a comment'), undefined);
  t.is(parseKeyLine('garbage'), undefined);
});

test('a fresh account: .ssh created 0700, the file written 0600, both the user’s', (t) => {
  const task = authorizedKey({ user: 'deploy', key: KEY_A });
  const plan = task.plan(out(USER, 'verdandi-stat:dir absent', 'verdandi-stat:file absent'));
  t.deepEqual(plan, {
    steps: [
      { kind: 'run', command: 'mkdir -p -m 00700 /home/deploy/.ssh && chown deploy:1000 /home/deploy/.ssh' },
      {
        kind: 'write',
        path: '/home/deploy/.ssh/authorized_keys',
        content: `${KEY_A}\n`,
        mode: '0600',
        owner: 'deploy',
        group: '1000',
      },
    ],
    reason: '/home/deploy/.ssh is missing, /home/deploy/.ssh/authorized_keys is missing, adds 1 key',
    diff: { path: '/home/deploy/.ssh/authorized_keys', after: `${KEY_A}\n` },
  });
});

test('converged: the key is there, modes and owners right: nothing to do', (t) => {
  const task = authorizedKey({ user: 'deploy', key: [KEY_A] });
  t.deepEqual(task.plan(out(USER, DIR, FILE, content(`# mine\n${KEY_A}\n${KEY_B}\n`))), {
    steps: [],
    reason: undefined,
  });
});

test('a key with other options or comment is rewritten in place; others are kept', (t) => {
  const task = authorizedKey({ user: 'deploy', key: KEY_A, keyOptions: 'no-port-forwarding' });
  const plan = task.plan(out(USER, DIR, FILE, content(`${KEY_B}\n${KEY_A}\n`)));
  t.is(plan.reason, '1 key with other options or comment');
  t.is(plan.diff?.after, `${KEY_B}\nno-port-forwarding ${KEY_A}\n`);
});

test('exclusive leaves only the given keys; absent removes them', (t) => {
  const exclusive = authorizedKey({ user: 'deploy', key: `${KEY_A}\n`, exclusive: true });
  const plan = exclusive.plan(out(USER, DIR, FILE, content(`# old\n${KEY_B}\n${KEY_A}\n`)));
  t.is(plan.diff?.after, `${KEY_A}\n`);
  t.is(plan.reason, 'removes 2 other lines');

  const absent = authorizedKey({ user: 'deploy', key: KEY_A, state: 'absent' });
  t.is(absent.plan(out(USER, DIR, FILE, content(`${KEY_A}\n${KEY_B}\n`))).diff?.after, `${KEY_B}\n`);
  t.deepEqual(absent.plan(out(USER, DIR, 'verdandi-stat:file absent')), { steps: [] });
});

test('wrong modes or owners of .ssh and the file are repaired without rewriting it', (t) => {
  const task = authorizedKey({ user: 'deploy', key: KEY_A });
  const plan = task.plan(
    out(
      USER,
      'verdandi-stat:dir dir 0 root 0 root 755 - -',
      'verdandi-stat:file file 1000 deploy 1000 deploy 644 - -',
      content(`${KEY_A}\n`),
    ),
  );
  t.deepEqual(plan.steps, [
    { kind: 'run', command: 'chown deploy:1000 /home/deploy/.ssh' },
    { kind: 'run', command: 'chmod 00700 /home/deploy/.ssh' },
    { kind: 'run', command: 'chmod 00600 /home/deploy/.ssh/authorized_keys' },
  ]);
});

test('errors: a missing user, a directory at the path, an unreadable probe', (t) => {
  const task = authorizedKey({ user: 'deploy', key: KEY_A, path: '/etc/ssh/keys/deploy' });
  t.deepEqual(task.plan(out('verdandi-authorized-key no-user')), {
    steps: [],
    error:
      'authorizedKey deploy: user "deploy" does not exist on the host: create it with a user() task before this one',
  });
  t.regex(
    task.plan(out(USER, DIR, 'verdandi-stat:file dir 0 root 0 root 755 - -')).error ?? '',
    /\/etc\/ssh\/keys\/deploy is a directory, not a file/,
  );
  t.regex(task.plan({ stdout: 'noise\n', exitCode: 2 }).error ?? '', /could not read the state of/);
});

test('editKeys keeps a key given twice once', (t) => {
  const key = parseKeyLine(KEY_A)!;
  t.deepEqual(editKeys([KEY_A, KEY_A], [key], { state: 'present', exclusive: false }).lines, [KEY_A, KEY_A]);
  t.deepEqual(editKeys([KEY_A, KEY_A], [key], { state: 'present', exclusive: true }).lines, [KEY_A]);
});

test('options are checked when the task is built', (t) => {
  const build = (opts: AuthorizedKeyOptions) => () => authorizedKey(opts);
  t.throws(build({ user: 'deploy', key: 'not a key' }), {
    instanceOf: UserError,
    message: /authorizedKey deploy: key is not an SSH public key line .*"not a key"/,
  });
  t.throws(build({ user: 'deploy', key: '# only a comment\n' }), {
    instanceOf: UserError,
    message: /key holds no SSH public key/,
  });
  t.throws(build({ user: '1000', key: KEY_A }), {
    instanceOf: UserError,
    message: /user must be a user name/,
  });
  t.throws(build({ user: 'deploy', key: 42 as unknown as string }), {
    instanceOf: UserError,
    message: /key must be an SSH public key line or a list of them/,
  });
  t.throws(build({ user: 'deploy', key: KEY_A, keyOptions: 'a\nb' }), {
    instanceOf: UserError,
    message: /keyOptions must be one line/,
  });
});
