/**
 * Deploys that are stopped at the worst moments, on a real test host: Ctrl-C / SIGTERM during the
 * pre-deploy checks and during a migration, SIGKILL during the checks and during the transfer of the
 * commits, a connection lost in the middle of a rollback. Each time the previous release keeps serving
 * (asserted through nginx on the host), no command of the stopped deploy is left running on the host,
 * no half-made release is left among the releases, the lock is released (or, after a SIGKILL, taken
 * over by the next deploy, which says so), and the next deploy succeeds.
 *
 * The slow commands are switched on by flag files on the host (/tmp/vd-slow-*), so every commit runs the
 * same scripts; each slow command leaves a marker (/tmp/vd-*-started) the test waits for.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import { killSshSessions, slowLink, startVerdandi, waitOnHost } from '../helpers/faults.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { commitBranch, git, httpGet } from './deploy-helpers.js';

const HOST = 'dep-faults';
const hosts = useTestHosts(test, [HOST]);
let inventory = '';
let repo = '';
const LOCK = '/var/lib/verdandi/deploy.lock';

const ssh = (command: string) => hosts.ssh(HOST, command, { timeoutMs: 60_000 });
const served = async () => (await httpGet(`http://${hosts.get(HOST).address}/REVISION`)).body.trim();

let setup: Promise<void> | undefined;
const ready = (t: ExecutionContext) => {
  t.timeout(20 * 60_000);
  setup ??= provisionOnce();
  return setup;
};

async function provisionOnce(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vd-deploy-faults-'));
  repo = join(dir, 'web');
  await mkdir(repo);
  await git(repo, 'init', '-q', '-b', 'main');
  await writeFile(
    join(repo, 'check.sh'),
    'if [ -e /tmp/vd-slow-check ]; then touch /tmp/vd-check-started; sleep 600; fi\necho "tests pass"\n',
  );
  await writeFile(
    join(repo, 'migrate.sh'),
    'if [ -e /tmp/vd-slow-migrate ]; then touch /tmp/vd-migrate-started; sleep 600; fi\necho migrated\n',
  );
  await writeFile(join(repo, 'index.html'), 'faults\n');
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '-m', 'A');
  const h = hosts.get(HOST);
  inventory = writeInventory(
    dir,
    {
      hosts: { [HOST]: { address: h.address, user: 'root', key: h.key } },
      groups: {
        web: {
          hosts: [HOST],
          roles: ['nginx', 'supervisor', 'sites'],
          vars: {
            sites: [
              {
                name: 'web',
                repo,
                runtime: { type: 'python', virtualenv: false },
                checks: ['sh ./check.sh'],
                migrate: { command: 'sh ./migrate.sh' },
                process: {
                  // A slow start (flag file) holds a rollback in its health check.
                  command:
                    'if [ -e /tmp/vd-slow-start ]; then touch /tmp/vd-start-started; sleep 20; fi; exec python3 -m http.server "$PORT" --bind 127.0.0.1',
                  port: 8100,
                  stopTimeout: 5,
                },
                health: { path: '/REVISION', status: 200, timeout: 40 },
                keepReleases: 10,
              },
            ],
          },
        },
      },
    },
    'deploy-faults',
  );
  const res = await runCli(['provision', inventory], { timeoutMs: 15 * 60_000 });
  if (res.code !== 0) throw new Error(`provision failed (${res.code}):\n${res.stdout}\n${res.stderr}`);
  const first = await runCli(['deploy', inventory, '--branch', 'main'], { timeoutMs: 10 * 60_000 });
  if (first.code !== 0) throw new Error(`first deploy failed:\n${first.stdout}\n${first.stderr}`);
}

/** A new commit on its own branch; returns its sha (what /REVISION serves once deployed). */
const newCommit = (branch: string, files: Record<string, string> = {}) =>
  commitBranch(repo, 'main', branch, { 'index.html': `${branch}\n`, ...files });

