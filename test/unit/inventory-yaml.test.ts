import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { InventoryError, loadInventory } from '../../src/inventory/index.js';
import { parseYaml, type YamlNode } from '../../src/inventory/yaml-positions.js';
import { lines, tempProject } from '../fixtures/inventory/temp-project.js';

const verdandiProject = fileURLToPath(new URL('../fixtures/inventory/verdandi', import.meta.url));

test('Verdandi YAML: hosts get their connection settings, with defaults and the all group', async (t) => {
  const inv = await loadInventory('staging', { cwd: verdandiProject });
  t.is(inv.env, 'staging');
  t.is(inv.format, 'verdandi');
  t.is(inv.file, path.join(verdandiProject, 'inventories/staging.yml'));
  t.is(inv.projectDir, verdandiProject);
  t.deepEqual([...inv.hosts.keys()], ['web1', 'web2', 'db1', 'lb1', 'lb2', 'db2']);
  const settings = (name: string) => {
    const { address, port, user, key, become } = inv.hosts.get(name)!;
    return { address, port, user, key, become };
  };
  // user comes from the top-level vars; a non-root user implies become; key is relative to the file.
  t.deepEqual(settings('web1'), {
    address: '10.231.1.2',
    port: 22,
    user: 'deploy',
    key: path.join(verdandiProject, 'keys/id_staging'),
    become: true,
  });
  t.deepEqual(settings('web2'), {
    address: '10.231.2.2',
    port: 2222,
    user: 'deploy',
    key: undefined,
    become: true,
  });
  // `db1: 10.231.3.2` is the address shorthand.
  t.deepEqual(settings('db1'), {
    address: '10.231.3.2',
    port: 22,
    user: 'deploy',
    key: undefined,
    become: true,
  });
  // A host defined inside a group's hosts mapping; root needs no become.
  t.deepEqual(settings('db2'), {
    address: '10.231.4.2',
    port: 22,
    user: 'root',
    key: undefined,
    become: false,
  });
  // A range defines several hosts; the address defaults to the name; become: false is kept.
  t.deepEqual(settings('lb2'), { address: 'lb2', port: 22, user: 'deploy', key: undefined, become: false });
  t.is(inv.hosts.get('web1')!.origin.line, 9);
  t.deepEqual(inv.hosts.get('lb1')!.origin, { file: 'inventories/staging.yml', line: 19, column: 3 });
});

test('Verdandi YAML: vars merge by precedence (all < group_vars/all < parent < child < host < host_vars)', async (t) => {
  const inv = await loadInventory('staging', { cwd: verdandiProject });
  const web1 = inv.hosts.get('web1')!;
  t.deepEqual(web1.vars, {
    timezone: 'UTC', // group_vars/all.yml beats the inventory's top-level vars
    log_level: 'info',
    nginx_sites: [{ server_name: 'example.org', listen: 80 }],
    tls: true,
    nginx_workers: 5, // group vars 2 < group_vars/web.yml 3 < group_vars/web/10-tls.yml 5
    app_port: 8003, // all 8000 < host 8001 < host_vars/web1.yml 8003
  });
  const web2 = inv.hosts.get('web2')!;
  t.is(web2.vars.nginx_workers, 4, 'canary (a child of web) beats web and its group_vars');
  t.is(web2.vars.release_channel, 'canary');
  t.is(web2.vars.app_name, 'shop', 'a host vars: mapping is merged with its other keys');
  t.is(web2.vars.app_port, 8000);
  t.is(inv.hosts.get('db1')!.vars.release_channel, 'stable');
  t.false('ignored' in web1.vars, 'group_vars of a group this inventory does not have are ignored');
  for (const host of inv.hosts.values()) {
    for (const setting of ['address', 'port', 'user', 'key', 'become']) t.false(setting in host.vars);
  }
});

