import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import {
  type Inventory,
  listEnvironments,
  loadInventory,
  resolveInventoryPath,
  selectHosts,
} from '../../src/inventory/index.js';
import { UserError } from '../../src/util/errors.js';
import { tempProject } from '../fixtures/inventory/temp-project.js';

const verdandiProject = fileURLToPath(new URL('../fixtures/inventory/verdandi', import.meta.url));

let staging: Inventory;
test.before(async () => {
  // hosts: web1 web2 db1 lb1 lb2 db2; groups: web (web1 web2, child canary), canary (web2), db (db1 db2),
  // loadbalancers (lb1 lb2).
  staging = await loadInventory('staging', { cwd: verdandiProject });
});

const names = (pattern?: string) => selectHosts(staging, pattern).map((h) => h.name);

test('no pattern, all and * select every host, in inventory order', (t) => {
  const all = ['web1', 'web2', 'db1', 'lb1', 'lb2', 'db2'];
  t.deepEqual(names(), all);
  t.deepEqual(names(''), all);
  t.deepEqual(names('all'), all);
  t.deepEqual(names('*'), all);
});

test('a host, a group (with its children), globs and regular expressions', (t) => {
  t.deepEqual(names('web1'), ['web1']);
  t.deepEqual(names('web'), ['web1', 'web2']);
  t.deepEqual(names('canary'), ['web2']);
  t.deepEqual(names('web*'), ['web1', 'web2']);
  t.deepEqual(names('db?'), ['db1', 'db2']);
  t.deepEqual(names('lb[12]'), ['lb1', 'lb2']);
  t.deepEqual(names('load*'), ['lb1', 'lb2'], 'a glob matches group names too');
  t.deepEqual(names('~^(lb|db)1$'), ['db1', 'lb1']);
});

test('comma and colon lists, exclusions and intersections', (t) => {
  t.deepEqual(names('db2,web1'), ['web1', 'db2'], 'inventory order, not pattern order');
  t.deepEqual(names(' web , db '), ['web1', 'web2', 'db1', 'db2']);
  t.deepEqual(names('web:db'), ['web1', 'web2', 'db1', 'db2']);
  t.deepEqual(names('all,!web'), ['db1', 'lb1', 'lb2', 'db2']);
  t.deepEqual(names('!web'), ['db1', 'lb1', 'lb2', 'db2'], 'only exclusions: start from all');
  t.deepEqual(names('web:!canary'), ['web1']);
  t.deepEqual(names('!canary,web'), ['web1'], 'exclusions apply after additions, whatever the order');
  t.deepEqual(names('web:&canary'), ['web2']);
  t.deepEqual(names('*1,&web'), ['web1']);
});

test('a part that matches nothing is an error naming the pattern and listing groups and hosts', (t) => {
  const error = t.throws(() => names('wbe'), { instanceOf: UserError });
  t.is(
    error?.message,
    'host pattern "wbe": "wbe" matches no host or group (did you mean "web"?); groups: all, ungrouped, web, canary, db, loadbalancers; hosts: web1, web2, db1, lb1, lb2, db2',
  );
  t.is(
    error?.hint,
    "fix --limit or the play's hosts: (a host, a group, a glob like web*, a comma list, !exclusion)",
  );
  t.is(error?.exitCode, 1);
  const excluded = t.throws(() => names('web,!web9'), { instanceOf: UserError });
  t.is(
    excluded?.message,
    'host pattern "web,!web9": "web9" matches no host or group (did you mean "web"?); groups: all, ungrouped, web, canary, db, loadbalancers; hosts: web1, web2, db1, lb1, lb2, db2',
  );
  t.throws(() => names('x*'), { message: /^host pattern "x\*": "x\*" matches no host or group; groups: / });
});

test('a pattern that selects no host at all is an error', (t) => {
  t.throws(() => names('web:&db'), {
    instanceOf: UserError,
    message:
      'host pattern "web:&db" selects no host; groups: all, ungrouped, web, canary, db, loadbalancers; hosts: web1, web2, db1, lb1, lb2, db2',
  });
  t.throws(() => names('ungrouped'), { message: /^host pattern "ungrouped" selects no host;/ });
});

