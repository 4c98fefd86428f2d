import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { healthCheck, switchCurrent, upstreamContent } from '../../src/deploy/commands.js';
import { deployPlan, describePlan, rollbackPlan } from '../../src/deploy/plan.js';
import type { ReleaseRecord } from '../../src/deploy/release.js';
import { asApp } from '../../src/deploy/release-files.js';
import { runtimeOf } from '../../src/deploy/runtimes/index.js';
import { pruneVenvs } from '../../src/deploy/runtimes/python.js';
import { supervisorColors } from '../../src/deploy/runtimes/supervised.js';
import { type SiteInput, siteSchema, sitesVarsSchema } from '../../src/deploy/site.js';
import { sitePaths } from '../../src/deploy/site-base.js';
import { parseState } from '../../src/deploy/state.js';
import { formatStatus, parseStatus, statusScript } from '../../src/deploy/status.js';
import { siteEnvValues } from '../../src/deploy/targets.js';
import { noticeText } from '../../src/deploy/webhook.js';
import { UserError } from '../../src/util/errors.js';
import { clearSecrets, redact } from '../../src/util/redact.js';

const runSh = (script: string) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile('sh', ['-c', script], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });

const python = (over: Partial<SiteInput> = {}) =>
  siteSchema.parse({
    name: 'app',
    repo: '/repos/app',
    process: { command: 'uvicorn app:app --port $PORT' },
    migrate: { command: 'python migrate.py', check: 'python migrate.py --check' },
    ...over,
  });

const SHA = '3f2a9c1d0e5b6a7988776655443322110fedcba9';
const record: ReleaseRecord = {
  release: '20261122T034507Z-3f2a9c1',
  site: 'app',
  commit: SHA,
  branch: 'main',
  time: '2026-11-22T03:45:07.000Z',
  by: 'alice@laptop',
};
const OLD = '20261121T100000Z-aaaaaaa';

test('a site gets every default, and a bad one is refused with the field named', (t) => {
  const site = python();
  t.is(site.runtime.type, 'python');
  t.is(site.branch, 'main');
  t.is(site.keepReleases, 5);
  t.deepEqual(site.health, { path: '/', status: 200, timeout: 30 });
  const paths = sitePaths(site, '/srv');
  t.is(paths.dir, '/srv/app');
  t.is(paths.port('blue'), 8000);
  t.is(paths.port('green'), 8001);
  t.is(paths.user, 'app');
  const bad = sitesVarsSchema.safeParse({ sites: [{ name: 'Bad Name', repo: 'x' }] });
  t.false(bad.success);
  const twice = sitesVarsSchema.safeParse({
    sites: [
      { name: 'a', repo: 'x' },
      { name: 'a', repo: 'y' },
    ],
  });
  t.false(twice.success);
  const ports = sitesVarsSchema.safeParse({
    sites: [
      { name: 'a', repo: 'x', process: { port: 8000 } },
      { name: 'b', repo: 'y', process: { port: 8001 } },
    ],
  });
  t.false(ports.success);
  t.regex(ports.error?.issues[0].message ?? '', /sites "a" and "b" both use port 8001/);
});

test('the state probe output parses into the live color, releases and slots', (t) => {
  const site = python();
  const paths = sitePaths(site, '/srv');
  const state = parseState(
    paths,
    [
      'provisioned=yes',
      `current=${OLD}`,
      'upstream_port=8001',
      'maintenance=off',
      `release=${OLD}`,
      `deployed=${OLD}`,
      'release=20261121T110000Z-bbbbbbb',
      `slot_green=${OLD}`,
      'record={"commit":"x","release":"y"}',
    ].join('\n'),
  );
  t.true(state.provisioned);
  t.is(state.live, 'green');
  t.is(state.current, OLD);
  t.deepEqual(state.releases, [OLD, '20261121T110000Z-bbbbbbb']);
  t.deepEqual(state.deployed, [OLD]);
  t.deepEqual(state.slots, { green: OLD });
});

