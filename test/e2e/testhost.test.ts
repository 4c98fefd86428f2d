/**
 * The test hosts themselves, for real: two hosts boot with systemd running, install a package from the
 * Debian mirror, reach each other; `testhost up` reuses running hosts and writes inventories/local.yml;
 * `ping` reaches them (and names a dead address unreachable); `testhost down` leaves nothing behind.
 * Needs root on Linux (as CI has). The tests run in order: the last one stops the hosts.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import yaml from 'js-yaml';
import { run } from '../../src/testhost/exec.js';
import { down, list } from '../../src/testhost/index.js';
import { acquire, newLeaseId, release } from '../../src/testhost/leases.js';
import {
  cacheDirFromEnv,
  hostPaths,
  hostVethName,
  layout,
  namespaceName,
} from '../../src/testhost/naming.js';
import { globalRulesPresent } from '../../src/testhost/network.js';
import { nspawnProcessesOn } from '../../src/testhost/processes.js';
import { runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const A = 'testhost-a';
const B = 'testhost-b';
const hosts = useTestHosts(test, [A, B]);
const projectDir = mkdtempSync(join(tmpdir(), 'vd-testhost-e2e-'));

/** The inventory entry of a test host, in the `hosts:` map format that local.yml uses too. */
function entry(name: string) {
  const { address, user, key } = hosts.get(name);
  return { address, user, key };
}

test.serial('each host has booted: systemctl is-system-running says running', async (t) => {
  for (const name of [A, B]) {
    // systemd may still be finishing some units right after sshd answers: wait until it settles.
    let state = '';
    const deadline = Date.now() + 60_000;
    do {
      state = (await hosts.ssh(name, 'systemctl is-system-running')).stdout.trim();
      if (state === 'starting') await new Promise((resolve) => setTimeout(resolve, 500));
    } while (state === 'starting' && Date.now() < deadline);
    t.is(state, 'running', `${name}: ${(await hosts.ssh(name, 'systemctl --failed --no-legend')).stdout}`);
    t.is((await hosts.ssh(name, 'hostname')).stdout.trim(), name);
  }
});

test.serial('apt inside a host installs a package from the Debian mirror', async (t) => {
  const install = await hosts.ssh(
    A,
    'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q tree',
  );
  t.is(install.code, 0, install.stderr);
  const version = await hosts.ssh(A, 'tree --version');
  t.is(version.code, 0);
  t.regex(version.stdout, /^tree v\d/);
});

test.serial('the hosts reach each other', async (t) => {
  for (const [from, to] of [
    [A, B],
    [B, A],
  ]) {
    const banner = await hosts.ssh(
      from,
      `timeout 5 bash -c 'exec 3<>/dev/tcp/${hosts.get(to).address}/22 && head -c 8 <&3'`,
    );
    t.is(banner.stdout, 'SSH-2.0-', `${from} → ${to}: ${banner.stderr}`);
  }
});

test.serial('testhost up of running hosts reuses them and writes inventories/local.yml', async (t) => {
  const pidsBefore = (await list()).filter((h) => h.name === A || h.name === B).map((h) => h.pid);
  const res = await runCli(['testhost', 'up', A, B], { cwd: projectDir });
  t.is(res.code, 0, res.stderr);
  t.regex(res.stdout, new RegExp(`${A}\\s+${hosts.get(A).address.replace(/\./g, '\\.')}`));
  const pidsAfter = (await list()).filter((h) => h.name === A || h.name === B).map((h) => h.pid);
  t.deepEqual(pidsAfter, pidsBefore, 'the same nspawn processes: not started twice');

  const inventory = yaml.load(readFileSync(join(projectDir, 'inventories', 'local.yml'), 'utf8')) as {
    hosts: Record<string, unknown>;
    groups: Record<string, unknown>;
  };
  t.deepEqual(inventory.hosts[A], entry(A));
  t.deepEqual(inventory.hosts[B], entry(B));
  t.deepEqual(inventory.groups, {});
});

