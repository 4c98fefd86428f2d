/**
 * Deploy hooks and `verdandi lock` on a real host with the sample Python site (deploy-python's set-up):
 * - a failing `hooks/pre-deploy` stops the deploy before any host is contacted: exit 1, its output
 *   shown, no release and no lock on the host;
 * - `hooks/post-deploy` runs after the deploy with the run's VERDANDI_* variables (commit, release,
 *   sites, hosts, outcome) and no secret variable;
 * - `lock status` shows who holds the host's deploy lock, since when, from which command, alive or
 *   not (`--json` too); `lock release` refuses to run without a terminal or --yes (exit 1), asks on a
 *   terminal (answered through tmux), releases it, and the release is in the run history.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { demoInventory, makeSampleRepo } from '../../src/commands/demo.js';
import { CLI_BIN, runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { git } from './deploy-helpers.js';

const HOST = 'dex-hooks';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-day2-hooks-'));
const repo = join(dir, 'sample-site');
let inventory = '';
let commit = '';

const cli = (args: string[], timeoutMs = 10 * 60_000) =>
  runCli(args, { cwd: dir, timeoutMs, env: { CI: 'true', VERDANDI_VAULT_PASSWORD: 'not-for-hooks-7731' } });
const ssh = (cmd: string) => hosts.ssh(HOST, cmd);

function hook(name: string, body: string): void {
  mkdirSync(join(dir, 'hooks'), { recursive: true });
  writeFileSync(join(dir, 'hooks', name), `#!/bin/sh\n${body}\n`);
  chmodSync(join(dir, 'hooks', name), 0o755);
}

/** Provisions once, on first use (ava runs `before` hooks concurrently with the host's boot). */
let setup: Promise<void> | undefined;
const ready = (t: ExecutionContext) => {
  t.timeout(20 * 60_000);
  setup ??= (async () => {
    const host = hosts.get(HOST);
    await makeSampleRepo(repo);
    commit = await git(repo, 'rev-parse', 'main');
    inventory = writeInventory(
      dir,
      demoInventory({ name: HOST, address: host.address, key: host.key }, repo),
      'prod',
    );
    const res = await runCli(['provision', inventory], { timeoutMs: 15 * 60_000 });
    if (res.code !== 0) throw new Error(`provision failed (${res.code}):\n${res.stdout}\n${res.stderr}`);
  })();
  return setup;
};

test.serial('a failing pre-deploy hook: exit 1 with its output, nothing on the host', async (t) => {
  await ready(t);
  hook('pre-deploy', 'echo "pre-deploy refuses: CI is red for $VERDANDI_BRANCH"; exit 4');
  const res = await cli(['deploy', 'prod', '--branch', 'main']);
  t.is(res.code, 1, res.stdout + res.stderr);
  t.regex(res.stdout + res.stderr, /hooks\/pre-deploy\| pre-deploy refuses: CI is red for main/);
  t.regex(res.stderr, /hooks\/pre-deploy failed \(exit 4\): the deploy did not start, no host was contacted/);
  t.false((res.stdout + res.stderr).includes('    at '), 'a stack trace');
  t.is(
    (await ssh('ls -A /srv/sample/releases 2>/dev/null | wc -l')).stdout.trim(),
    '0',
    'a release was made',
  );
  t.is((await ssh('test -e /var/lib/verdandi/deploy.lock')).code, 1, 'a lock was taken');
});

test.serial('post-deploy gets the deploy as VERDANDI_* variables, never a secret variable', async (t) => {
  await ready(t);
  hook('pre-deploy', 'echo "pre-deploy for $VERDANDI_SITES on $VERDANDI_HOSTS at $VERDANDI_COMMIT"');
  hook('post-deploy', 'env | grep ^VERDANDI_ | sort > "$VERDANDI_PROJECT_DIR/post-deploy.env"; echo posted');
  const res = await cli(['deploy', 'prod', '--branch', 'main']);
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, new RegExp(`hooks/pre-deploy\\| pre-deploy for sample on dex-hooks at ${commit}`));
  t.regex(res.stdout, /hooks\/post-deploy\| posted/);
  const env = readFileSync(join(dir, 'post-deploy.env'), 'utf8');
  const release = (await ssh('basename "$(readlink -f /srv/sample/current)"')).stdout.trim();
  t.regex(env, /^VERDANDI_HOOK=post-deploy$/m);
  t.regex(env, /^VERDANDI_ACTION=deploy$/m);
  t.regex(env, /^VERDANDI_ENV=prod$/m);
  t.regex(env, /^VERDANDI_SITES=sample$/m);
  t.regex(env, /^VERDANDI_HOSTS=dex-hooks$/m);
  t.regex(env, /^VERDANDI_BRANCH=main$/m);
  t.regex(env, new RegExp(`^VERDANDI_COMMIT=${commit}$`, 'm'));
  t.regex(env, new RegExp(`^VERDANDI_RELEASE=${release}$`, 'm'));
  t.regex(env, /^VERDANDI_OUTCOME=ok$/m);
  t.regex(env, /^VERDANDI_EXIT_CODE=0$/m);
  t.regex(env, /^VERDANDI_BY=.+$/m);
  t.false(env.includes('VERDANDI_VAULT_PASSWORD'));
  t.false(env.includes('not-for-hooks-7731'));
  rmSync(join(dir, 'hooks'), { recursive: true });
});

