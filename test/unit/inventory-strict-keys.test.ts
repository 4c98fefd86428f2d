/**
 * The mechanism behind "unknown keys are errors": every object nested in a role's vars schema is made
 * strict when the vars are validated (a new role gets it without doing anything), open maps stay open,
 * and the schema keeps its defaults, refinements and variants.
 */
import test from 'ava';
import { z } from 'zod';
import { loadInventory, validateRoleVars, varsForRole } from '../../src/inventory/index.js';
import { closest } from '../../src/inventory/suggest.js';
import { UserError } from '../../src/util/errors.js';
import { lines, tempProject } from '../fixtures/inventory/temp-project.js';

const ctx = { role: 'app', host: 'web1', origins: {} };

function errorOf(t: import('ava').ExecutionContext, schema: z.ZodObject, input: Record<string, unknown>) {
  const error = t.throws(() => validateRoleVars(schema, input, ctx), { instanceOf: UserError });
  return error?.message ?? '';
}

// A role as a newcomer writes it: plain z.object everywhere, nothing about unknown keys.
const appVars = z.object({
  app_listen: z
    .object({ host: z.string().default('127.0.0.1'), port: z.number().default(8000) })
    .prefault({}),
  app_workers: z.array(z.object({ name: z.string(), replicas: z.number().default(1) })).default([]),
  app_by_name: z.record(z.string(), z.object({ enabled: z.boolean() })).default({}),
  app_env: z.record(z.string(), z.string()).default({}),
  app_labels: z.looseObject({ team: z.string().optional() }).default({}),
  app_extra: z.object({ level: z.number().optional() }).catchall(z.string()).default({}),
  app_strict: z.strictObject({ verbose: z.boolean() }).optional(),
});

test('a new role gets strict nested objects for free, at any depth', (t) => {
  t.is(
    errorOf(t, appVars, { app_listen: { prot: 80 } }),
    'role app, host web1: unknown key "prot" in app_listen (did you mean "port"?)',
  );
  t.is(
    errorOf(t, appVars, { app_workers: [{ name: 'a' }, { name: 'b', replica: 2 }] }),
    'role app, host web1: unknown key "replica" in app_workers[1] (did you mean "replicas"?)',
  );
  t.is(
    errorOf(t, appVars, { app_by_name: { web: { enabled: true, enable: false } } }),
    'role app, host web1: unknown key "enable" in app_by_name.web (did you mean "enabled"?)',
    'the values of an open map are still checked',
  );
  t.is(
    errorOf(t, appVars, { app_strict: { verbose: true, verbos: true } }),
    'role app, host web1: unknown key "verbos" in app_strict (did you mean "verbose"?)',
    'an object the role made strict itself reads the same',
  );
});

test('open maps take any key: z.record, z.looseObject, an explicit catchall', (t) => {
  const vars = validateRoleVars(
    appVars,
    {
      app_env: { ANYTHING: 'x' },
      app_labels: { team: 'web', 'com.example.owner': 'ops' },
      app_extra: { level: 2, whatever: 'y' },
    },
    ctx,
  );
  t.deepEqual(vars.app_env, { ANYTHING: 'x' });
  t.deepEqual(vars.app_labels, { team: 'web', 'com.example.owner': 'ops' });
  t.deepEqual(vars.app_extra, { level: 2, whatever: 'y' });
  t.regex(
    errorOf(t, appVars, { app_extra: { whatever: 3 } }),
    /var app_extra\.whatever must be a string, got 3/,
    'a catchall still checks the values',
  );
});

test('no close key: the known keys are listed instead of a guess', (t) => {
  t.is(
    errorOf(t, appVars, { app_listen: { address: '0.0.0.0' } }),
    'role app, host web1: unknown key "address" in app_listen; known keys: host, port',
  );
});

test('a var named with the role prefix that the role does not declare is refused; other vars are not', (t) => {
  t.is(
    errorOf(t, appVars, { app_worker: [], other_role_var: 1, application: 'x' }),
    'role app, host web1: unknown var "app_worker" (did you mean "app_workers"?)',
  );
  const open = z.looseObject({ app_port: z.number().default(1) });
  t.notThrows(() => validateRoleVars(open, { app_anything: 1 }, ctx), 'a loose top object opts out');
});

test('an unknown key and a wrong type are reported together', (t) => {
  t.is(
    errorOf(t, appVars, { app_listen: { port: 'eighty', hots: 'x' } }),
    [
      'role app, host web1: 2 vars are invalid:',
      '  - var app_listen.port must be a number, got "eighty"',
      '  - unknown key "hots" in app_listen (did you mean "host"?)',
    ].join('\n'),
  );
});

