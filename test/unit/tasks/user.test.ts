import { createHash } from 'node:crypto';
import test from 'ava';
import type { Plan, RunStep } from '../../../src/engine/types.js';
import { user } from '../../../src/tasks/user.js';
import { UserError } from '../../../src/util/errors.js';
import { clearSecrets, redact } from '../../../src/util/redact.js';

function existing(passwd: string, primary: string, groups: string, sameGroup = true) {
  return {
    stdout: [
      `verdandi-user passwd ${passwd}`,
      `verdandi-user primary ${primary}`,
      `verdandi-user groups ${groups}`,
      `verdandi-user samegroup ${sameGroup ? 'yes' : 'no'}`,
    ].join('\n'),
    exitCode: 0,
  };
}
const missing = (sameGroup: boolean) => ({
  stdout: `verdandi-user absent\nverdandi-user samegroup ${sameGroup ? 'yes' : 'no'}\n`,
  exitCode: 0,
});
const commands = (plan: Plan) => plan.steps.map((s) => (s as RunStep).command);

const APP = 'app:x:1001:1001:App user,,,:/home/app:/bin/bash';

test('missing user: useradd with every attribute given, home created by default', (t) => {
  const task = user({
    user: 'app',
    uid: 1001,
    group: 'www-data',
    groups: ['docker', 'adm'],
    home: '/srv/app',
    shell: '/bin/bash',
  });
  t.deepEqual(commands(task.plan(missing(false))), [
    'useradd -u 1001 -g www-data -G docker,adm -d /srv/app -s /bin/bash -m app',
  ]);
});

test('missing system user without a home', (t) => {
  t.deepEqual(commands(user({ user: 'svc', system: true, createHome: false }).plan(missing(false))), [
    'useradd -r -M svc',
  ]);
});

test('missing user whose own group already exists: joins it with -g (useradd would refuse)', (t) => {
  t.deepEqual(commands(user({ user: 'app' }).plan(missing(true))), ['useradd -g app -m app']);
});

test('existing user matching every attribute: converged', (t) => {
  const task = user({
    user: 'app',
    uid: 1001,
    group: 'app',
    groups: ['docker'],
    home: '/home/app',
    shell: '/bin/bash',
  });
  t.deepEqual(task.plan(existing(APP, 'app', 'app docker')).steps, []);
});

test('attribute drift: one usermod with every change, reasons name them', (t) => {
  const task = user({
    user: 'app',
    uid: 2000,
    group: 'staff',
    groups: ['docker', 'adm'],
    home: '/srv/app',
    shell: '/bin/sh',
  });
  const plan = task.plan(existing(APP, 'app', 'app docker sudo'));
  t.deepEqual(commands(plan), ['usermod -u 2000 -g staff -G adm,docker -d /srv/app -s /bin/sh app']);
  t.is(
    plan.reason,
    'uid 1001 → 2000, group app → staff, groups docker,sudo → adm,docker, home /home/app → /srv/app, shell /bin/bash → /bin/sh',
  );
});

test('numeric primary group is compared with the gid', (t) => {
  t.deepEqual(user({ user: 'app', group: '1001' }).plan(existing(APP, 'app', 'app')).steps, []);
  t.deepEqual(commands(user({ user: 'app', group: '50' }).plan(existing(APP, 'app', 'app'))), [
    'usermod -g 50 app',
  ]);
});

test('groups in another order are not a change', (t) => {
  t.deepEqual(
    user({ user: 'app', groups: ['adm', 'docker'] }).plan(existing(APP, 'app', 'app docker adm')).steps,
    [],
  );
});

test('append adds only the missing groups and never removes', (t) => {
  const task = user({ user: 'app', groups: ['docker', 'adm'], append: true });
  t.deepEqual(commands(task.plan(existing(APP, 'app', 'app sudo docker'))), ['usermod -a -G adm app']);
  t.deepEqual(task.plan(existing(APP, 'app', 'app sudo docker adm')).steps, []);
});

test('groups: [] removes every supplementary group', (t) => {
  t.deepEqual(commands(user({ user: 'app', groups: [] }).plan(existing(APP, 'app', 'app docker'))), [
    "usermod -G '' app",
  ]);
  t.deepEqual(user({ user: 'app', groups: [] }).plan(existing(APP, 'app', 'app')).steps, []);
});

test('attributes not given are not managed', (t) => {
  t.deepEqual(user({ user: 'app' }).plan(existing(APP, 'app', 'app docker')).steps, []);
});

test('absent: userdel only when the user exists', (t) => {
  t.deepEqual(commands(user({ user: 'app', state: 'absent' }).plan(existing(APP, 'app', 'app'))), [
    'userdel app',
  ]);
  t.deepEqual(user({ user: 'app', state: 'absent' }).plan(missing(false)).steps, []);
});

test('probe output without any user line is an error', (t) => {
  t.regex(user({ user: 'app' }).plan({ stdout: 'garbage', exitCode: 1 }).error ?? '', /printed nothing/);
});

test('probe uses getent and id -Gn', (t) => {
  const { probe } = user({ user: 'app' });
  t.true(probe.includes('getent passwd app'));
  t.true(probe.includes('id -Gn app'));
  t.true(probe.includes('getent group app'));
});

test('validation', (t) => {
  t.throws(() => user({ user: 'a b' }), { instanceOf: UserError });
  t.throws(() => user({ user: 'app', shell: 'bash' }), { instanceOf: UserError });
  t.throws(() => user({ user: 'app', groups: ['ok', 'not ok'] }), { instanceOf: UserError });
  t.is(user({ user: 'app' }).name, 'user app');
});