test('Verdandi YAML: every var records where its winning value was written', async (t) => {
  const inv = await loadInventory('staging', { cwd: verdandiProject });
  t.deepEqual(inv.hosts.get('web1')!.varOrigins, {
    timezone: { file: 'inventories/group_vars/all.yml', line: 1, column: 11 },
    log_level: { file: 'inventories/group_vars/all.yml', line: 2, column: 12 },
    nginx_sites: { file: 'inventories/staging.yml', line: 28, column: 7 },
    'nginx_sites[0]': { file: 'inventories/staging.yml', line: 29, column: 11 },
    'nginx_sites[0].server_name': { file: 'inventories/staging.yml', line: 29, column: 24 },
    'nginx_sites[0].listen': { file: 'inventories/staging.yml', line: 30, column: 19 },
    tls: { file: 'inventories/group_vars/web/10-tls.yml', line: 1, column: 6 },
    nginx_workers: { file: 'inventories/group_vars/web/10-tls.yml', line: 2, column: 16 },
    app_port: { file: 'inventories/host_vars/web1.yml', line: 1, column: 11 },
    // Keys written on their value's line have their own position (`path:`), for unknown-key errors.
    'timezone:': { file: 'inventories/group_vars/all.yml', line: 1, column: 1 },
    'log_level:': { file: 'inventories/group_vars/all.yml', line: 2, column: 1 },
    'nginx_sites[0].server_name:': { file: 'inventories/staging.yml', line: 29, column: 11 },
    'nginx_sites[0].listen:': { file: 'inventories/staging.yml', line: 30, column: 11 },
    'tls:': { file: 'inventories/group_vars/web/10-tls.yml', line: 1, column: 1 },
    'nginx_workers:': { file: 'inventories/group_vars/web/10-tls.yml', line: 2, column: 1 },
    'app_port:': { file: 'inventories/host_vars/web1.yml', line: 1, column: 1 },
  });
  t.deepEqual(inv.hosts.get('web2')!.varOrigins.nginx_workers, {
    file: 'inventories/staging.yml',
    line: 39,
    column: 22,
  });
});

test('Verdandi YAML: roles come from all, then the groups by precedence, each once, with their vars', async (t) => {
  const inv = await loadInventory('staging', { cwd: verdandiProject });
  t.deepEqual(inv.hosts.get('web2')!.roles, ['base', 'nginx', 'supervisor']);
  t.deepEqual(inv.hosts.get('db1')!.roles, ['base', 'postgres', 'nginx']);
  t.deepEqual(inv.hosts.get('lb1')!.roles, ['base']);
  t.deepEqual(inv.hosts.get('web1')!.roleEntries, [
    {
      role: 'base',
      vars: {},
      varOrigins: {},
      origin: { file: 'inventories/staging.yml', line: 6, column: 9 },
      group: 'all',
    },
    {
      role: 'nginx',
      vars: {},
      varOrigins: {},
      origin: { file: 'inventories/staging.yml', line: 32, column: 9 },
      group: 'web',
    },
    {
      role: 'supervisor',
      vars: { supervisor_programs: ['app'] },
      varOrigins: {
        supervisor_programs: { file: 'inventories/staging.yml', line: 35, column: 32 },
        'supervisor_programs:': { file: 'inventories/staging.yml', line: 35, column: 11 },
        'supervisor_programs[0]': { file: 'inventories/staging.yml', line: 35, column: 33 },
      },
      origin: { file: 'inventories/staging.yml', line: 33, column: 15 },
      group: 'web',
    },
  ]);
});

test('Verdandi YAML: groups have depths, children, and all/ungrouped as in Ansible', async (t) => {
  const inv = await loadInventory('staging', { cwd: verdandiProject });
  t.deepEqual([...inv.groups.keys()], ['all', 'ungrouped', 'web', 'canary', 'db', 'loadbalancers']);
  const summary = (name: string) => {
    const g = inv.groups.get(name)!;
    return { hosts: g.hosts, children: g.children, depth: g.depth, roles: g.roles };
  };
  t.deepEqual(summary('all'), {
    hosts: ['web1', 'web2', 'db1', 'lb1', 'lb2', 'db2'],
    children: ['web', 'db', 'loadbalancers'],
    depth: 0,
    roles: ['base'],
  });
  t.deepEqual(summary('canary'), { hosts: ['web2'], children: [], depth: 2, roles: [] });
  t.deepEqual(summary('ungrouped'), { hosts: [], children: [], depth: 1, roles: [] });
  t.deepEqual(inv.groups.get('canary')!.origin, { file: 'inventories/staging.yml', line: 36, column: 3 });
  t.deepEqual(inv.hosts.get('web2')!.groups, ['web', 'canary']);
  t.deepEqual(inv.groupsOf('web2'), ['all', 'web', 'canary']);
  t.deepEqual(inv.groupsOf('nope'), []);
});

