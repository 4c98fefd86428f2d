import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { matchesHashed } from '../../src/connection/known-hosts.js';
import { describeChain, parseJump, SshRouting } from '../../src/connection/route.js';
import { loadSshConfig, SshConfig } from '../../src/connection/ssh-config.js';
import { loadInventory } from '../../src/inventory/index.js';
import type { InventoryHost } from '../../src/inventory/types.js';
import { UserError } from '../../src/util/errors.js';

// Include paths are relative to ~/.ssh: every test here has its own home directory.
const home = mkdtempSync(join(tmpdir(), 'vd-sshcfg-'));
process.env.HOME = home;
mkdirSync(join(home, '.ssh', 'conf.d'), { recursive: true });
test.after.always(() => rmSync(home, { recursive: true, force: true }));

function configFile(name: string, text: string): string {
  const file = join(home, '.ssh', name);
  writeFileSync(file, text);
  return file;
}

function host(name: string, given: Partial<InventoryHost> = {}): InventoryHost {
  const origins: InventoryHost['settingOrigins'] = {};
  for (const key of ['address', 'port', 'user', 'key', 'become', 'jump'] as const) {
    if (given[key] !== undefined) origins[key] = { file: 'inventories/prod.yml', line: 7 };
  }
  return {
    name,
    address: name,
    port: 22,
    user: 'root',
    become: false,
    groups: [],
    vars: {},
    varOrigins: {},
    roles: [],
    origin: { file: 'inventories/prod.yml', line: 3 },
    ...given,
    settingOrigins: origins,
  };
}

function routing(config: SshConfig, ...hosts: InventoryHost[]): SshRouting {
  return new SshRouting(config, new Map(hosts.map((h) => [h.name, h])));
}

test('Host patterns: the first value obtained wins, negations exclude, each value knows its line', (t) => {
  const file = configFile(
    'config-patterns',
    [
      '# the team',
      'Host web* !web3',
      '  HostName 10.0.0.%h',
      '  Port=2222',
      '  User deploy',
      '',
      'Host *',
      '  User nobody',
      '  Port 22',
      '  ConnectTimeout 4',
      '  ServerAliveInterval 7',
      '',
    ].join('\n'),
  );
  const config = loadSshConfig(file);
  const web1 = config.lookup('web1').settings;
  t.is(web1.hostname?.value, '10.0.0.%h');
  t.deepEqual(web1.port, { value: '2222', source: { file, line: 4 } });
  t.deepEqual(web1.user, { value: 'deploy', source: { file, line: 5 } });
  t.deepEqual(web1.connecttimeout?.source, { file, line: 10 });
  const web3 = config.lookup('web3').settings;
  t.is(web3.user?.value, 'nobody');
  t.is(web3.hostname, undefined);

  const e = routing(config).endpointOf(host('web1'));
  t.is(e.address, '10.0.0.web1');
  t.is(e.port, 2222);
  t.is(e.user, 'deploy');
  t.true(e.become, 'a user other than root from the ssh config means sudo, as in the inventory');
  t.is(e.connectTimeoutMs, 4000);
  t.is(e.keepaliveIntervalMs, 7000);
  t.is(e.sources.port, `ssh config ${file}:4`);
  t.is(e.sources.address, `ssh config ${file}:3`);
});

test('the inventory explicit values win over the ssh config; defaults say so', (t) => {
  const file = configFile(
    'config-precedence',
    'Host db1\n  User admin\n  Port 2200\n  HostName db.internal\n',
  );
  const config = loadSshConfig(file);
  const e = routing(config).endpointOf(host('db1', { user: 'ops', port: 22 }));
  t.is(e.user, 'ops');
  t.is(e.sources.user, 'inventory inventories/prod.yml:7');
  t.is(e.port, 22);
  t.is(e.address, 'db.internal');
  const other = routing(config).endpointOf(host('elsewhere'));
  t.is(other.user, 'root');
  t.is(other.sources.user, 'default');
  t.is(other.sources.key, 'ssh-agent  (default)');
});

test('the ssh config is looked up by the address the inventory gives', (t) => {
  const config = loadSshConfig(configFile('config-address', 'Host 10.9.*\n  User ops\n'));
  t.is(routing(config).endpointOf(host('web1', { address: '10.9.0.4' })).user, 'ops');
});

