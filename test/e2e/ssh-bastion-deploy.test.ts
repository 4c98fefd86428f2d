/**
 * `verdandi deploy`, `status` and `rollback` of a small site on a host reachable only through a
 * bastion: `hj-private` takes SSH only from `hj-bastion`'s address (iptables in its network namespace
 * resets every other connection). The commits travel as a git bundle over the host's SSH connection,
 * which runs inside the bastion's (a `direct-tcpip` channel): the first deploy follows the inventory's
 * `jump:`, the second an ssh config's `ProxyJump` under `Match originalhost`, given by `--ssh-config`
 * (a `Match exec` above it is skipped with a warning).
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { removeProject, runCli, writeInventory } from '../helpers/cli.js';
import { sshOnlyFrom } from '../helpers/faults.js';
import { useTestHosts } from '../helpers/testhosts.js';
import {
  commitBranch,
  httpGet,
  makeRepo,
  onFirstUse,
  provisionOrThrow,
  staticPythonSite,
  webInventory,
} from './deploy-helpers.js';

const BASTION = 'hj-bastion';
const PRIVATE = 'hj-private';
const hosts = useTestHosts(test, [BASTION, PRIVATE]);
let dir = '';
let repo = '';
const sha: Record<string, string> = {};
let undoFirewall: (() => Promise<void>) | undefined;

/** The site and the inventories: the private host jumps through the bastion, or has no jump at all. */
function inventory(name: string, jump: boolean): string {
  const b = hosts.get(BASTION);
  return writeInventory(
    dir,
    webInventory(
      hosts.get(PRIVATE),
      ['nginx', 'supervisor', 'sites'],
      { sites: [staticPythonSite(repo)] },
      {
        host: jump ? { jump: BASTION } : {},
        others: { [BASTION]: { address: b.address, user: 'root', key: b.key } },
      },
    ),
    name,
  );
}

const ready = onFirstUse(async () => {
  undoFirewall = await sshOnlyFrom(PRIVATE, hosts.get(BASTION).address);
  dir = await mkdtemp(join(tmpdir(), 'vd-bastion-deploy-'));
  repo = join(dir, 'web');
  sha.a = await makeRepo(repo, { 'index.html': 'behind the bastion\n' });
  sha.b = await commitBranch(repo, 'main', 'second', { 'index.html': 'second release\n' });
  await provisionOrThrow(inventory('jumped', true), { cwd: dir, timeoutMs: 20 * 60_000 });
}, 30);

test.after.always(async () => {
  await undoFirewall?.();
  if (dir) removeProject(dir);
});

const cli = (...args: string[]) => runCli(args, { cwd: dir, timeoutMs: 10 * 60_000 });
const served = async () => (await httpGet(`http://${hosts.get(PRIVATE).address}/REVISION`)).body.trim();

test.serial('the private host refuses SSH from this machine', async (t) => {
  await ready(t);
  const direct = await hosts.ssh(PRIVATE, 'true', { timeoutMs: 30_000 });
  t.not(direct.code, 0);
  const ping = await cli('ping', inventory('direct', false), '--limit', PRIVATE);
  t.is(ping.code, 3, ping.stdout + ping.stderr);
});

test.serial('deploy through the inventory jump: the commits travel through the bastion', async (t) => {
  await ready(t);
  const res = await cli('deploy', inventory('jumped', true), '--branch', 'main');
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, /send commits +ok/);
  t.is(await served(), sha.a);
});

test.serial(
  'deploy through an ssh config ProxyJump under Match (--ssh-config), the inventory saying no jump',
  async (t) => {
    await ready(t);
    const b = hosts.get(BASTION);
    const p = hosts.get(PRIVATE);
    const config = join(dir, 'ssh_config');
    writeFileSync(
      config,
      [
        'Host gate',
        `  HostName ${b.address}`,
        `  IdentityFile ${b.key}`,
        '  IdentitiesOnly yes',
        // Never run: Verdandi warns and skips the block (else the host would be reached directly).
        `Match originalhost ${p.address} exec "false"`,
        '  ProxyJump none',
        `Match originalhost ${p.address}`,
        '  ProxyJump gate',
        '',
      ].join('\n'),
    );
    const env = inventory('configured', false);
    const res = await cli('deploy', env, '--branch', 'second', '--ssh-config', config);
    t.is(res.code, 0, res.stdout + res.stderr);
    t.regex(res.stdout, /send commits +ok/);
    t.true(res.stderr.includes(`warning: ${config}:5: Match exec is not evaluated`), res.stderr);
    t.is(await served(), sha.b);

    const status = await cli('status', env, '--ssh-config', config);
    t.is(status.code, 0, status.stdout + status.stderr);
    t.regex(status.stdout, new RegExp(`second @ ${sha.b.slice(0, 7)}`));
    t.regex(status.stdout, /RUNNING/);
  },
);

test.serial('status and rollback through the inventory jump', async (t) => {
  await ready(t);
  const env = inventory('jumped', true);
  const status = await cli('status', env, '--json');
  t.is(status.code, 0, status.stdout + status.stderr);
  t.is(JSON.parse(status.stdout).sites[0].record.commit, sha.b);

  const back = await cli('rollback', env);
  t.is(back.code, 0, back.stdout + back.stderr);
  t.is(await served(), sha.a);
  const after = await cli('status', env);
  t.regex(after.stdout, new RegExp(`main @ ${sha.a.slice(0, 7)}`));
});
