import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parseIniValue } from '../../src/inventory/ansible-ini.js';
import { InventoryError, loadInventory } from '../../src/inventory/index.js';
import { lines, tempProject } from '../fixtures/inventory/temp-project.js';

const iniProject = fileURLToPath(new URL('../fixtures/inventory/ansible-ini', import.meta.url));
const yamlProject = fileURLToPath(new URL('../fixtures/inventory/ansible-yaml', import.meta.url));

const settings = (host: { address: string; port: number; user: string; key?: string; become: boolean }) => ({
  address: host.address,
  port: host.port,
  user: host.user,
  key: host.key,
  become: host.become,
});

test('Ansible INI: hosts, ranges, host:port and connection variables', async (t) => {
  // A file without extension (Ansible's `hosts`) next to group_vars/ and host_vars/.
  const inv = await loadInventory('hosts', { cwd: iniProject });
  t.is(inv.format, 'ansible-ini');
  t.is(inv.env, 'hosts');
  t.is(inv.projectDir, iniProject);
  t.deepEqual([...inv.hosts.keys()], ['bastion', 'web01', 'web02', 'web3', 'db1']);
  t.deepEqual(settings(inv.hosts.get('bastion')!), {
    address: '192.0.2.10',
    port: 2201,
    user: 'root',
    key: undefined,
    become: false,
  });
  // ansible_become=true from [web:vars]
  t.deepEqual(settings(inv.hosts.get('web02')!), {
    address: 'web02',
    port: 22,
    user: 'vagrant',
    key: undefined,
    become: true,
  });
  t.deepEqual(settings(inv.hosts.get('web3')!), {
    address: '192.0.2.13',
    port: 2222,
    user: 'root',
    key: undefined,
    become: true,
  });
  // ansible_user from host_vars/db1.yml; the key's ~ is the home directory.
  t.deepEqual(settings(inv.hosts.get('db1')!), {
    address: '192.0.2.20',
    port: 22,
    user: 'postgres',
    key: path.join(os.homedir(), '.ssh/db_key'),
    become: true,
  });
  t.is(inv.hosts.get('db1')!.connection, 'ssh');
  t.deepEqual(inv.hosts.get('web01')!.origin, { file: 'hosts', line: 5, column: 1 });
});

test('Ansible INI: values are typed, comments and quotes handled', async (t) => {
  const inv = await loadInventory('hosts', { cwd: iniProject });
  const web3 = inv.hosts.get('web3')!;
  t.deepEqual(web3.vars, {
    env_name: 'production',
    backup_hour: 3,
    nginx_workers: 4,
    motd: 'Hello # not a comment in a vars section',
    quoted: '8080',
    app_name: 'my app',
    debug: true,
    workers: 4,
    ratio: 1.5,
    mode: '0755',
    version: '3.10',
    tags: ['a', 'b'],
    ports: [80, 443],
    note: 'a # b',
  });
  t.deepEqual(web3.varOrigins, {
    env_name: { file: 'hosts', line: 23, column: 10 },
    backup_hour: { file: 'group_vars/prod.yml', line: 2, column: 14 },
    // A YAML key on its value's line has its own position too (INI lines do not record it).
    'backup_hour:': { file: 'group_vars/prod.yml', line: 2, column: 1 },
    nginx_workers: { file: 'hosts', line: 9, column: 15 },
    motd: { file: 'hosts', line: 11, column: 8 },
    quoted: { file: 'hosts', line: 12, column: 8 },
    app_name: { file: 'hosts', line: 6, column: 44 },
    debug: { file: 'hosts', line: 6, column: 59 },
    workers: { file: 'hosts', line: 6, column: 71 },
    ratio: { file: 'hosts', line: 6, column: 79 },
    mode: { file: 'hosts', line: 6, column: 88 },
    version: { file: 'hosts', line: 6, column: 101 },
    tags: { file: 'hosts', line: 6, column: 111 },
    ports: { file: 'hosts', line: 6, column: 130 },
    note: { file: 'hosts', line: 6, column: 144 },
  });
});

test('Ansible INI: children give depths; the child group beats its parent', async (t) => {
  const inv = await loadInventory('hosts', { cwd: iniProject });
  t.deepEqual([...inv.groups.keys()], ['all', 'ungrouped', 'web', 'db', 'prod']);
  t.deepEqual(inv.groups.get('prod')!.children, ['web', 'db']);
  t.is(inv.groups.get('prod')!.depth, 1);
  t.is(inv.groups.get('web')!.depth, 2);
  t.deepEqual(inv.groupsOf('web01'), ['all', 'prod', 'web']);
  t.deepEqual(inv.groupsOf('bastion'), ['all', 'ungrouped']);
  t.deepEqual(inv.groups.get('ungrouped')!.hosts, ['bastion']);
  t.is(inv.hosts.get('web01')!.vars.nginx_workers, 4, '[web:vars] beats [prod:vars]');
  t.is(inv.hosts.get('db1')!.vars.nginx_workers, 2);
  t.is(inv.hosts.get('db1')!.vars.pg_version, 15, 'host_vars/db1.yml');
  t.deepEqual(inv.groups.get('all')!.children, ['prod']);
});

