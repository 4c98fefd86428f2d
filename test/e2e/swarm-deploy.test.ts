/**
 * `verdandi deploy` of a swarm site on three fresh test hosts (one manager, two workers), built by one
 * `verdandi provision`: docker everywhere, the swarm, a private registry on the manager, nginx and the
 * site on the manager. The image is built once on the manager, pushed to the registry, and the stack's
 * web service (2 replicas, one per worker, ports published in `mode: host`) rolls one task at a time;
 * nginx on the manager proxies to both workers and skips the one whose task is being replaced (no
 * routing mesh: this kernel has no IPVS).
 *
 * Under a bounded request loop against the front (the manager's address only): a rolling deploy and a
 * rollback fail no request; a deploy with pending migrations answers only 200 or the maintenance page's
 * 503; a failed migration leaves the previous image serving, exit 2; a release whose health check fails
 * is rolled back by Swarm, exit 2. The site's secrets reach the tasks as a Docker secret, and are
 * neither in `docker service inspect` (as a non-root user of the docker group) nor in any output.
 *
 * No public registry is reachable: the repository's Dockerfile starts FROM a base image imported on
 * the manager from busybox-static (the documented offline path); the workers pull the built image
 * from the private registry.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { busyboxImageScript } from '../fixtures/roles/e2e.js';
import { CLI_BIN, PROJECT_ROOT, removeProject, runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { Terminal } from './day2-terminal.js';
import {
  commitBranch,
  git,
  httpGet,
  type LoadResult,
  requestContinuously,
  waitFor,
} from './deploy-helpers.js';

const MANAGER = 'sw-m';
const WORKERS = ['sw-w1', 'sw-w2'];
const ALL = [MANAGER, ...WORKERS];
const hosts = useTestHosts(test, ALL);

const REGISTRY_PASSWORD = 'registry-pass-for-swarm-deploy-7';
const API_TOKEN = 'api-token-only-in-the-secrets-93';
const ENV = { VERDANDI_VAULT_PASSWORD: 'vault-password-for-swarm-deploy-test' };

let dir = '';
let inventory = '';
let front = '';
const terminals: Terminal[] = [];
test.after.always(async () => {
  for (const term of terminals) await term.close();
  if (dir) removeProject(dir);
});

const ssh = (name: string, cmd: string) => hosts.ssh(name, cmd);
const cli = (...args: string[]) =>
  runCli([...args, inventory], { cwd: dir, env: ENV, timeoutMs: 10 * 60_000 });
const deploy = (branch: string) => cli('deploy', '--branch', branch);
const served = async () => (await httpGet(`${front}/`)).body.trim();

const COMPOSE = `version: "3.8"
services:
  web:
    image: \${IMAGE}
    ports:
      - { target: 8080, published: 8080, protocol: tcp, mode: host }
    secrets: [env]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health.txt"]
      interval: 1s
      timeout: 2s
      retries: 2
      start_period: 1s
    stop_grace_period: 3s
    deploy:
      replicas: 2
      placement:
        constraints: [node.role == worker]
        max_replicas_per_node: 1
      update_config: { parallelism: 1, order: stop-first, failure_action: rollback, monitor: 3s }
      rollback_config: { parallelism: 1, order: stop-first }
  worker:
    image: \${IMAGE}
    command: ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
    secrets: [env]
    stop_grace_period: 2s
    deploy:
      replicas: 1
      placement:
        constraints: [node.role == worker]
secrets:
  env:
    external: true
    name: \${ENV_SECRET}
`;

// The release's environment arrives as /run/secrets/env (KEY=value lines). The app stops gracefully,
// as any app behind a rolling update must: on SIGTERM it stops accepting (nginx then sends new requests
// to the other node) and lets the requests in flight finish, instead of being SIGKILLed mid-response
// after the grace period (httpd as PID 1 would ignore SIGTERM).
const ENTRY = `if [ -f /run/secrets/env ]; then
  while IFS= read -r line; do [ -n "$line" ] && export "$line"; done < /run/secrets/env
fi
httpd -f -p 8080 -h /app/www &
server=$!
trap 'kill "$server"; sleep 1; exit 0' TERM
wait "$server"
`;

// The "database" is a file on the manager, mounted into the one-off migration container.
const MIGRATE = `latest=$(cat /app/schema-version)
if [ "$1" = --check ]; then [ "$(cat /db/schema 2>/dev/null)" = "$latest" ]; exit $?; fi
echo "migrating to $latest"
echo "$latest" > /db/schema
`;

const releaseFiles = (label: string, schema: number): Record<string, string> => ({
  'www/index.html': `${label}\n`,
  'schema-version': `${schema}\n`,
});

let setup: Promise<void> | undefined;
const ready = (t: ExecutionContext) => {
  t.timeout(25 * 60_000);
  setup ??= provisionOnce((m) => t.log(m));
  return setup;
};

async function provisionOnce(log: (m: string) => void): Promise<void> {
  dir = await mkdtemp(join(tmpdir(), 'vd-swarm-deploy-'));
  const m = hosts.get(MANAGER);
  front = `http://${m.address}`;
  const repo = join(dir, 'web');
  await mkdir(join(repo, 'www'), { recursive: true });
  await git(repo, 'init', '-q', '-b', 'main');
  const files: Record<string, string> = {
    Dockerfile: 'FROM sw/base:1\nCOPY . /app\nCMD ["/bin/sh", "/app/entry.sh"]\n',
    'docker-compose.yml': COMPOSE,
    'entry.sh': ENTRY,
    'migrate.sh': MIGRATE,
    'www/health.txt': 'ok\n',
    ...releaseFiles('A', 1),
  };
  for (const [path, content] of Object.entries(files)) await writeFile(join(repo, path), content);
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '-m', 'A');
  await commitBranch(repo, 'main', 'b', releaseFiles('B', 1));
  await commitBranch(repo, 'main', 'broken', { ...releaseFiles('broken', 1), 'www/health.txt': null });
  await commitBranch(repo, 'b', 'c', releaseFiles('C', 2));
  await commitBranch(repo, 'c', 'd', {
    ...releaseFiles('D', 3),
    'migrate.sh': `${MIGRATE.replace('echo "migrating', 'echo "migration 3 fails" >&2; exit 1\necho "migrating')}`,
  });

  await writeFile(
    join(dir, 'secrets.plain.yml'),
    `registry_password: ${REGISTRY_PASSWORD}\napi_token: ${API_TOKEN}\n`,
  );
  const enc = await runCli(['secrets', 'encrypt', 'swarm', join(dir, 'secrets.plain.yml')], {
    cwd: dir,
    env: ENV,
  });
  if (enc.code !== 0) throw new Error(`secrets encrypt failed: ${enc.stderr}`);
  await rm(join(dir, 'secrets.plain.yml'));

  inventory = writeInventory(
    dir,
    {
      hosts: Object.fromEntries(
        ALL.map((n) => {
          const h = hosts.get(n);
          return [
            n,
            {
              address: h.address,
              user: h.user,
              key: h.key,
              docker_swarm: n === MANAGER ? 'manager' : 'worker',
            },
          ];
        }),
      ),
      groups: {
        swarm: {
          hosts: ALL,
          roles: ['docker'],
          vars: {
            docker_registry: { host: MANAGER, users: { deployer: '{{ secrets.registry_password }}' } },
          },
        },
        front: {
          hosts: [MANAGER],
          roles: ['nginx', 'sites'],
          vars: {
            sites: [
              {
                name: 'web',
                repo,
                runtime: {
                  type: 'swarm',
                  registry: {
                    address: `${m.address}:5000`,
                    username: 'deployer',
                    password: 'registry_password',
                  },
                  workers: ['worker'],
                  port: 8080,
                  runOptions: ['-v', '/var/lib/sw-db:/db'],
                  convergeTimeout: 120,
                },
                env: { vars: { GREETING: 'hello' }, secrets: { API_TOKEN: 'api_token' } },
                nginx: { serverNames: [m.address] },
                migrate: { command: 'sh /app/migrate.sh', check: 'sh /app/migrate.sh --check' },
              },
            ],
          },
        },
      },
    },
    'swarm',
  );
  const started = Date.now();
  const res = await runCli(['provision', inventory, '--host-key-checking=off'], {
    cwd: dir,
    env: ENV,
    timeoutMs: 15 * 60_000,
  });
  log(`provision: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (res.code !== 0) throw new Error(`provision failed (${res.code}):\n${res.stdout}\n${res.stderr}`);
  const img = await ssh(MANAGER, busyboxImageScript('sw/base:1', 'base'));
  if (img.code !== 0) throw new Error(`base image: ${img.stderr}`);
}

function noSecretIn(t: ExecutionContext, text: string, where: string): void {
  t.false(text.includes(API_TOKEN), `the API token is not in ${where}`);
  t.false(text.includes(REGISTRY_PASSWORD), `the registry password is not in ${where}`);
}

/**
 * Runs `action` while two bounded request loops (each one request at a time, a new connection each)
 * hit the front: at least 20 requests a second even on a loaded machine.
 */