test('a plain hosts: map (as the test-host harness writes it) loads, every host in all and ungrouped', async (t) => {
  const inv = await loadInventory('local', { cwd: verdandiProject });
  const box = inv.hosts.get('box1')!;
  t.is(box.address, '10.231.9.2');
  t.is(box.key, '/var/cache/verdandi/id_ed25519');
  t.false(box.become);
  t.deepEqual(box.roles, []);
  t.deepEqual(inv.groupsOf('box1'), ['all', 'ungrouped']);
  t.deepEqual(inv.groups.get('ungrouped')!.hosts, ['box1']);
});

test('same-depth groups: the one defined later in the file wins; a deeper group always wins', async (t) => {
  const cwd = await tempProject(t, {
    'inventories/test.yml': lines(
      'hosts:',
      '  x:',
      'groups:',
      '  alpha:',
      '    hosts: [x]',
      '    vars: { color: red, size: 1 }',
      '  beta:',
      '    hosts: [x]',
      '    children: [gamma]',
      '    vars: { color: blue, size: 2 }',
      '  gamma:',
      '    vars: { size: 3 }',
    ),
    'inventories/group_vars/alpha.yml': 'shape: square\n',
  });
  const inv = await loadInventory('test', { cwd });
  t.deepEqual(inv.hosts.get('x')!.vars, { color: 'blue', size: 2, shape: 'square' });
  t.deepEqual(inv.groupsOf('x'), ['all', 'alpha', 'beta']);

  const deeper = await tempProject(t, {
    'inventories/test.yml': lines(
      'hosts: { x: }',
      'groups:',
      '  child:',
      '    hosts: [x]',
      '    vars: { color: green }',
      '  parent:',
      '    children: [child]',
      '    vars: { color: red }',
    ),
  });
  const inv2 = await loadInventory('test', { cwd: deeper });
  t.is(inv2.hosts.get('x')!.vars.color, 'green', 'child wins over its parent even when written first');
  t.deepEqual(inv2.groupsOf('x'), ['all', 'parent', 'child']);
});

test('mappings are replaced, not deep-merged', async (t) => {
  const cwd = await tempProject(t, {
    'inventories/test.yml': lines(
      'vars:',
      '  app: { port: 80, workers: 2 }',
      'hosts:',
      '  x:',
      '    app: { port: 8080 }',
    ),
  });
  const inv = await loadInventory('test', { cwd });
  t.deepEqual(inv.hosts.get('x')!.vars.app, { port: 8080 });
  t.deepEqual(Object.keys(inv.hosts.get('x')!.varOrigins), ['app', 'app:', 'app.port', 'app.port:']);
});

test('extra vars beat everything, connection settings included', async (t) => {
  const inv = await loadInventory('staging', {
    cwd: verdandiProject,
    extraVars: { app_port: 9000, ansible_user: 'admin', key: 'keys/other' },
  });
  const web1 = inv.hosts.get('web1')!;
  t.is(web1.vars.app_port, 9000);
  t.deepEqual(web1.varOrigins.app_port, { file: '--var' });
  t.is(web1.user, 'admin');
  t.is(
    web1.key,
    path.join(verdandiProject, 'keys/other'),
    '--var paths are relative to the project directory',
  );
  t.deepEqual(inv.extraVars, { app_port: 9000, ansible_user: 'admin', key: 'keys/other' });
});

test('a host key path with ~ is in the home directory', async (t) => {
  const cwd = await tempProject(t, { 'inventories/test.yml': 'hosts: { x: { key: ~/.ssh/id_x } }\n' });
  const inv = await loadInventory('test', { cwd });
  t.is(inv.hosts.get('x')!.key, path.join((await import('node:os')).homedir(), '.ssh/id_x'));
});