test('Include: read where it stands (relative to ~/.ssh, wildcards in name order), inside a block only when it applies', (t) => {
  configFile('conf.d/20-late', 'Host *\n  User late\n');
  configFile('conf.d/10-early', 'Host app\n  Port 2022\n');
  configFile('scoped', 'IdentityFile ~/.ssh/id_bastion\nIdentitiesOnly yes\n');
  const file = configFile(
    'config-include',
    ['Include conf.d/*', 'Host bastion', '  Include scoped', 'Host *', '  User never', ''].join('\n'),
  );
  const config = loadSshConfig(file);
  const app = config.lookup('app');
  t.deepEqual(app.settings.port, {
    value: '2022',
    source: { file: join(home, '.ssh', 'conf.d/10-early'), line: 2 },
  });
  t.is(app.settings.user?.value, 'late', 'the included file comes first, before the later Host *');
  t.is(app.identityFiles.length, 0, 'the Include inside Host bastion applies to bastion only');
  const bastion = routing(config).endpointOf(host('bastion'));
  t.deepEqual(bastion.identityFiles, [join(home, '.ssh', 'id_bastion')]);
  t.true(bastion.identitiesOnly);
  t.regex(bastion.sources.key ?? '', /scoped:1/);
  // An Include under a Host line that does not apply: nothing of the included file does, even its own
  // Host blocks (what ssh does; the Include belongs to the block above it, whatever the indentation).
  const nested = loadSshConfig(
    configFile(
      'config-include-nested',
      ['Host bastion', 'Include conf.d/*', 'Host *', '  User never', ''].join('\n'),
    ),
  );
  t.is(nested.lookup('app').settings.port, undefined);
  t.is(nested.lookup('app').settings.user?.value, 'never');
  t.is(nested.lookup('bastion').settings.user?.value, 'late');
});

test('an Include loop is read once; Match blocks apply when they hold', (t) => {
  configFile('loop', 'Include loop\nUser looped\n');
  const config = loadSshConfig(
    configFile('config-loop', 'Match host y\n  Port 1\nMatch all\n  Port 2\nInclude loop\n'),
  );
  t.is(config.lookup('x').settings.port?.value, '2');
  t.is(config.lookup('y').settings.port?.value, '1');
  t.is(config.lookup('x').settings.user?.value, 'looped');
});

test('no ~/.ssh/config, or no HOME: nothing changes', (t) => {
  const saved = process.env.HOME;
  try {
    process.env.HOME = join(home, 'nowhere');
    const e = routing(loadSshConfig()).endpointOf(host('web1'));
    t.deepEqual([e.address, e.port, e.user, e.key, e.via], ['web1', 22, 'root', undefined, undefined]);
    delete process.env.HOME;
    t.is(loadSshConfig().lookup('web1').identityFiles.length, 0);
  } finally {
    process.env.HOME = saved;
  }
});

test('--ssh-config that cannot be read is a user error naming it; a bad value names file:line', (t) => {
  const err = t.throws(() => loadSshConfig(join(home, 'missing-config')), { instanceOf: UserError });
  t.regex(err?.message ?? '', /cannot read the ssh config file .*missing-config \(ENOENT\)/);
  const file = configFile('config-bad', 'Host *\n  Port eighty\n');
  const bad = t.throws(() => routing(loadSshConfig(file)).endpointOf(host('web1')), {
    instanceOf: UserError,
  });
  t.is(bad?.message, `${file}:2: Port must be a number from 1 to 65535, got "eighty"`);
});

test('StrictHostKeyChecking and UserKnownHostsFile are read, with tokens expanded', (t) => {
  const config = loadSshConfig(
    configFile('config-keys', 'Host *\n  StrictHostKeyChecking ask\n  UserKnownHostsFile ~/.ssh/known_%h\n'),
  );
  const e = routing(config).endpointOf(host('web1'));
  t.is(e.hostKeyChecking, 'yes');
  t.is(e.knownHostsFile, join(home, '.ssh', 'known_web1'));
});

test('jump: inventory hosts, user@host:port, [v6]:port, chains', (t) => {
  const names = new Set(['bastion']);
  t.deepEqual(parseJump('bastion', names), [{ host: 'bastion', text: 'bastion' }]);
  t.deepEqual(parseJump('admin@gate.example.org:2222, bastion', names), [
    { address: 'gate.example.org', user: 'admin', port: 2222, text: 'admin@gate.example.org:2222' },
    { host: 'bastion', text: 'bastion' },
  ]);
  t.deepEqual(parseJump('[fd00::1]:22', names), [
    { address: 'fd00::1', user: undefined, port: 22, text: '[fd00::1]:22' },
  ]);
});

test('jump: an unknown bare name is refused with a did-you-mean and the inventory line; bad ports and empty hops too', (t) => {
  const names = new Set(['bastion']);
  const where = { origin: { file: 'inventories/prod.yml', line: 9 } };
  const err = t.throws(() => parseJump('bastoin', names, { strict: true, where }), { instanceOf: UserError });
  t.regex(
    err?.message ?? '',
    /^inventories\/prod\.yml:9: jump host "bastoin": not an inventory host \(did you mean "bastion"\?\)/,
  );
  t.is(err?.exitCode, 1);
  t.throws(() => parseJump('a@b:70000', names), { message: /port 70000 is not from 1 to 65535/ });
  t.throws(() => parseJump('bastion,,x.org', names), { message: /empty name in the list/ });
  // A Host alias of the ssh config is known.
  t.notThrows(() => parseJump('gate', names, { strict: true, isAlias: (n) => n === 'gate' }));
});

