/**
 * `verdandi deploy` of a swarm site that has no `env` at all, on a one-node swarm (the manager runs the
 * task; no registry: the image stays on the manager). Every such deploy failed at "environment secret":
 * the release's `.env` is empty and Docker refuses an empty secret. Now the secret is one empty line:
 * the deploy converges, nginx on the host serves the release, and the task sees `/run/secrets/env` as
 * that one line (the entrypoint's documented loop skips it).
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { busyboxImageScript } from '../fixtures/roles/e2e.js';
import { removeProject, runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { git, httpGet } from './deploy-helpers.js';

const HOST = 'tm-swarm1';
const hosts = useTestHosts(test, [HOST]);

const COMPOSE = `version: "3.8"
services:
  web:
    image: \${IMAGE}
    ports:
      - { target: 8080, published: 8080, protocol: tcp, mode: host }
    secrets: [env]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/index.html"]
      interval: 1s
      timeout: 2s
      retries: 3
    stop_grace_period: 2s
    deploy:
      replicas: 1
      update_config: { parallelism: 1, order: stop-first, failure_action: rollback, monitor: 2s }
secrets:
  env:
    external: true
    name: \${ENV_SECRET}
`;

// The documented loader, then the secret's bytes published as hex (so a test can see them exactly).
const ENTRY = `while IFS= read -r line; do [ -n "$line" ] && export "$line"; done < /run/secrets/env
od -An -tx1 /run/secrets/env | tr -d ' \\n' > /app/www/env-hex.txt
exec httpd -f -p 8080 -h /app/www
`;

let dir = '';
test.after.always(async () => {
  if (dir) removeProject(dir);
});

test('a swarm site without env deploys on a one-node swarm; its secret is one empty line', async (t) => {
  t.timeout(25 * 60_000);
  dir = await mkdtemp(join(tmpdir(), 'vd-tm-swarm-'));
  const h = hosts.get(HOST);
  const repo = join(dir, 'web');
  await mkdir(join(repo, 'www'), { recursive: true });
  await git(repo, 'init', '-q', '-b', 'main');
  const files: Record<string, string> = {
    Dockerfile: 'FROM tm/base:1\nCOPY . /app\nCMD ["/bin/sh", "/app/entry.sh"]\n',
    'docker-compose.yml': COMPOSE,
    'entry.sh': ENTRY,
    'www/index.html': 'no-env release\n',
  };
  for (const [path, content] of Object.entries(files)) await writeFile(join(repo, path), content);
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '-m', 'A');

  const inventory = writeInventory(
    dir,
    {
      hosts: {
        [HOST]: { address: h.address, user: h.user, key: h.key, docker_swarm: 'manager' },
      },
      groups: {
        one: {
          hosts: [HOST],
          roles: ['docker', 'nginx', 'sites'],
          vars: {
            sites: [
              {
                name: 'web',
                repo,
                runtime: { type: 'swarm', nodes: [HOST], port: 8080, convergeTimeout: 180 },
                nginx: { serverNames: [h.address] },
              },
            ],
          },
        },
      },
    },
    'swarm1',
  );
  const cli = (...args: string[]) => runCli(args, { cwd: dir, timeoutMs: 15 * 60_000 });

  const provisioned = await cli('provision', inventory, '--host-key-checking=off');
  t.is(provisioned.code, 0, provisioned.stdout + provisioned.stderr);
  const img = await hosts.ssh(HOST, busyboxImageScript('tm/base:1', 'base'));
  t.is(img.code, 0, img.stderr);

  const deployed = await cli('deploy', inventory, '--branch', 'main');
  t.is(deployed.code, 0, deployed.stdout + deployed.stderr);
  t.regex(deployed.stdout, /environment secret/);
  t.regex(deployed.stdout, /converge\s+converged: web_web 1\/1/);
  t.notRegex(deployed.stdout + deployed.stderr, /secret data must be larger than 0/);

  t.is((await httpGet(`http://${h.address}/`)).body, 'no-env release\n');
  // The task's /run/secrets/env: one newline, nothing else.
  t.is((await httpGet(`http://${h.address}/env-hex.txt`)).body, '0a');
  const secrets = await hosts.ssh(HOST, "docker secret ls --format '{{.Name}}'");
  t.regex(secrets.stdout, /^web-env-\d{8}T\d{6}Z-[0-9a-f]{7}$/m);
});
