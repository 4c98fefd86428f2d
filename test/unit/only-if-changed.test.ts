/**
 * onlyIfChanged across the lists of a host: what a task names (a task object of its list, or
 * `{ role, task }` / `{ play, task }` of an earlier unit) is resolved at plan time over the units in the
 * order they run, and refused with the task's file:line when it could never be decided (a later task,
 * a role that does not run before it, a name two tasks share); at run time a later role's task runs only
 * after an earlier role's task changed the host, and --check decides the same from the planned changes.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { LocalConnection } from '../../src/connection/local.js';
import { RunEvents } from '../../src/engine/events.js';
import { RunStop } from '../../src/engine/interrupt.js';
import { onlyIfChangedSkip, resolveOnlyIfChanged } from '../../src/engine/only-if-changed.js';
import {
  ErrorCollector,
  type HostPlan,
  type PlannedUnit,
  planHosts,
  type Unit,
} from '../../src/engine/plan.js';
import { runUnits } from '../../src/engine/run-plan.js';
import type { HostInfo, Task, TaskRef } from '../../src/engine/types.js';
import type { InventoryHost } from '../../src/inventory/types.js';
import { copy, shell } from '../../src/tasks/index.js';
import { localHost } from '../helpers/engine.js';

const planned = (
  kind: PlannedUnit['kind'],
  name: string,
  tasks: Task[],
  handlers: Record<string, Task[]> = {},
): PlannedUnit => ({
  kind,
  name,
  definedBy: `${kind} ${name}`,
  tags: [],
  tasks,
  handlers: Object.fromEntries(Object.entries(handlers).map(([h, list]) => [h, () => list])),
});

const after = (onlyIfChanged: TaskRef | TaskRef[]) => shell({ script: 'true', onlyIfChanged });

/** The message of the problem resolveOnlyIfChanged finds, with the index of the unit it is in. */
function problem(units: PlannedUnit[]): { unit: number; message: string; hint?: string } | undefined {
  const resolved = resolveOnlyIfChanged(units, 'web1');
  if (!('problem' in resolved)) return undefined;
  const { unit, error } = resolved.problem;
  return { unit, message: error.message, hint: error.hint };
}

test('a task of an earlier role, named by role and task, resolves to that task object', (t) => {
  const conf = copy({ path: '/etc/app.conf', content: 'x' });
  const restart = after({ role: 'app', task: 'copy /etc/app.conf' });
  const units = [planned('role', 'app', [conf]), planned('role', 'web', [restart])];
  const resolved = resolveOnlyIfChanged(units, 'web1');
  if ('problem' in resolved) return t.fail(resolved.problem.error.message);
  t.deepEqual(resolved.refs.get(restart), [{ task: conf, shown: '"copy /etc/app.conf" (role app)' }]);
  // A play's own tasks are named by the play, and may follow a role of the same play.
  const followUp = after([
    { role: 'app', task: 'copy /etc/app.conf' },
    { play: 'setup', task: 'copy /b' },
  ]);
  const b = copy({ path: '/b', content: 'b' });
  const withPlay = resolveOnlyIfChanged(
    [planned('role', 'app', [conf]), planned('play', 'setup', [b, followUp])],
    'web1',
  );
  if ('problem' in withPlay) return t.fail(withPlay.problem.error.message);
  t.deepEqual(
    withPlay.refs.get(followUp)?.map((r) => r.shown),
    ['"copy /etc/app.conf" (role app)', '"copy /b"'],
    'a task of its own list is shown without its unit',
  );
});

test('a handler may name its own role’s tasks and an earlier role’s; the task objects of its list', (t) => {
  const conf = copy({ path: '/etc/app.conf', content: 'x' });
  const site = copy({ path: '/etc/site.conf', content: 'x' });
  const first = shell({ script: 'true', name: 'first' });
  const own = after({ role: 'web', task: 'copy /etc/site.conf' });
  const earlier = after([first, { role: 'app', task: 'copy /etc/app.conf' }]);
  const units = [
    planned('role', 'app', [conf]),
    planned('role', 'web', [site], { reload: [first, own, earlier] }),
  ];
  const resolved = resolveOnlyIfChanged(units, 'web1');
  if ('problem' in resolved) return t.fail(resolved.problem.error.message);
  t.is(resolved.refs.get(own)?.[0].task, site);
  t.deepEqual(
    resolved.refs.get(earlier)?.map((r) => r.task),
    [first, conf],
  );
});

