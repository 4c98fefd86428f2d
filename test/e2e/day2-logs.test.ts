/**
 * `verdandi logs` on real test hosts: a python site (the bundled sample, under supervisor) and a docker
 * site, deployed as deploy-python / deploy-docker do. Lines are prefixed with host and source, cut when
 * huge, escaped; `--grep` filters; `-f` follows, and Ctrl-C (or a killed Verdandi: the SSH channel
 * closes) leaves no reader running on the host.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { demoInventory, makeSampleRepo } from '../../src/commands/demo.js';
import { CLI_BIN, PROJECT_ROOT, runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';
import {
  BASE_IMAGE_SCRIPT,
  dockerSite,
  makeRepo,
  onFirstUse,
  provisionOrThrow,
  waitFor,
  webInventory,
} from './deploy-helpers.js';

const PY = 'dlg-logs-py';
const DK = 'dlg-logs-dk';
const hosts = useTestHosts(test, [PY, DK]);
const inv: Record<string, string> = {};
const LOG = '/srv/sample/shared/log';

const logs = (host: string, ...args: string[]) =>
  runCli(['logs', inv[host], ...args], { timeoutMs: 120_000 });

async function provisionAndDeploy(name: string, inventory: string, before?: () => Promise<void>) {
  await provisionOrThrow(inventory);
  await before?.();
  const dep = await runCli(['deploy', inventory, '--branch', 'main'], { timeoutMs: 10 * 60_000 });
  if (dep.code !== 0) throw new Error(`deploy ${name} failed (${dep.code}):\n${dep.stdout}\n${dep.stderr}`);
}

const setups = {
  [PY]: onFirstUse(async () => {
    const host = hosts.get(PY);
    const dir = await mkdtemp(join(tmpdir(), 'vd-dlg-py-'));
    const repo = join(dir, 'sample-site');
    await makeSampleRepo(repo);
    const content = demoInventory({ name: PY, address: host.address, key: host.key }, repo);
    content.groups.web.vars.sites[0].health = { path: '/health', status: 200, timeout: 15 };
    inv[PY] = writeInventory(dir, content, PY);
    await provisionAndDeploy(PY, inv[PY]);
  }, 25),
  [DK]: onFirstUse(async () => {
    const host = hosts.get(DK);
    const dir = await mkdtemp(join(tmpdir(), 'vd-dlg-dk-'));
    const repo = join(dir, 'web');
    await makeRepo(repo, {
      // The container says something on its stdout when it starts: what `docker logs` shows.
      Dockerfile:
        'FROM verdandi-test/busybox:1\nCOPY . /www\nCMD ["/bin/sh", "-c", "echo container-started-$PORT; exec /bin/httpd -f -p 8080 -h /www"]\n',
      'health.txt': 'ok\n',
    });
    const site = dockerSite(repo, host.address);
    inv[DK] = writeInventory(dir, webInventory(host, ['nginx', 'docker', 'sites'], { sites: [site] }), DK);
    await provisionAndDeploy(DK, inv[DK], async () => {
      const img = await hosts.ssh(DK, BASE_IMAGE_SCRIPT);
      if (img.code !== 0) throw new Error(`base image: ${img.stderr}`);
    });
  }, 25),
};
const ready = (t: ExecutionContext, host: typeof PY | typeof DK) => setups[host](t);

/** The CLI as a child process, its stdout gathered: for `-f`, stopped by a signal. */
function follow(args: string[]): { child: ChildProcess; out: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, out: () => out, exit };
}

/** Processes on the host whose command line matches `pattern` (pgrep itself excluded). */
async function remote(host: string, pattern: string): Promise<string> {
  return (
    await hosts.ssh(host, `pgrep -af -- ${JSON.stringify(pattern)} | grep -v pgrep || true`)
  ).stdout.trim();
}

test.serial('python site: the last lines of every log, prefixed, escaped, a huge line cut', async (t) => {
  await ready(t, PY);
  const w = await hosts.ssh(
    PY,
    [
      `printf 'dlg-first\\n' >> ${LOG}/blue.log`,
      `printf 'dlg-escape \\033[2J end\\n' >> ${LOG}/blue.log`,
      `head -c 1048576 /dev/zero | tr '\\0' x >> ${LOG}/blue.log && echo >> ${LOG}/blue.log`,
      `printf 'dlg-worker-line\\n' >> ${LOG}/worker-stats.log`,
    ].join(' && '),
  );
  t.is(w.code, 0, w.stderr);
  const res = await logs(PY, 'sample', '--tail', '5');
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, new RegExp(`^${PY} blue \\| dlg-first$`, 'm'));
  t.regex(res.stdout, new RegExp(`^${PY} worker-stats \\| dlg-worker-line$`, 'm'));
  // The clear-screen sequence is shown escaped, never sent raw to the terminal.
  t.true(res.stdout.includes(`${PY} blue | dlg-escape \\x1b[2J end`));
  t.false(res.stdout.includes('\x1b'));
  const huge = res.stdout.split('\n').find((l) => l.includes('xxxxxxxx'));
  t.truthy(huge);
  t.regex(huge!, /… \[line cut: 1048576 characters\]$/);
  t.true(huge!.length < 9000, `the cut line is ${huge!.length} characters`);
  // stdout is the log lines only.
  t.true(
    res.stdout
      .split('\n')
      .filter(Boolean)
      .every((l) => l.startsWith(`${PY} `)),
    res.stdout.slice(0, 2000),
  );
});

