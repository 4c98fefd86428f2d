/**
 * `verdandi init`: the scaffold of an ops project, and that it never overwrites what is there. The
 * scaffold's own files are checked for what they claim: the inventories load and every host's role vars
 * validate, the example role and the playbook load and build their tasks.
 * (Runs the built CLI: `npm run build` first.)
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { loadInventory, validateRoleVars, varsForRole } from '../../src/inventory/index.js';
import { GITIGNORE_LINES, packageName, SCRIPTS } from '../../src/project/init.js';
import { removeProject, runCli } from '../helpers/cli.js';

const SCAFFOLD = [
  '.gitignore',
  'inventories/inventory.schema.json',
  'inventories/production.yml',
  'inventories/staging.yml',
  'inventories/vars.schema.json',
  'package.json',
  'roles/example/README.md',
  'roles/example/index.ts',
  'roles/example/templates/motd.hbs',
  'secrets/README.md',
  'site.ts',
  'tsconfig.json',
];

const made: string[] = [];
const newDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-init-'));
  made.push(dir);
  return dir;
};
test.after.always(() => {
  for (const dir of made) removeProject(dir);
});
const read = (dir: string, file: string) => readFileSync(join(dir, file), 'utf8');
const lines = (stdout: string, outcome: string) =>
  stdout
    .split('\n')
    .filter((line) => line.startsWith(`${outcome} `))
    .map((line) => line.slice(8).replace(/ \(.*\)$/, ''))
    .sort();

test('init scaffolds every file in a new folder, then says what to do next', async (t) => {
  const parent = newDir();
  const res = await runCli(['init', 'ops'], { cwd: parent });
  t.is(res.code, 0, res.stderr);
  t.deepEqual(lines(res.stdout, 'created'), SCAFFOLD, res.stdout);
  t.regex(res.stdout, /cd ops && npm install/);
  t.regex(res.stdout, /npx verdandi testhost up/);
  const dir = join(parent, 'ops');

  const manifest = JSON.parse(read(dir, 'package.json'));
  t.is(manifest.name, 'ops');
  t.true(manifest.private);
  t.deepEqual(manifest.scripts, SCRIPTS);
  t.regex(manifest.devDependencies.verdandi, /^\^\d+\.\d+\.\d+$/);
  t.deepEqual(manifest.dependencies, undefined);

  const ignored = read(dir, '.gitignore').split('\n');
  for (const line of ['*.vault-password', 'secrets/*.yml', 'secrets/*.decrypted*', 'inventories/local.yml'])
    t.true(ignored.includes(line), line);

  for (const env of ['staging', 'production']) {
    t.true(
      read(dir, `inventories/${env}.yml`).startsWith(
        '# yaml-language-server: $schema=./inventory.schema.json\n',
      ),
    );
  }
  const tsconfig = JSON.parse(read(dir, 'tsconfig.json'));
  t.is(tsconfig.compilerOptions.moduleResolution, 'Bundler');
  t.true(tsconfig.include.includes('roles/**/*.ts'));
});

test('the scaffold inventories load and every role var of every host is valid', async (t) => {
  const dir = newDir();
  t.is((await runCli(['init'], { cwd: dir })).code, 0);
  const byName = new Map((await loadRolesBuilt(dir)).map((r) => [r.name, r]));
  for (const env of ['staging', 'production']) {
    const inventory = await loadInventory(env, { cwd: dir });
    t.true(inventory.hosts.size >= 2, env);
    const seen = new Set<string>();
    for (const host of inventory.hosts.values()) {
      for (const role of host.roles) {
        const schema = byName.get(role);
        if (!schema) return t.fail(`${env}: unknown role ${role}`);
        seen.add(role);
        const { vars, origins } = varsForRole(host, role);
        t.notThrows(
          () => validateRoleVars(schema.vars, vars, { role, host: host.name, origins }),
          `${env} ${role}`,
        );
      }
    }
    t.deepEqual([...seen].sort(), ['example', 'nginx', 'postgres', 'supervisor'], env);
  }
});

/** The project's roles, loaded the way the compiled CLI loads them (bundled by esbuild). */
async function loadRolesBuilt(dir: string) {
  const { projectRoles } = (await import(
    new URL('../../dist/src/project/schema.js', import.meta.url).href
  )) as typeof import('../../src/project/schema.js');
  return projectRoles(dir);
}

