import { fileURLToPath } from 'node:url';
import test from 'ava';
import { z } from 'zod';
import {
  interpolateVars,
  loadInventory,
  parseExtraVars,
  unknownRoleError,
  validateRoleVars,
  varsForRole,
} from '../../src/inventory/index.js';
import { UserError } from '../../src/util/errors.js';
import { lines, tempProject } from '../fixtures/inventory/temp-project.js';

const verdandiProject = fileURLToPath(new URL('../fixtures/inventory/verdandi', import.meta.url));

// --- --var ---------------------------------------------------------------------------------------

test('--var key=value: values typed as YAML scalars, text kept as written otherwise', (t) => {
  t.deepEqual(
    parseExtraVars([
      'port=8080',
      'debug=true',
      'name=web',
      'empty=',
      'nothing=~',
      'quoted="8080"',
      'list=[80, 443]',
      'map={a: 1}',
      'msg=a # b',
      'url=http://x/?a=b',
      'mode=0755',
      'version=3.10',
      'negative=-2',
      'answer=yes',
    ]),
    {
      port: 8080,
      debug: true,
      name: 'web',
      empty: '',
      nothing: null,
      quoted: '8080',
      list: [80, 443],
      map: { a: 1 },
      msg: 'a # b',
      url: 'http://x/?a=b',
      mode: '0755',
      version: '3.10',
      negative: -2,
      answer: 'yes',
    },
  );
});

test('--var: JSON objects and @file.yml, later values winning', async (t) => {
  const cwd = await tempProject(t, { 'extra.yml': lines('region: eu', 'replicas: 3') });
  t.deepEqual(
    parseExtraVars(['replicas=1', '{"debug": true, "replicas": 2}', '@extra.yml', 'region=us'], { cwd }),
    {
      replicas: 3,
      debug: true,
      region: 'us',
    },
  );
});

test('--var errors say what is expected', (t) => {
  const usage = '--var takes key=value, a JSON object, or @file.yml';
  const error = t.throws(() => parseExtraVars(['novalue']), { instanceOf: UserError });
  t.is(error?.message, `--var "novalue" has no "=": ${usage}`);
  t.is(error?.hint, usage);
  t.throws(() => parseExtraVars(['1x=2']), {
    message: '--var "1x=2": "1x" is not a var name (letters, digits and _, not starting with a digit)',
  });
  t.throws(() => parseExtraVars(['{"a": [1, 2}']), {
    message: '--var {"a": [1, 2}: not valid JSON or YAML (missed comma between flow collection entries)',
  });
  t.throws(() => parseExtraVars(['{}', '@missing.yml'], { cwd: verdandiProject }), {
    message: '--var @missing.yml: cannot read missing.yml',
  });
});

// --- {{ }} interpolation -----------------------------------------------------------------------

const secrets = {
  db_password: 's3cr3t-pass',
  workers: 6,
  users: ['ann', 'bob'],
  feature: true,
  db: { host: 'db1' },
};

test('interpolation renders secrets and other vars, keeps single-expression types, marks secret-derived vars', async (t) => {
  const cwd = await tempProject(t, {
    'inventories/test.yml': lines(
      'vars:',
      '  database_url: "postgres://app:{{ secrets.db_password }}@{{ secrets.db.host }}/app"',
      '  current: "{{ app_dir }}/current"',
      '  app_dir: /srv/app',
      '  url_copy: "{{ database_url }}"',
      '  workers: "{{ secrets.workers }}"',
      '  users: "{{ secrets.users }}"',
      '  flag: "{{#if secrets.feature}}on{{else}}off{{/if}}"',
      '  sites:',
      '    - name: shop',
      '      password: "{{ secrets.db_password }}"',
      '  plain: 5',
      'hosts: { web1: }',
    ),
  });
  const inv = await loadInventory('test', { cwd });
  const result = interpolateVars(inv.hosts.get('web1')!, { secrets });
  t.deepEqual(result.vars, {
    database_url: 'postgres://app:s3cr3t-pass@db1/app',
    current: '/srv/app/current',
    app_dir: '/srv/app',
    url_copy: 'postgres://app:s3cr3t-pass@db1/app',
    workers: 6,
    users: ['ann', 'bob'],
    flag: 'on',
    sites: [{ name: 'shop', password: 's3cr3t-pass' }],
    plain: 5,
  });
  t.deepEqual(result.sensitive, ['database_url', 'url_copy', 'workers', 'users', 'flag', 'sites']);
  t.is(
    inv.hosts.get('web1')!.vars.current,
    '{{ app_dir }}/current',
    'the inventory itself is left as written',
  );
});

test('interpolation of a plain record, with more names from context.vars', (t) => {
  const result = interpolateVars(
    { greeting: 'hello {{ name }}', secret_greeting: 'hi {{ secrets.db.host }}' },
    { secrets, vars: { name: 'world' } },
  );
  t.deepEqual(result, {
    vars: { greeting: 'hello world', secret_greeting: 'hi db1' },
    sensitive: ['secret_greeting'],
  });
});