test('merge keys (<<) and anchors work in inventories', async (t) => {
  const cwd = await tempProject(t, {
    'inventories/test.yml': lines(
      'hosts:',
      '  web1: &web { user: deploy, port: 2200 }',
      '  web2:',
      '    <<: *web',
      '    address: 10.0.0.2',
    ),
  });
  const inv = await loadInventory('test', { cwd });
  t.is(inv.hosts.get('web2')!.user, 'deploy');
  t.is(inv.hosts.get('web2')!.port, 2200);
  t.is(inv.hosts.get('web2')!.address, '10.0.0.2');
});

test('host keys near a setting but plausible as vars stay vars', async (t) => {
  const cwd = await tempProject(t, {
    'inventories/test.yml': lines(
      'hosts:',
      '  web1:',
      '    users: [ann]',
      '    host: db1',
      '    ports: [80]',
      '    usr: x',
    ),
  });
  const inv = await loadInventory('test', { cwd });
  t.deepEqual(inv.hosts.get('web1')!.vars, { users: ['ann'], host: 'db1', ports: [80], usr: 'x' });
});

test('dates stay strings (YAML 1.2 core schema)', async (t) => {
  const cwd = await tempProject(t, {
    'inventories/test.yml': 'vars: { since: 2024-01-31 }\nhosts: { x: }\n',
  });
  const inv = await loadInventory('test', { cwd });
  t.is(inv.hosts.get('x')!.vars.since, '2024-01-31');
});

// --- errors: each names file:line:column and what was expected ---------------------------------

async function loadError(t: import('ava').ExecutionContext, files: Record<string, string>): Promise<string> {
  const cwd = await tempProject(t, files);
  const error = await t.throwsAsync(loadInventory('test', { cwd }), { instanceOf: InventoryError });
  return error?.message ?? '';
}

