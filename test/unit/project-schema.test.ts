/**
 * `verdandi schema`: the JSON Schema of inventories, checked with a real JSON Schema validator (Ajv, the
 * one editors' tooling builds on): the example inventories validate; misspelled keys, wrong types and
 * unknown roles are reported where they are. (Runs the built CLI: `npm run build` first.)
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import yaml from 'js-yaml';
import { SCHEMA_COMMENT } from '../../src/project/schema.js';
import { PROJECT_ROOT, removeProject, runCli } from '../helpers/cli.js';

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}
interface Validate {
  (data: unknown): boolean;
  errors?: AjvError[] | null;
}
interface AjvInstance {
  compile(schema: unknown): Validate;
}

// Loaded by name: the test needs Ajv at run time only (a devDependency), not its typings.
const AJV = 'ajv';

async function validatorFor(schema: unknown): Promise<Validate> {
  const { Ajv } = (await import(AJV)) as { Ajv: new (options: object) => AjvInstance };
  // strict: a keyword Ajv does not know (a typo in the generated schema) is an error, not ignored.
  return new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, validateFormats: false }).compile(
    schema,
  );
}

const project = mkdtempSync(join(tmpdir(), 'vd-schema-'));
let validate: Validate;
let schemaText: string;

test.after.always(() => removeProject(project));

test.before(async () => {
  const res = await runCli(['init'], { cwd: project });
  if (res.code !== 0) throw new Error(`verdandi init failed: ${res.stderr}`);
  schemaText = readFileSync(join(project, 'inventories', 'inventory.schema.json'), 'utf8');
  validate = await validatorFor(JSON.parse(schemaText));
});

function errorsOf(text: string): AjvError[] {
  return validate(yaml.load(text)) ? [] : (validate.errors ?? []);
}

/** The places (instance paths) of the errors: Ajv reports each branch of an anyOf, this is where. */
const places = (errors: AjvError[]) => [...new Set(errors.map((e) => e.instancePath))].sort();

test('the scaffold inventories and the repository examples validate', (t) => {
  const files = [
    join(project, 'inventories', 'staging.yml'),
    join(project, 'inventories', 'production.yml'),
    join(PROJECT_ROOT, 'inventories', 'staging.yml'),
    join(PROJECT_ROOT, 'inventories', 'production.yml'),
  ];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    t.deepEqual(errorsOf(text), [], file);
  }
  t.true(readFileSync(files[0], 'utf8').startsWith(`${SCHEMA_COMMENT}\n`));
});

test('roles, vars and descriptions of every built-in role and of the project roles are in it', (t) => {
  const schema = JSON.parse(schemaText);
  for (const role of ['docker', 'example', 'mariadb', 'nginx', 'postgres', 'pyenv', 'sites', 'supervisor']) {
    t.truthy(schema.definitions[`role.${role}`], role);
  }
  const nginx = schema.definitions['role.nginx'].properties;
  t.is(nginx.nginx_worker_connections.default, 768);
  t.is(schema.definitions['role.mariadb'].properties.mariadb_bind_address.default, '127.0.0.1');
  const contact = schema.definitions['role.example'].properties.example_contact;
  t.is(contact.description, 'example: Where to write about this server (an e-mail address), shown at login.');
  t.truthy(schema.definitions.vars.properties.nginx_sites);
  const stopsignal = JSON.stringify(schema.definitions['role.supervisor'].properties.supervisor_programs);
  t.true(stopsignal.includes('"enum":["TERM","HUP","INT","QUIT","KILL","USR1","USR2"]'));
});

test('a misspelled key is reported where it is written', (t) => {
  t.deepEqual(places(errorsOf('hosts: {}\ngrups: {}\n')), ['']);
  t.deepEqual(places(errorsOf('groups:\n  web:\n    hots: [web1]\n')), ['/groups/web']);
  // A role's var misspelled in a group's vars...
  const misspelled = errorsOf('groups:\n  web:\n    vars:\n      nginx_worker_proceses: 4\n');
  t.deepEqual(places(misspelled), ['/groups/web/vars']);
  t.true(misspelled.some((e) => e.params.propertyName === 'nginx_worker_proceses'));
  // ...in a host's own keys, and inside a role's nested object.
  t.deepEqual(places(errorsOf('hosts:\n  web1:\n    postgres_prot: 5432\n')), ['/hosts/web1']);
  const nested = errorsOf(
    'vars:\n  nginx_sites:\n    - name: app\n      server_name: [example.org]\n      root: /srv\n',
  );
  t.true(places(nested).includes('/vars/nginx_sites/0'));
  t.true(nested.some((e) => e.params.additionalProperty === 'server_name'));
  // Vars given with a role are that role's only.
  const withRole = errorsOf('roles:\n  - { role: nginx, vars: { supervisor_programs: [] } }\n');
  t.true(places(withRole).includes('/roles/0/vars'));
  t.true(withRole.some((e) => e.params.additionalProperty === 'supervisor_programs'));
});

