/**
 * `verdandi deploy` of a Python site on a real test host: the catalogage stack (nginx → uvicorn under
 * supervisor → PostgreSQL), the bundled sample site in a git repository this test creates, with
 * branches made for each case. Python is Debian's (python3 + python3-uvicorn + python3-psycopg2 in a
 * virtualenv that sees them; pip runs with --no-index since no package index is reachable): pyenv is
 * covered by the roles' tests, and a site only names the interpreter (`runtime.python`).
 *
 * The tests run in order on one host: each starts from what the previous one left.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { demoInventory, makeSampleRepo } from '../../src/commands/demo.js';
import { runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';
import {
  commitBranch,
  deployUnderLoad,
  git,
  httpGet,
  onFirstUse,
  provisionOrThrow,
  type WebhookReceiver,
  waitFor,
  webhookReceiver,
} from './deploy-helpers.js';

const hosts = useTestHosts(test, ['deploy-py']);
const dir = mkdtempSync(join(tmpdir(), 'vd-deploy-py-'));
const repo = join(dir, 'sample-site');
let inventory = '';
let hook: WebhookReceiver;
const sha: Record<string, string> = {};
let base = '';

const BROKEN_HEALTH_APP = `
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 500, "headers": []})
    await send({"type": "http.response.body", "body": b"broken"})
`;

const deploy = (...args: string[]) => runCli(['deploy', inventory, ...args], { timeoutMs: 10 * 60_000 });
const ssh = (cmd: string) => hosts.ssh('deploy-py', cmd);
const releases = async () => (await ssh('ls /srv/sample/releases')).stdout.split('\n').filter(Boolean);
const liveTarget = async () => (await ssh('readlink /srv/sample/current')).stdout.trim();
const lockFree = async () => (await ssh('test -e /var/lib/verdandi/deploy.lock')).code !== 0;
const commitServed = async () => (await httpGet(`${base}/commit`)).body.trim();

const ready = onFirstUse(async (log) => {
  const host = hosts.get('deploy-py');
  base = `http://${host.address}`;
  hook = await webhookReceiver();
  await makeSampleRepo(repo);
  sha.a = await git(repo, 'rev-parse', 'main');
  sha.b = await commitBranch(repo, 'main', 'feature-b', { 'CHANGES.md': 'B\n' });
  sha.broken = await commitBranch(repo, 'feature-b', 'broken-health', { 'app.py': BROKEN_HEALTH_APP });
  sha.badMigration = await commitBranch(repo, 'feature-b', 'broken-migration', {
    'migrations/0002_broken.sql': 'ALTER TABLE visits ADD COLUMN note text;\nSELECT * FROM no_such_table;\n',
  });
  const inv = demoInventory({ name: 'deploy-py', address: host.address, key: host.key }, repo);
  const site = inv.groups.web.vars.sites[0];
  site.webhook = hook.url;
  site.keepReleases = 3;
  site.health = { path: '/health', status: 200, timeout: 15 };
  inventory = writeInventory(dir, inv, 'deploy-py');
  await provisionOrThrow(inventory, { log });
});

test.after.always(async () => {
  await hook?.close();
});

test.serial('deploy branch A: the site answers with A, after migrations under maintenance', async (t) => {
  await ready(t);
  const res = await deploy('--branch', 'main');
  t.is(res.code, 0, res.stdout + res.stderr);
  t.is(await commitServed(), sha.a);
  t.is((await httpGet(`${base}/health`)).status, 200);
  t.regex(res.stdout, /pending migrations\?\s+yes/);
  // The record on the host: branch, commit, time, who.
  const record = JSON.parse((await ssh('cat /srv/sample/current/.verdandi-release.json')).stdout);
  t.is(record.commit, sha.a);
  t.is(record.branch, 'main');
  t.truthy(record.by);
  // The environment file: 0600, owned by the app user.
  t.is((await ssh('stat -c %a:%U /srv/sample/current/.env')).stdout.trim(), '600:sample');
  t.true(hook.messages.some((m) => /deployed main/.test(m.text)));
});

test.serial('deploy B while a client requests continuously: zero failed requests', async (t) => {
  await ready(t);
  // --if-changed of a commit the host does not run: a real deploy, the same as without it.
  const { res, load: result } = await deployUnderLoad(`${base}/commit`, () =>
    deploy('--branch', 'feature-b', '--if-changed'),
  );
  t.is(res.code, 0, res.stdout + res.stderr);
  t.log(`${result.requests} requests during the deploy, ${result.failures.length} failed`);
  t.deepEqual(result.failures, []);
  t.true(result.requests > 20);
  t.deepEqual(result.seen, [sha.a, sha.b]);
  t.regex(res.stdout, /pending migrations\?\s+none/);
  t.is(await commitServed(), sha.b);
  // The worker was restarted on the new release.
  const worker = await ssh(
    'supervisorctl status sample-worker-stats; readlink /proc/$(supervisorctl pid sample-worker-stats)/cwd; readlink -f /srv/sample/current',
  );
  const [status, cwd, current] = worker.stdout.trim().split('\n');
  t.regex(status, /RUNNING/);
  t.is(cwd, current);
  t.true(current.endsWith(sha.b.slice(0, 7)));
});

test.serial(
  '--if-changed on the same commit: one round trip, the lock let go; it and --check change nothing',
  async (t) => {
    await ready(t);
    const before = await releases();
    const live = await liveTarget();
    const res = await deploy('--branch', 'feature-b', '--if-changed', '--json');
    t.is(res.code, 0, res.stdout + res.stderr);
    const doc = JSON.parse(res.stdout);
    // The lock, the leftovers' stop, the state, the commit check and the lock's release: one script.
    t.is(doc.hosts['deploy-py'].roundTrips, 1);
    t.like(doc.outcomes[0], { host: 'deploy-py', site: 'sample', status: 'unchanged', commit: sha.b });
    t.deepEqual(await releases(), before);
    t.is(await liveTarget(), live, 'the live release is untouched');
    t.true(await lockFree(), 'the script released the lock');
    // So a deploy right after proceeds at once (--lock-wait 0 fails on a held lock), and says so.
    const again = await deploy('--branch', 'feature-b', '--if-changed', '--lock-wait', '0');
    t.is(again.code, 0, again.stdout + again.stderr);
    t.regex(again.stdout, new RegExp(`UNCHANGED +deploy-py {2}sample ${live.replace('releases/', '')}`));
    t.regex(again.stdout, new RegExp(`already runs ${sha.b.slice(0, 7)}: nothing to do`));
    t.deepEqual(await releases(), before);
    // --check shows the plan and changes nothing either.
    const check = await deploy('--branch', 'main', '--check');
    t.is(check.code, 0, check.stdout + check.stderr);
    t.regex(check.stdout, new RegExp(`would deploy +main \\(${sha.a.slice(0, 7)}\\)`));
    t.regex(check.stdout, /switch +nginx → (blue|green)/);
    t.deepEqual(await releases(), before);
    t.is(await commitServed(), sha.b);
  },
);

test.serial(
  'a branch whose health check fails: exit 2, B still serves, the failed release is gone',
  async (t) => {
    await ready(t);
    const before = await releases();
    const notices = hook.messages.length;
    const res = await deploy('--branch', 'broken-health');
    t.is(res.code, 2, res.stdout + res.stderr);
    t.regex(res.stdout, /health check green\s+FAILED|health check blue\s+FAILED/);
    t.regex(res.stdout, /answered 500 \(expected 200\)/);
    t.regex(res.stdout, /previous release \S+ still serves/);
    t.is(await commitServed(), sha.b);
    t.deepEqual(await releases(), before);
    t.false((await releases()).some((r) => r.endsWith(sha.broken.slice(0, 7))));
    t.true(hook.messages.slice(notices).some((m) => /FAILED at "health check/.test(m.text)));
  },
);

test.serial(
  'a failing migration: exit 2, the previous release serves again, maintenance is off',
  async (t) => {
    await ready(t);
    const before = await releases();
    const res = await deploy('--branch', 'broken-migration');
    t.is(res.code, 2, res.stdout + res.stderr);
    t.regex(res.stdout, /migrate\s+FAILED/);
    t.regex(res.stdout, /no_such_table/);
    t.is(await commitServed(), sha.b);
    t.is((await httpGet(`${base}/health`)).status, 200);
    t.not((await ssh('test -e /etc/nginx/maintenance/sample.on')).code, 0);
    t.deepEqual(await releases(), before);
    // The failing migration ran in one transaction: nothing of it stayed.
    const col = await ssh(
      `runuser -u postgres -- psql -tAc "SELECT count(*) FROM information_schema.columns WHERE table_name='visits' AND column_name='note'" sample`,
    );
    t.is(col.stdout.trim(), '0');
  },
);

test.serial('rollback returns to the earlier commit, health-gated', async (t) => {
  await ready(t);
  const res = await runCli(['rollback', inventory], { timeoutMs: 5 * 60_000 });
  t.is(res.code, 0, res.stdout + res.stderr);
  t.is(await commitServed(), sha.a);
  t.true(hook.messages.some((m) => /rolled back to release/.test(m.text)));
});

test.serial('two deploys at once on one host: the second fails cleanly naming the holder', async (t) => {
  await ready(t);
  const first = deploy('--branch', 'feature-b');
  await waitFor(
    async () => (await ssh('test -f /var/lib/verdandi/deploy.lock/info')).code === 0,
    60_000,
    'the first deploy to take the lock',
  );
  // --lock-wait 0: one try. A longer wait could outlast the first deploy on a loaded machine, and
  // the second would then rightly go through.
  const second = await deploy('--branch', 'main', '--lock-wait', '0');
  const firstResult = await first;
  t.is(second.code, 2, second.stdout + second.stderr);
  t.regex(second.stdout, /another deploy holds the lock of deploy-py: \S+ since \S+ \(deploy /);
  t.is(firstResult.code, 0, firstResult.stdout + firstResult.stderr);
  t.is(await commitServed(), sha.b);
  // The lock is released once the deploy ends.
  t.not((await ssh('test -e /var/lib/verdandi/deploy.lock')).code, 0);
  // A deploy that waits long enough goes through after the other.
  const waiting = deploy('--branch', 'main');
  await waitFor(
    async () => (await ssh('test -f /var/lib/verdandi/deploy.lock/info')).code === 0,
    60_000,
    'the deploy of main to take the lock',
  );
  const third = await deploy('--branch', 'feature-b', '--lock-wait', '300');
  t.regex(third.stdout, /waiting for the deploy lock held by/);
  t.is((await waiting).code, 0);
  t.is(third.code, 0, third.stdout + third.stderr);
});

test.serial('status tells what runs where; old releases beyond keepReleases are pruned', async (t) => {
  await ready(t);
  const res = await runCli(['status', inventory]);
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, new RegExp(`feature-b @ ${sha.b.slice(0, 7)}`));
  t.regex(res.stdout, /RUNNING/);
  t.regex(res.stdout, /nginx\s+active/);
  t.regex(res.stdout, /health\s+\/health → 200 \(ok\)/);
  t.regex(res.stdout, /disk\s+\S+ free/);
  t.true((await releases()).length <= 3);
  const json = JSON.parse((await runCli(['status', inventory, '--json'])).stdout);
  t.is(json.sites[0].record.commit, sha.b);
});