const errorCases: Array<[string, Record<string, string>, string]> = [
  [
    'YAML syntax error',
    { 'inventories/test.yml': lines('hosts:', '  web1:', '    address: 10.0.0.1', '   port: 22') },
    'inventories/test.yml:4:4: YAML syntax error: bad indentation of a mapping entry',
  ],
  [
    'duplicate key',
    { 'inventories/test.yml': lines('hosts:', '  web1:', '  web1:') },
    'inventories/test.yml:3:3: YAML syntax error: duplicated mapping key',
  ],
  [
    'unknown top-level key',
    { 'inventories/test.yml': lines('hosts: { x: }', 'gropus:', '  web: {}') },
    'inventories/test.yml:2:1: unknown top-level key "gropus" (did you mean "groups"?): expected vars, hosts, groups or roles',
  ],
  [
    'the inventory is a list',
    { 'inventories/test.yml': lines('- web1', '- web2') },
    'inventories/test.yml:1:1: the inventory must be a mapping (name: value), got a list',
  ],
  [
    'host entry is a list',
    { 'inventories/test.yml': lines('hosts:', '  web1: [10.0.0.1]') },
    'inventories/test.yml:2:9: host "web1" must be a mapping (address:, port:, user:, key:, become:, vars) or an address, got a list',
  ],
  [
    'typo in a host setting',
    { 'inventories/test.yml': lines('hosts:', '  web1:', '    adress: 10.0.0.1') },
    'inventories/test.yml:3:5: host "web1": unknown setting "adress" (did you mean "address"?); to have a var with this name, put it under vars:',
  ],
  [
    'roles on a host',
    { 'inventories/test.yml': lines('hosts:', '  web1:', '    roles: [nginx]') },
    'inventories/test.yml:3:5: host "web1" has roles:, but roles are given to groups: put the host in a group that lists the roles (or list them at the top level for every host)',
  ],
  [
    'host vars: is not a mapping',
    { 'inventories/test.yml': lines('hosts:', '  web1:', '    vars: [a, b]') },
    'inventories/test.yml:3:11: vars: of host "web1" must be a mapping (name: value), got a list',
  ],
  [
    'unknown key in a group',
    { 'inventories/test.yml': lines('hosts: { web1: }', 'groups:', '  web:', '    host: [web1]') },
    'inventories/test.yml:4:5: group "web": unknown key "host" (did you mean "hosts"?): expected hosts, children, vars or roles',
  ],
  [
    'a group lists a host that is not defined',
    { 'inventories/test.yml': lines('hosts:', '  web1:', 'groups:', '  web:', '    hosts: [web1, web3]') },
    'inventories/test.yml:5:19: host "web3" in group "web" is not defined under hosts: (did you mean "web1"?); defined hosts: web1',
  ],
  [
    'a child group that does not exist',
    {
      'inventories/test.yml': lines(
        'hosts: { web1: }',
        'groups:',
        '  web:',
        '    hosts: [web1]',
        '    children:',
        '      - canary',
      ),
    },
    'inventories/test.yml:6:9: child group "canary" of "web" is not defined; defined groups: web',
  ],
  [
    'a cycle in children',
    {
      'inventories/test.yml': lines(
        'groups:',
        '  a: { children: [b] }',
        '  b: { children: [c] }',
        '  c: { children: [a] }',
      ),
    },
    'inventories/test.yml:4:19: groups form a cycle through children: a → b → c → a',
  ],
  [
    'all as a child',
    { 'inventories/test.yml': lines('groups:', '  a: { children: [all] }') },
    'inventories/test.yml:2:19: group "all" cannot be a child of "a": it holds every host',
  ],
  [
    'a port that is not a number',
    { 'inventories/test.yml': lines('hosts:', '  web1:', '    port: ssh') },
    'inventories/test.yml:3:11: host "web1": port must be a number from 1 to 65535, got the string "ssh"',
  ],
  [
    'a port out of range, set for a whole group',
    {
      'inventories/test.yml': lines(
        'hosts: { web1: }',
        'groups:',
        '  web:',
        '    hosts: [web1]',
        '    vars: { port: 70000 }',
      ),
    },
    'inventories/test.yml:5:19: host "web1": port must be a number from 1 to 65535, got the number 70000',
  ],
  [
    'become that is not a boolean',
    { 'inventories/test.yml': lines('hosts:', '  web1: { become: maybe }') },
    'inventories/test.yml:2:19: host "web1": become must be true or false, got the string "maybe"',
  ],
  [
    'a user that is not a name',
    { 'inventories/test.yml': lines('hosts:', '  web1: { user: [a] }') },
    'inventories/test.yml:2:17: host "web1": user must be a user name, got a list',
  ],
  [
    'a connection that is neither ssh nor local',
    { 'inventories/test.yml': lines('hosts:', '  web1: { connection: docker }') },
    'inventories/test.yml:2:23: host "web1": connection must be ssh or local, got the string "docker"',
  ],
  [
    'a group name with a pattern character',
    { 'inventories/test.yml': lines('groups:', '  web:prod: {}') },
    'inventories/test.yml:2:3: group name "web:prod" may not contain spaces or any of , : ! & * ? [ ] ~ (they have a meaning in --limit patterns)',
  ],
  [
    'roles: that is not a list',
    { 'inventories/test.yml': lines('groups:', '  web:', '    roles: nginx') },
    'inventories/test.yml:3:12: roles: must be a list of role names or of { role: name, vars: {...} }, got the string "nginx"',
  ],
  [
    'a roles: entry without role:',
    { 'inventories/test.yml': lines('groups:', '  web:', '    roles:', '      - vars: { a: 1 }') },
    'inventories/test.yml:4:9: a roles: entry written as a mapping needs role: <name>',
  ],
  [
    'an unknown key in a roles: entry',
    {
      'inventories/test.yml': lines(
        'groups:',
        '  web:',
        '    roles:',
        '      - role: nginx',
        '        tags: [a]',
      ),
    },
    'inventories/test.yml:5:9: unknown key "tags" in a roles: entry: expected role and vars',
  ],
  [
    'a host range that goes backwards',
    { 'inventories/test.yml': lines('hosts:', '  web[3:1]:') },
    'inventories/test.yml:2:3: host range [3:1] goes backwards: write the smaller bound first',
  ],
  [
    'a syntax error in a group_vars file',
    {
      'inventories/test.yml': lines('hosts: { web1: }', 'groups: { web: { hosts: [web1] } }'),
      'inventories/group_vars/web.yml': lines('nginx_workers: 4', 'sites: [a, b'),
    },
    'inventories/group_vars/web.yml:3:1: YAML syntax error: unexpected end of the stream within a flow collection',
  ],
  [
    'a host_vars file that is not a mapping',
    {
      'inventories/test.yml': lines('hosts: { web1: }'),
      'inventories/host_vars/web1.yml': lines('- a', '- b'),
    },
    'inventories/host_vars/web1.yml:1:1: expected a mapping of vars (name: value), got a list',
  ],
  [
    'an ansible-vault encrypted group_vars file',
    {
      'inventories/test.yml': lines('hosts: { web1: }'),
      'inventories/group_vars/all.yml': lines('$ANSIBLE_VAULT;1.1;AES256', '6162636465'),
    },
    'inventories/group_vars/all.yml:1:1: this file is encrypted with ansible-vault, which Verdandi does not read: move its values to secrets/<env>.yml.asc and refer to them as "{{ secrets.name }}"',
  ],
];