test('deploy plan: checkout, deps, checks, migrations under maintenance, start beside, switch, stop old', (t) => {
  const site = python({ checks: ['pytest -q'], build: ['make assets'] });
  const paths = sitePaths(site, '/srv');
  const state = {
    provisioned: true,
    current: OLD,
    live: 'blue' as const,
    maintenance: false,
    releases: [OLD],
    deployed: [],
    slots: { blue: OLD },
  };
  const plan = deployPlan({ site, paths, state, record, env: 'A=1\n' });
  t.deepEqual(
    plan.steps.map((s) => s.title),
    [
      `checkout ${record.release}`,
      'environment file',
      'dependencies',
      'build 1/1',
      'check 1/1',
      'pending migrations?',
      'maintenance on',
      'stop blue for migrations',
      'migrate',
      'start green',
      'health check green',
      'nginx → green',
      'current → new release',
      'maintenance off',
      'stop blue',
      'unused virtualenvs',
      'record',
    ],
  );
  const byTitle = (title: string) => plan.steps.find((s) => s.title === title)!;
  // What undoes what: the half-made release goes, the old color comes back, maintenance ends.
  t.regex(
    byTitle(`checkout ${record.release}`).undo![0],
    /rm -rf -- \/srv\/app\/releases\/20261122T034507Z-3f2a9c1/,
  );
  t.regex(byTitle('stop blue for migrations').undo![0], /supervisorctl start app-blue/);
  t.regex(byTitle('maintenance on').undo![0], /rm -f \/etc\/nginx\/maintenance\/app.on/);
  t.regex(byTitle('start green').undo![0], /supervisorctl stop app-green/);
  t.true(byTitle('nginx → green').pointOfNoReturn);
  t.true(byTitle('migrate').migrates);
  t.is(byTitle('maintenance on').only, 'pending-migrations');
  t.is(byTitle('pending migrations?').decides, 'pending-migrations');
  // The environment travels on stdin, never in the command.
  t.is(byTitle('environment file').stdin, 'A=1\n');
  t.notRegex(byTitle('environment file').command, /A=1/);
  t.regex(describePlan(plan, false).join('\n'), /maintenance on \(only if migrations are pending\)/);
});

test('the first deploy has nothing to pause; old releases beyond keepReleases are pruned', (t) => {
  const site = python({ keepReleases: 2 });
  const paths = sitePaths(site, '/srv');
  const first = deployPlan({
    site,
    paths,
    state: { provisioned: true, maintenance: false, releases: [], deployed: [], slots: {} },
    record,
    env: '',
  });
  t.false(first.steps.some((s) => s.title.includes('for migrations')));
  const r = ['20261101T000000Z-aaaaaaa', '20261102T000000Z-bbbbbbb', '20261103T000000Z-ccccccc'];
  const later = deployPlan({
    site,
    paths,
    state: {
      provisioned: true,
      current: r[2],
      live: 'green',
      maintenance: false,
      releases: r,
      deployed: [],
      slots: {},
    },
    record,
    env: '',
  });
  t.deepEqual(later.prune, [r[0], r[1]]);
  t.truthy(later.steps.find((s) => s.title === 'start blue'));
});

test('docker sites build an image and run containers per color; swarm sites deploy a stack', (t) => {
  const docker = siteSchema.parse({
    name: 'web',
    repo: 'x',
    runtime: { type: 'docker', containerPort: 8080 },
  });
  const paths = sitePaths(docker, '/srv');
  const plan = deployPlan({
    site: docker,
    paths,
    state: {
      provisioned: true,
      current: OLD,
      live: 'blue',
      maintenance: false,
      releases: [OLD],
      deployed: [],
      slots: {},
    },
    record,
    env: '',
  });
  const build = plan.steps.find((s) => s.title === 'image build')!;
  t.regex(build.command, /docker build --quiet -t verdandi\/web:20261122T034507Z-3f2a9c1 -f Dockerfile -$/);
  t.regex(build.command, /--exclude=.\/.env/);
  const start = plan.steps.find((s) => s.title === 'start green')!;
  t.regex(start.command, /--publish 127.0.0.1:8001:8080/);
  t.regex(start.command, /--env-file \/srv\/web\/releases\/20261122T034507Z-3f2a9c1\/.env/);
  t.regex(plan.steps.find((s) => s.title === 'stop blue')!.command, /docker stop --time 20 web-blue/);

  const swarm = siteSchema.parse({ name: 'stack', repo: 'x', runtime: { type: 'swarm' } });
  const sp = deployPlan({
    site: swarm,
    paths: sitePaths(swarm, '/srv'),
    state: { provisioned: true, maintenance: false, releases: [], deployed: [], slots: {} },
    record,
    env: '',
  });
  t.truthy(sp.steps.find((s) => s.title === 'stack deploy' && !s.pointOfNoReturn));
  t.truthy(sp.steps.find((s) => s.title === 'converge' && s.pointOfNoReturn));
  t.false(sp.steps.some((s) => s.title.startsWith('start ')));
});

