/**
 * Every built-in role refuses a misspelled key in its nested objects (and a misspelled var with its
 * prefix) like a wrong type: the role, the host, where the key is written (file:line:col) and the key
 * that was meant. The inventories are real YAML files, so the positions are the loader's.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import yaml from 'js-yaml';
import { demoInventory } from '../../src/commands/demo.js';
import { parseSitesVars } from '../../src/deploy/targets.js';
import type { Role } from '../../src/engine/types.js';
import { loadInventory, validateRoleVars, varsForRole } from '../../src/inventory/index.js';
import { UserError } from '../../src/util/errors.js';
import { lines, tempProject } from '../fixtures/inventory/temp-project.js';

const ROLES_DIR = new URL('../../roles/', import.meta.url);
const ROLE_NAMES = readdirSync(ROLES_DIR).sort();

async function loadBuiltInRole(name: string): Promise<Role> {
  return (await import(new URL(`${name}/index.ts`, ROLES_DIR).href)).default as Role;
}

/**
 * The message of the error that validating `role`'s vars gives on a host whose group sets `vars`
 * (YAML lines, indented by 6 under the group's `vars:`: the first one is on line 8, column 7).
 */
async function roleError(t: ExecutionContext, roleName: string, vars: string[]): Promise<string> {
  const role = await loadBuiltInRole(roleName);
  const cwd = await tempProject(t, {
    'inventories/test.yml': lines(
      'hosts:',
      '  web1: { address: 10.231.254.2 }',
      'groups:',
      '  g:',
      '    hosts: [web1]',
      `    roles: [${roleName}]`,
      '    vars:',
      ...vars.map((l) => `      ${l}`),
    ),
  });
  const inventory = await loadInventory('test', { cwd });
  const host = inventory.hosts.get('web1')!;
  const merged = varsForRole(host, role.name);
  const error = t.throws(
    () =>
      validateRoleVars(role.vars, merged.vars, { role: role.name, host: host.name, origins: merged.origins }),
    { instanceOf: UserError },
  );
  return error?.message ?? '';
}

test('nginx: a misspelled key of a vhost, of its TLS block and of a location', async (t) => {
  const message = await roleError(t, 'nginx', [
    'nginx_sites:',
    '  - name: shop',
    '    upstream: { servers: [127.0.0.1:3000] }',
    '    server_name: [shop.example.org]',
    '    tls: { certificate: /c.pem, key: /k.pem, redirect: false }',
    '    locations:',
    '      - path: /static/',
    '        allias: /srv/static/',
  ]);
  t.is(
    message,
    [
      'role nginx, host web1: 3 vars are invalid:',
      '  - unknown key "redirect" in nginx_sites[0].tls (did you mean "redirect_http"?) (set in inventories/test.yml:12:52)',
      '  - unknown key "allias" in nginx_sites[0].locations[0] (did you mean "alias"?) (set in inventories/test.yml:15:15)',
      '  - unknown key "server_name" in nginx_sites[0] (did you mean "server_names"?) (set in inventories/test.yml:11:11)',
    ].join('\n'),
  );
});

test('postgres: a user with pasword, a database with ownr, an hba entry with adress', async (t) => {
  const message = await roleError(t, 'postgres', [
    'postgres_users:',
    '  - name: app',
    '    pasword: "{{ secrets.db_password }}"',
    'postgres_databases:',
    '  - { name: app, ownr: app }',
    'postgres_hba:',
    '  - { database: app, user: app, adress: 10.0.0.0/24 }',
  ]);
  t.regex(
    message,
    /unknown key "pasword" in postgres_users\[0\] \(did you mean "password"\?\) \(set in inventories\/test\.yml:10:11\)/,
  );
  t.regex(
    message,
    /unknown key "ownr" in postgres_databases\[0\] \(did you mean "owner"\?\) \(set in inventories\/test\.yml:12:24\)/,
  );
  t.regex(
    message,
    /unknown key "adress" in postgres_hba\[0\] \(did you mean "address"\?\) \(set in inventories\/test\.yml:14:39\)/,
  );
  t.notRegex(message, /secrets\.db_password/, 'an unknown key is named, its value is not shown');
});