test('a wrong type, a value out of its enum and an unknown role are reported', (t) => {
  const wrongType = errorsOf('vars:\n  nginx_worker_connections: many\n');
  t.deepEqual(places(wrongType), ['/vars/nginx_worker_connections']);
  t.true(wrongType.some((e) => e.keyword === 'type' && e.params.type === 'integer'));
  t.deepEqual(
    places(errorsOf('vars:\n  supervisor_programs:\n    - { name: app, command: x, stopsignal: STOP }\n')),
    ['/vars/supervisor_programs', '/vars/supervisor_programs/0', '/vars/supervisor_programs/0/stopsignal'],
  );
  t.deepEqual(places(errorsOf('hosts:\n  web1: { port: "22a" }\n')), ['/hosts/web1', '/hosts/web1/port']);
  t.deepEqual(places(errorsOf('roles: [ngnix]\n')), ['/roles/0']);
  t.deepEqual(places(errorsOf('hosts:\n  web1: { roles: [nginx] }\n')), ['/hosts/web1', '/hosts/web1/roles']);
});

test('what inventories may hold beyond the roles: own vars, {{ }} values, settings, shorthands', (t) => {
  const text = [
    'vars:',
    '  app_env: staging', // a var of the project's own
    '  nginx_worker_connections: "{{ secrets.connections }}"', // typed once interpolated
    '  postgres_users:',
    '    - { name: app, password: "{{ secrets.db_password }}" }',
    'roles: [example, { role: nginx, vars: { nginx_gzip: false } }]',
    'hosts:',
    '  web1: 10.0.0.11',
    '  web2: { ansible_host: 10.0.0.12, ansible_user: deploy, become: true, port: 2222, vars: { x: 1 } }',
    '  db1:',
    'groups:',
    '  web: { hosts: [web1, web2], children: [api], roles: [supervisor] }',
    '  api: { hosts: { web3: { address: 10.0.0.13 } } }',
    '  db:',
    '    hosts: [db1]',
    '    vars: { user: deploy, key: ~/.ssh/id_ed25519 }',
    '',
  ].join('\n');
  t.deepEqual(errorsOf(text), []);
  t.deepEqual(errorsOf('hosts:\ngroups:\n'), []);
});

test('group_vars/ and host_vars/ files have a schema of their own: a mapping of vars', async (t) => {
  const varsFile = await validatorFor(
    JSON.parse(readFileSync(join(project, 'inventories', 'vars.schema.json'), 'utf8')),
  );
  const check = (text: string) => (varsFile(yaml.load(text)) ? [] : places(varsFile.errors ?? []));
  t.deepEqual(check('app_env: staging\nnginx_worker_connections: 1024\nuser: deploy\n'), []);
  t.deepEqual(check('nginx_worker_conections: 1024\n'), ['']);
  t.deepEqual(check('postgres_port: high\n'), ['/postgres_port']);
});

test('verdandi schema writes the file of the project of an environment, or prints it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-schema-cli-'));
  t.teardown(() => removeProject(dir));
  t.is((await runCli(['init'], { cwd: dir })).code, 0);
  writeFileSync(join(dir, 'inventories', 'inventory.schema.json'), '{}\n');
  const res = await runCli(['schema', 'staging'], { cwd: dir });
  t.is(res.code, 0, res.stderr);
  t.is(res.stdout, 'wrote inventories/inventory.schema.json\nwrote inventories/vars.schema.json\n');
  t.is(readFileSync(join(dir, 'inventories', 'inventory.schema.json'), 'utf8'), schemaText);

  const printed = await runCli(['schema', '--output', '-'], { cwd: dir });
  t.is(printed.code, 0, printed.stderr);
  t.is(printed.stdout, schemaText);

  const unknown = await runCli(['schema', 'nowhere'], { cwd: dir });
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /^error: unknown environment "nowhere"/);
});
