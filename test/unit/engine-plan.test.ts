/**
 * The plan phase and the exit-code rule, through the built CLI (`npm run build` first) on a project
 * whose hosts run on this machine (`connection: local`) or cannot be reached (a closed loopback port):
 * every user error is found before any command runs, all of them are printed with the user's .ts line,
 * and nothing is changed.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { planUnit, type Unit } from '../../src/engine/plan.js';
import type { HostInfo } from '../../src/engine/types.js';
import { copy } from '../../src/tasks/index.js';
import { UserError } from '../../src/util/errors.js';
import { cliProjects } from '../helpers/cli.js';

const { project, cli } = cliProjects('plan');

/** A role writing `<out>/<name>` (a change on this machine that must not happen when the plan fails). */
function writerRole(name: string): string {
  return [
    "import { copy, defineRole, z } from 'verdandi';",
    '',
    'export default defineRole({',
    `  name: '${name}',`,
    '  vars: z.object({ out: z.string() }),',
    `  tasks: (vars) => [copy({ path: \`\${vars.out}/${name}\`, content: 'x\\n' })],`,
    '});',
    '',
  ].join('\n');
}

const TEMPLATE_ROLE = [
  "import { defineRole, template, z } from 'verdandi';",
  '',
  'export default defineRole({',
  "  name: 'tpl',",
  '  vars: z.object({ out: z.string() }),',
  '  tasks: (vars) => [',
  '    template({',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text of a role
  '      path: `${vars.out}/tpl.conf`,',
  "      src: new URL('./templates/tpl.conf.hbs', import.meta.url),",
  '      vars,',
  '    }),',
  '  ],',
  '});',
  '',
].join('\n');

const THROWING_ROLE = [
  "import { defineRole, z } from 'verdandi';",
  '',
  'export default defineRole({',
  "  name: 'thrower',",
  '  vars: z.object({}),',
  '  tasks: (_vars, host) => {',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text of a role
  '    if (host.name) throw new Error(`no way for ${host.name}`);',
  '    return [];',
  '  },',
  '});',
  '',
].join('\n');

test('a template error in a later role: exit 1, every error printed with file:line, nothing changed', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'vd-plan-out-'));
  const dir = project({
    'roles/first/index.ts': writerRole('first'),
    'roles/tpl/index.ts': TEMPLATE_ROLE,
    'roles/tpl/templates/tpl.conf.hbs': 'port = {{ port }}\n',
    'roles/thrower/index.ts': THROWING_ROLE,
    'inventories/staging.yml': [
      `vars: { out: ${JSON.stringify(out)} }`,
      'hosts:',
      '  one: { connection: local }',
      '  two: { connection: local }',
      'groups:',
      '  all_local:',
      '    hosts: [one, two]',
      '    roles: [first, tpl, thrower]',
      '',
    ].join('\n'),
  });
  const res = await cli(dir, ['provision', 'staging']);
  t.is(res.code, 1, res.stderr);
  t.false(existsSync(join(out, 'first')), 'the first role must not have run');
  for (const host of ['one', 'two']) {
    t.regex(
      res.stderr,
      new RegExp(
        `role tpl \\(roles/tpl/index\\.ts:7:\\d+\\), host ${host}: template .*tpl\\.conf\\.hbs: var port is not defined \\(line 1, col 11\\)`,
      ),
    );
    t.regex(
      res.stderr,
      new RegExp(
        `role thrower \\(roles/thrower/index\\.ts:7:\\d+\\), host ${host}: tasks\\(\\) threw: no way for ${host}`,
      ),
    );
  }
  t.regex(res.stderr, /4 errors; nothing was changed/);
  t.notRegex(res.stderr, /internal error|bug in Verdandi/);
  t.is(res.stdout, '');
});

test('a playbook whose tasks() throws is a user error naming the playbook line', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'vd-plan-out-'));
  const dir = project({
    'roles/first/index.ts': writerRole('first'),
    'site.ts': [
      "import { definePlaybook } from 'verdandi';",
      '',
      'export default definePlaybook({',
      '  plays: [',
      "    { hosts: 'all', roles: ['first'] },",
      '    {',
      "      hosts: 'all',",
      '      tasks: () => {',
      "        throw new Error('boom');",
      '      },',
      '    },',
      '  ],',
      '});',
      '',
    ].join('\n'),
    'inventories/staging.yml': [
      `vars: { out: ${JSON.stringify(out)} }`,
      'hosts:',
      '  one: { connection: local }',
      '',
    ].join('\n'),
  });
  const res = await cli(dir, ['run', 'staging', 'site.ts']);
  t.is(res.code, 1, res.stderr);
  t.regex(res.stderr, /playbook site\.ts, play 2 \(site\.ts:9:\d+\), host one: tasks\(\) threw: boom/);
  t.notRegex(res.stderr, /internal error|bug in Verdandi/);
  t.false(existsSync(join(out, 'first')), 'play 1 must not have run');
});

test('a wrong task option names the playbook line once, in run and in check', async (t) => {
  const dir = project({
    'bad.ts': [
      "import { definePlaybook, file } from 'verdandi';",
      '',
      'export default definePlaybook({',
      "  plays: [{ hosts: 'all', tasks: () => [file({ path: 'relative', content: 'x' } as never)] }],",
      '});',
      '',
    ].join('\n'),
    'inventories/staging.yml': ['hosts:', '  one: { connection: local }', ''].join('\n'),
  });
  for (const command of ['run', 'check']) {
    const res = await cli(dir, [command, 'staging', 'bad.ts']);
    t.is(res.code, 1, res.stderr);
    const line = res.stderr.split('\n').find((l) => l.includes('path must be an absolute path'));
    t.is(
      line,
      'error: playbook bad.ts, play 1, host one: file relative: path must be an absolute path, got "relative" (at bad.ts:4)',
      command,
    );
  }
});

