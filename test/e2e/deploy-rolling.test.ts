/**
 * Rolling deploys across two real test hosts: one host at a time (default when there are several), and a
 * host that fails stops the hosts after it, which keep running the previous release. The site is the
 * smallest possible (python3 -m http.server serving its release, no dependencies) so the test is about
 * the rolling, not the app. The host then fetches a site itself (`fetch: pull`).
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { commitBranch, git, httpGet } from './deploy-helpers.js';

const HOSTS = ['roll-a', 'roll-b'];
const hosts = useTestHosts(test, HOSTS);
let inventory = '';
const sha: Record<string, string> = {};
let repoDir = '';
let workDir = '';

const served = async (name: string) =>
  (await httpGet(`http://${hosts.get(name).address}/REVISION`)).body.trim();
const liveTarget = async (name: string, site: string) =>
  (await hosts.ssh(name, `readlink /srv/${site}/current`)).stdout.trim();
const releaseCount = async (name: string) =>
  (await hosts.ssh(name, 'ls /srv/web/releases')).stdout.split('\n').filter(Boolean).length;

/**
 * Provisions once, on first use: ava runs `before` hooks concurrently, so this cannot be one (the
 * hosts boot in useTestHosts' hook). Every test awaits it; a failure fails them all with its message.
 */
let setup: Promise<void> | undefined;
const ready = (t: ExecutionContext) => {
  t.timeout(20 * 60_000);
  setup ??= provisionOnce((m) => t.log(m));
  return setup;
};