test.serial('ping of the two hosts exits 0', async (t) => {
  const inventory = writeInventory(projectDir, { hosts: { [A]: entry(A), [B]: entry(B) } }, 'two');
  const res = await runCli(['ping', inventory], { cwd: projectDir });
  t.is(res.code, 0, `${res.stdout}\n${res.stderr}`);
});

test.serial('ping with a dead address exits 3 and names it unreachable', async (t) => {
  // Slots above 250 are never handed out: nothing answers at 10.231.254.2.
  const dead = { address: '10.231.254.2', user: 'root', key: hosts.get(A).key };
  const inventory = writeInventory(projectDir, { hosts: { [A]: entry(A), 'dead-host': dead } }, 'half');
  const res = await runCli(['ping', inventory], { cwd: projectDir, timeoutMs: 120_000 });
  t.is(res.code, 3, `${res.stdout}\n${res.stderr}`);
  const deadLine = `${res.stdout}\n${res.stderr}`.split('\n').find((line) => line.includes('dead-host'));
  t.regex(deadLine ?? '', /unreachable/);
  t.notRegex(res.stdout.split('\n').find((line) => line.includes(A)) ?? '', /unreachable/);
});

test.serial('a shared host is reused by every holder and stopped by the last one', async (t) => {
  const name = 'testhost-shared';
  t.teardown(() => down([name]));
  const first = await newLeaseId();
  const second = await newLeaseId();
  const [host] = await acquire(first, [name], { shared: true });
  const pid = (await list()).find((h) => h.name === name)?.pid;
  t.truthy(pid);
  t.deepEqual(await acquire(second, [name], { shared: true }), [host]);
  t.is((await list()).find((h) => h.name === name)?.pid, pid, 'the same machine, not a second boot');

  // A file that wants the host for itself while others share it chose a name already in use.
  const exclusive = await newLeaseId();
  const err = await t.throwsAsync(acquire(exclusive, [name]));
  t.regex(err.message, /test host testhost-shared is already used by process \d+ \(shared\)/);

  await release(first, [name]);
  t.is((await list()).find((h) => h.name === name)?.status, 'running', 'still held by the second');
  await release(second, [name]);
  t.false(
    (await list()).some((h) => h.name === name),
    'stopped with the last lease',
  );
});

test.serial('testhost down leaves no namespace, veth, nspawn process or overlay behind', async (t) => {
  const l = layout(cacheDirFromEnv());
  const before = (await list()).filter((h) => h.name === A || h.name === B);
  t.is(before.length, 2);

  const res = await runCli(['testhost', 'down', A, B], { cwd: projectDir });
  t.is(res.code, 0, res.stderr);

  const namespaces = (await run('ip', ['netns', 'list'])).stdout;
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout;
  const machines = (await nspawnProcessesOn(l.cacheDir)).map((p) => p.machine);
  for (const host of before) {
    t.false(namespaces.includes(namespaceName(host.name)), `namespace of ${host.name}`);
    t.false(new RegExp(`^\\d+: ${hostVethName(host.slot)}[@:]`, 'm').test(links), `veth of ${host.name}`);
    t.false(machines.includes(host.name), `nspawn process of ${host.name}`);
    t.false(
      existsSync(`/proc/${host.pid}/cmdline`) &&
        readFileSync(`/proc/${host.pid}/cmdline`, 'utf8').includes('nspawn'),
    );
    t.false(existsSync(hostPaths(l, host.name).dir), `overlay directory of ${host.name}`);
  }
  const remaining = await list();
  t.false(remaining.some((h) => h.name === A || h.name === B));
  const inventory = yaml.load(readFileSync(join(projectDir, 'inventories', 'local.yml'), 'utf8')) as {
    hosts: Record<string, unknown>;
  };
  t.false(A in inventory.hosts || B in inventory.hosts);
  // Other test files may have hosts running at the same time; when none is left, the rules are gone too.
  if (remaining.length === 0) t.false(await globalRulesPresent(), 'NAT/FORWARD rules left with no host');
});