test('an invalid regular expression is an error', (t) => {
  t.throws(() => names('~web['), {
    instanceOf: UserError,
    message: /^host pattern "~web\[": ~web\[ is not a valid regular expression \(/,
  });
});

// --- resolveInventoryPath -----------------------------------------------------------------------

async function project(t: import('ava').ExecutionContext) {
  return tempProject(t, {
    'inventories/staging.yml': 'hosts: {}\n',
    'inventories/production.yaml': 'hosts: {}\n',
    'inventories/legacy.ini': '[web]\n',
    'inventories/hosts': '[web]\n',
    'inventories/README.md': '# not an inventory\n',
    'inventories/group_vars/all.yml': 'a: 1\n',
    'inventories/.hidden.yml': 'hosts: {}\n',
    'old-hosts': '[web]\n',
  });
}

test('an environment name finds inventories/<env>.yml, .yaml, .ini or a file without extension', async (t) => {
  const cwd = await project(t);
  t.is(resolveInventoryPath('staging', cwd), path.join(cwd, 'inventories/staging.yml'));
  t.is(resolveInventoryPath('production', cwd), path.join(cwd, 'inventories/production.yaml'));
  t.is(resolveInventoryPath('legacy', cwd), path.join(cwd, 'inventories/legacy.ini'));
  t.is(resolveInventoryPath('hosts', cwd), path.join(cwd, 'inventories/hosts'));
  t.deepEqual(listEnvironments(cwd), ['hosts', 'legacy', 'production', 'staging']);
});

test('a path is used as it is (relative to the project, or absolute); a bare file name in the project works', async (t) => {
  const cwd = await project(t);
  t.is(resolveInventoryPath('inventories/staging.yml', cwd), path.join(cwd, 'inventories/staging.yml'));
  t.is(resolveInventoryPath('./inventories/hosts', cwd), path.join(cwd, 'inventories/hosts'));
  t.is(resolveInventoryPath(path.join(cwd, 'old-hosts'), cwd), path.join(cwd, 'old-hosts'));
  t.is(resolveInventoryPath('old-hosts', cwd), path.join(cwd, 'old-hosts'));
  t.is(
    resolveInventoryPath('legacy.ini', cwd),
    path.join(cwd, 'inventories/legacy.ini'),
    'a file name of inventories/',
  );
});

test('an unknown environment lists the ones that exist', async (t) => {
  const cwd = await project(t);
  const error = t.throws(() => resolveInventoryPath('stagin', cwd), { instanceOf: UserError });
  t.is(
    error?.message,
    'unknown environment "stagin" (did you mean "staging"?): inventories/ has hosts, legacy, production, staging',
  );
  t.is(error?.hint, 'pass one of these names, or the path of an inventory file');
});

test('a missing inventory file, an ambiguous name, and no inventories/ folder are errors', async (t) => {
  const cwd = await project(t);
  t.throws(() => resolveInventoryPath('inventories/nope.yml', cwd), {
    instanceOf: UserError,
    message: 'inventory file inventories/nope.yml does not exist',
  });
  const ambiguous = await tempProject(t, { 'inventories/x.yml': '', 'inventories/x.ini': '' });
  t.throws(() => resolveInventoryPath('x', ambiguous), {
    instanceOf: UserError,
    message: 'environment "x" is ambiguous: inventories/x.yml and inventories/x.ini both exist',
  });
  const empty = await tempProject(t, {});
  t.throws(() => resolveInventoryPath('staging', empty), {
    instanceOf: UserError,
    message: `unknown environment "staging": there is no inventories/ folder in ${empty}`,
  });
});

test('loadInventory names files relative to the project, and absolute outside it', async (t) => {
  const outside = await tempProject(t, { 'elsewhere/test.yml': 'hosts:\n  x: { port: ssh }\n' });
  const cwd = await tempProject(t, {});
  await t.throwsAsync(loadInventory(path.join(outside, 'elsewhere/test.yml'), { cwd }), {
    message: `${path.join(outside, 'elsewhere/test.yml')}:2:14: host "x": port must be a number from 1 to 65535, got the string "ssh"`,
  });
  const inv = await loadInventory(path.join(outside, 'elsewhere/test.yml'), { cwd: outside }).catch((e) => e);
  t.is(
    inv.message,
    'elsewhere/test.yml:2:14: host "x": port must be a number from 1 to 65535, got the string "ssh"',
  );
});