async function provisionOnce(log: (m: string) => void): Promise<void> {
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'vd-deploy-roll-'));
  const repo = join(dir, 'web');
  repoDir = repo;
  workDir = dir;
  await mkdir(repo);
  await git(repo, 'init', '-q', '-b', 'main');
  await writeFile(join(repo, 'precheck.sh'), 'echo "tests pass"\n');
  await writeFile(join(repo, 'index.html'), 'rolling\n');
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '-m', 'A');
  sha.a = await git(repo, 'rev-parse', 'HEAD');
  sha.bad = await commitBranch(repo, 'main', 'bad', { 'precheck.sh': 'echo "2 tests failed" >&2\nexit 1\n' });

  const hostEntries = Object.fromEntries(
    HOSTS.map((n) => [n, { address: hosts.get(n).address, user: 'root', key: hosts.get(n).key }]),
  );
  inventory = writeInventory(
    dir,
    {
      hosts: hostEntries,
      groups: {
        web: {
          hosts: HOSTS,
          roles: ['nginx', 'supervisor', 'sites'],
          vars: {
            sites: [
              {
                name: 'web',
                repo,
                runtime: { type: 'python', virtualenv: false },
                checks: ['sh ./precheck.sh'],
                process: {
                  command: 'exec python3 -m http.server "$PORT" --bind 127.0.0.1',
                  port: 8100,
                  stopTimeout: 5,
                },
                health: { path: '/REVISION', status: 200, timeout: 15 },
              },
            ],
          },
        },
      },
    },
    'deploy-roll',
  );
  const res = await runCli(['provision', inventory], { timeoutMs: 15 * 60_000 });
  if (res.code !== 0) throw new Error(`provision failed (${res.code}):\n${res.stdout}\n${res.stderr}`);
  log(`provision of both hosts: ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** Index of the first and last output line about a host. */
function span(out: string, host: string): [number, number] {
  const lines = out.split('\n');
  const idx = lines.map((l, i) => (l.startsWith(`${host}  `) ? i : -1)).filter((i) => i >= 0);
  return [idx[0], idx[idx.length - 1]];
}

test.serial('two hosts are deployed one after the other', async (t) => {
  await ready(t);
  const res = await runCli(['deploy', inventory, '--branch', 'main'], { timeoutMs: 10 * 60_000 });
  t.is(res.code, 0, res.stdout + res.stderr);
  const [, lastA] = span(res.stdout, 'roll-a');
  const [firstB] = span(res.stdout, 'roll-b');
  t.true(lastA < firstB, res.stdout);
  t.is(await served('roll-a'), sha.a);
  t.is(await served('roll-b'), sha.a);
  // --if-changed of the commit both run: one round trip per host, the live releases untouched.
  const live = await Promise.all(HOSTS.map((h) => liveTarget(h, 'web')));
  const again = await runCli(['deploy', inventory, '--branch', 'main', '--if-changed', '--json']);
  t.is(again.code, 0, again.stdout + again.stderr);
  const doc = JSON.parse(again.stdout);
  for (const h of HOSTS) t.is(doc.hosts[h].roundTrips, 1, h);
  t.deepEqual(
    doc.outcomes.map((o: { status: string }) => o.status),
    ['unchanged', 'unchanged'],
  );
  t.deepEqual(await Promise.all(HOSTS.map((h) => liveTarget(h, 'web'))), live);
});

test.serial('a failing first host stops the second, which keeps its release', async (t) => {
  await ready(t);
  const before = await releaseCount('roll-b');
  const res = await runCli(['deploy', inventory, '--branch', 'bad'], { timeoutMs: 10 * 60_000 });
  t.is(res.code, 2, res.stdout + res.stderr);
  t.regex(res.stdout, /roll-a {2}web {2}check 1\/1 +FAILED/);
  t.regex(res.stdout, /2 tests failed/);
  t.regex(res.stdout, /SKIPPED +roll-b {2}web/);
  t.false(res.stdout.split('\n').some((l) => l.startsWith('roll-b  web  checkout')));
  t.is(await releaseCount('roll-b'), before);
  t.is(await served('roll-a'), sha.a);
  t.is(await served('roll-b'), sha.a);
});

test.serial('fetch: pull: the host fetches the repository itself', async (t) => {
  await ready(t);
  const a = hosts.get('roll-a');
  // A stand-in for the git forge, on the host itself, that the test pushes to over SSH.
  const forge = '/srv/forge/web.git';
  const init = await hosts.ssh('roll-a', `git init -q --bare ${forge}`);
  t.is(init.code, 0, init.stderr);
  /** Pushes a branch of the test's repository to the forge, over SSH as root. */
  const pushToForge = (branch: string) =>
    git(
      repoDir,
      '-c',
      `core.sshCommand=ssh -i ${a.key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=error`,
      'push',
      '-q',
      `root@${a.address}:${forge}`,
      branch,
    );
  await pushToForge('main');
  const inv = writeInventory(
    workDir,
    {
      hosts: { 'roll-a': { address: a.address, user: 'root', key: a.key } },
      groups: {
        web: {
          hosts: ['roll-a'],
          roles: ['nginx', 'supervisor', 'sites'],
          vars: {
            sites: [
              {
                name: 'pulled',
                repo: forge,
                fetch: 'pull',
                runtime: { type: 'python', virtualenv: false },
                process: {
                  command: 'exec python3 -m http.server "$PORT" --bind 127.0.0.1',
                  port: 8200,
                  stopTimeout: 5,
                },
                nginx: { serverNames: ['pulled.local'] },
                health: { path: '/REVISION', status: 200, timeout: 15 },
              },
            ],
          },
        },
      },
    },
    'deploy-pull',
  );
  const prov = await runCli(['provision', inv], { timeoutMs: 10 * 60_000 });
  t.is(prov.code, 0, prov.stdout + prov.stderr);
  // The app user reads the forge (git refuses repositories of other owners).
  await hosts.ssh('roll-a', `chown -R pulled: ${forge}`);
  const res = await runCli(['deploy', inv, '--branch', 'main'], { timeoutMs: 10 * 60_000 });
  t.is(res.code, 0, res.stdout + res.stderr);
  t.notRegex(res.stdout, /send commits/);
  const served = await hosts.ssh('roll-a', "curl -s -H 'Host: pulled.local' http://127.0.0.1/REVISION");
  t.is(served.stdout.trim(), sha.a);
  // --if-changed of the commit it runs: the host fetches, resolves and compares in the lock's one
  // round trip, which also lets the lock go.
  const live = await liveTarget('roll-a', 'pulled');
  const unchanged = await runCli(['deploy', inv, '--branch', 'main', '--if-changed', '--json']);
  t.is(unchanged.code, 0, unchanged.stdout + unchanged.stderr);
  const doc = JSON.parse(unchanged.stdout);
  t.is(doc.hosts['roll-a'].roundTrips, 1);
  t.like(doc.outcomes[0], { site: 'pulled', status: 'unchanged', commit: sha.a });
  t.is(await liveTarget('roll-a', 'pulled'), live);
  t.not((await hosts.ssh('roll-a', 'test -e /var/lib/verdandi/deploy.lock')).code, 0, 'the lock is free');
  // A new commit on the forge with --if-changed: fetched and deployed, the same lock held throughout.
  sha.pulled = await commitBranch(repoDir, 'main', 'pulled-b', { 'index.html': 'pulled B\n' });
  // root pushes (git refuses a repository of another owner), then the app user reads it again.
  await hosts.ssh('roll-a', `chown -R root: ${forge}`);
  await pushToForge('pulled-b');
  await hosts.ssh('roll-a', `chown -R pulled: ${forge}`);
  const changed = await runCli(['deploy', inv, '--branch', 'pulled-b', '--if-changed'], {
    timeoutMs: 10 * 60_000,
  });
  t.is(changed.code, 0, changed.stdout + changed.stderr);
  t.regex(changed.stdout, /DEPLOYED +roll-a {2}pulled/);
  const now = await hosts.ssh('roll-a', "curl -s -H 'Host: pulled.local' http://127.0.0.1/REVISION");
  t.is(now.stdout.trim(), sha.pulled);
  const missing = await runCli(['deploy', inv, '--branch', 'no-such-branch'], { timeoutMs: 10 * 60_000 });
  t.is(missing.code, 2);
  t.regex(
    missing.stdout,
    /"no-such-branch" is no branch, tag or commit of \/srv\/forge\/web.git \(as fetched by roll-a\)/,
  );
});
