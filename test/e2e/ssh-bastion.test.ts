/**
 * Hosts behind a bastion, on real test hosts: `bas-private` takes SSH only from `bas-bastion`'s address
 * (iptables in its network namespace resets every other connection), so the machine running Verdandi
 * cannot reach it directly. Through the bastion (`jump:` in the inventory, or an ssh config with a Host
 * alias and ProxyJump given by `--ssh-config`): provision of a role using a secret, a playbook run,
 * `ping -v` saying where each setting came from, both hops' host keys recorded and checked. A bastion
 * lost mid-run makes its host unreachable: exit 3, the message names the bastion.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { run } from '../../src/testhost/exec.js';
import { SSH_OPTIONS } from '../../src/testhost/machine.js';
import { removeProject, runCli, writeInventory } from '../helpers/cli.js';
import { sshOnlyFrom, startVerdandi, waitOnHost } from '../helpers/faults.js';
import { type TestHosts, useTestHosts } from '../helpers/testhosts.js';

const BASTION = 'bas-bastion';
const PRIVATE = 'bas-private';
const hosts = useTestHosts(test, [BASTION, PRIVATE]);
const dir = mkdtempSync(join(tmpdir(), 'vd-bastion-'));
const SECRET = 'tok_bastion_9f2c41d7e0';
const CONTENT = 'reached through the bastion\n';

/** The test's own view of the private host: plain OpenSSH through the bastion (ProxyCommand -W). */
const throughBastion: TestHosts = {
  get: (name) => hosts.get(name),
  all: () => hosts.all(),
  ssh: (name, command, opts = {}) => {
    const target = hosts.get(name);
    const bastion = hosts.get(BASTION);
    const proxy = `ssh ${SSH_OPTIONS.join(' ')} -i ${bastion.key} -W %h:%p root@${bastion.address}`;
    return run(
      'ssh',
      [...SSH_OPTIONS, '-o', 'ConnectTimeout=10', '-o', `ProxyCommand=${proxy}`, '-i', target.key].concat([
        `root@${target.address}`,
        '--',
        command,
      ]),
      { input: opts.input, timeoutMs: opts.timeoutMs ?? 5 * 60_000 },
    );
  },
};

let undoFirewall: (() => Promise<void>) | undefined;

/** The firewall and the project, once the hosts are booted (useTestHosts' own before hook). */
let setUp: Promise<void> | undefined;
const ready = () => {
  setUp ??= setUpOnce();
  return setUp;
};

async function setUpOnce(): Promise<void> {
  undoFirewall = await sshOnlyFrom(PRIVATE, hosts.get(BASTION).address);

  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets', 'prod.vault-password'), 'bastion vault password\n', { mode: 0o600 });
  const set = await runCli(['secrets', 'set', 'prod', 'api_token'], { cwd: dir, input: SECRET });
  if (set.code !== 0) throw new Error(`secrets set: ${set.stderr}`);
  mkdirSync(join(dir, 'roles', 'behind'), { recursive: true });
  writeFileSync(
    join(dir, 'roles', 'behind', 'index.ts'),
    `import { copy, defineRole, z } from 'verdandi';
export default defineRole({
  name: 'behind',
  vars: z.object({ behind_token: z.string() }),
  tasks: (vars) => [
    copy({ path: '/etc/behind.conf', content: ${JSON.stringify(CONTENT)}, mode: '0644' }),
    copy({ path: '/etc/behind.env', content: 'TOKEN=' + vars.behind_token + '\\n', mode: '0600' }),
  ],
});
`,
  );
}

test.after.always(async () => {
  await undoFirewall?.();
  removeProject(dir);
});

function inventory(name: string, privateHost: Record<string, unknown>): string {
  const b = hosts.get(BASTION);
  return writeInventory(
    dir,
    {
      hosts: {
        [BASTION]: { address: b.address, user: b.user, key: b.key },
        [PRIVATE]: privateHost,
      },
      groups: { app: { hosts: [PRIVATE], roles: ['behind'] } },
      vars: { behind_token: '{{ secrets.api_token }}' },
    },
    name,
  );
}

const cli = (...args: string[]) => runCli(args, { cwd: dir, timeoutMs: 5 * 60_000 });

