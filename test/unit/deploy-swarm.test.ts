/**
 * Swarm sites without a host: the plan of a deploy, a migration deploy and a rollback; the convergence
 * wait against a stand-in `docker` (converged, rolled back, paused, timed out); status; the front's
 * upstreams; the registry password from the secrets.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import sitesRole from '../../roles/sites/index.js';
import { deployPlan, rollbackPlan } from '../../src/deploy/plan.js';
import type { ReleaseRecord } from '../../src/deploy/release.js';
import {
  convergeScript,
  ROLLED_BACK_EXIT,
  type SwarmSite,
  scaleToZero,
  swarmUpstream,
} from '../../src/deploy/runtimes/swarm.js';
import { type SiteInput, siteSchema, sitesVarsSchema } from '../../src/deploy/site.js';
import { sitePaths } from '../../src/deploy/site-base.js';
import type { SiteState } from '../../src/deploy/state.js';
import { formatStatus, parseStatus } from '../../src/deploy/status.js';
import { siteRegistryPassword } from '../../src/deploy/targets.js';
import { UserError } from '../../src/util/errors.js';
import { hostInfo } from '../fixtures/roles/host-info.js';

const R = '20261122T034507Z-3f2a9c1';
const OLD = '20261121T100000Z-aaaaaaa';
const record: ReleaseRecord = {
  release: R,
  site: 'web',
  commit: '3f2a9c1d0e5b6a7988776655443322110fedcba9',
  branch: 'main',
  time: '2026-11-22T03:45:07.000Z',
  by: 'alice@laptop',
};
const REGISTRY = '10.0.0.31:5000';
const PASSWORD = 'registry-password-1';

const swarmSite = (over: Partial<SiteInput> = {}) =>
  siteSchema.parse({
    name: 'web',
    repo: 'x',
    runtime: {
      type: 'swarm',
      registry: { address: REGISTRY, username: 'deploy', password: 'registry_password' },
      workers: ['worker'],
      port: 8080,
      runOptions: ['-v', '/srv/db:/db'],
    },
    migrate: { command: 'sh migrate.sh', check: 'sh migrate.sh --check' },
    ...over,
  }) as SwarmSite;

const live: SiteState = {
  provisioned: true,
  current: OLD,
  maintenance: false,
  releases: [OLD],
  deployed: [OLD],
  slots: {},
};

test('a deploy: build once, push, secret, migrations under maintenance with the stack scaled down, stack deploy, converge', (t) => {
  const site = swarmSite();
  const paths = sitePaths(site, '/srv');
  const plan = deployPlan({ site, paths, state: live, record, env: 'A=1\n', registryPassword: PASSWORD });
  t.deepEqual(
    plan.steps.map((s) => s.title),
    [
      `checkout ${R}`,
      'environment file',
      'image build',
      'registry login',
      'push image',
      'environment secret',
      'pending migrations?',
      'maintenance on',
      'workers to 0',
      'stop web',
      'migrate',
      'stack deploy',
      'converge',
      'current → new release',
      'maintenance off',
      'record',
    ],
  );
  const step = (title: string) => plan.steps.find((s) => s.title === title)!;
  const image = `${REGISTRY}/verdandi/web:${R}`;
  t.regex(step('image build').command, new RegExp(`docker build --quiet -t ${image} -f Dockerfile -$`));
  // The password goes on stdin only.
  t.is(
    step('registry login').command,
    `docker login ${REGISTRY} --username deploy --password-stdin >/dev/null`,
  );
  t.is(step('registry login').stdin, `${PASSWORD}\n`);
  for (const s of plan.steps) t.false(s.command.includes(PASSWORD), `${s.title} has no password`);
  t.is(step('push image').command, `docker push ${image} >/dev/null`);
  t.regex(
    step('environment secret').command,
    new RegExp(`docker secret create .* web-env-${R} /srv/web/releases/${R}/.env`),
  );
  // Checks and migrations run once, on the manager, in the new image, with the site's options.
  t.regex(
    step('migrate').command,
    new RegExp(
      `docker run --rm -i --env-file /srv/web/releases/${R}/.env --network host -v /srv/db:/db ${image} sh -c 'vd_s=\\$\\(cat\\); exec 0</dev/null; eval "\\$vd_s"' 0<<'VD_[0-9a-f]{16}'\nsh migrate.sh\n`,
    ),
  );
  t.is(step('workers to 0').only, 'pending-migrations');
  t.regex(step('workers to 0').command, /for s in web_worker; do/);
  t.regex(step('stop web').command, /for s in web_web; do/);
  const deploy = step('stack deploy');
  t.is(
    deploy.command,
    `cd /srv/web/releases/${R} && env IMAGE=${image} ENV_SECRET=web-env-${R} RELEASE=${R} docker stack deploy --with-registry-auth --prune -c docker-compose.yml web`,
  );
  t.falsy(deploy.pointOfNoReturn);
  // Undone by deploying the previous release's stack again and waiting for it.
  t.regex(deploy.undo![0], new RegExp(`IMAGE=${REGISTRY}/verdandi/web:${OLD} `));
  t.regex(deploy.undo![1], new RegExp(`want=${REGISTRY}/verdandi/web:${OLD};`));
  t.deepEqual(step('stop web').undo, deploy.undo);
  t.true(step('converge').pointOfNoReturn);
  t.true(step('converge').showsOutput);
  t.false(plan.steps.some((s) => s.title.startsWith('start ')));
});

test('the first deploy has nothing to scale down; its failure removes the stack', (t) => {
  const site = swarmSite();
  const plan = deployPlan({
    site,
    paths: sitePaths(site, '/srv'),
    state: { ...live, current: undefined, releases: [], deployed: [] },
    record,
    env: '',
    registryPassword: PASSWORD,
  });
  const titles = plan.steps.map((s) => s.title);
  t.false(titles.includes('stop web'));
  t.false(titles.includes('workers to 0'));
  t.deepEqual(plan.steps.find((s) => s.title === 'stack deploy')!.undo, [
    'docker stack rm web >/dev/null 2>&1; true',
  ]);
});

test('without a registry the image stays on the manager (single-node swarm)', (t) => {
  const site = swarmSite({ runtime: { type: 'swarm' } });
  const plan = deployPlan({ site, paths: sitePaths(site, '/srv'), state: live, record, env: '' });
  const titles = plan.steps.map((s) => s.title);
  t.false(titles.includes('registry login'));
  t.false(titles.includes('push image'));
  const deploy = plan.steps.find((s) => s.title === 'stack deploy')!;
  t.regex(deploy.command, new RegExp(`IMAGE=verdandi/web:${R} `));
  t.notRegex(deploy.command, /--with-registry-auth/);
});

test('a rollback logs in, keeps the target secret, deploys its stack and waits', (t) => {
  const site = swarmSite();
  const plan = rollbackPlan({
    site,
    paths: sitePaths(site, '/srv'),
    state: { ...live, current: R, releases: [OLD, R], deployed: [OLD, R] },
    target: OLD,
    by: 'alice@laptop',
    now: new Date('2026-11-22T04:00:00Z'),
    registryPassword: PASSWORD,
  });
  t.deepEqual(
    plan.steps.map((s) => s.title),
    ['registry login', 'environment secret', 'stack deploy', 'converge', `current → ${OLD}`, 'record'],
  );
  t.regex(
    plan.steps[2].command,
    new RegExp(`IMAGE=${REGISTRY}/verdandi/web:${OLD} ENV_SECRET=web-env-${OLD} `),
  );
  t.regex(plan.steps[2].undo![0], new RegExp(`IMAGE=${REGISTRY}/verdandi/web:${R} `));
});

// --- the convergence wait against a stand-in docker ------------------------------------------------

/**
 * A `docker` that answers what the convergence script asks from files: `services` (the stack's
 * services), `inspect-<service>` (state|image|replicas), `ps-<service>` (state|image lines), `message`.
 */