test('postgres: a misspelled var with the role prefix is refused; postgres_settings stays open', async (t) => {
  const message = await roleError(t, 'postgres', [
    'postgres_usres: [{ name: app }]',
    'postgres_settings: { any_setting: 1 }',
  ]);
  t.is(
    message,
    'role postgres, host web1: unknown var "postgres_usres" (did you mean "postgres_users"?) (set in inventories/test.yml:8:7)',
  );
});

test('supervisor: a misspelled key of a program; environment stays open', async (t) => {
  const message = await roleError(t, 'supervisor', [
    'supervisor_programs:',
    '  - name: app',
    '    command: /srv/app/run',
    '    environment: { ANY_NAME: x, OTHER: y }',
    '    autorestrat: unexpected',
  ]);
  t.is(
    message,
    'role supervisor, host web1: unknown key "autorestrat" in supervisor_programs[0] (did you mean "autorestart"?) (set in inventories/test.yml:12:11)',
  );
});

test('docker: a misspelled key of a container, its healthcheck, a compose project and a stack', async (t) => {
  const message = await roleError(t, 'docker', [
    'docker_containers:',
    '  - name: web',
    '    image: nginx:1.25',
    '    env: { ANY_NAME: x }',
    '    labels: { com.example.team: web }',
    '    port: ["8080:80"]',
    '    healthcheck: { test: "true", intervall: 5s }',
    'docker_compose_projects:',
    '  - name: tools',
    '    compose: { services: { x: { image: busybox, anything: goes } } }',
    '    sate: absent',
    'docker_stacks:',
    '  - { name: app, compose: "services: {}", rolling_updates: false }',
  ]);
  t.regex(message, /^role docker, host web1: 4 vars are invalid:/);
  t.regex(
    message,
    /unknown key "port" in docker_containers\[0\] \(did you mean "ports"\?\) \(set in inventories\/test\.yml:13:11\)/,
  );
  t.regex(
    message,
    /unknown key "intervall" in docker_containers\[0\]\.healthcheck \(did you mean "interval"\?\) \(set in inventories\/test\.yml:14:40\)/,
  );
  t.regex(
    message,
    /unknown key "sate" in docker_compose_projects\[0\] \(did you mean "state"\?\) \(set in inventories\/test\.yml:18:11\)/,
  );
  t.regex(
    message,
    /unknown key "rolling_updates" in docker_stacks\[0\] \(did you mean "rolling_update"\?\) \(set in inventories\/test\.yml:20:49\)/,
  );
  t.notRegex(
    message,
    /anything|ANY_NAME|com\.example/,
    'the open maps (compose content, env, labels) take any key',
  );
});

test('pyenv: a misspelled var with the role prefix', async (t) => {
  const message = await roleError(t, 'pyenv', ['pyenv_python_versoin: "3.12.1"']);
  t.is(
    message,
    'role pyenv, host web1: unknown var "pyenv_python_versoin" (did you mean "pyenv_python_version"?) (set in inventories/test.yml:8:7)',
  );
});

const SITE = ['sites:', '  - name: shop', '    repo: /srv/git/shop.git'];

test('sites: healthcheck, brnach and procss are refused with what was meant', async (t) => {
  const message = await roleError(t, 'sites', [
    ...SITE,
    '    brnach: main',
    '    procss: { command: run }',
    '    healthcheck:',
    '      path: /health',
  ]);
  t.is(
    message,
    [
      'role sites, host web1: 3 vars are invalid:',
      '  - unknown key "brnach" in sites[0] (did you mean "branch"?) (set in inventories/test.yml:11:11)',
      '  - unknown key "procss" in sites[0] (did you mean "process"?) (set in inventories/test.yml:12:11)',
      '  - unknown key "healthcheck" in sites[0] (did you mean "health"?) (set in inventories/test.yml:13:11)',
    ].join('\n'),
  );
});