const HASH = '$6$salt$s3cr3tHashValue';
const sha = (text: string) => createHash('sha256').update(text).digest('hex');
/** The probe lines of an existing `app` with this shadow line (`locked`, sha of the hash, expiry days). */
const withShadow = (locked: boolean, hash: string, expires = '-') => {
  const probed = existing(APP, 'app', 'app');
  return {
    ...probed,
    stdout: `${probed.stdout}\nverdandi-user shadow ${locked ? 'yes' : 'no'} ${sha(hash)} ${expires}\n`,
  };
};

test('password: set with chpasswd -e, the hash on stdin only, compared by its sha256; the task is sensitive', (t) => {
  const task = user({ user: 'app', password: HASH });
  t.true(task.sensitive);
  t.regex(task.probe, /getent shadow app/);
  t.false(task.probe.includes(HASH));
  const plan = task.plan(withShadow(false, '$6$old$hash'));
  t.deepEqual(plan, {
    steps: [
      {
        kind: 'run',
        command: 'chpasswd -e',
        stdin: `app:${HASH}\n`,
        description: 'chpasswd -e (the password hash of app on standard input)',
      },
    ],
    reason: 'password differs',
  });
  t.deepEqual(task.plan(withShadow(false, HASH)).steps, []);
  // Locked with the same hash: converged (the lock is passwordLock's business).
  t.deepEqual(task.plan(withShadow(true, HASH)).steps, []);
});

test('password: a new hash keeps a locked account locked unless passwordLock says otherwise', (t) => {
  const locked = user({ user: 'app', password: HASH }).plan(withShadow(true, '$6$old$hash'));
  t.is((locked.steps[0] as RunStep).stdin, `app:!${HASH}\n`);
  const unlocked = user({ user: 'app', password: HASH, passwordLock: false }).plan(
    withShadow(true, '$6$x$y'),
  );
  t.is((unlocked.steps[0] as RunStep).stdin, `app:${HASH}\n`);
});

test('password of a new user: useradd, then chpasswd (never useradd -p: the hash would be an argument)', (t) => {
  const plan = user({ user: 'app', password: HASH }).plan(missing(false));
  t.deepEqual(commands(plan), ['useradd -m app', 'chpasswd -e']);
  t.is((plan.steps[1] as RunStep).stdin, `app:${HASH}\n`);
  for (const command of commands(plan)) t.false(command.includes('s3cr3t'));
});

test('passwordLock: usermod -L / -U from the ! the probe saw', (t) => {
  t.deepEqual(commands(user({ user: 'app', passwordLock: true }).plan(withShadow(false, HASH))), [
    'usermod -L app',
  ]);
  t.is(user({ user: 'app', passwordLock: true }).plan(withShadow(false, HASH)).reason, 'password not locked');
  t.deepEqual(user({ user: 'app', passwordLock: true }).plan(withShadow(true, HASH)).steps, []);
  t.deepEqual(commands(user({ user: 'app', passwordLock: false }).plan(withShadow(true, HASH))), [
    'usermod -U app',
  ]);
  t.falsy(user({ user: 'app', passwordLock: false }).sensitive);
});

test('expires: epoch seconds or a date, compared by day; -1 removes it', (t) => {
  // 2030-01-01 is day 21915.
  const date = user({ user: 'app', expires: '2030-01-01' });
  t.deepEqual(date.plan(withShadow(false, HASH, '21915')).steps, []);
  t.deepEqual(date.plan(withShadow(false, HASH, '-')), {
    steps: [{ kind: 'run', command: 'usermod -e 2030-01-01 app' }],
    reason: 'expires never → 2030-01-01',
  });
  const seconds = user({ user: 'app', expires: 1_893_456_000 + 3600 });
  t.deepEqual(seconds.plan(withShadow(false, HASH, '21915')).steps, []);
  const never = user({ user: 'app', expires: -1 });
  t.deepEqual(never.plan(withShadow(false, HASH, '21915')), {
    steps: [{ kind: 'run', command: "usermod -e '' app" }],
    reason: 'expires 2030-01-01 → never',
  });
  t.deepEqual(never.plan(withShadow(false, HASH, '-')).steps, []);
  t.deepEqual(commands(user({ user: 'app', expires: '2030-01-01' }).plan(missing(false))), [
    'useradd -m -e 2030-01-01 app',
  ]);
});

test('password, passwordLock and expires need the shadow line: an error without it (not root)', (t) => {
  t.regex(
    user({ user: 'app', expires: -1 }).plan(existing(APP, 'app', 'app')).error ?? '',
    /\/etc\/shadow could not be read/,
  );
});

test('a clear-text password, a locked hash or a bad expiry is refused, the value never shown', (t) => {
  const clear = t.throws(() => user({ user: 'app', password: 'hunter2' }), { instanceOf: UserError });
  t.regex(clear?.message ?? '', /password must be a crypt hash/);
  t.false(clear?.message.includes('hunter2'));
  t.throws(() => user({ user: 'app', password: '!$6$x$y' }), { message: /without a leading !/ });
  t.throws(() => user({ user: 'app', expires: '2030-02-30' }), {
    message: /expires must be epoch seconds, a date YYYY-MM-DD or -1 \(no expiry\), got "2030-02-30"/,
  });
  t.throws(() => user({ user: 'app', expires: -5 }), { message: /expires must be/ });
});

test('the password hash is registered as a secret: redacted from any output', (t) => {
  clearSecrets();
  user({ user: 'app', password: HASH });
  t.is(redact(`chpasswd: app:${HASH}`), 'chpasswd: app:[secret]');
  clearSecrets();
});