test('a role with gatherFacts gets facts before the plan; its tasks see them', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'vd-plan-out-'));
  const dir = project({
    'roles/facty/index.ts': [
      "import { copy, defineRole, z } from 'verdandi';",
      '',
      'export default defineRole({',
      "  name: 'facty',",
      '  gatherFacts: true,',
      '  vars: z.object({ out: z.string() }),',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text of a role
      '  tasks: (vars, host) => [copy({ path: `${vars.out}/arch`, content: `${host.facts?.arch}\\n` })],',
      '});',
      '',
    ].join('\n'),
    'inventories/staging.yml': [
      `vars: { out: ${JSON.stringify(out)} }`,
      'hosts:',
      '  one: { connection: local }',
      'roles: [facty]',
      '',
    ].join('\n'),
  });
  const res = await cli(dir, ['provision', 'staging', '--json']);
  t.is(res.code, 0, res.stderr);
  t.regex(readFileSync(join(out, 'arch'), 'utf8'), /^(x86_64|aarch64|\w+)\n$/);
  // Facts (1) + the role's probe (1) + its change (1).
  t.is(JSON.parse(res.stdout).hosts.one.roundTrips, 3);
});

/** One host that fails a task, one that cannot be reached (a closed port on loopback). */
function failingProject(withUnreachable: boolean): string {
  return project({
    'roles/fails/index.ts': [
      "import { command, defineRole, z } from 'verdandi';",
      '',
      'export default defineRole({',
      "  name: 'fails',",
      '  vars: z.object({}),',
      "  tasks: () => [command({ argv: ['false'] })],",
      '});',
      '',
    ].join('\n'),
    'site.ts': [
      "import { definePlaybook } from 'verdandi';",
      "export default definePlaybook({ plays: [{ hosts: 'all', roles: ['fails'] }] });",
      '',
    ].join('\n'),
    'inventories/staging.yml': [
      'hosts:',
      '  bad: { connection: local }',
      ...(withUnreachable ? ['  gone: { address: 127.0.0.1, port: 1 }'] : []),
      'roles: [fails]',
      '',
    ].join('\n'),
  });
}

for (const command of ['provision', 'run']) {
  const args = (dir: string) =>
    command === 'run' ? ['run', 'staging', join(dir, 'site.ts')] : ['provision', 'staging'];
  test(`exit codes (${command}): a failed task is 2; with an unreachable host too, 3`, async (t) => {
    const failing = failingProject(false);
    const onlyFailed = await cli(failing, [...args(failing), '--host-key-checking', 'off']);
    t.is(onlyFailed.code, 2, onlyFailed.stderr);
    const both = failingProject(true);
    const res = await cli(both, [...args(both), '--host-key-checking', 'off', '--connect-timeout', '5']);
    t.is(res.code, 3, res.stdout + res.stderr);
    t.regex(res.stdout, /unreachable.*gone/);
    t.regex(res.stdout, /failed/);
  });
}

// planUnit on its own (from the TypeScript sources): the user's frame, handlers and notify.

const info: HostInfo = {
  name: 'web1',
  address: 'web1',
  groups: [],
  vars: {},
  secrets: {},
  env: 't',
  inventory: { hosts: [] },
};

function unit(parts: Partial<Unit>): Unit {
  return {
    kind: 'role',
    name: 'demo',
    label: 'role demo',
    definedBy: 'role demo',
    tags: [],
    gatherFacts: false,
    tasks: () => [],
    handlers: () => ({}),
    ...parts,
  };
}

test('planUnit: a throw names the line of the code that threw, not the engine', async (t) => {
  const err = await t.throwsAsync(
    planUnit(
      unit({
        tasks: () => {
          throw new TypeError('cannot read x'); // the line the message must name
        },
      }),
      info,
    ),
  );
  t.true(err instanceof UserError);
  const source = readFileSync(new URL(import.meta.url), 'utf8').split('\n');
  const line = source.findIndex((l) => l.includes('// the line the message must name')) + 1;
  t.regex(
    err?.message ?? '',
    new RegExp(
      `^role demo \\(test/unit/engine-plan\\.test\\.ts:${line}:\\d+\\), host web1: tasks\\(\\) threw: cannot read x$`,
    ),
  );
});

test('planUnit: handlers are built now; a notify without its handler and a non-task are user errors', async (t) => {
  let built = 0;
  const task = copy({ path: '/tmp/x', content: 'x', notify: 'restart' });
  const planned = await planUnit(
    unit({
      tasks: () => [task, false, [task]],
      handlers: () => ({
        restart: () => {
          built++;
          return [copy({ path: '/tmp/y', content: 'y' })];
        },
      }),
    }),
    info,
  );
  t.is(planned.tasks.length, 2);
  t.is(built, 1);
  t.is((planned.handlers.restart() as unknown[]).length, 1);
  t.is(built, 1, 'the run gets the planned list, the handler is not called again');

  await t.throwsAsync(planUnit(unit({ tasks: () => [task] }), info), {
    message:
      /role demo .*host web1: demo: task "copy \/tmp\/x" notifies handler "restart", which demo does not define/,
  });
  await t.throwsAsync(planUnit(unit({ tasks: () => ['apt nginx'] as unknown as [] }), info), {
    message: /tasks\(\) returned something that is not a task at position 1/,
  });
  await t.throwsAsync(planUnit(unit({ tasks: () => undefined as unknown as [] }), info), {
    message: /tasks\(\) must return an array of tasks, got undefined/,
  });
});