for (const [name, files, message] of errorCases) {
  test(`error: ${name}`, async (t) => {
    t.is(await loadError(t, files), message);
  });
}

test('errors carry their origin for tools', async (t) => {
  const cwd = await tempProject(t, { 'inventories/test.yml': lines('hosts:', '  web1:', '    port: ssh') });
  const error = await t.throwsAsync(loadInventory('test', { cwd }), { instanceOf: InventoryError });
  t.deepEqual(error?.origin, { file: 'inventories/test.yml', line: 3, column: 11 });
  t.is(error?.detail, 'host "web1": port must be a number from 1 to 65535, got the string "ssh"');
});

// --- the YAML position locator ----------------------------------------------------------------

function positions(node: YamlNode, at = '$', out: Record<string, string> = {}): Record<string, string> {
  out[at] = `${node.origin.line}:${node.origin.column}`;
  for (const [key, child] of node.entries ?? []) positions(child, `${at}.${key}`, out);
  for (const [i, child] of (node.items ?? []).entries()) positions(child, `${at}[${i}]`, out);
  return out;
}

test('YAML positions: block and flow values, quoted keys, block scalars, null items, integer-like keys', (t) => {
  const text = lines(
    '# comment', //                        1
    'a: 1   # trailing', //                 2
    'b:', //                                3
    'c: "str"', //                          4
    'd: |', //                              5
    '  block', //                           6
    'e: {x: 1, y: [1, 2]}', //              7
    '2: numeric key', //                    8
    'f:', //                                9
    '  - one', //                           10
    '  - k: v', //                          11
    '    l: 2', //                          12
    '  -', //                               13
    '  - [p, q]', //                        14
    '"quoted key": 5', //                   15
  );
  t.deepEqual(positions(parseYaml(text, 'x.yml')!), {
    $: '2:1',
    '$.a': '2:4',
    '$.b': '3:1', // nothing written: the key
    '$.c': '4:4',
    '$.d': '5:4',
    '$.e': '7:4',
    '$.e.x': '7:8',
    '$.e.y': '7:14',
    '$.e.y[0]': '7:15',
    '$.e.y[1]': '7:18',
    '$.2': '8:4',
    '$.f': '9:1', // a block list: the key's line
    '$.f[0]': '10:5',
    '$.f[1]': '11:5',
    '$.f[1].k': '11:8',
    '$.f[1].l': '12:8',
    '$.f[2]': '9:1', // a bare `-`: the list's position
    '$.f[3]': '14:5',
    '$.f[3][0]': '14:6',
    '$.f[3][1]': '14:9',
    '$.quoted key': '15:15',
  });
  t.deepEqual(
    [...parseYaml(text, 'x.yml')!.entries!.keys()],
    ['a', 'b', 'c', 'd', 'e', '2', 'f', 'quoted key'],
  );
});

test('YAML positions: a byte order mark and CRLF line ends do not shift columns', (t) => {
  const node = parseYaml('\ufeffa: 1\r\nb:\r\n  c: x\r\n', 'x.yml')!;
  t.deepEqual(positions(node), { $: '1:1', '$.a': '1:4', '$.b': '2:1', '$.b.c': '3:6' });
});

test('YAML positions: an empty document is undefined', (t) => {
  t.is(parseYaml('# only a comment\n', 'x.yml'), undefined);
});