async function underLoad<R>(
  action: () => Promise<R>,
): Promise<{ result: R; load: LoadResult; rate: number }> {
  let done = false;
  const started = Date.now();
  const loops = [0, 1].map(() =>
    // 10 ms apart: about 50 to 100 requests a second each, so the count lasts the whole deploy.
    requestContinuously(`${front}/`, () => done, { maxRequests: 20_000, maxMs: 8 * 60_000, pauseMs: 10 }),
  );
  const result = await action();
  done = true;
  const each = await Promise.all(loops);
  const load: LoadResult = {
    requests: each.reduce((n, l) => n + l.requests, 0),
    failures: each.flatMap((l) => l.failures),
    seen: [...new Set(each.flatMap((l) => l.seen))],
  };
  const rate = load.requests / ((Date.now() - started) / 1000);
  return { result, load, rate };
}

test.serial('deploy A: built once on the manager, pushed, both workers serve it through nginx', async (t) => {
  await ready(t);
  const res = await deploy('main');
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, /converge\s+converged: web_web 2\/2/);
  noSecretIn(t, res.stdout + res.stderr, "the deploy's output");
  t.is(await served(), 'A');
  // Built on the manager only; the workers pulled it from the registry.
  for (const w of WORKERS) {
    const tasks = await ssh(
      w,
      "docker ps --filter label=com.docker.swarm.service.name=web_web --format '{{.Image}}'",
    );
    t.regex(
      tasks.stdout,
      new RegExp(`^${hosts.get(MANAGER).address}:5000/verdandi/web:`),
      `${w} runs a web task`,
    );
  }
  const built = await ssh(
    WORKERS[0],
    "docker images --format '{{.Repository}}' | grep -c '^sw/base$' || true",
  );
  t.is(built.stdout.trim(), '0', 'no build on the workers: they have no base image');
  // Only the manager logged in: --with-registry-auth gave the workers' agents the credentials.
  for (const w of WORKERS)
    t.is((await ssh(w, 'test -e /root/.docker/config.json && echo yes || echo no')).stdout.trim(), 'no');
  t.is((await ssh(MANAGER, 'stat -c %a /root/.docker/config.json')).stdout.trim(), '600');
});