test('the strict copy keeps defaults (fresh on each parse), refinements and variants; the role schema is untouched', (t) => {
  const schema = z.object({
    svc: z
      .array(
        z.discriminatedUnion('kind', [
          z.object({
            kind: z.literal('web'),
            port: z.number().default(80),
            paths: z.array(z.string()).default([]),
          }),
          z.object({ kind: z.literal('worker'), queue: z.string() }),
        ]),
      )
      .default([])
      .refine((list) => list.length < 3, 'at most two services'),
  });
  const first = validateRoleVars(schema, { svc: [{ kind: 'web' }] }, ctx);
  t.deepEqual(first.svc, [{ kind: 'web', port: 80, paths: [] }]);
  (first.svc[0] as { paths: string[] }).paths.push('/changed');
  const second = validateRoleVars(schema, { svc: [{ kind: 'web' }] }, ctx);
  t.deepEqual(second.svc, [{ kind: 'web', port: 80, paths: [] }], 'a default is not shared between hosts');
  t.is(
    errorOf(t, schema, { svc: [{ kind: 'worker', queue: 'q', port: 1 }] }),
    'role app, host web1: unknown key "port" in svc[0]; known keys: kind, queue',
    'the variant picked by the discriminator says which keys it knows',
  );
  t.regex(
    errorOf(t, schema, { svc: [{ kind: 'web' }, { kind: 'web' }, { kind: 'web' }] }),
    /at most two services/,
  );
  t.deepEqual(
    schema.parse({ svc: [{ kind: 'worker', queue: 'q', port: 1 }] }),
    { svc: [{ kind: 'worker', queue: 'q' }] },
    "the role's own schema is not changed (zod's usual stripping when parsed directly)",
  );
});

test('the position is the key’s own, on its value’s line or above a block', async (t) => {
  const cwd = await tempProject(t, {
    'inventories/test.yml': lines(
      'hosts:',
      '  web1:',
      '    app_listen: { host: 0.0.0.0, prot: 80 }',
      '    app_workers:',
      '      - name: a',
      '        replica:',
      '          - nested',
    ),
  });
  const host = (await loadInventory('test', { cwd })).hosts.get('web1')!;
  const merged = varsForRole(host, 'app');
  const error = t.throws(() => validateRoleVars(appVars, merged.vars, { ...ctx, origins: merged.origins }));
  t.regex(
    error?.message ?? '',
    /unknown key "prot" in app_listen \(did you mean "port"\?\) \(set in inventories\/test\.yml:3:34\)/,
  );
  t.regex(
    error?.message ?? '',
    /unknown key "replica" in app_workers\[0\] \(did you mean "replicas"\?\) \(set in inventories\/test\.yml:6:9\)/,
  );
  const fromVar = varsForRole(host, 'app', { extraVars: { app_listen: { hots: 'x' }, app_workers: [] } });
  t.throws(() => validateRoleVars(appVars, fromVar.vars, { ...ctx, origins: fromVar.origins }), {
    message: 'role app, host web1: unknown key "hots" in app_listen (did you mean "host"?) (set in --var)',
  });
});

test('closest: a few edits away, or a longer or shorter spelling of a known name', (t) => {
  t.is(closest('brnach', ['branch', 'build']), 'branch');
  t.is(closest('healthcheck', ['health', 'name']), 'health');
  t.is(closest('env_vars', ['env', 'envs_list']), 'env');
  t.is(closest('serv', ['server_names', 'service']), 'service', 'the nearest in length');
  t.is(closest('ab', ['abc', 'abcd']), 'abc', 'one edit for a short name');
  t.is(closest('xy', ['xyzzy']), undefined, 'a 2-letter name is no spelling of a longer one');
  t.is(closest('zzzz', ['health']), undefined);
});

test('a recursive schema (a property whose getter returns the object) is strict at every level', (t) => {
  const node = z.object({
    name: z.string(),
    get children(): z.ZodDefault<z.ZodArray<typeof node>> {
      return z.array(node).default([]);
    },
  });
  const schema = z.object({ app_tree: node.optional() });
  const tree = { name: 'a', children: [{ name: 'b', children: [{ name: 'c' }] }] };
  t.deepEqual(validateRoleVars(schema, { app_tree: tree }, ctx).app_tree, {
    name: 'a',
    children: [{ name: 'b', children: [{ name: 'c', children: [] }] }],
  });
  t.is(
    errorOf(t, schema, {
      app_tree: { name: 'a', children: [{ name: 'b', children: [{ name: 'c', chidren: [] }] }] },
    }),
    'role app, host web1: unknown key "chidren" in app_tree.children[0].children[0] (did you mean "children"?)',
  );
});

test('a var replaced by a later layer takes its key position along (none left from the lower layer)', async (t) => {
  const cwd = await tempProject(t, {
    'inventories/test.yml': lines(
      'vars:',
      '  app_listen: { host: 0.0.0.0 }',
      'hosts:',
      '  web1:',
      '    app_listen:',
      '      hots: x',
    ),
  });
  const host = (await loadInventory('test', { cwd })).hosts.get('web1')!;
  t.false('app_listen:' in host.varOrigins, "the block's key is at its own origin: no separate key position");
  t.false('app_listen.host:' in host.varOrigins);
  t.throws(() => validateRoleVars(appVars, host.vars, { ...ctx, origins: host.varOrigins }), {
    message:
      'role app, host web1: unknown key "hots" in app_listen (did you mean "host"?) (set in inventories/test.yml:6:7)',
  });
});