test.serial('the private host cannot be reached directly, by OpenSSH or Verdandi', async (t) => {
  await ready();
  const direct = await hosts.ssh(PRIVATE, 'true', { timeoutMs: 30_000 });
  t.not(direct.code, 0);
  t.is((await throughBastion.ssh(PRIVATE, 'echo via')).stdout, 'via\n');
  const p = hosts.get(PRIVATE);
  inventory('direct', { address: p.address, user: p.user, key: p.key });
  const ping = await cli('ping', 'direct', '--limit', PRIVATE);
  t.is(ping.code, 3, ping.stdout + ping.stderr);
  t.regex(
    ping.stdout,
    new RegExp(
      `unreachable  ${PRIVATE}  refused: root@${p.address.replace(/\./g, '\\.')}:22: connection refused`,
    ),
  );
});

test.serial(
  'jump: in the inventory: provision (a role with a secret) and run, host keys of both hops recorded',
  async (t) => {
    const p = hosts.get(PRIVATE);
    inventory('prod', { address: p.address, user: p.user, key: p.key, jump: BASTION });
    const first = await cli('provision', 'prod');
    t.is(first.code, 0, first.stdout + first.stderr);
    t.false((first.stdout + first.stderr).includes(SECRET));
    const state = await throughBastion.ssh(
      PRIVATE,
      'sha256sum /etc/behind.conf | cut -d" " -f1; stat -c %a /etc/behind.env; cat /etc/behind.env',
    );
    t.is(state.code, 0, state.stderr);
    t.is(state.stdout, `${createHash('sha256').update(CONTENT).digest('hex')}\n600\nTOKEN=${SECRET}\n`);
    // Each hop's key is checked like any other: accept-new recorded both.
    const known = readFileSync(join(dir, '.verdandi', 'known_hosts'), 'utf8');
    t.regex(known, new RegExp(`^${hosts.get(BASTION).address.replace(/\./g, '\\.')} ssh-`, 'm'));
    t.regex(known, new RegExp(`^${p.address.replace(/\./g, '\\.')} ssh-`, 'm'));

    const again = await cli('provision', 'prod', '--json');
    t.is(again.code, 0, again.stderr);
    t.like(JSON.parse(again.stdout).hosts[PRIVATE], { changed: 0, failed: 0 });

    writeFileSync(
      join(dir, 'site.ts'),
      `import { definePlaybook, shell } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: '${PRIVATE}', tasks: () => [
  shell({ name: 'write the hostname', script: 'hostname > /etc/behind-ran' }),
] }] });
`,
    );
    const ran = await cli('run', 'prod', 'site.ts');
    t.is(ran.code, 0, ran.stdout + ran.stderr);
    t.is((await throughBastion.ssh(PRIVATE, 'cat /etc/behind-ran')).stdout.trim(), PRIVATE);

    // A changed key of the host behind the bastion is refused like any other.
    const tampered = known.replace(
      new RegExp(`^(${p.address.replace(/\./g, '\\.')} ssh-ed25519 )\\S+`, 'm'),
      '$1AAAAC3NzaC1lZDI1NTE5AAAAIBfDZ9ONhG2VvDOmzW0vrvCMYXX9qZcuV3xpJ2xTQZqP',
    );
    t.not(tampered, known, 'the host had an ed25519 key line');
    writeFileSync(join(dir, '.verdandi', 'known_hosts'), tampered);
    const refused = await cli('ping', 'prod', '--limit', PRIVATE);
    t.is(refused.code, 3);
    t.regex(
      refused.stdout,
      new RegExp(
        `unreachable  ${PRIVATE}  hostkey: the host key of ${p.address.replace(/\./g, '\\.')} changed`,
      ),
    );
    writeFileSync(join(dir, '.verdandi', 'known_hosts'), known);
  },
);