test('jump chains: the first hop reached its own way, the next through it; the host behind the last', (t) => {
  const config = loadSshConfig(
    configFile('config-chain', 'Host gate\n  HostName 192.0.2.1\n  User jumper\n'),
  );
  const outer = host('outer', { address: '198.51.100.7' });
  const bastion = host('bastion', { address: '10.0.0.1', jump: 'outer' });
  const web = host('web1', { address: '10.0.1.5', jump: 'bastion, gate' });
  const e = routing(config, outer, bastion, web).endpointOf(web);
  t.deepEqual(describeChain(e), ['outer', 'bastion', 'gate', 'web1']);
  t.is(e.via?.address, '192.0.2.1');
  t.is(e.via?.user, 'jumper');
  t.is(e.sources.jump, 'bastion, gate  (inventory inventories/prod.yml:7)');
});

test('ProxyJump from the ssh config, and the inventory jump above it; ProxyJump none', (t) => {
  const file = configFile(
    'config-proxy',
    'Host 10.1.*\n  ProxyJump ops@bastion.example.org:2222\nHost direct\n  ProxyJump none\n',
  );
  const config = loadSshConfig(file);
  const web = host('web1', { address: '10.1.0.5' });
  const e = routing(config, web).endpointOf(web);
  t.is(e.via?.name, 'ops@bastion.example.org:2222');
  t.deepEqual([e.via?.user, e.via?.port, e.via?.address], ['ops', 2222, 'bastion.example.org']);
  t.is(e.via?.sources.user, 'jump ops@bastion.example.org:2222');
  t.is(e.sources.jump, `ops@bastion.example.org:2222  (ssh config ${file}:2)`);
  const mine = host('web2', { address: '10.1.0.6', jump: 'root@192.0.2.9' });
  t.is(routing(config, mine).endpointOf(mine).via?.address, '192.0.2.9');
  t.is(routing(config).endpointOf(host('direct')).via, undefined);
});

test('jump cycles are refused, through the inventory or the ssh config', (t) => {
  const a = host('a', { jump: 'b' });
  const b = host('b', { jump: 'a' });
  const err = t.throws(() => routing(SshConfig.empty(), a, b).endpointOf(a), { instanceOf: UserError });
  t.is(err?.message, 'inventories/prod.yml:7: jump hosts form a cycle: a → b → a');
  const self = host('solo', { jump: 'solo' });
  t.throws(() => routing(SshConfig.empty(), self).endpointOf(self), { message: /cycle: solo → solo/ });
  const file = configFile('config-cycle', 'Host *\n  ProxyJump gate.example.org\n');
  t.throws(() => routing(loadSshConfig(file)).endpointOf(host('web1')), {
    message: `${file}:2: jump hosts form a cycle: web1 → gate.example.org → gate.example.org`,
  });
});

test('hashed known_hosts names (HashKnownHosts yes) are matched', (t) => {
  // `ssh-keygen -H` of "[10.0.0.5]:2222" with this salt.
  const salt = Buffer.from('0123456789abcdefghij').toString('base64');
  const hash = createHmac('sha1', Buffer.from(salt, 'base64')).update('[10.0.0.5]:2222').digest('base64');
  t.true(matchesHashed(`|1|${salt}|${hash}`, '[10.0.0.5]:2222'));
  t.false(matchesHashed(`|1|${salt}|${hash}`, '10.0.0.5'));
});

test('jump: none on a host (its group jumps) reaches it directly, above the ssh config ProxyJump', (t) => {
  const config = loadSshConfig(configFile('config-none', 'Host *\n  ProxyJump gate.example.org\n'));
  const bastion: InventoryHost = {
    ...host('bastion'),
    settingOrigins: { jump: { file: 'inventories/prod.yml', line: 4 } },
  };
  const e = routing(config, bastion).endpointOf(bastion);
  t.is(e.via, undefined);
  t.is(e.sources.jump, 'none  (inventory inventories/prod.yml:4)');
});

test('the inventory: jump is a connection setting (not a var), none clears a group jump, its line is kept', async (t) => {
  const project = mkdtempSync(join(tmpdir(), 'vd-jump-inv-'));
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  mkdirSync(join(project, 'inventories'));
  writeFileSync(
    join(project, 'inventories', 'prod.yml'),
    [
      'hosts:',
      '  bastion: { address: 203.0.113.10, jump: none }',
      '  web1: { address: 10.0.1.11 }',
      'groups:',
      '  dc:',
      '    hosts: [bastion, web1]',
      '    vars: { jump: bastion }',
      '',
    ].join('\n'),
  );
  const inventory = await loadInventory('prod', { cwd: project });
  const web1 = inventory.hosts.get('web1')!;
  const bastion = inventory.hosts.get('bastion')!;
  t.is(web1.jump, 'bastion');
  t.false('jump' in web1.vars);
  t.is(web1.settingOrigins?.jump?.line, 7);
  t.is(bastion.jump, undefined);
  const r = new SshRouting(SshConfig.empty(), inventory.hosts);
  t.deepEqual(describeChain(r.endpointOf(web1)), ['bastion', 'web1']);
  t.is(r.endpointOf(bastion).via, undefined);
});