test.serial('deploy B under continuous requests: a rolling update fails no request', async (t) => {
  await ready(t);
  const { result: res, load, rate } = await underLoad(() => deploy('b'));
  t.is(res.code, 0, res.stdout + res.stderr);
  t.log(`${load.requests} requests (${rate.toFixed(0)}/s), ${load.failures.length} failed`);
  t.true(rate >= 20, `at least 20 requests per second (${rate.toFixed(1)})`);
  t.deepEqual(load.failures, []);
  t.deepEqual(load.seen, ['A', 'B']);
  t.is(await served(), 'B');
});

test.serial('secrets reach the tasks as a Docker secret, never in docker service inspect', async (t) => {
  await ready(t);
  const task = await ssh(
    WORKERS[0],
    'docker exec "$(docker ps -q --filter label=com.docker.swarm.service.name=web_web | head -n 1)" cat /run/secrets/env',
  );
  t.is(task.code, 0, task.stderr);
  t.true(task.stdout.includes(`API_TOKEN=${API_TOKEN}`), 'the task reads the token from its secret');
  t.true(task.stdout.includes('GREETING=hello'));
  const viewer = await ssh(
    MANAGER,
    'id viewer >/dev/null 2>&1 || useradd -m -G docker viewer; runuser -u viewer -- docker service inspect web_web web_worker',
  );
  t.is(viewer.code, 0, viewer.stderr);
  t.regex(viewer.stdout, /"Secrets"/);
  noSecretIn(t, viewer.stdout, 'docker service inspect');
  t.false(viewer.stdout.includes('API_TOKEN'), 'not even the variable is in the spec');
  const envFile = await ssh(MANAGER, "stat -c '%a %U' /srv/web/current/.env");
  t.is(envFile.stdout.trim(), '600 web');
});