/** Releases on disk that never went live (the half-made ones). */
async function halfMade(): Promise<string[]> {
  const res = await ssh(
    'for r in /srv/web/releases/*; do [ -d "$r" ] && [ ! -e "$r/.verdandi-deployed" ] && basename "$r"; done; true',
  );
  return res.stdout.split('\n').filter(Boolean);
}

/** Commands of a deploy still running on the host (the slow ones, and any supervised step). */
async function leftovers(): Promise<string> {
  // Whole-line match: the command line of this very check does not count.
  const res = await ssh(
    "ps -eo args | grep -x 'sleep 600' || true; ls /run/verdandi/steps 2>/dev/null || true",
  );
  return res.stdout.trim();
}

const lockHeld = async () => (await ssh(`test -e ${LOCK}`)).code === 0;

async function cleanFlags(): Promise<void> {
  await ssh('rm -f /tmp/vd-slow-* /tmp/vd-*-started');
}

test.serial(
  'Ctrl-C during the pre-deploy checks: the check is stopped, nothing half-made remains, exit 130',
  async (t) => {
    await ready(t);
    const before = await served();
    const sha = await newCommit('int-check');
    await ssh('touch /tmp/vd-slow-check');
    t.teardown(cleanFlags);
    const v = startVerdandi(['deploy', inventory, '--branch', 'int-check'], { timeoutMs: 5 * 60_000 });
    await waitOnHost(hosts, HOST, 'test -e /tmp/vd-check-started', 120_000);
    v.kill('SIGINT');
    const res = await v.result;
    t.is(res.code, 130, res.stdout + res.stderr);
    t.regex(res.stdout, /INTERRUPTED/);
    t.is(await served(), before);
    t.deepEqual(await halfMade(), []);
    t.false(await lockHeld());
    t.is(await leftovers(), '');

    await cleanFlags();
    const next = await runCli(['deploy', inventory, '--branch', 'int-check'], { timeoutMs: 5 * 60_000 });
    t.is(next.code, 0, next.stdout + next.stderr);
    t.is(await served(), sha);
  },
);

test.serial(
  'SIGTERM during a migration: stopped, maintenance off, the old release serves again, exit 143',
  async (t) => {
    await ready(t);
    const before = await served();
    const sha = await newCommit('term-migrate');
    await ssh('touch /tmp/vd-slow-migrate');
    t.teardown(cleanFlags);
    const v = startVerdandi(['deploy', inventory, '--branch', 'term-migrate'], { timeoutMs: 5 * 60_000 });
    await waitOnHost(hosts, HOST, 'test -e /tmp/vd-migrate-started', 120_000);
    t.true(await lockHeld());
    v.kill('SIGTERM');
    const res = await v.result;
    t.is(res.code, 143, res.stdout + res.stderr);
    t.is(await served(), before);
    t.not((await ssh('test -e /etc/nginx/maintenance/web.on')).code, 0);
    t.deepEqual(await halfMade(), []);
    t.false(await lockHeld());
    t.is(await leftovers(), '');

    await cleanFlags();
    const next = await runCli(['deploy', inventory, '--branch', 'term-migrate'], { timeoutMs: 5 * 60_000 });
    t.is(next.code, 0, next.stdout + next.stderr);
    t.is(await served(), sha);
  },
);