test.serial(
  'python site: --grep filters on the host; --since is refused (no times in the files)',
  async (t) => {
    await ready(t, PY);
    await hosts.ssh(PY, `printf 'dlg-keep-1\\ndlg-drop-1\\ndlg-keep-2\\n' >> ${LOG}/blue.log`);
    const res = await logs(PY, 'sample', '--tail', '20', '--grep', 'keep-[0-9]');
    t.is(res.code, 0, res.stderr);
    t.regex(res.stdout, /blue \| dlg-keep-1\n.*blue \| dlg-keep-2/);
    t.false(res.stdout.includes('dlg-drop-1'));
    const since = await logs(PY, 'sample', '--since', '10m');
    t.is(since.code, 1, since.stdout + since.stderr);
    t.regex(since.stderr, /--since: the logs of python site sample .* without times/);
    t.false(since.stderr.includes('    at '), 'no stack trace');
  },
);

test.serial('bad input: an unknown site, a bad --tail, a bad --since: exit 1, said', async (t) => {
  await ready(t, PY);
  const unknown = await logs(PY, 'nope');
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /has a site named "nope"[\s\S]*known sites: sample/);
  const tail = await logs(PY, 'sample', '--tail', 'many');
  t.is(tail.code, 1);
  t.regex(tail.stderr, /--tail must be a number of lines, got "many"/);
  const since = await logs(PY, '--since', 'yesterday');
  t.is(since.code, 1);
  t.regex(since.stderr, /--since must be a duration, got "yesterday"/);
  const limit = await logs(PY, 'sample', '--limit', 'no-such-host');
  t.is(limit.code, 1, limit.stdout + limit.stderr);
});

test.serial('without a site: the journal of the roles units on the host', async (t) => {
  await ready(t, PY);
  const res = await logs(PY, '--tail', '50');
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, new RegExp(`^${PY} journal \\| .*(nginx|supervisor|postgres)`, 'm'));
});

test.serial('-f follows new lines; Ctrl-C stops it and leaves no reader on the host', async (t) => {
  await ready(t, PY);
  const f = follow(['logs', inv[PY], 'sample', '-f', '--tail', '0']);
  // The reader runs on the host: then a new line reaches us.
  await waitFor(async () => (await remote(PY, 'tail -n 0 -F')) !== '', 30_000, 'the remote tail -F');
  await hosts.ssh(PY, `printf 'dlg-followed-1\\n' >> ${LOG}/blue.log`);
  await waitFor(async () => f.out().includes(`${PY} blue | dlg-followed-1`), 15_000, 'the followed line');
  f.child.kill('SIGINT');
  const code = await f.exit;
  t.is(code, 130, f.out());
  await waitFor(async () => (await remote(PY, 'tail -n 0 -F')) === '', 10_000, 'the remote tail to stop');
  t.is(await remote(PY, 'tail -n 0 -F'), '');
});

test.serial('-f: a killed Verdandi (the channel closes) leaves no reader on the host either', async (t) => {
  await ready(t, PY);
  const f = follow(['logs', inv[PY], '-f', '--tail', '1']);
  await waitFor(
    async () => (await remote(PY, 'journalctl --no-pager')) !== '',
    30_000,
    'the remote journalctl',
  );
  // SIGKILL: Verdandi cannot stop anything itself; the end of the SSH connection must.
  f.child.kill('SIGKILL');
  await f.exit;
  await waitFor(async () => (await remote(PY, 'journalctl --no-pager')) === '', 15_000, 'journalctl to stop');
  t.is(await remote(PY, 'journalctl --no-pager'), '');
});

test.serial('docker site: docker logs of the containers, --since, follow and Ctrl-C', async (t) => {
  await ready(t, DK);
  const res = await logs(DK, 'web', '--since', '1h');
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, new RegExp(`^${DK} (blue|green) \\| container-started-[0-9]*$`, 'm'));
  const f = follow(['logs', inv[DK], 'web', '-f']);
  await waitFor(async () => /container-started/.test(f.out()), 30_000, 'the first lines');
  t.not(await remote(DK, 'docker logs'), '');
  f.child.kill('SIGINT');
  t.is(await f.exit, 130, f.out());
  await waitFor(async () => (await remote(DK, 'docker logs')) === '', 10_000, 'docker logs to stop');
  t.is(await remote(DK, 'docker logs'), '');
});
