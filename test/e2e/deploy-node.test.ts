/**
 * `verdandi deploy` of a node site on a real test host: nginx → `npm start` under supervisor, Node.js
 * from Debian's `nodejs` and `npm` packages. The app (deploy-helpers' NODE_APP_FILES) has no
 * dependencies, so `npm ci --offline` needs no registry (test hosts reach none). Then `verdandi
 * console` of that site through a real terminal (tmux).
 *
 * The tests run in order on one host: each starts from what the previous one left.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { Terminal } from './day2-terminal.js';
import {
  commitBranch,
  deployUnderLoad,
  httpGet,
  makeRepo,
  NODE_APP_FILES,
  onFirstUse,
  provisionOrThrow,
  webInventory,
} from './deploy-helpers.js';

const HOST = 'hn-node';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-deploy-node-'));
const repo = join(dir, 'node-site');
let inventory = '';
let base = '';
const sha: Record<string, string> = {};
const terminals: Terminal[] = [];

const deploy = (...args: string[]) => runCli(['deploy', inventory, ...args], { timeoutMs: 10 * 60_000 });
const ssh = (cmd: string) => hosts.ssh(HOST, cmd);
const releases = async () => (await ssh('ls /srv/nodesample/releases')).stdout.split('\n').filter(Boolean);
const liveRelease = async () => (await ssh('readlink -f /srv/nodesample/current')).stdout.trim();
const commitServed = async () => (await httpGet(`${base}/commit`)).body.trim();

const ready = onFirstUse(async (log) => {
  const host = hosts.get(HOST);
  base = `http://${host.address}`;
  sha.a = await makeRepo(repo, NODE_APP_FILES);
  sha.b = await commitBranch(repo, 'main', 'feature-b', { 'CHANGES.md': 'B\n' });
  const inv = webInventory(host, ['nginx', 'supervisor', 'sites'], {
    sites: [
      {
        name: 'nodesample',
        repo,
        branch: 'main',
        // --offline: the host reaches no registry, and a lockfile without dependencies needs none.
        runtime: { type: 'node', install: 'npm ci --offline --no-audit --no-fund' },
        // The tool is found in node_modules/.bin by the check and by the worker, as npm scripts find it.
        build: [
          'mkdir -p node_modules/.bin && cp tools/vd-tick node_modules/.bin/ && chmod 755 node_modules/.bin/vd-tick',
        ],
        checks: ['node --check server.js', 'vd-tick --once'],
        env: { vars: { GREETING: 'Hello from node' }, secrets: {} },
        process: {
          command: 'npm start',
          port: 8100,
          stopTimeout: 10,
          workers: [{ name: 'tick', command: 'vd-tick' }],
        },
        nginx: { serverNames: [host.address, '_'] },
        health: { path: '/health', status: 200, timeout: 30 },
        keepReleases: 3,
      },
    ],
  });
  inventory = writeInventory(dir, inv, 'deploy-node');
  await provisionOrThrow(inventory, { log });
});

test.after.always(async () => {
  for (const term of terminals) await term.close();
});

test.serial('deploy main: the node site answers through nginx, with its env', async (t) => {
  await ready(t);
  const res = await deploy('--branch', 'main');
  t.is(res.code, 0, res.stdout + res.stderr);
  t.is(await commitServed(), sha.a);
  t.is((await httpGet(`${base}/health`)).status, 200);
  t.is((await httpGet(`${base}/greeting`)).body.trim(), 'Hello from node');
  // Debian's node, run by npm's start script as the app user.
  const who = await ssh('ps -o user:32=,args= -C node');
  t.regex(who.stdout, /nodesample\s+node server\.js/);
  t.is((await ssh('stat -c %a:%U /srv/nodesample/current/.env')).stdout.trim(), '600:nodesample');
  // The worker's command is a tool of the release's node_modules/.bin.
  t.regex((await ssh('supervisorctl status nodesample-worker-tick')).stdout, /RUNNING/);
  // The check ran it too: a failed check would have stopped the deploy (exit 2).
  t.regex(res.stdout, /check 2\/2/);
});

test.serial('deploy B while a client requests continuously: zero failed requests', async (t) => {
  await ready(t);
  const { res, load: result } = await deployUnderLoad(`${base}/commit`, () =>
    deploy('--branch', 'feature-b'),
  );
  t.is(res.code, 0, res.stdout + res.stderr);
  t.log(`${result.requests} requests during the deploy, ${result.failures.length} failed`);
  t.deepEqual(result.failures, []);
  t.true(result.requests > 20);
  t.deepEqual(result.seen, [sha.a, sha.b]);
  t.is(await commitServed(), sha.b);
});

test.serial('logs: the web processes of both colors, each line prefixed by host and color', async (t) => {
  await ready(t);
  const res = await runCli(['logs', inventory, 'nodesample', '--tail', '20']);
  t.is(res.code, 0, res.stdout + res.stderr);
  // Each color's process printed its start when a deploy started it.
  for (const color of ['blue', 'green'])
    t.regex(res.stdout, new RegExp(`^${HOST} ${color} \\| node-sample listening on \\d+$`, 'm'));
  const grep = await runCli(['logs', inventory, 'nodesample', '--grep', 'no-such-line-anywhere']);
  t.is(grep.code, 0, grep.stderr);
  t.false(grep.stdout.includes('node-sample listening'), '--grep keeps only matching lines');
});

test.serial('--if-changed on the same commit changes nothing; status tells what runs', async (t) => {
  await ready(t);
  const before = await releases();
  const res = await deploy('--branch', 'feature-b', '--if-changed');
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, /UNCHANGED/);
  t.deepEqual(await releases(), before);
  t.is(await commitServed(), sha.b);

  const status = await runCli(['status', inventory]);
  t.is(status.code, 0, status.stdout + status.stderr);
  t.regex(status.stdout, new RegExp(`feature-b @ ${sha.b.slice(0, 7)}`));
  t.regex(status.stdout, /RUNNING/);
  t.regex(status.stdout, /health\s+\/health → 200 \(ok\)/);
});

test.serial('console through a terminal: the release, its env, node -e, the exit code', async (t) => {
  await ready(t);
  const release = await liveRelease();
  const script =
    'console.log("node-console=[" + process.env.GREETING + "][" + process.cwd() + "]"); process.exit(7)';
  const term = await Terminal.start(`hn-console-${process.pid}`, [
    'console',
    inventory,
    'nodesample',
    '--',
    'node',
    '-e',
    script,
  ]);
  terminals.push(term);
  const line = await term.waitFor(/node-console=\[([^\]]*)\]\[([^\]]*)\]/, 'the node console');
  t.is(line[1], 'Hello from node');
  t.is(line[2], release);
  t.is(await term.exitCode(), 7);
  t.is((await ssh('pgrep -u nodesample -f "node -e"')).code, 1, 'no console left on the host');
});

test.serial('rollback returns to main, health-gated', async (t) => {
  await ready(t);
  const res = await runCli(['rollback', inventory], { timeoutMs: 5 * 60_000 });
  t.is(res.code, 0, res.stdout + res.stderr);
  t.is(await commitServed(), sha.a);
  const status = await runCli(['status', inventory]);
  t.regex(status.stdout, new RegExp(`main @ ${sha.a.slice(0, 7)}`));
});
