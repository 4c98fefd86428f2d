/**
 * `verdandi deploy`, `status` and `rollback` of a small site on a host reachable only through a
 * bastion: `hj-private` takes SSH only from `hj-bastion`'s address (iptables in its network namespace
 * resets every other connection). The commits travel as a git bundle over the host's SSH connection,
 * which runs inside the bastion's (a `direct-tcpip` channel): the first deploy follows the inventory's
 * `jump:`, the second an ssh config's `ProxyJump` under `Match originalhost`, given by `--ssh-config`
 * (a `Match exec` above it is skipped with a warning).
 */
import { writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { run } from '../../src/testhost/exec.js';
import { namespaceName } from '../../src/testhost/naming.js';
import { removeProject, runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { commitBranch, git, httpGet } from './deploy-helpers.js';

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
  const p = hosts.get(PRIVATE);
  return writeInventory(
    dir,
    {
      hosts: {
        [BASTION]: { address: b.address, user: 'root', key: b.key },
        [PRIVATE]: { address: p.address, user: 'root', key: p.key, ...(jump ? { jump: BASTION } : {}) },
      },
      groups: {
        web: {
          hosts: [PRIVATE],
          roles: ['nginx', 'supervisor', 'sites'],
          vars: {
            sites: [
              {
                name: 'web',
                repo,
                runtime: { type: 'python', virtualenv: false },
                process: {
                  command: 'exec python3 -m http.server "$PORT" --bind 127.0.0.1',
                  port: 8100,
                  stopTimeout: 5,
                },
                health: { path: '/REVISION', status: 200, timeout: 30 },
              },
            ],
          },
        },
      },
    },
    name,
  );
}

let setup: Promise<void> | undefined;
const ready = (t: ExecutionContext) => {
  t.timeout(30 * 60_000);
  setup ??= setUpOnce();
  return setup;
};

async function setUpOnce(): Promise<void> {
  const bastion = hosts.get(BASTION);
  const ns = namespaceName(PRIVATE);
  const rule = ['INPUT', '-p', 'tcp', '--dport', '22', '!', '-s', bastion.address, '-j', 'REJECT'];
  const reset = [...rule, '--reject-with', 'tcp-reset'];
  const added = await run('ip', ['netns', 'exec', ns, 'iptables', '-w', '-I', ...reset]);
  if (added.code !== 0) throw new Error(`iptables in ${ns}: ${added.stderr}`);
  undoFirewall = async () => {
    await run('ip', ['netns', 'exec', ns, 'iptables', '-w', '-D', ...reset]);
  };

  dir = await mkdtemp(join(tmpdir(), 'vd-bastion-deploy-'));
  repo = join(dir, 'web');
  await mkdir(repo);
  await git(repo, 'init', '-q', '-b', 'main');
  await writeFile(join(repo, 'index.html'), 'behind the bastion\n');
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '-m', 'first');
  sha.a = await git(repo, 'rev-parse', 'HEAD');
  sha.b = await commitBranch(repo, 'main', 'second', { 'index.html': 'second release\n' });

  const res = await runCli(['provision', inventory('jumped', true)], { cwd: dir, timeoutMs: 20 * 60_000 });
  if (res.code !== 0) throw new Error(`provision failed (${res.code}):\n${res.stdout}\n${res.stderr}`);
}

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