test.serial('status: replicas per node and the image of each task', async (t) => {
  await ready(t);
  const res = await cli('status');
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, /service\s+web_web replicas 2\/2 \(max 1 per node\), on sw-w1: 1, sw-w2: 1, image /);
  t.regex(res.stdout, /service\s+web_worker replicas 1\/1, on sw-w[12]: 1, image /);
  const release = (await ssh(MANAGER, 'basename "$(readlink /srv/web/current)"')).stdout.trim();
  for (const w of WORKERS)
    t.regex(res.stdout, new RegExp(`task\\s+web_web\\.\\d on ${w}: Running .*verdandi/web:${release}`));
  t.regex(res.stdout, /health\s+\/ → 200 \(ok\)/);
  noSecretIn(t, res.stdout + res.stderr, "status's output");
});

test.serial('rollback under continuous requests: back to A, no failed request', async (t) => {
  await ready(t);
  const { result: res, load, rate } = await underLoad(() => cli('rollback'));
  t.is(res.code, 0, res.stdout + res.stderr);
  noSecretIn(t, res.stdout + res.stderr, "the rollback's output");
  t.log(`${load.requests} requests (${rate.toFixed(0)}/s), ${load.failures.length} failed`);
  t.true(rate >= 20, `at least 20 requests per second (${rate.toFixed(1)})`);
  t.deepEqual(load.failures, []);
  t.deepEqual(load.seen, ['B', 'A']);
  t.is(await served(), 'A');
});

test.serial('a release whose health check fails: Swarm rolls it back, exit 2, A still serves', async (t) => {
  await ready(t);
  const res = await deploy('broken');
  t.is(res.code, 2, res.stdout + res.stderr);
  t.regex(res.stdout, /ROLLED BACK: the new release did not become healthy and Swarm rolled the update back/);
  t.is(await served(), 'A');
  const short = (await git(join(dir, 'web'), 'rev-parse', '--short=7', 'broken')).trim();
  t.is((await ssh(MANAGER, `ls /srv/web/releases | grep -c ${short} || true`)).stdout.trim(), '0');
});

test.serial(
  'a deploy with pending migrations: only the maintenance page answers 503, never a 502',
  async (t) => {
    await ready(t);
    const { result: res, load } = await underLoad(() => deploy('c'));
    t.is(res.code, 0, res.stdout + res.stderr);
    t.regex(res.stdout, /pending migrations\?\s+yes/);
    t.regex(res.stdout, /workers to 0\s+ok/);
    t.regex(res.stdout, /stop web\s+ok/);
    t.log(`${load.requests} requests, ${load.failures.length} answered by the maintenance page`);
    const other = load.failures.filter((f) => !(f.startsWith('503: ') && f.includes('Maintenance')));
    t.deepEqual(other, [], 'only 503s of the maintenance page');
    t.true(load.failures.length > 0, 'the maintenance page answered during the migration');
    t.is(await served(), 'C');
    t.is((await ssh(MANAGER, 'cat /var/lib/sw-db/schema')).stdout.trim(), '2');
    const workers = await ssh(MANAGER, "docker service ls --filter name=web_worker --format '{{.Replicas}}'");
    t.is(workers.stdout.trim(), '1/1', 'the workers are back');
  },
);

test.serial('a failed migration: exit 2, C serves again after maintenance, workers back', async (t) => {
  await ready(t);
  const res = await deploy('d');
  t.is(res.code, 2, res.stdout + res.stderr);
  noSecretIn(t, res.stdout + res.stderr, "the failed deploy's output");
  t.regex(res.stdout, /migration 3 fails/);
  t.regex(res.stdout, /the migration failed; the previous release \S+ serves again/);
  t.is(await served(), 'C');
  t.is(
    (await ssh(MANAGER, 'test -e /etc/nginx/maintenance/web.on && echo on || echo off')).stdout.trim(),
    'off',
  );
  const services = await ssh(
    MANAGER,
    "docker service ls --filter name=web_ --format '{{.Name}} {{.Replicas}}'",
  );
  t.deepEqual(
    services.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' ').slice(0, 2).join(' '))
      .sort(),
    ['web_web 2/2', 'web_worker 1/1'],
  );
  t.is((await ssh(MANAGER, 'cat /var/lib/sw-db/schema')).stdout.trim(), '2');
});