test('what could never be decided is refused, naming the task, why, and where it was built', (t) => {
  const conf = copy({ path: '/etc/app.conf', content: 'x' });
  const toLater = after({ role: 'db', task: 'copy /etc/db.conf' });
  const cases: Array<[string, PlannedUnit[], RegExp]> = [
    [
      'a role that runs after it',
      [
        planned('role', 'web', [toLater]),
        planned('role', 'db', [copy({ path: '/etc/db.conf', content: '' })]),
      ],
      /^web: task "shell true" has onlyIfChanged \{ role: "db", task: "copy \/etc\/db.conf" \}, but role db runs after it on host web1 \(at test\/unit\/only-if-changed\.test\.ts:\d+\)$/,
    ],
    [
      'a role that does not run on the host (a typo)',
      [
        planned('role', 'app', [conf]),
        planned('role', 'web', [after({ role: 'ap', task: 'copy /etc/app.conf' })]),
      ],
      /but role ap does not run before it on host web1 \(did you mean "role app"\?\) \(before it: role app, role web\)/,
    ],
    [
      'a task name the role does not have',
      [
        planned('role', 'app', [conf]),
        planned('role', 'web', [after({ role: 'app', task: 'copy /etc/app.cnf' })]),
      ],
      /but role app has no task named "copy \/etc\/app.cnf" \(did you mean "copy \/etc\/app.conf"\?\)/,
    ],
    [
      'a name two tasks share',
      [
        planned('role', 'app', [conf, copy({ path: '/etc/app.conf', content: 'y' })]),
        planned('role', 'web', [after({ role: 'app', task: 'copy /etc/app.conf' })]),
      ],
      /but 2 tasks of role app are named "copy \/etc\/app.conf": give the one to follow its own `name`/,
    ],
    [
      'a play named as a role',
      [
        planned('play', 'app', [conf]),
        planned('role', 'web', [after({ role: 'app', task: 'copy /etc/app.conf' })]),
      ],
      /but role app does not run before it/,
    ],
    [
      'a later task of its own role, by name',
      [planned('role', 'web', [after({ role: 'web', task: 'copy /etc/app.conf' }), conf])],
      /onlyIfChanged \{ role: "web", task: "copy \/etc\/app.conf" \}, which comes after it/,
    ],
    [
      'a task object of a later role',
      [planned('role', 'web', [after(conf)]), planned('role', 'app', [conf])],
      /onlyIfChanged "copy \/etc\/app.conf", which is in role app, which runs after it/,
    ],
    [
      'a task object of no list of this host (another host’s)',
      [planned('role', 'web', [after(copy({ path: '/elsewhere', content: '' }))])],
      /which is not a task of its list nor of a role or play run before it on host web1/,
    ],
    [
      'something that is not a task',
      [planned('role', 'web', [after({ role: 'app' } as unknown as TaskRef)])],
      /onlyIfChanged \{"role":"app"\} \(not a task, nor \{ role, task \} or \{ play, task \}\)/,
    ],
  ];
  for (const [what, units, message] of cases) {
    const found = problem(units);
    t.truthy(found, what);
    t.regex(found?.message ?? '', message, what);
    t.regex(
      found?.hint ?? '',
      /a task object listed earlier in the same list, or \{ role: 'name', task: 'label' \}/,
    );
  }
  // A handler's task names a task of its own role by name: fine; a handler of another role's is not
  // reachable by name, so a later role cannot name it either (handler tasks are not named).
  t.is(
    problem([planned('role', 'web', [conf], { h: [after({ role: 'web', task: 'copy /etc/app.conf' })] })]),
    undefined,
  );
  t.is(
    problem([planned('role', 'web', [], { h: [after({ role: 'web', task: 'copy /etc/app.conf' })] })])?.unit,
    0,
  );
});