test('Ansible INI: a host in several groups merges its vars, the later line winning', async (t) => {
  const cwd = await tempProject(t, {
    'inventories/test.ini': lines('[a]', 'h1 color=red size=1', '[b]', 'h1 color=blue'),
  });
  const inv = await loadInventory('test', { cwd });
  t.deepEqual(inv.hosts.get('h1')!.vars, { color: 'blue', size: 1 });
  t.deepEqual(inv.hosts.get('h1')!.groups, ['a', 'b']);
  t.deepEqual(inv.hosts.get('h1')!.origin, { file: 'inventories/test.ini', line: 2, column: 1 });
});

test('Ansible INI: [all:vars] and [all:children] apply to everything', async (t) => {
  const cwd = await tempProject(t, {
    'inventories/test': lines('[all:vars]', 'ansible_user=deploy', '[web]', 'w1', '[all:children]', 'web'),
  });
  const inv = await loadInventory('test', { cwd });
  t.is(inv.format, 'ansible-ini');
  t.is(inv.hosts.get('w1')!.user, 'deploy');
  t.is(inv.groups.get('web')!.depth, 1);
});

test('INI values: numbers only when they read back the same; booleans; JSON collections', (t) => {
  t.is(parseIniValue('8080'), 8080);
  t.is(parseIniValue('-3'), -3);
  t.is(parseIniValue('1.5'), 1.5);
  t.is(parseIniValue('0755'), '0755');
  t.is(parseIniValue('3.10'), '3.10');
  t.is(parseIniValue('1e3'), '1e3');
  t.is(parseIniValue('12345678901234567890'), '12345678901234567890');
  t.is(parseIniValue('yes'), true);
  t.is(parseIniValue('False'), false);
  t.is(parseIniValue('NO'), false);
  t.deepEqual(parseIniValue('{"a":1}'), { a: 1 });
  t.is(parseIniValue('[not json'), '[not json');
  t.is(parseIniValue('hello'), 'hello');
});

test('Ansible YAML: groups nested under all, hosts with vars, ranges', async (t) => {
  const inv = await loadInventory('inventory.yml', { cwd: yamlProject });
  t.is(inv.format, 'ansible-yaml');
  t.deepEqual([...inv.hosts.keys()], ['bastion', 'web1', 'web2', 'web3', 'db1']);
  t.deepEqual(settings(inv.hosts.get('web3')!), {
    address: '192.0.2.13',
    port: 2222,
    user: 'deploy',
    key: undefined,
    become: true,
  });
  t.deepEqual(settings(inv.hosts.get('db1')!), {
    address: 'db1',
    port: 22,
    user: 'root',
    key: path.join(yamlProject, 'keys/db'),
    become: true, // `ansible_become: yes` (a string in YAML 1.2) is understood
  });
  t.is(inv.hosts.get('web1')!.vars.nginx_workers, 4);
  t.is(inv.hosts.get('web3')!.vars.nginx_workers, 8, 'canary is a child of web');
  t.deepEqual(inv.hosts.get('web3')!.varOrigins, {
    nginx_workers: { file: 'inventory.yml', line: 21, column: 28 },
    'nginx_workers:': { file: 'inventory.yml', line: 21, column: 13 },
  });
  t.deepEqual(inv.groupsOf('web3'), ['all', 'web', 'canary']);
  t.deepEqual(inv.groupsOf('bastion'), ['all', 'ungrouped']);
  t.deepEqual(inv.groups.get('all')!.children, ['web', 'db']);
  t.deepEqual(inv.groups.get('canary')!.origin, { file: 'inventory.yml', line: 17, column: 9 });
  t.deepEqual(inv.hosts.get('web2')!.origin, { file: 'inventory.yml', line: 10, column: 9 });
});

test('Ansible YAML: a group written in two places is one group', async (t) => {
  const cwd = await tempProject(t, {
    'inventories/test.yml': lines(
      'all:',
      '  children:',
      '    prod:',
      '      children:',
      '        web:',
      '          hosts: { w1: }',
      '    web:',
      '      vars: { color: blue }',
    ),
  });
  const inv = await loadInventory('test', { cwd });
  t.deepEqual(inv.groupsOf('w1'), ['all', 'prod', 'web']);
  t.is(inv.groups.get('web')!.depth, 2);
  t.is(inv.hosts.get('w1')!.vars.color, 'blue');
});