test('sites: nested objects (runtime variant, process, workers, health, nginx, migrate) refuse unknown keys; env maps are open', async (t) => {
  const message = await roleError(t, 'sites', [
    ...SITE,
    '    runtime: { type: docker, dockerfle: Dockerfile.prod }',
    '    process: { port: 9000, workers: [{ name: q, command: run-q, numprocs: 2 }] }',
    '    health: { path: /health, timout: 10 }',
    '    nginx: { serverName: [shop.example.org] }',
    '    migrate: { command: migrate, chek: migrate --check }',
    '    env: { vars: { ANY_NAME: 1 }, secrets: { OTHER: key } }',
  ]);
  t.regex(message, /^role sites, host web1: 5 vars are invalid:/);
  t.regex(
    message,
    /unknown key "dockerfle" in sites\[0\]\.runtime \(did you mean "dockerfile"\?\) \(set in inventories\/test\.yml:11:36\)/,
  );
  t.regex(
    message,
    /unknown key "numprocs" in sites\[0\]\.process\.workers\[0\]; known keys: name, command \(set in inventories\/test\.yml:12:71\)/,
  );
  t.regex(
    message,
    /unknown key "timout" in sites\[0\]\.health \(did you mean "timeout"\?\) \(set in inventories\/test\.yml:13:36\)/,
  );
  t.regex(
    message,
    /unknown key "serverName" in sites\[0\]\.nginx \(did you mean "serverNames"\?\) \(set in inventories\/test\.yml:14:20\)/,
  );
  t.regex(
    message,
    /unknown key "chek" in sites\[0\]\.migrate \(did you mean "check"\?\) \(set in inventories\/test\.yml:15:40\)/,
  );
  t.notRegex(message, /ANY_NAME|OTHER/);
});

test('deploy reads sites with the same checks: the same message, before any host is contacted', async (t) => {
  const cwd = await tempProject(t, {
    'inventories/test.yml': lines(
      'hosts:',
      '  web1:',
      '    address: 10.231.254.2',
      '    sites:',
      '      - name: shop',
      '        repo: /srv/git/shop.git',
      '        healthcheck: { path: /health }',
    ),
  });
  const host = (await loadInventory('test', { cwd })).hosts.get('web1')!;
  const error = t.throws(() => parseSitesVars(host, host.vars), { instanceOf: UserError });
  t.is(
    error?.message,
    'role sites, host web1: unknown key "healthcheck" in sites[0] (did you mean "health"?) (set in inventories/test.yml:7:9)',
  );
  t.is(error?.exitCode, 1);
});

// --- the project's own inventories still validate ----------------------------------------------------

const PROJECT = fileURLToPath(new URL('../../', import.meta.url));
// local.yml is written by `verdandi testhost up/down` (git-ignored): it lists whatever runs now.
const INVENTORIES = readdirSync(new URL('../../inventories/', import.meta.url)).filter(
  (f) => /\.ya?ml$/.test(f) && f !== 'local.yml',
);

/** Validates every host's roles (built-in ones) and sites; returns how many roles were validated. */
async function validateAll(t: ExecutionContext, env: string, cwd: string): Promise<number> {
  const inventory = await loadInventory(env, { cwd });
  let validated = 0;
  for (const host of inventory.hosts.values()) {
    for (const name of host.roles) {
      t.true(ROLE_NAMES.includes(name), `${host.name}: ${name} is a built-in role`);
      const role = await loadBuiltInRole(name);
      const merged = varsForRole(host, name);
      t.notThrows(() =>
        validateRoleVars(role.vars, merged.vars, { role: name, host: host.name, origins: merged.origins }),
      );
      validated++;
    }
    t.notThrows(() => parseSitesVars(host, host.vars));
  }
  return validated;
}

for (const file of INVENTORIES) {
  test(`inventories/${file}: every host's roles and sites validate`, async (t) => {
    t.true((await validateAll(t, file.replace(/\.ya?ml$/, ''), PROJECT)) > 0, 'the inventory gives roles');
  });
}

test("the demo's inventory (the sample site of examples/, with nginx, supervisor, postgres) validates", async (t) => {
  const inventory = demoInventory(
    { name: 'demo', address: '10.231.254.2', key: '/nonexistent/key' },
    '/srv/sample',
  );
  const cwd = await tempProject(t, { 'inventories/demo.yml': yaml.dump(inventory) });
  t.is(await validateAll(t, 'demo', cwd), 4);
});