test('rollback plan: target in the idle color, health gate, switch, stop the other', (t) => {
  const site = python();
  const paths = sitePaths(site, '/srv');
  const plan = rollbackPlan({
    site,
    paths,
    state: {
      provisioned: true,
      current: record.release,
      live: 'green',
      maintenance: false,
      releases: [OLD, record.release],
      deployed: [],
      slots: {},
    },
    target: OLD,
    by: 'bob',
    now: new Date('2026-11-22T05:00:00Z'),
  });
  t.deepEqual(
    plan.steps.map((s) => s.title),
    ['start blue', 'health check blue', 'nginx → blue', `current → ${OLD}`, 'stop green', 'record'],
  );
  t.regex(plan.steps[0].command, new RegExp(`ln -sfn /srv/app/releases/${OLD} /srv/app/slots/blue.tmp`));
});

test('commands quote every value: a hostile command stays one argument', async (t) => {
  const site = python();
  const paths = sitePaths(site, '/srv');
  const cmd = asApp(paths, '/srv/app/releases/x', "echo 'hi' $(id); rm -rf /");
  t.true(cmd.startsWith('runuser -u app -- env HOME=/srv/app sh -c'));
  // The command is a here-document of the script, not an argument (see the test below).
  t.true(cmd.includes(` /srv/app/releases/x 3<<'VD_`));
  t.true(cmd.includes(`\necho 'hi' $(id); rm -rf /\nVD_`));
  t.is(
    switchCurrent(paths, OLD),
    `ln -sfn releases/${OLD} /srv/app/current.tmp && mv -T /srv/app/current.tmp /srv/app/current && touch /srv/app/releases/${OLD}/.verdandi-deployed`,
  );
  t.regex(supervisorColors.start(site, paths, 'green', OLD), /supervisorctl start app-green$/);
  t.is(upstreamContent(paths, 'green').split('\n')[1], 'server 127.0.0.1:8001; # green');
});

test('the env file round-trips through sh for process sites; docker gets its own format', async (t) => {
  const site = python();
  const value = `it's "quoted" $HOME \`x\``;
  const text = runtimeOf(site).renderEnv({ A: value, B: 'plain' });
  const res = await runSh(`set -a; ${text.replace(/\n/g, '; ')} printf '%s' "$A"`);
  t.is(res.stdout, value);
  const docker = siteSchema.parse({ name: 'web', repo: 'x', runtime: { type: 'docker' } });
  t.is(runtimeOf(docker).renderEnv({ A: 'a b', B: 'c' }), 'A=a b\nB=c\n');
  t.throws(() => runtimeOf(docker).renderEnv({ A: 'two\nlines' }));
});

test('env secrets come from the secrets (dotted keys) and are redacted; a missing one is a user error', (t) => {
  clearSecrets();
  const site = python({ env: { vars: { MODE: 'prod', WORKERS: 2 }, secrets: { DATABASE_URL: 'db.url' } } });
  const values = siteEnvValues(site, { db: { url: 'postgresql://u:hunter22@db/app' } }, 'staging');
  t.deepEqual(values, { MODE: 'prod', WORKERS: '2', DATABASE_URL: 'postgresql://u:hunter22@db/app' });
  t.is(redact('url=postgresql://u:hunter22@db/app'), 'url=[secret]');
  const err = t.throws(() => siteEnvValues(site, {}, 'staging'), { instanceOf: UserError });
  t.regex(err.message, /env.secrets.DATABASE_URL names the secret "db.url"/);
  clearSecrets();
});