test('the format is told by the content: Verdandi YAML, Ansible YAML or INI, with or without extension', async (t) => {
  const cwd = await tempProject(t, {
    'inventories/ansible-hosts': lines(
      '# Ansible YAML in a file without extension',
      'all:',
      '  hosts:',
      '    a:',
    ),
    'inventories/verdandi-hosts': lines('---', 'hosts:', '  a:'),
    'inventories/ini-hosts': lines('a ansible_host=10.0.0.1'),
    'inventories/web-only.yml': lines('web:', '  hosts: { a: }'),
    'inventories/vars-only.yml': lines('vars: { x: 1 }'),
    'inventories/empty.yml': lines('# nothing yet'),
  });
  const format = async (env: string) => (await loadInventory(env, { cwd })).format;
  t.is(await format('ansible-hosts'), 'ansible-yaml');
  t.is(await format('verdandi-hosts'), 'verdandi');
  t.is(await format('ini-hosts'), 'ansible-ini');
  t.is(await format('web-only'), 'ansible-yaml');
  t.is(await format('vars-only'), 'verdandi');
  const empty = await loadInventory('empty', { cwd });
  t.is(empty.hosts.size, 0);
  t.deepEqual([...empty.groups.keys()], ['all', 'ungrouped']);
});

// --- errors ----------------------------------------------------------------------------------------

const errorCases: Array<[string, string, string, string]> = [
  [
    'INI: malformed section header',
    'test.ini',
    lines('[web', 'w1'),
    'inventories/test.ini:1:1: malformed section header "[web": expected [group], [group:vars] or [group:children]',
  ],
  [
    'INI: unknown section type',
    'test.ini',
    lines('[web]', 'w1', '  [web:hosts]'),
    'inventories/test.ini:3:7: unknown section type ":hosts" in [web:hosts]: expected [web], [web:vars] or [web:children]',
  ],
  [
    'INI: vars for a group that is not defined',
    'test.ini',
    lines('[web]', 'w1', '[wbe:vars]', 'a=1'),
    'inventories/test.ini:3:2: group "wbe" is not defined (no [wbe] or [wbe:children] section) (did you mean "web"?); defined groups: web',
  ],
  [
    'INI: a child group that is not defined',
    'test.ini',
    lines('[web]', 'w1', '[prod:children]', 'web', 'dbs'),
    'inventories/test.ini:5:1: group "dbs" is not defined (no [dbs] or [dbs:children] section); defined groups: web, prod',
  ],
  [
    'INI: a word without = after the host',
    'test.ini',
    lines('[web]', 'w1 ansible_user=x deploy'),
    'inventories/test.ini:2:19: expected key=value after the host name, got "deploy" (quote values that contain spaces)',
  ],
  [
    'INI: a vars line without =',
    'test.ini',
    lines('[web]', 'w1', '[web:vars]', '  nginx_workers'),
    'inventories/test.ini:4:3: expected key=value in [web:vars], got "nginx_workers"',
  ],
  [
    'INI: an unterminated quote',
    'test.ini',
    lines('[web]', 'w1 motd="hello'),
    'inventories/test.ini:2:9: unterminated " quote: close it on the same line',
  ],
  [
    'INI: a port that is not a number',
    'test.ini',
    lines('[web]', 'w1 ansible_port=ssh'),
    'inventories/test.ini:2:17: host "w1": port must be a number from 1 to 65535, got the string "ssh"',
  ],
  [
    'INI: a cycle in children',
    'test.ini',
    lines('[a:children]', 'b', '[b:children]', 'a'),
    'inventories/test.ini:4:1: groups form a cycle through children: a → b → a',
  ],
  [
    'INI: a host range mixing numbers and letters',
    'test.ini',
    lines('[web]', 'web[1:c]'),
    'inventories/test.ini:2:1: host range [1:c] mixes a number and a letter: use [1:3] or [a:c]',
  ],
  [
    'Ansible YAML: unknown key in a group',
    'test.yml',
    lines('all:', '  children:', '    web:', '      host:', '        w1:'),
    'inventories/test.yml:4:7: group "web": unknown key "host" (did you mean "hosts"?): expected hosts, children or vars',
  ],
  [
    'Ansible YAML: hosts as a list',
    'test.yml',
    lines('all:', '  hosts:', '    - w1', '  children: {}'),
    'inventories/test.yml:2:3: hosts: of group "all" must be a mapping of host names (web1: or web1: { ansible_host: ... }), got a list',
  ],
  [
    'Ansible YAML: a host whose vars are not a mapping',
    'test.yml',
    lines('all:', '  hosts:', '    w1: 10.0.0.1'),
    'inventories/test.yml:3:9: host "w1" must be a mapping (name: value), got the string "10.0.0.1"',
  ],
];

for (const [name, file, text, message] of errorCases) {
  test(`error: ${name}`, async (t) => {
    const cwd = await tempProject(t, { [`inventories/${file}`]: text });
    const error = await t.throwsAsync(loadInventory('test', { cwd }), { instanceOf: InventoryError });
    t.is(error?.message, message);
  });
}