async function interpolationError(t: import('ava').ExecutionContext, varLines: string[]): Promise<string> {
  const cwd = await tempProject(t, {
    'inventories/test.yml': lines('hosts:', '  web1:', '    vars:', ...varLines),
  });
  const inv = await loadInventory('test', { cwd });
  const error = t.throws(() => interpolateVars(inv.hosts.get('web1')!, { secrets }), {
    instanceOf: UserError,
  });
  t.false(error?.message.includes('s3cr3t'), 'no secret value in the message');
  return error?.message ?? '';
}

test('a missing secret names the var, the host, the origin and the keys the secrets have', async (t) => {
  t.is(
    await interpolationError(t, ['      database_url: "postgres://app:{{ secrets.db_pass }}@db1/app"']),
    'host web1: var database_url (set in inventories/test.yml:4:21) refers to secrets.db_pass, which the secrets do not have (they have: db_password, workers, users, feature, db)',
  );
  t.is(
    await interpolationError(t, ['      token: "{{ secrets.api_token }}"']),
    'host web1: var token (set in inventories/test.yml:4:14) refers to secrets.api_token, which the secrets do not have (they have: db_password, workers, users, feature, db)',
  );
  t.is(
    await interpolationError(t, ['      db_port: "{{ secrets.db.port }}"']),
    'host web1: var db_port (set in inventories/test.yml:4:16) refers to secrets.db.port, which the secrets do not have (they have: db_password, workers, users, feature, db)',
  );
  t.is(
    await interpolationError(t, [
      '      sites:',
      '        - name: shop',
      '          password: "x{{ secrets.nope }}"',
    ]),
    'host web1: var sites[0].password (set in inventories/test.yml:6:21) refers to secrets.nope, which the secrets do not have (they have: db_password, workers, users, feature, db)',
  );
});

test('interpolation errors: unknown names, loops, bad templates, fields of non-mappings', async (t) => {
  t.is(
    await interpolationError(t, ['      url: "{{ nope }}/x"']),
    'host web1: var url (set in inventories/test.yml:4:12) refers to "nope", which is neither a var nor secrets (write secrets.nope for a secret)',
  );
  t.is(
    await interpolationError(t, ['      a: "{{ b }}"', '      b: "x{{ a }}"']),
    'host web1: var a (set in inventories/test.yml:4:10) refers to itself through a → b → a',
  );
  t.is(
    await interpolationError(t, ['      a: "{{ unclosed"']),
    'host web1: var a (set in inventories/test.yml:4:10) is not a valid template (Parse error on line 1): {{ unclosed',
  );
  t.is(
    await interpolationError(t, ['      a: "{{ secrets.db_password.x }} and more"']),
    'host web1: var a (set in inventories/test.yml:4:10) reads the field "x" of a value that is not a mapping',
  );
  t.is(
    await interpolationError(t, ['      a: "{{ secrets.db_password.x }}"']),
    'host web1: var a (set in inventories/test.yml:4:10) reads a field of secrets.db_password, which is not a mapping',
  );
});

// --- role vars ------------------------------------------------------------------------------------

const nginxVars = z.object({
  nginx_workers: z.number().int().default(2),
  nginx_mode: z.enum(['proxy', 'static']).default('proxy'),
  nginx_domain: z.string().min(3),
  nginx_sites: z
    .array(z.object({ server_name: z.string(), listen: z.number().default(80) }))
    .min(1)
    .default([{ server_name: 'localhost', listen: 80 }]),
});

async function webInventory(t: import('ava').ExecutionContext, groupVars: string[]) {
  const cwd = await tempProject(t, {
    'inventories/test.yml': lines('hosts: { web1: }', 'groups:', '  web: { hosts: [web1], roles: [nginx] }'),
    'inventories/group_vars/web.yml': lines(...groupVars),
  });
  const inv = await loadInventory('test', { cwd });
  const host = inv.hosts.get('web1')!;
  return { host, ctx: { role: 'nginx', host: host.name, origins: host.varOrigins } };
}

test('role vars: defaults fill what the inventory does not set; other roles’ vars are dropped', async (t) => {
  const { host, ctx } = await webInventory(t, ['nginx_domain: example.org', 'other_role_var: 1']);
  t.deepEqual(validateRoleVars(nginxVars, host.vars, ctx), {
    nginx_workers: 2,
    nginx_mode: 'proxy',
    nginx_domain: 'example.org',
    nginx_sites: [{ server_name: 'localhost', listen: 80 }],
  });
});

test('role vars: a wrong type names the role, host, var path, value and where it was set', async (t) => {
  const { host, ctx } = await webInventory(t, [
    'nginx_domain: example.org',
    'nginx_sites:',
    '  - server_name: example.org',
    '    listen: eighty',
  ]);
  const error = t.throws(() => validateRoleVars(nginxVars, host.vars, ctx), { instanceOf: UserError });
  t.is(
    error?.message,
    'role nginx, host web1: var nginx_sites[0].listen must be a number, got "eighty" (set in inventories/group_vars/web.yml:4:13)',
  );
  t.is(error?.hint, 'fix the value in the inventory (or --var), or see the role README for its vars');
});