// Day two on the swarm: `logs` reads `docker service logs` on the manager, `console` enters a running
// task's container on the node that runs it. The site is on the manager, its web tasks on the workers.

const WEB_TASK = 'docker ps -q --filter label=com.docker.swarm.service.name=web_web';

/** Prints `text` as a line of the output of `node`'s web task: what `docker service logs` shows. */
const taskSays = (node: string, text: string) =>
  ssh(node, `docker exec "$(${WEB_TASK} | head -n 1)" sh -c 'echo ${text} > /proc/1/fd/1'`);

const logs = (...args: string[]) =>
  runCli(['logs', inventory, 'web', ...args], { cwd: dir, env: ENV, timeoutMs: 120_000 });

/** Processes on `node` whose command line matches `pattern` (pgrep itself excluded). */
const remote = async (node: string, pattern: string) =>
  (await ssh(node, `pgrep -af -- ${JSON.stringify(pattern)} | grep -v pgrep || true`)).stdout.trim();

test.serial(
  'logs: the lines of the tasks, each naming its replica and node; --tail and --grep',
  async (t) => {
    await ready(t);
    for (const w of WORKERS) {
      for (const word of ['keep', 'drop']) {
        const said = await taskSays(w, `swlog-${w}-${word}`);
        t.is(said.code, 0, said.stderr);
      }
    }
    // The workers' agents send their tasks' lines to the manager: bounded wait until both arrived.
    let all = '';
    await waitFor(
      async () => {
        all = (await logs('--tail', '50')).stdout;
        return WORKERS.every((w) => all.includes(`swlog-${w}-drop`));
      },
      60_000,
      "both workers' lines in the logs",
    );
    for (const w of WORKERS)
      for (const word of ['keep', 'drop'])
        t.regex(all, new RegExp(`^${MANAGER} web_web\\.[12]@${w} \\| swlog-${w}-${word}$`, 'm'));
    // stdout is the log lines only, each read on the manager.
    t.true(
      all
        .split('\n')
        .filter(Boolean)
        .every((l) => /^\S+ web_(web|worker)\.\d+@\S+ \| /.test(l) && l.startsWith(`${MANAGER} `)),
      all.slice(0, 2000),
    );
    noSecretIn(t, all, "the logs' output");

    const tail = await logs('--tail', '1');
    t.is(tail.code, 0, tail.stdout + tail.stderr);
    for (const w of WORKERS) {
      t.regex(
        tail.stdout,
        new RegExp(`web_web\\.[12]@${w} \\| swlog-${w}-drop$`, 'm'),
        'the last line of each task',
      );
      t.false(tail.stdout.includes(`swlog-${w}-keep`), 'no line before the last');
    }

    const grep = await logs('--tail', '50', '--grep', 'swlog-.*-keep');
    t.is(grep.code, 0, grep.stdout + grep.stderr);
    for (const w of WORKERS) t.regex(grep.stdout, new RegExp(`@${w} \\| swlog-${w}-keep$`, 'm'));
    t.false(grep.stdout.includes('-drop'), grep.stdout);
  },
);

test.serial('logs -f follows the tasks; Ctrl-C leaves no docker service logs on the manager', async (t) => {
  await ready(t);
  const child: ChildProcess = spawn(
    process.execPath,
    [CLI_BIN, 'logs', inventory, 'web', '-f', '--tail', '0'],
    { cwd: PROJECT_ROOT, env: { ...process.env, CI: 'true', ...ENV }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  try {
    await waitFor(
      async () => (await remote(MANAGER, 'docker service logs')) !== '',
      60_000,
      'docker service logs on the manager',
    );
    const said = await taskSays(WORKERS[1], 'swlog-followed');
    t.is(said.code, 0, said.stderr);
    await waitFor(
      async () => new RegExp(`^${MANAGER} web_web\\.[12]@${WORKERS[1]} \\| swlog-followed$`, 'm').test(out),
      30_000,
      'the followed line',
    );
  } finally {
    child.kill('SIGINT');
  }
  t.is(await exit, 130, out);
  await waitFor(
    async () => (await remote(MANAGER, 'docker service logs')) === '',
    15_000,
    'docker service logs to stop',
  );
  t.is(await remote(MANAGER, 'docker service logs'), '');
});

/** The ids of the web tasks' containers on the workers (a container's hostname is its short id). */
async function webContainers(): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const w of WORKERS)
    for (const id of (await ssh(w, WEB_TASK)).stdout.split('\n').filter(Boolean)) ids.set(id, w);
  return ids;
}

