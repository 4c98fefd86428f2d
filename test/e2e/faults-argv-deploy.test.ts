/**
 * No payload in argv, for deploys, Docker and databases: the `ps -eww` sampler of faults-argv.test.ts
 * (every 50 ms on the host) runs while a `dockerContainer` task starts a container whose env and
 * healthcheck hold a secret, a docker site and a python site whose env holds the secret are deployed
 * (with build commands and a migration that use it: the docker ones run in one-off containers of the
 * image, whose processes the host's `ps` shows too), and a PostgreSQL database whose owner's password
 * is the secret is backed up, downloaded and restored. The secret never appears on a command line,
 * while the sampler did see each of those programs run. A container's own command (`command`, after
 * the image) is its main process's command line: the sampler sees it, as documented.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { BASE_IMAGE_SCRIPT, git } from './deploy-helpers.js';

const HOST = 'ag-deploy';
const hosts = useTestHosts(test, [HOST]);
const SAMPLES = '/root/ps-samples.log';
const SAMPLING = '/root/sampling';

test.serial('a secret in docker containers, deploys, backup and restore never shows in ps', async (t) => {
  t.timeout(40 * 60_000);
  const secret = `S3cr3t-${randomBytes(8).toString('hex')}`;
  const argvMark = randomBytes(4).toString('hex');
  const host = hosts.get(HOST);
  const ssh = (cmd: string) => hosts.ssh(HOST, cmd, { timeoutMs: 10 * 60_000 });
  const dir = await mkdtemp(join(tmpdir(), 'vd-faults-argv-deploy-'));

  // A docker site: its build command and migration check the secret in the container's env.
  const dockerRepo = join(dir, 'dk');
  await mkdir(dockerRepo);
  await git(dockerRepo, 'init', '-q', '-b', 'main');
  await writeFile(
    join(dockerRepo, 'Dockerfile'),
    'FROM verdandi-test/busybox:1\nCOPY . /www\nCMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]\n',
  );
  await writeFile(join(dockerRepo, 'health.txt'), 'ok\n');
  await git(dockerRepo, 'add', '-A');
  await git(dockerRepo, 'commit', '-q', '-m', 'dk');
  // A python site (no virtualenv): its build command and migration check it in the release's env.
  const pyRepo = join(dir, 'py');
  await mkdir(pyRepo);
  await git(pyRepo, 'init', '-q', '-b', 'main');
  await writeFile(join(pyRepo, 'index.html'), 'py\n');
  await git(pyRepo, 'add', '-A');
  await git(pyRepo, 'commit', '-q', '-m', 'py');

  // Each site command holds the secret in its text and checks that its env has it too (a failure
  // fails the deploy); it sleeps so that the sampler sees it run.
  const uses = `sleep 0.5; test "$API_TOKEN" = "${secret}"`;
  // The image is busybox with only sh, httpd and cat linked: other tools run as busybox applets.
  const usesInImage = `busybox ${uses}`;
  const inventory = writeInventory(
    dir,
    {
      hosts: { [HOST]: { address: host.address, user: 'root', key: host.key } },
      groups: {
        web: {
          hosts: [HOST],
          roles: ['nginx', 'supervisor', 'docker', 'sites', 'postgres'],
          vars: {
            postgres_users: [{ name: 'app', password: secret }],
            postgres_databases: [{ name: 'appdb', owner: 'app' }],
            sites: [
              {
                name: 'dk',
                repo: dockerRepo,
                runtime: { type: 'docker', containerPort: 8080 },
                env: { vars: { API_TOKEN: secret } },
                build: [usesInImage],
                migrate: { command: usesInImage },
                process: { port: 9000, stopTimeout: 3 },
                nginx: { serverNames: ['dk.test'] },
                health: { path: '/health.txt', status: 200, timeout: 15 },
              },
              {
                name: 'py',
                repo: pyRepo,
                runtime: { type: 'python', virtualenv: false },
                env: { vars: { API_TOKEN: secret } },
                build: [uses],
                migrate: { command: uses },
                process: {
                  command: 'exec python3 -m http.server "$PORT" --bind 127.0.0.1',
                  port: 8100,
                  stopTimeout: 5,
                },
                nginx: { serverNames: ['py.test'] },
                health: { path: '/REVISION', status: 200, timeout: 30 },
              },
            ],
          },
        },
      },
    },
    'argv-deploy',
  );
  const provision = await runCli(['provision', inventory], { timeoutMs: 20 * 60_000 });
  t.is(provision.code, 0, provision.stdout + provision.stderr);
  t.is((await ssh(BASE_IMAGE_SCRIPT)).code, 0);
  await ssh(
    `runuser -u postgres -- psql -d appdb -c "CREATE TABLE t (v text); INSERT INTO t VALUES ('${argvMark}')"`,
  );

  const playbook = join(dir, 'containers.ts');
  await writeFile(
    playbook,
    `import { definePlaybook, dockerContainer } from 'verdandi';
const secret = ${JSON.stringify(secret)};
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [
  dockerContainer({
    container: 'ag-box',
    image: 'verdandi-test/busybox:1',
    command: ['sh', '-c', 'echo "$TOKEN" > /token; exec busybox sleep 1000', 'container-argv-${argvMark}'],
    env: { TOKEN: secret },
    healthcheck: { test: 'busybox sleep 0.3; test -s /token', interval: '1s', retries: 3 },
  }),
] }] });
`,
  );

  // The sampler: every 50 ms, every process's full command line.
  await ssh(
    `rm -f ${SAMPLES}; touch ${SAMPLING}; nohup sh -c 'while [ -e ${SAMPLING} ]; do ps -eww -o args >> ${SAMPLES}; echo --- >> ${SAMPLES}; sleep 0.05; done' >/dev/null 2>&1 &`,
  );
  const run = await runCli(['run', inventory, playbook, '-v'], { cwd: dir, timeoutMs: 5 * 60_000 });
  const deploy = await runCli(['deploy', inventory, '--branch', 'main', '-v'], { timeoutMs: 10 * 60_000 });
  const downloads = join(dir, 'downloads');
  await mkdir(downloads);
  const backup = await runCli(['backup', inventory, '--download', downloads, '-v'], {
    timeoutMs: 5 * 60_000,
  });
  const dumps = await readdir(join(downloads, HOST)).catch(() => [] as string[]);
  const dump = dumps.find((f) => f.includes('appdb'));
  await ssh(`runuser -u postgres -- psql -d appdb -c "DELETE FROM t"`);
  const restore = await runCli(
    ['restore', inventory, '--db', 'appdb', '--from', join(downloads, HOST, dump ?? 'none'), '--yes', '-v'],
    { timeoutMs: 5 * 60_000 },
  );
  // The healthcheck ran at least once with its secret (interval 1s) before the sampler stops.
  await ssh(
    `for i in $(seq 100); do [ "$(docker inspect -f '{{.State.Health.Status}}' ag-box)" = healthy ] && break; sleep 0.2; done`,
  );
  await ssh(`rm -f ${SAMPLING}`);

  for (const [what, res] of Object.entries({ run, deploy, backup, restore })) {
    t.is(res.code, 0, `${what}: ${res.stdout}${res.stderr}`);
    t.false(`${res.stdout}${res.stderr}`.includes(secret), `${what} does not print the secret`);
  }
  // Each did what it says, with the secret.
  t.is((await ssh('docker exec ag-box cat /token')).stdout, `${secret}\n`);
  t.is((await ssh("docker inspect -f '{{.State.Health.Status}}' ag-box")).stdout.trim(), 'healthy');
  const get = (name: string, path: string) =>
    ssh(`busybox wget -qO- --header 'Host: ${name}' http://127.0.0.1${path}`);
  t.is((await get('dk.test', '/health.txt')).stdout, 'ok\n');
  t.is((await get('py.test', '/index.html')).stdout, 'py\n');
  t.truthy(dump, `a dump of appdb was downloaded: ${dumps.join(', ')}`);
  t.is((await ssh('runuser -u postgres -- psql -d appdb -tAc "SELECT v FROM t"')).stdout.trim(), argvMark);

  // The sampler did sample: it saw each program run, and never the secret.
  const samples = (await ssh(`cat ${SAMPLES}`)).stdout;
  t.true(samples.split('\n---\n').length > 20, 'the sampler sampled during the runs');
  for (const seen of ['docker run', 'pg_dump', 'pg_restore', 'runuser -u', `container-argv-${argvMark}`]) {
    t.true(samples.includes(seen), `the sampler saw ${seen}`);
  }
  const leaks = samples.split('\n').filter((line) => line.includes(secret));
  t.deepEqual(leaks, [], 'no command line holds the secret');
});