const LOCK = [
  'Locked by: bob@ci-runner',
  'Since: 2026-12-06T00:00:00.000Z',
  'Reason: deploy prod --branch release-42',
  'Controller: ci-runner-that-is-not-here',
  'Pid: 4242',
  'Pid-Start: 99',
  'Token: 0123456789abcdef',
  '',
].join('\n');

function tmux(...args: string[]): string {
  return execFileSync('tmux', args, { encoding: 'utf8' });
}

async function waitForPane(session: string, pattern: RegExp, ms = 120_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const pane = tmux('capture-pane', '-p', '-t', session, '-S', '-200');
    if (pattern.test(pane)) return pane;
    if (Date.now() > deadline) throw new Error(`${pattern} never showed in the pane:\n${pane}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test.serial(
  'lock status shows the holder; release asks on a terminal, releases, is in the history',
  async (t) => {
    await ready(t);
    const free = await cli(['lock', 'status', 'prod']);
    t.is(free.code, 0, free.stdout + free.stderr);
    t.regex(free.stdout, /^dex-hooks {2}free$/m);

    // A lock of a live holder on another machine (its heartbeat is fresh).
    await ssh(
      `mkdir -p /var/lib/verdandi/deploy.lock && cat > /var/lib/verdandi/deploy.lock/info <<'EOF'\n${LOCK}EOF`,
    );
    const held = await cli(['lock', 'status', 'prod']);
    t.is(held.code, 0, held.stdout + held.stderr);
    t.regex(
      held.stdout,
      /^dex-hooks {2}held by bob@ci-runner since 2026-12-06T00:00:00.000Z, command: deploy prod --branch release-42, on ci-runner-that-is-not-here pid 4242, heartbeat \d+ s ago \(alive\)$/m,
    );
    const json = await cli(['lock', 'status', 'prod', '--json']);
    t.is(json.code, 0, json.stderr);
    const lock = JSON.parse(json.stdout).hosts[HOST].lock;
    t.like(lock, { held: true, by: 'bob@ci-runner', reason: 'deploy prod --branch release-42', alive: true });
    t.false(json.stdout.includes('0123456789abcdef'), 'the token is shown');

    const refused = await cli(['lock', 'release', 'prod']);
    t.is(refused.code, 1, refused.stdout + refused.stderr);
    t.regex(refused.stderr, /lock release asks for a confirmation on a terminal/);
    t.is((await ssh('test -d /var/lib/verdandi/deploy.lock')).code, 0, 'released without confirmation');

    const session = `dex-lock-${process.pid}`;
    const log = join(dir, 'release.out');
    tmux(
      'new-session',
      '-d',
      '-s',
      session,
      '-x',
      '160',
      '-y',
      '50',
      `cd ${dir} && CI=true ${process.execPath} ${CLI_BIN} lock release prod; echo "EXIT=$?" > ${log}; sleep 60`,
    );
    try {
      const asked = await waitForPane(
        session,
        /release this lock \(1 of a holder that may still be running\)\? \[y\/N\]/,
      );
      t.regex(
        asked,
        /warning: dex-hooks: the holder may still be running \(deploy prod --branch release-42\)/,
      );
      tmux('send-keys', '-t', session, 'y', 'Enter');
      const pane = await waitForPane(session, /released the deploy lock held by bob@ci-runner/);
      t.regex(pane, /dex-hooks {2}released the deploy lock held by bob@ci-runner since/);
      for (let i = 0; i < 300 && !existsSync(log); i++) await new Promise((r) => setTimeout(r, 100));
      t.is(readFileSync(log, 'utf8').trim(), 'EXIT=0');
    } finally {
      tmux('kill-session', '-t', session);
    }
    t.is((await ssh('test -e /var/lib/verdandi/deploy.lock')).code, 1, 'the lock is still there');

    const history = await cli(['history', '--json', '--last', '1']);
    const last = JSON.parse(history.stdout).runs[0];
    t.is(last.command, 'lock release');
    const shown = await cli(['history', 'show', String(last.id)]);
    t.regex(shown.stdout, /deploy lock.*released the deploy lock held by bob@ci-runner/);

    const nothing = await cli(['lock', 'release', 'prod', '--yes']);
    t.is(nothing.code, 0, nothing.stdout + nothing.stderr);
    t.regex(nothing.stdout, /no deploy lock is held: nothing to release/);
  },
);