test.serial(
  "console without a terminal: in a running task's container on its node, the release's env, exit code",
  async (t) => {
    await ready(t);
    const res = await runCli(
      [
        'console',
        inventory,
        'web',
        '--',
        'sh',
        '-c',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, expanded in the container
        'echo "greeting=$GREETING"; echo "token=${API_TOKEN:+set}"; echo "container=$(hostname)"; echo "serves=$(cat /app/www/index.html)"; exit 4',
      ],
      { cwd: dir, env: ENV, timeoutMs: 120_000 },
    );
    t.is(res.code, 4, res.stdout + res.stderr);
    t.regex(res.stdout, /^greeting=hello$/m);
    t.regex(res.stdout, /^token=set$/m, "the secret is in the task's environment");
    noSecretIn(t, res.stdout + res.stderr, "the console's output");
    t.regex(res.stdout, new RegExp(`^serves=${await served()}$`, 'm'), 'the live release');
    const containers = await webContainers();
    const container = /^container=(\S+)$/m.exec(res.stdout)?.[1] ?? '';
    const node = containers.get(container);
    t.truthy(node, `${container} is a web task's container on a worker (${[...containers.keys()]})`);
    t.regex(res.stderr, new RegExp(`console: web on ${node}, release `));
    for (const h of ALL) {
      t.is(await remote(h, 'docker exec'), '', `no docker exec left on ${h}`);
      t.is((await ssh(h, 'ls -d /tmp/verdandi-console.* 2>/dev/null | wc -l')).stdout.trim(), '0');
    }

    // --host names a node that runs a task; a node that runs none is refused, exit 1.
    const other = WORKERS.find((w) => w !== node)!;
    const there = await runCli(['console', inventory, 'web', '--host', other, '--', 'hostname'], {
      cwd: dir,
      env: ENV,
      timeoutMs: 120_000,
    });
    t.is(there.code, 0, there.stdout + there.stderr);
    t.is(containers.get(there.stdout.trim()), other);
    const none = await runCli(['console', inventory, 'web', '--host', MANAGER, '--', 'true'], {
      cwd: dir,
      env: ENV,
      timeoutMs: 120_000,
    });
    t.is(none.code, 1, none.stdout + none.stderr);
    t.regex(none.stderr, new RegExp(`--host ${MANAGER}: no task of web_web runs there`));
    t.regex(none.stderr, new RegExp(`${WORKERS[0]}|${WORKERS[1]}`));
    t.false(none.stderr.includes('    at '), 'no stack trace');
  },
);

test.serial(
  'console through a terminal: the task container, its env, exit N, no docker exec left',
  async (t) => {
    await ready(t);
    const passwordFile = join(dir, 'vault-password');
    await writeFile(passwordFile, `${ENV.VERDANDI_VAULT_PASSWORD}\n`, { mode: 0o600 });
    const term = await Terminal.start(`sw-console-${process.pid}`, [
      'console',
      inventory,
      'web',
      '--vault-password-file',
      passwordFile,
    ]);
    terminals.push(term);
    const started = await term.waitFor(/console: web on (\S+), release/, 'the console to start');
    const node = started[1];
    t.true(WORKERS.includes(node), `a worker runs the task (${node})`);
    await term.type('echo "probe=[$GREETING] serves=[$(cat /app/www/index.html)]"');
    // `$` excluded: the line typed (echoed by the terminal) does not match, only the shell's answer.
    const probe = await term.waitFor(/probe=\[([^\]$]*)\] serves=\[([^\]$]*)\]/, 'the probe');
    t.is(probe[1], 'hello');
    t.is(probe[2], await served());
    await term.type('[ -t 0 ] && echo "tty=$((20+1))"');
    await term.waitFor(/tty=21/, 'the tty check');
    await waitFor(
      async () => (await remote(node, 'docker exec')) !== '',
      15_000,
      'the docker exec on the node',
    );
    await term.type('exit 7');
    t.is(await term.exitCode(), 7);
    await waitFor(async () => (await remote(node, 'docker exec')) === '', 15_000, 'docker exec to end');
    for (const h of ALL) t.is(await remote(h, 'docker exec'), '', `no docker exec left on ${h}`);
  },
);