test('planHosts refuses it for the host, as a user error naming the role, host and line', async (t) => {
  const ctx = {
    env: 't',
    inventory: { hosts: new Map(), groupsOf: () => [] },
    vars: new Map(),
    secrets: {},
  } as unknown as Parameters<typeof planHosts>[0];
  const unit = (name: string, tasks: (info: HostInfo) => Task[]): Unit => ({
    kind: 'role',
    name,
    label: `role ${name}`,
    definedBy: `role ${name}`,
    tags: [],
    gatherFacts: false,
    tasks,
    handlers: () => ({}),
  });
  const app = unit('app', () => [copy({ path: '/etc/app.conf', content: 'x' })]);
  const web = unit('web', () => [
    shell({ script: 'true', onlyIfChanged: { role: 'app', task: 'copy /etc/app.conf' } }),
  ]);
  const host = { name: 'web1', address: 'web1', vars: {} } as unknown as InventoryHost;
  const ok = new ErrorCollector();
  const [plan] = await planHosts(ctx, [{ host, units: [app, web] }], ok, { facts: new Map() });
  t.deepEqual(ok.errors, []);
  t.is(plan.onlyIfChanged?.size, 1);

  const refused = new ErrorCollector();
  await planHosts(ctx, [{ host, units: [web, app] }], refused, { facts: new Map() });
  t.is(refused.errors.length, 1);
  t.regex(
    refused.errors[0].message,
    /^role web, host web1: web: task "shell true" has onlyIfChanged \{ role: "app", task: "copy \/etc\/app.conf" \}, but role app runs after it on host web1 \(at test\/unit\/only-if-changed\.test\.ts:\d+\)$/,
  );
  t.is(refused.errors[0].exitCode, 1);
});

// ---------------------------------------------------------------------------------------------------
// At run time, across the roles of a host

/** Role app writes the settings; role web appends to a log only when app's settings changed. */
function units(dir: string, content: string): PlannedUnit[] {
  const conf = copy({ path: join(dir, 'app.conf'), content });
  const log = join(dir, 'reloads');
  const reload = shell({
    name: 'reload',
    script: `echo reloaded >> '${log}'`,
    onlyIfChanged: { role: 'app', task: `copy ${join(dir, 'app.conf')}` },
  });
  return [planned('role', 'app', [conf]), planned('role', 'web', [reload])];
}

async function runAll(dir: string, content: string, check = false) {
  const list = units(dir, content);
  const resolved = resolveOnlyIfChanged(list, 'local');
  if ('problem' in resolved) throw resolved.problem.error;
  const events = new RunEvents();
  const seen: Array<{ label: string; status: string; detail?: string }> = [];
  events.on((e) => {
    if (e.type === 'task') seen.push({ label: e.label, status: e.status, detail: e.detail });
  });
  const plan: HostPlan = {
    host: { name: 'local' } as InventoryHost,
    info: localHost,
    units: list,
    onlyIfChanged: resolved.refs,
  };
  const res = await runUnits({ check })(plan, {
    conn: new LocalConnection('local'),
    signal: new AbortController().signal,
    stop: new RunStop(),
    events,
  });
  events.close();
  return { ok: res.ok, reload: seen.find((e) => e.label === 'web › reload') };
}

test('a later role’s task runs only after an earlier role’s task changed; --check decides the same', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-only-units-'));
  const log = join(dir, 'reloads');
  t.like(await runAll(dir, 'v1', true), { ok: true, reload: { status: 'changed', detail: 'would run' } });
  t.like(await runAll(dir, 'v1'), { ok: true, reload: { status: 'changed' } });
  t.is(readFileSync(log, 'utf8'), 'reloaded\n');
  const skipped = {
    status: 'skipped',
    detail: `onlyIfChanged: "copy ${join(dir, 'app.conf')}" (role app) changed`,
  };
  t.like(await runAll(dir, 'v1'), { ok: true, reload: skipped });
  t.like(await runAll(dir, 'v1', true), { ok: true, reload: skipped });
  t.is(readFileSync(log, 'utf8'), 'reloaded\n', 'the rerun did not reload');
  writeFileSync(join(dir, 'app.conf'), 'drift');
  t.like(await runAll(dir, 'v1', true), { reload: { status: 'changed', detail: 'would run' } });
  t.is(readFileSync(log, 'utf8'), 'reloaded\n', '--check ran nothing');
  t.like(await runAll(dir, 'v1'), { ok: true, reload: { status: 'changed' } });
  t.is(readFileSync(log, 'utf8'), 'reloaded\nreloaded\n');
});

test('onlyIfChangedSkip with resolved refs names each with its role', (t) => {
  const a = copy({ path: '/a', content: 'a' });
  const b = copy({ path: '/b', content: 'b' });
  const c = after({ role: 'x', task: 'copy /a' });
  const refs = [
    { task: a, shown: '"copy /a" (role x)' },
    { task: b, shown: '"copy /b"' },
  ];
  t.is(onlyIfChangedSkip(c, new Set(), refs), 'onlyIfChanged: none of "copy /a" (role x), "copy /b" changed');
  t.is(onlyIfChangedSkip(c, new Set([b]), refs), undefined);
  t.is(onlyIfChangedSkip(c, new Set(), []), undefined, 'nothing named: never skipped');
});