const roleErrorCases: Array<[string, Record<string, unknown>, string]> = [
  [
    'a missing required var',
    {},
    'role nginx, host web1: var nginx_domain is required (a string): set it in the inventory or with --var',
  ],
  [
    'a value not in an enum',
    { nginx_domain: 'example.org', nginx_mode: 'fast' },
    'role nginx, host web1: var nginx_mode must be one of "proxy", "static", got "fast" (set in --var)',
  ],
  [
    'a string too short',
    { nginx_domain: 'ab' },
    'role nginx, host web1: var nginx_domain must have at least 3 characters, got "ab" (set in --var)',
  ],
  [
    'a list too short',
    { nginx_domain: 'example.org', nginx_sites: [] },
    'role nginx, host web1: var nginx_sites must have at least 1 items, got a list (set in --var)',
  ],
  [
    'a fraction where a whole number is expected',
    { nginx_domain: 'example.org', nginx_workers: 2.5 },
    'role nginx, host web1: var nginx_workers must be a whole number, got 2.5 (set in --var)',
  ],
  [
    'a mapping where a list is expected',
    { nginx_domain: 'example.org', nginx_sites: { a: 1 } },
    'role nginx, host web1: var nginx_sites must be a list, got a mapping (set in --var)',
  ],
];

for (const [name, input, message] of roleErrorCases) {
  test(`role vars error: ${name}`, (t) => {
    const origins = Object.fromEntries(Object.keys(input).map((k) => [k, { file: '--var' }]));
    t.throws(() => validateRoleVars(nginxVars, input, { role: 'nginx', host: 'web1', origins }), {
      instanceOf: UserError,
      message,
    });
  });
}

test('role vars: several problems are listed, at most five', (t) => {
  const schema = z.object({
    a: z.string(),
    b: z.number(),
    c: z.boolean(),
    d: z.string(),
    e: z.string(),
    f: z.string(),
  });
  t.throws(
    () =>
      validateRoleVars(
        schema,
        { b: 'x' },
        { role: 'r', host: 'h', origins: { b: { file: 'f.yml', line: 2, column: 4 } } },
      ),
    {
      message: [
        'role r, host h: 6 vars are invalid:',
        '  - var a is required (a string): set it in the inventory or with --var',
        '  - var b must be a number, got "x" (set in f.yml:2:4)',
        '  - var c is required (a boolean): set it in the inventory or with --var',
        '  - var d is required (a string): set it in the inventory or with --var',
        '  - var e is required (a string): set it in the inventory or with --var',
        '  - and 1 more',
      ].join('\n'),
    },
  );
});

test('role vars: a value from the secrets is shown as [secret]', (t) => {
  t.throws(
    () =>
      validateRoleVars(
        z.object({ pg_password: z.string().min(12) }),
        { pg_password: 'short' },
        {
          role: 'postgres',
          host: 'db1',
          origins: { pg_password: { file: 'inventories/test.yml', line: 3, column: 18 } },
          sensitive: ['pg_password'],
        },
      ),
    {
      message:
        'role postgres, host db1: var pg_password must have at least 12 characters, got [secret] (set in inventories/test.yml:3:18)',
    },
  );
});

test('an unknown role lists the known ones and guesses the intended one', (t) => {
  const error = unknownRoleError('ngnix', ['postgres', 'nginx', 'docker'], {
    file: 'inventories/staging.yml',
    line: 32,
    column: 9,
  });
  t.true(error instanceof UserError);
  t.is(
    error.message,
    'inventories/staging.yml:32:9: unknown role "ngnix" (did you mean "nginx"?); known roles: docker, nginx, postgres',
  );
  t.is(unknownRoleError('zzz', []).message, 'unknown role "zzz"; known roles: none');
});

test('varsForRole: vars given with the role in roles: apply to that role only, below --var', async (t) => {
  const inv = await loadInventory('staging', { cwd: verdandiProject });
  const web1 = inv.hosts.get('web1')!;
  const supervisor = varsForRole(web1, 'supervisor');
  t.deepEqual(supervisor.vars.supervisor_programs, ['app']);
  t.deepEqual(supervisor.origins.supervisor_programs, {
    file: 'inventories/staging.yml',
    line: 35,
    column: 32,
  });
  t.is(supervisor.vars.nginx_workers, 5);
  t.false('supervisor_programs' in varsForRole(web1, 'nginx').vars);
  const overridden = varsForRole(web1, 'supervisor', { extraVars: { supervisor_programs: [], user: 'x' } });
  t.deepEqual(overridden.vars.supervisor_programs, []);
  t.deepEqual(overridden.origins.supervisor_programs, { file: '--var' });
  t.false('user' in overridden.vars, 'connection settings are not vars');
});
