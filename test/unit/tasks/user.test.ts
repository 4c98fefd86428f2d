import test from 'ava';
import type { Plan, RunStep } from '../../../src/engine/types.js';
import { user } from '../../../src/tasks/user.js';
import { UserError } from '../../../src/util/errors.js';

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
