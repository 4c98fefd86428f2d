import test from 'ava';
import type { Plan, RunStep } from '../../../src/engine/types.js';
import { group } from '../../../src/tasks/group.js';
import { UserError } from '../../../src/util/errors.js';

const exists = (line: string) => ({ stdout: `verdandi-group ${line}\n`, exitCode: 0 });
const absent = { stdout: 'verdandi-group absent\n', exitCode: 0 };
const commands = (plan: Plan) => plan.steps.map((s) => (s as RunStep).command);

test('probe reads getent group', (t) => {
  t.is(
    group({ group: 'app' }).probe,
    `if g=$(getent group app); then printf 'verdandi-group %s\\n' "$g"; else echo 'verdandi-group absent'; fi`,
  );
});

test('missing group is created with gid and -r', (t) => {
  t.deepEqual(commands(group({ group: 'app' }).plan(absent)), ['groupadd app']);
  t.deepEqual(commands(group({ group: 'app', gid: 1500, system: true }).plan(absent)), [
    'groupadd -g 1500 -r app',
  ]);
});

test('existing group with the right gid (or no gid asked): converged', (t) => {
  t.deepEqual(group({ group: 'app', gid: 1500 }).plan(exists('app:x:1500:alice,bob')).steps, []);
  t.deepEqual(group({ group: 'app' }).plan(exists('app:x:1001:')).steps, []);
});

test('gid drift: groupmod', (t) => {
  const plan = group({ group: 'app', gid: 1500 }).plan(exists('app:x:1001:'));
  t.deepEqual(commands(plan), ['groupmod -g 1500 app']);
  t.is(plan.reason, 'gid 1001 → 1500');
});

test('absent: groupdel when it exists', (t) => {
  t.deepEqual(commands(group({ group: 'app', state: 'absent' }).plan(exists('app:x:1001:'))), [
    'groupdel app',
  ]);
  t.deepEqual(group({ group: 'app', state: 'absent' }).plan(absent).steps, []);
});

test('empty probe output is an error', (t) => {
  t.regex(group({ group: 'app' }).plan({ stdout: '', exitCode: 2 }).error ?? '', /printed nothing/);
});

test('validation', (t) => {
  t.throws(() => group({ group: 'bad name' }), { instanceOf: UserError });
  t.throws(() => group({ group: '123' }), { instanceOf: UserError });
  t.throws(() => group({ group: 'app', gid: -1 }), { instanceOf: UserError });
  t.is(group({ group: 'app' }).name, 'group app');
});