test.serial(
  'SIGKILL during the checks: the next deploy takes the lock over, stops the check, removes the half-made release',
  async (t) => {
    await ready(t);
    const before = await served();
    const sha = await newCommit('kill-check');
    await ssh('touch /tmp/vd-slow-check');
    t.teardown(cleanFlags);
    const v = startVerdandi(['deploy', inventory, '--branch', 'kill-check'], { timeoutMs: 5 * 60_000 });
    await waitOnHost(hosts, HOST, 'test -e /tmp/vd-check-started', 120_000);
    v.kill('SIGKILL');
    await v.result;
    // Nothing could clean up: the lock names the dead process, the check still runs, the release is half-made.
    t.regex((await ssh(`cat ${LOCK}/info`)).stdout, new RegExp(`^Pid: ${v.child.pid}$`, 'm'));
    t.regex(await leftovers(), /sleep 600/);
    t.is((await halfMade()).length, 1);
    t.is(await served(), before);

    await cleanFlags();
    const next = await runCli(['deploy', inventory, '--branch', 'kill-check'], { timeoutMs: 5 * 60_000 });
    t.is(next.code, 0, next.stdout + next.stderr);
    t.regex(
      next.stdout,
      new RegExp(`taking over the deploy lock held by .*: its process ${v.child.pid} on .* is gone`),
    );
    t.regex(next.stdout, /stopped what an interrupted run left running/);
    t.regex(next.stdout, /removed \S+ \(left half-made by an interrupted deploy\)/);
    t.is(await served(), sha);
    t.deepEqual(await halfMade(), []);
    t.is(await leftovers(), '');
    t.false(await lockHeld());
  },
);

test.serial('SIGKILL during the transfer of the commits: the next deploy succeeds', async (t) => {
  await ready(t);
  const before = await served();
  // 12 MB that git cannot compress: at 4 Mbit/s the transfer takes long enough to be interrupted.
  const sha = await newCommit('kill-transfer', {
    'blob.bin': randomBytes(12 * 1024 * 1024).toString('base64'),
  });
  const restore = await slowLink(hosts.get(HOST));
  t.teardown(restore);
  const v = startVerdandi(['deploy', inventory, '--branch', 'kill-transfer'], { timeoutMs: 5 * 60_000 });
  await waitOnHost(hosts, HOST, 'test -s /srv/web/repo.git/incoming.bundle', 120_000);
  v.kill('SIGKILL');
  await v.result;
  await restore();
  t.is(await served(), before);

  const next = await runCli(['deploy', inventory, '--branch', 'kill-transfer'], { timeoutMs: 5 * 60_000 });
  t.is(next.code, 0, next.stdout + next.stderr);
  t.regex(next.stdout, /taking over the deploy lock/);
  t.is(await served(), sha);
  t.deepEqual(await halfMade(), []);
  t.is(await leftovers(), '');
  t.false(await lockHeld());
});

test.serial(
  'rollback --break-lock breaks a live-looking lock; a connection lost mid-rollback is unreachable (exit 3)',
  async (t) => {
    await ready(t);
    const before = await served();
    // A lock held from another machine, fresh: only --break-lock removes it.
    await ssh(
      `mkdir -p ${LOCK} && printf 'Locked by: carol@elsewhere\\nSince: 2026-01-01T00:00:00Z\\nReason: deploy x\\nController: elsewhere\\nPid: 1\\nPid-Start: 1\\nToken: feed\\n' > ${LOCK}/info`,
    );
    await ssh('touch /tmp/vd-slow-start');
    t.teardown(cleanFlags);
    const v = startVerdandi(['rollback', inventory, '--break-lock'], { timeoutMs: 5 * 60_000 });
    await waitOnHost(hosts, HOST, 'test -e /tmp/vd-start-started', 120_000);
    t.regex(v.stdout, /broke the deploy lock held by carol@elsewhere/);
    t.true((await killSshSessions(hosts, HOST)) > 0);
    const res = await v.result;
    t.is(res.code, 3, res.stdout + res.stderr);
    t.regex(res.stdout, /UNREACHABLE +dep-faults {2}web/);
    t.notRegex(res.stdout + res.stderr, /internal error|\n\s+at /);
    t.is(await served(), before);

    // The lock of the ended rollback is taken over; a deploy goes through.
    await cleanFlags();
    const next = await runCli(['deploy', inventory, '--branch', 'main'], { timeoutMs: 5 * 60_000 });
    t.is(next.code, 0, next.stdout + next.stderr);
    t.false(await lockHeld());
    t.deepEqual(await halfMade(), []);
  },
);