test.serial(
  'an ssh config with a Host alias and ProxyJump, by --ssh-config; ping -v says where each value came from',
  async (t) => {
    const b = hosts.get(BASTION);
    const p = hosts.get(PRIVATE);
    const config = join(dir, 'ssh_config');
    writeFileSync(
      config,
      [
        'Host gate',
        `  HostName ${b.address}`,
        '  User root',
        `  IdentityFile ${b.key}`,
        '  IdentitiesOnly yes',
        '',
        'Host app-behind',
        `  HostName ${p.address}`,
        '  ProxyJump gate',
        `  IdentityFile ${p.key}`,
        '  IdentitiesOnly yes',
        '  ConnectTimeout 7',
        '',
      ].join('\n'),
    );
    // The inventory names the alias and nothing else about how to connect.
    writeInventory(dir, { hosts: { 'app-behind': null } }, 'aliased');
    const ping = await cli('ping', 'aliased', '--ssh-config', config, '-v');
    t.is(ping.code, 0, ping.stdout + ping.stderr);
    const lines = ping.stdout;
    t.regex(lines, /^ok +app-behind +\(\d+ ms\)$/m);
    t.true(lines.includes(`    address           ${p.address}  (ssh config ${config}:8)`), lines);
    t.true(lines.includes('    port              22  (default)'), lines);
    t.true(lines.includes('    user              root  (default)'), lines);
    t.true(lines.includes(`    key               ${p.key}  (ssh config ${config}:10)`), lines);
    t.true(lines.includes(`    connect timeout   7 s  (ssh config ${config}:12)`), lines);
    t.true(lines.includes(`    jump              gate  (ssh config ${config}:9)`), lines);
    t.true(lines.includes('    route             gate → app-behind'), lines);
    t.true(lines.includes(`      address           ${b.address}  (ssh config ${config}:2)`), lines);
    t.true(lines.includes(`      user              root  (ssh config ${config}:3)`), lines);

    // Without the config file, the alias is a name nobody resolves.
    const without = await cli('ping', 'aliased', '--connect-timeout', '5');
    t.is(without.code, 3);
  },
);

test.serial(
  'an unknown jump host or a cycle is a user error naming the inventory line, before any connection',
  async (t) => {
    const p = hosts.get(PRIVATE);
    inventory('typo', { address: p.address, key: p.key, jump: 'bas-bastoin' });
    const typo = await cli('ping', 'typo');
    t.is(typo.code, 1);
    t.regex(
      typo.stderr,
      /typo\.yml:\d+:\d+: jump host "bas-bastoin" of bas-private: not an inventory host \(did you mean "bas-bastion"\?\)/,
    );
    t.notRegex(typo.stderr, /\n +at /);
    const b = hosts.get(BASTION);
    writeInventory(
      dir,
      {
        hosts: {
          [BASTION]: { address: b.address, key: b.key, jump: PRIVATE },
          [PRIVATE]: { address: p.address, key: p.key, jump: BASTION },
        },
      },
      'cycle',
    );
    const cycle = await cli('provision', 'cycle');
    t.is(cycle.code, 1);
    t.regex(cycle.stderr, /jump hosts form a cycle: bas-bastion → bas-private → bas-bastion/);
  },
);

test.serial(
  'the bastion lost mid-run: its host is unreachable, exit 3, the message names the bastion',
  async (t) => {
    const p = hosts.get(PRIVATE);
    inventory('prod', { address: p.address, user: p.user, key: p.key, jump: BASTION });
    writeFileSync(
      join(dir, 'slow.ts'),
      `import { definePlaybook, shell } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: '${PRIVATE}', tasks: () => [
  shell({ name: 'long work', script: 'rm -f /tmp/bas-marker; touch /tmp/bas-marker; sleep 120' }),
] }] });
`,
    );
    await throughBastion.ssh(PRIVATE, 'rm -f /tmp/bas-marker');
    const running = startVerdandi(['run', 'prod', 'slow.ts'], { cwd: dir, timeoutMs: 3 * 60_000 });
    await waitOnHost(throughBastion, PRIVATE, 'test -e /tmp/bas-marker');
    // Kill every sshd session process on the bastion but the one running this command (and its monitor).
    const killed = await hosts.ssh(
      BASTION,
      `mon=$(ps -o ppid= -p $PPID | tr -d ' '); n=0; for p in $(pgrep -f '^sshd: root'); do [ "$p" = "$PPID" ] || [ "$p" = "$mon" ] && continue; kill -9 "$p" && n=$((n+1)); done; echo $n`,
    );
    t.true(Number(killed.stdout.trim()) >= 1, killed.stdout + killed.stderr);
    const res = await running.result;
    t.is(res.code, 3, res.stdout + res.stderr);
    t.regex(
      res.stdout + res.stderr,
      new RegExp(
        `${PRIVATE} .*lost the jump host ${BASTION} \\(root@${hosts.get(BASTION).address.replace(/\./g, '\\.')}:22\\)`,
      ),
    );
    t.notRegex(res.stderr, /\n +at /);
    t.true(res.ms < 60_000, `took ${res.ms} ms`);
  },
);