test('the example role and the playbook load and build their tasks', async (t) => {
  const dir = newDir();
  t.is((await runCli(['init'], { cwd: dir })).code, 0);
  const { loadPlaybook, loadRole } = (await import(
    new URL('../../dist/src/engine/loader.js', import.meta.url).href
  )) as typeof import('../../src/engine/loader.js');
  const role = await loadRole('example', dir);
  const vars = role.vars.parse({ example_contact: 'ops@example.org', example_packages: ['htop'] });
  const host = {
    name: 'web1',
    address: '10.0.0.11',
    groups: ['all'],
    vars: {},
    secrets: {},
    env: 'staging',
    inventory: { hosts: [] },
  };
  const tasks = (await role.tasks(vars, host)).filter((task) => !!task && !Array.isArray(task));
  t.deepEqual(
    tasks.map((task) => (task as { name: string }).name),
    ['template /etc/motd', 'apt htop'],
  );
  t.throws(() => role.vars.parse({ example_contact: 'not an address' }));

  const playbook = await loadPlaybook(join(dir, 'site.ts'));
  t.is(playbook.plays.length, 1);
  t.is(playbook.plays[0].hosts, 'all');
  t.deepEqual(playbook.plays[0].roles, ['example']);
});

test('init again keeps every file as it is, edited ones included', async (t) => {
  const dir = newDir();
  t.is((await runCli(['init'], { cwd: dir })).code, 0);
  writeFileSync(join(dir, 'inventories/staging.yml'), 'hosts: {}\n');
  const before = Object.fromEntries(SCAFFOLD.map((file) => [file, read(dir, file)]));
  const again = await runCli(['init'], { cwd: dir });
  t.is(again.code, 0, again.stderr);
  t.deepEqual(lines(again.stdout, 'kept'), SCAFFOLD);
  t.deepEqual(lines(again.stdout, 'created'), []);
  for (const file of SCAFFOLD) t.is(read(dir, file), before[file], file);
});

test('an existing package.json and .gitignore only get what is missing', async (t) => {
  const dir = newDir();
  const manifest = {
    name: 'our-ops',
    version: '2.0.0',
    scripts: { check: 'make lint' },
    dependencies: { verdandi: 'file:verdandi-0.1.0.tgz' },
  };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest));
  writeFileSync(join(dir, '.gitignore'), 'build/\n*.vault-password');
  mkdirSync(join(dir, 'roles', 'example'), { recursive: true });
  // A role of theirs that does not load yet: the scaffold goes on without the schema.
  writeFileSync(join(dir, 'roles', 'example', 'index.ts'), '// ours\n');

  const res = await runCli(['init', '.'], { cwd: dir });
  t.is(res.code, 0, res.stderr);
  t.regex(
    res.stdout,
    /updated package\.json \(added scripts\.provision:staging, scripts\.deploy:staging, scripts\.schema\)/,
  );
  t.regex(res.stdout, /kept {4}roles\/example\/index\.ts \(exists, left as it is\)/);
  t.is(read(dir, 'roles/example/index.ts'), '// ours\n');
  t.regex(
    res.stdout,
    /skipped inventories\/inventory\.schema\.json \(.*roles\/example\/index\.ts: the default export is not a role; fix it, then run: verdandi schema\)/,
  );

  const updated = JSON.parse(read(dir, 'package.json'));
  t.is(updated.name, 'our-ops');
  t.is(updated.version, '2.0.0');
  t.is(updated.scripts.check, 'make lint', 'an existing script is not replaced');
  t.is(updated.scripts['provision:staging'], SCRIPTS['provision:staging']);
  t.deepEqual(updated.dependencies, { verdandi: 'file:verdandi-0.1.0.tgz' });
  t.is(updated.devDependencies, undefined, 'verdandi is there already: no devDependency added');

  const ignore = read(dir, '.gitignore');
  t.true(ignore.startsWith('build/\n*.vault-password\n# Added by `verdandi init`.\n'));
  t.is(ignore.split('\n').filter((line) => line === '*.vault-password').length, 1);
  for (const line of GITIGNORE_LINES.filter((l) => !l.startsWith('#')))
    t.true(ignore.split('\n').includes(line), line);
});

test('a package.json that is not JSON is reported, not replaced', async (t) => {
  const dir = newDir();
  writeFileSync(join(dir, 'package.json'), '{ "name": ');
  const res = await runCli(['init'], { cwd: dir });
  t.is(res.code, 1);
  t.regex(res.stderr, /^error: package\.json is not valid JSON/);
  t.is(read(dir, 'package.json'), '{ "name": ');
  t.false(existsSync(join(dir, 'site.ts')), 'nothing is scaffolded before the problem is fixed');
});

test('package names come from the folder name', (t) => {
  t.is(packageName('/srv/Ops Repo'), 'ops-repo');
  t.is(packageName('/tmp/.hidden'), 'hidden');
  t.is(packageName('/tmp/___'), 'ops');
});