function fakeDocker(files: Record<string, string>): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'vd-fake-docker-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  const script = `#!/bin/sh
d=${dir}
case "$1 $2" in
  "stack services") cat "$d/services" ;;
  "stack ps") true ;;
  "service inspect")
    for last; do :; done
    case "$4" in
      *UpdateStatus.Message*) cat "$d/message" ;;
      *) cat "$d/inspect-$last" ;;
    esac ;;
  "service ps") for last; do :; done; cat "$d/ps-$last" ;;
  *) echo "unexpected: $*" >&2; exit 99 ;;
esac
`;
  writeFileSync(join(dir, 'docker'), script);
  chmodSync(join(dir, 'docker'), 0o755);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function runConverge(files: Record<string, string>, timeout = 10) {
  const site = swarmSite({
    runtime: {
      type: 'swarm',
      registry: { address: REGISTRY, username: 'u', password: 'p' },
      convergeTimeout: timeout,
    },
  });
  const fake = fakeDocker(files);
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      'sh',
      ['-c', convergeScript(site, R)],
      { env: { ...process.env, PATH: `${fake.dir}:${process.env.PATH}` } },
      (err, stdout, stderr) => {
        fake.cleanup();
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

const NEW = `${REGISTRY}/verdandi/web:${R}`;
const PREV = `${REGISTRY}/verdandi/web:${OLD}`;

test('converged: every replica runs the new image (any digest), the other services run', async (t) => {
  const r = await runConverge({
    services: 'web_web\nweb_redis\n',
    'inspect-web_web': `completed|${NEW}@sha256:abc|2\n`,
    'ps-web_web': `Running 3 seconds ago|${NEW}\nRunning 9 seconds ago|${NEW}\n`,
    'inspect-web_redis': `|redis:7|1\n`,
    'ps-web_redis': 'Running 2 hours ago|redis:7\n',
  });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), `converged: web_web 2/2 web_redis 1/1 on release ${R}`);
});

test('rolled back by Swarm: its own exit code, with Swarm message', async (t) => {
  const r = await runConverge({
    services: 'web_web\n',
    'inspect-web_web': `rollback_completed|${PREV}@sha256:def|2\n`,
    'ps-web_web': `Running 1 second ago|${PREV}\nRunning 1 second ago|${PREV}\n`,
    message: 'update rolled back due to failure or early termination of task x',
  });
  t.is(r.code, ROLLED_BACK_EXIT);
  t.regex(
    r.stderr,
    /web_web: Swarm rolled the update back \(update rolled back due to failure.*\): its tasks run .*web:20261121T100000Z-aaaaaaa again/,
  );
});

test('a paused update fails at once and says why; a stalled one times out naming the service', async (t) => {
  const paused = await runConverge({
    services: 'web_web\n',
    'inspect-web_web': `paused|${NEW}|2\n`,
    'ps-web_web': '',
    message: 'update paused due to failure',
  });
  t.is(paused.code, 1);
  t.regex(paused.stderr, /web_web: the update paused \(update paused due to failure\)/);
  const stalled = await runConverge(
    {
      services: 'web_web\n',
      'inspect-web_web': `completed|${NEW}|2\n`,
      'ps-web_web': `Running 1 second ago|${NEW}\nStarting 1 second ago|${NEW}\n`,
    },
    1,
  );
  t.is(stalled.code, 1);
  t.regex(stalled.stderr, /not converged after 1 s: web_web: 1\/2 tasks running the release/);
});

test('scaling down names the stack services and waits for their tasks', (t) => {
  const script = scaleToZero(swarmSite(), ['worker', 'mailer'], 30);
  t.regex(script, /for s in web_worker web_mailer; do/);
  t.regex(script, /docker service scale --detach "\$s=0"/);
  t.regex(script, /tasks still running after 30 s/);
});

test('status: services with replicas per node, each task with its node and image', (t) => {
  const site = swarmSite();
  const paths = sitePaths(site, '/srv');
  const st = parseStatus(
    'm',
    site,
    paths,
    [
      'provisioned=yes',
      `current=${R}`,
      'nginx=active',
      'health=200',
      `swarm_service=web_web|2/2 (max 1 per node)|${NEW}`,
      `swarm_service=web_worker|1/1|${NEW}`,
      `swarm_task=web_web.1|w1|Running 2 minutes ago|${NEW}`,
      `swarm_task=web_web.2|w2|Running 1 minute ago|${NEW}`,
      `swarm_task=web_worker.1|w2|Running 1 minute ago|${NEW}`,
    ].join('\n'),
  );
  const text = formatStatus(st);
  t.regex(
    text,
    new RegExp(`service {3}web_web replicas 2/2 \\(max 1 per node\\), on w1: 1, w2: 1, image ${NEW}`),
  );
  t.regex(text, /service {3}web_worker replicas 1\/1, on w2: 1, image /);
  t.regex(text, new RegExp(`task      web_web.2 on w2: Running 1 minute ago, ${NEW}`));
  t.notRegex(text, /processes/);
});

test('the front: upstreams are the swarm workers at the published port (or runtime.nodes)', async (t) => {
  const inventory = {
    hosts: [
      { name: 'm', address: '10.0.0.31', groups: [], vars: { docker_swarm: 'manager' } },
      { name: 'w1', address: '10.0.0.32', groups: [], vars: { docker_swarm: 'worker' } },
      {
        name: 'w2',
        address: '192.0.2.3',
        groups: [],
        vars: { docker_swarm: 'worker', docker_swarm_advertise_addr: '10.0.0.33' },
      },
    ],
  };
  const host = hostInfo('m', { inventory, address: '10.0.0.31' });
  const up = swarmUpstream(swarmSite(), host);
  t.regex(up, /^server 10\.0\.0\.32:8080 max_fails=1 fail_timeout=1s; # w1$/m);
  t.regex(up, /^server 10\.0\.0\.33:8080 max_fails=1 fail_timeout=1s; # w2$/m);
  t.notRegex(up, /10\.0\.0\.31/);
  const mesh = swarmSite({ runtime: { type: 'swarm', port: 8080, nodes: ['m'] } });
  t.regex(swarmUpstream(mesh, host), /^server 10\.0\.0\.31:8080/m);
  t.throws(() => swarmUpstream(swarmSite({ runtime: { type: 'swarm' } }), host), {
    message: /needs runtime.port/,
  });
  t.throws(() => swarmUpstream(swarmSite({ runtime: { type: 'swarm', port: 1, nodes: ['nope'] } }), host), {
    message: /runtime.nodes names "nope", which is not in the inventory/,
  });
  // The role builds a swarm site's tasks with these upstreams (no supervisor programs).
  const tasks = (await sitesRole.tasks({ sites: [swarmSite()], sites_root: '/srv' }, host)).flat();
  t.true(tasks.some((task) => task && JSON.stringify(task).includes('/etc/nginx/verdandi/web.upstream')));
  t.false(tasks.some((task) => task && JSON.stringify(task).includes('supervisor')));
});

test('swarm sites take no blue/green ports: two of them on one manager do not clash', (t) => {
  const vars = sitesVarsSchema.parse({
    sites: [
      { name: 'a', repo: 'x', runtime: { type: 'swarm' } },
      { name: 'b', repo: 'y', runtime: { type: 'swarm' } },
    ],
  });
  t.is(vars.sites.length, 2);
  t.throws(() =>
    sitesVarsSchema.parse({
      sites: [
        { name: 'a', repo: 'x', runtime: { type: 'docker' } },
        { name: 'b', repo: 'y', runtime: { type: 'docker' } },
      ],
    }),
  );
});

test('the registry password comes from the secrets; a missing one is a user error', (t) => {
  const site = swarmSite();
  t.is(siteRegistryPassword(site, { registry_password: PASSWORD }, 'prod'), PASSWORD);
  t.throws(() => siteRegistryPassword(site, {}, 'prod'), {
    instanceOf: UserError,
    message:
      /runtime.registry.password names the secret "registry_password", which the secrets of prod do not hold/,
  });
  t.is(siteRegistryPassword(swarmSite({ runtime: { type: 'swarm' } }), {}, 'prod'), undefined);
});