test('the health check waits until the expected status, and fails with the last one seen', async (t) => {
  let calls = 0;
  const server = createServer((req, res) => {
    calls++;
    res.statusCode = req.url === '/ok' && calls >= 3 ? 200 : 503;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const ok = await runSh(healthCheck(python({ health: { path: '/ok', status: 200, timeout: 10 } }), port));
  t.is(ok.code, 0, ok.stderr);
  t.true(calls >= 3);
  const bad = await runSh(healthCheck(python({ health: { path: '/never', status: 200, timeout: 1 } }), port));
  t.is(bad.code, 1);
  t.regex(bad.stderr, /answered 503 \(expected 200\) for 1 s/);
});

test('webhook text says the outcome, and that the previous release still serves on failure', (t) => {
  const base = {
    action: 'deploy' as const,
    env: 'staging',
    host: 'web1',
    site: 'app',
    ref: 'main',
    commit: SHA,
    by: 'alice',
    durationMs: 12300,
  };
  t.is(
    noticeText({ ...base, ok: true }),
    ':white_check_mark: app deployed main (3f2a9c1) on web1 (staging) by alice in 12.3 s',
  );
  const failed = noticeText({ ...base, ok: false, failedStep: 'health check green', detail: 'exit code: 1' });
  t.regex(failed, /FAILED at "health check green"/);
  t.regex(failed, /previous release is still serving/);
  t.regex(noticeText({ ...base, ok: false, failedStep: 'migrate', migrated: true }), /migrations had run/);
});

test('status: parsed from one read-only script, printed as the debugging checklist', (t) => {
  const site = python({ health: { path: '/health', status: 200, timeout: 30 } });
  const paths = sitePaths(site, '/srv');
  const script = statusScript(site, paths);
  t.regex(script, /supervisorctl status app-blue/);
  t.regex(
    script,
    /curl -k -s -o \/dev\/null -w '%\{http_code\}' --max-time 5 -H 'Host: localhost' http:\/\/127.0.0.1:80\/health/,
  );
  t.notRegex(script, /\nexit 0\n/);
  const rec = JSON.stringify({
    release: OLD,
    site: 'app',
    commit: SHA,
    branch: 'main',
    time: 't',
    by: 'alice',
  });
  const st = parseStatus(
    'web1',
    site,
    paths,
    [
      'provisioned=yes',
      `current=${OLD}`,
      'upstream_port=8000',
      'maintenance=off',
      `release=${OLD}`,
      `record=${rec}`,
      'nginx=active',
      'proc_blue=RUNNING',
      'proc_green=EXITED',
      'health=200',
      'disk=12G',
      `last=${JSON.stringify({ action: 'deploy', outcome: 'failed', branch: 'x', step: 'migrate', time: 't2' })}`,
    ].join('\n'),
  );
  t.is(st.live, 'blue');
  t.true(st.health.ok);
  const text = formatStatus(st);
  t.regex(text, /live {6}20261121T100000Z-aaaaaaa: main @ 3f2a9c1, deployed t by alice/);
  t.regex(text, /processes blue \(live\): RUNNING, green: idle/);
  t.regex(text, /last {6}FAILED deploy of x at "migrate"/);
  t.regex(text, /disk {6}12G free/);
});

test('workers stop during migrations (restarted if they fail) and restart on the new release', (t) => {
  const site = python({
    process: { command: 'x', workers: [{ name: 'jobs', command: 'python worker.py' }] },
  });
  const paths = sitePaths(site, '/srv');
  const state = {
    provisioned: true,
    current: OLD,
    live: 'blue' as const,
    maintenance: false,
    releases: [OLD],
    deployed: [],
    slots: {},
  };
  const plan = deployPlan({ site, paths, state, record, env: '' });
  const titles = plan.steps.map((s) => s.title);
  const stop = plan.steps.find((s) => s.title === 'stop workers')!;
  t.is(stop.command, 'supervisorctl stop app-worker-jobs');
  t.is(stop.only, 'pending-migrations');
  t.deepEqual(stop.undo, ['supervisorctl restart app-worker-jobs']);
  t.true(titles.indexOf('stop workers') < titles.indexOf('migrate'));
  t.is(titles.indexOf('restart workers'), titles.indexOf('current → new release') + 1);
  const rollback = rollbackPlan({ site, paths, state, target: OLD, by: 'b', now: new Date() });
  t.true(rollback.steps.some((s) => s.title === 'restart workers'));
});

test('unused virtualenvs are removed, the ones a release links to are kept', async (t) => {
  const { mkdtemp, mkdir, symlink, readdir, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const root = await mkdtemp(join(tmpdir(), 'vd-venvs-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const paths = sitePaths(python(), root);
  for (const v of ['aaaa', 'bbbb', 'cccc']) await mkdir(join(paths.shared, 'venvs', v), { recursive: true });
  await mkdir(join(paths.releases, OLD), { recursive: true });
  await symlink(join(paths.shared, 'venvs', 'bbbb'), join(paths.releases, OLD, '.venv'));
  const res = await runSh(pruneVenvs(paths));
  t.is(res.code, 0, res.stderr);
  t.deepEqual(await readdir(join(paths.shared, 'venvs')), ['bbbb']);
});

test('a site command runs as the app user in the release with its env, and is on no command line', async (t) => {
  if (process.getuid?.() !== 0) {
    t.pass('runuser needs root: covered on the test hosts');
    return;
  }
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const release = mkdtempSync(`${tmpdir()}/vd-asapp-`);
  writeFileSync(`${release}/.env`, "MODE='from env'\n");
  const paths = { ...sitePaths(python(), '/srv'), user: 'root', dir: release };
  const cmd = asApp(
    paths,
    release,
    `printf '%s|%s|%s|' "$MODE" "$#" "$PWD"; tr '\\0' ' ' < /proc/$$/cmdline; exit 4`,
  );
  const res = await runSh(`${cmd}\n`);
  t.is(res.code, 4, res.stderr);
  const [mode, args, cwd, cmdline] = res.stdout.split('|');
  t.deepEqual([mode, args, cwd], ['from env', '0', release]);
  t.false(cmdline.includes('printf'), cmdline);
});
