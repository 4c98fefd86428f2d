/**
 * `verdandi deploy` of a docker site on a real test host: the image is built on the host from the
 * release (`docker build`, context without the .env), each color is a container published on
 * 127.0.0.1 (blue: port, green: port + 1), nginx switches between them. No registry is reachable: the
 * repository's Dockerfile starts FROM an image this test makes on the host with `docker import` of
 * busybox-static (a stand-in for a real base image).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { Terminal } from './day2-terminal.js';
import {
  BASE_IMAGE_SCRIPT,
  commitBranch,
  deployUnderLoad,
  dockerSite,
  httpGet,
  makeRepo,
  onFirstUse,
  provisionOrThrow,
  webInventory,
} from './deploy-helpers.js';

const HOST = 'deploy-dk';
const hosts = useTestHosts(test, [HOST]);
let inventory = '';
let base = '';
const sha: Record<string, string> = {};

const ssh = (cmd: string) => hosts.ssh(HOST, cmd);
const deploy = (...args: string[]) => runCli(['deploy', inventory, ...args], { timeoutMs: 10 * 60_000 });
const served = async () => (await httpGet(`${base}/REVISION`)).body.trim();

const ready = onFirstUse(async (log) => {
  const host = hosts.get(HOST);
  base = `http://${host.address}`;
  const dir = await mkdtemp(join(tmpdir(), 'vd-deploy-dk-'));
  const repo = join(dir, 'web');
  sha.a = await makeRepo(repo, {
    Dockerfile:
      'FROM verdandi-test/busybox:1\nCOPY . /www\nCMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]\n',
    'health.txt': 'ok\n',
    'index.html': '<h1>docker site</h1>\n',
  });
  sha.b = await commitBranch(repo, 'main', 'feature-b', { 'index.html': '<h1>docker site B</h1>\n' });
  sha.broken = await commitBranch(repo, 'feature-b', 'broken', { 'health.txt': null });
  const site = dockerSite(repo, host.address, { env: { vars: { GREETING: 'hello' } }, keepReleases: 3 });
  inventory = writeInventory(
    dir,
    webInventory(host, ['nginx', 'docker', 'sites'], { sites: [site] }),
    'deploy-dk',
  );
  await provisionOrThrow(inventory, { log });
  const img = await ssh(BASE_IMAGE_SCRIPT);
  if (img.code !== 0) throw new Error(`base image: ${img.stderr}`);
});

test.serial(
  'deploy A: the container answers with A, built on the host without the .env inside',
  async (t) => {
    await ready(t);
    const res = await deploy('--branch', 'main');
    t.is(res.code, 0, res.stdout + res.stderr);
    t.is(await served(), sha.a);
    const ps = await ssh("docker ps --format '{{.Names}} {{.Ports}}'");
    t.regex(ps.stdout, /web-(blue|green) 127\.0\.0\.1:900[01]->8080\/tcp/);
    const inImage = await ssh(
      `docker run --rm verdandi/web:$(basename "$(readlink /srv/web/current)") /bin/sh -c 'test -e /www/.env && echo present || echo absent'`,
    );
    t.is(inImage.stdout.trim(), 'absent');
  },
);

test.serial(
  'deploy B under continuous requests: zero failed requests, the old container is gone',
  async (t) => {
    await ready(t);
    const { res, load: result } = await deployUnderLoad(`${base}/REVISION`, () =>
      deploy('--branch', 'feature-b'),
    );
    t.is(res.code, 0, res.stdout + res.stderr);
    t.log(`${result.requests} requests during the deploy, ${result.failures.length} failed`);
    t.deepEqual(result.failures, []);
    t.deepEqual(result.seen, [sha.a, sha.b]);
    const names = (await ssh("docker ps -a --format '{{.Names}}'")).stdout.split('\n').filter(Boolean);
    t.is(names.length, 1);
  },
);

test.serial(
  'a branch whose health check fails: exit 2, B serves, the release and its image are gone',
  async (t) => {
    await ready(t);
    const res = await deploy('--branch', 'broken');
    t.is(res.code, 2, res.stdout + res.stderr);
    t.regex(res.stdout, /answered 404 \(expected 200\)/);
    t.is(await served(), sha.b);
    const short = sha.broken.slice(0, 7);
    t.is((await ssh(`ls /srv/web/releases | grep -c ${short}`)).stdout.trim(), '0');
    t.is((await ssh(`docker images --format '{{.Tag}}' verdandi/web | grep -c ${short}`)).stdout.trim(), '0');
  },
);

test.serial('rollback returns to A', async (t) => {
  await ready(t);
  const res = await runCli(['rollback', inventory], { timeoutMs: 5 * 60_000 });
  t.is(res.code, 0, res.stdout + res.stderr);
  t.is(await served(), sha.a);
});

test.serial('console: the command runs in the live container, with its env, exit code carried', async (t) => {
  await ready(t);
  const live = (await ssh("docker ps --format '{{.Names}}'")).stdout.trim();
  // Without a terminal: `docker exec -i`, output streamed.
  const piped = await runCli([
    'console',
    inventory,
    'web',
    '--',
    'sh',
    '-c',
    'echo "dk=[$GREETING][$(cat /www/REVISION)][$(hostname)]"; exit 4',
  ]);
  t.is(piped.code, 4, piped.stdout + piped.stderr);
  const [, greeting, revision, id] = piped.stdout.match(/dk=\[([^\]]*)\]\[([^\]]*)\]\[([^\]]*)\]/) ?? [];
  t.is(greeting, 'hello');
  t.is(revision, sha.a);
  // The container's hostname is its id: the live one's.
  t.is((await ssh(`docker inspect -f '{{.Config.Hostname}}' ${live}`)).stdout.trim(), id);

  // Through a terminal: `docker exec -it`, a tty in the container.
  const term = await Terminal.start(`dk-console-${process.pid}`, ['console', inventory, 'web', '--', 'sh']);
  try {
    await term.waitFor(/console: web on /, 'the console to start');
    await term.type('[ -t 0 ] && echo "tty=[$GREETING]$((20+1))"');
    await term.waitFor(/tty=\[hello\]21/, 'the tty check in the container');
    await term.type('exit 6');
    t.is(await term.exitCode(), 6);
  } finally {
    await term.close();
  }
  t.is((await ssh('pgrep -f "docker exec"')).code, 1, 'no docker exec left on the host');
});
