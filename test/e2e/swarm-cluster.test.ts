/**
 * A Docker Swarm of three fresh test hosts (one manager, two workers) built by one `verdandi provision`:
 * docker on every node, the manager's `swarm init`, and the workers' joins in the same run, with the join
 * token read from the manager during the run (nothing in the inventory or the secrets). The token never
 * shows in the run's output. A second run changes nothing; a worker that left the swarm is joined again;
 * a join token written in the vars (the explicit way) still works. A service with a task on each node
 * answers over the overlay network, from the manager, by Docker's DNS (no IPVS on the test hosts: the
 * routing mesh cannot work there, so the service uses `endpoint_mode: dnsrr`).
 */
import test from 'ava';
import {
  assertConverged,
  busyboxImageScript,
  type ProvisionResult,
  projectDir,
  provision,
  sshOk,
  stackInventory,
  waitOnHost,
} from '../fixtures/roles/e2e.js';
import { useTestHosts } from '../helpers/testhosts.js';

const MANAGER = 'swarm-m';
const WORKERS = ['swarm-w1', 'swarm-w2'];
const ALL = [MANAGER, ...WORKERS];
const hosts = useTestHosts(test, ALL);
const project = projectDir('swarm-cluster');
test.after.always(() => project.cleanup());

const inventory = (workerVars: Record<string, unknown> = {}) =>
  stackInventory(
    project.dir,
    ALL.map((n) => hosts.get(n)),
    ['docker'],
    {},
    Object.fromEntries([
      [MANAGER, { docker_swarm: 'manager' }],
      ...WORKERS.map((w) => [w, { docker_swarm: 'worker', ...workerVars }]),
    ]),
  );

const nodeState = (name: string) =>
  hosts.ssh(name, "docker info --format '{{.Swarm.LocalNodeState}}'").then((r) => r.stdout.trim());

/** The manager's view: hostname → status of every node that is not Down (a node that left stays Down). */
async function readyNodes(t: Parameters<typeof sshOk>[0]): Promise<string[]> {
  const out = await sshOk(t, hosts, MANAGER, "docker node ls --format '{{.Hostname}} {{.Status}}'");
  return out
    .split('\n')
    .filter((l) => l.endsWith(' Ready'))
    .map((l) => l.split(' ')[0])
    .sort();
}

function assertAllConverged(t: Parameters<typeof sshOk>[0], r: ProvisionResult): number {
  return ALL.reduce((sum, h) => sum + assertConverged(t, r, h).changed, 0);
}

async function workerToken(t: Parameters<typeof sshOk>[0]): Promise<string> {
  return (await sshOk(t, hosts, MANAGER, 'docker swarm join-token -q worker')).trim();
}

test.serial(
  'one provision builds the swarm: the manager inits, the workers join in the same run',
  async (t) => {
    const r = await provision(project.dir, inventory());
    t.true(assertAllConverged(t, r) > 0);
    for (const h of ALL) t.is(await nodeState(h), 'active', `${h} is in the swarm`);
    t.deepEqual(await readyNodes(t), [...ALL].sort());
    const managers = await sshOk(
      t,
      hosts,
      MANAGER,
      "docker node ls --filter role=manager --format '{{.Hostname}}'",
    );
    t.is(managers.trim(), MANAGER);
    // The token was read and used, never shown.
    const token = await workerToken(t);
    t.regex(token, /^SWMTKN-/);
    t.false(r.stdout.includes(token), 'the token is not in the report');
    t.false(r.stderr.includes(token), 'the token is not in the output');
  },
);

test.serial('a second run changes nothing', async (t) => {
  const r = await provision(project.dir, inventory());
  t.is(assertAllConverged(t, r), 0, r.stdout);
});

test.serial('a worker that left the swarm is joined again', async (t) => {
  await sshOk(t, hosts, WORKERS[1], 'docker swarm leave');
  t.is(await nodeState(WORKERS[1]), 'inactive');
  const r = await provision(project.dir, inventory());
  t.is(assertConverged(t, r, MANAGER).changed, 0);
  t.is(assertConverged(t, r, WORKERS[0]).changed, 0);
  t.is(assertConverged(t, r, WORKERS[1]).changed, 1);
  t.is(await nodeState(WORKERS[1]), 'active');
  t.true(
    await waitOnHost(
      hosts,
      MANAGER,
      `[ "$(docker node ls --format '{{.Hostname}} {{.Status}}' | grep -c ' Ready$')" = 3 ]`,
      60,
    ),
    'three nodes ready again',
  );
  // The entry of the node that left stays Down on the manager (Docker keeps it until `docker node rm`).
  await sshOk(
    t,
    hosts,
    MANAGER,
    "docker node ls --format '{{.ID}} {{.Status}}' | awk '$2 == \"Down\" {print $1}' | xargs -r docker node rm",
  );
});

test.serial('the explicit join token var still works', async (t) => {
  const token = await workerToken(t);
  await sshOk(t, hosts, WORKERS[0], 'docker swarm leave');
  const r = await provision(project.dir, inventory({ docker_swarm_join_token: token }));
  t.is(assertConverged(t, r, WORKERS[0]).changed, 1);
  t.is(assertConverged(t, r, WORKERS[1]).changed, 0);
  t.is(await nodeState(WORKERS[0]), 'active');
  t.false(r.stdout.includes(token));
  t.false(r.stderr.includes(token));
});

test.serial('a service spread over the nodes answers over the overlay network', async (t) => {
  // No registry here: the same image is imported on every node (the offline base-image path).
  await Promise.all(ALL.map((h) => sshOk(t, hosts, h, busyboxImageScript('bb:v1', `hello from ${h}`))));
  await sshOk(
    t,
    hosts,
    MANAGER,
    [
      'docker network create --driver overlay probe-net >/dev/null',
      'docker service create --detach --name probe --network probe-net --mode global --endpoint-mode dnsrr bb:v1 >/dev/null',
    ].join(' && '),
  );
  t.true(
    await waitOnHost(
      hosts,
      MANAGER,
      `[ "$(docker service ps probe --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' | grep -c ' Running')" = 3 ]`,
      180,
    ),
    'a task runs on each of the three nodes',
  );
  // Each node's task, at its address on the overlay network, answers the manager's task: traffic
  // crosses the nodes over VXLAN.
  const local = `$(docker ps -q --filter label=com.docker.swarm.service.name=probe | head -n 1)`;
  const answers: string[] = [];
  for (const h of ALL) {
    const ip = (
      await sshOk(
        t,
        hosts,
        h,
        `docker ps -q --filter label=com.docker.swarm.service.name=probe | head -n 1 | xargs docker inspect --format '{{(index .NetworkSettings.Networks "probe-net").IPAddress}}'`,
      )
    ).trim();
    t.regex(ip, /^\d+\.\d+\.\d+\.\d+$/, `the task on ${h} has an overlay address`);
    answers.push((await sshOk(t, hosts, MANAGER, `docker exec ${local} wget -q -O - http://${ip}/`)).trim());
  }
  t.deepEqual(
    answers,
    ALL.map((h) => `hello from ${h}`),
  );
  // Docker's DNS names the service's tasks (dnsrr: no virtual IP).
  t.is(
    (await sshOk(t, hosts, MANAGER, `docker exec ${local} wget -q -O - http://tasks.probe/`)).slice(0, 11),
    'hello from ',
  );
});

// --- a private registry on the manager -------------------------------------------------------------

const REGISTRY_PASSWORD = 'registry-test-password-1';
const withRegistry = () => {
  const registry = { host: MANAGER, users: { deployer: REGISTRY_PASSWORD } };
  return stackInventory(
    project.dir,
    ALL.map((n) => hosts.get(n)),
    ['docker'],
    { docker_registry: registry },
    Object.fromEntries([
      [MANAGER, { docker_swarm: 'manager' }],
      ...WORKERS.map((w) => [w, { docker_swarm: 'worker' }]),
    ]),
  );
};

test.serial(
  'a private registry on the manager: every node trusts it, pushes and pulls need a login',
  async (t) => {
    const r = await provision(project.dir, withRegistry());
    t.true(assertAllConverged(t, r) > 0);
    t.false(
      r.stdout.includes(REGISTRY_PASSWORD) || r.stderr.includes(REGISTRY_PASSWORD),
      'the password is not shown',
    );
    const addr = `${hosts.get(MANAGER).address}:5000`;

    t.true(
      await waitOnHost(hosts, MANAGER, `curl -s -o /dev/null http://${addr}/v2/`, 60),
      'the registry answers',
    );
    // Without credentials: 401.
    t.is(
      (await sshOk(t, hosts, WORKERS[0], `curl -s -o /dev/null -w '%{http_code}' http://${addr}/v2/`)).trim(),
      '401',
    );
    t.is(
      (await sshOk(t, hosts, MANAGER, "stat -c '%a %U' /etc/docker/registry/htpasswd")).trim(),
      '640 root',
    );
    for (const h of ALL) {
      const insecure = JSON.parse(await sshOk(t, hosts, h, 'cat /etc/docker/daemon.json'))[
        'insecure-registries'
      ];
      t.deepEqual(insecure, [addr], `${h} trusts the registry`);
    }

    // Push from the manager, pull on a worker: the password on stdin.
    const login = `docker login ${addr} --username deployer --password-stdin >/dev/null`;
    await sshOk(t, hosts, MANAGER, `printf '%s\\n' '${REGISTRY_PASSWORD}' | ${login}`);
    await sshOk(t, hosts, MANAGER, `docker tag bb:v1 ${addr}/bb:v1 && docker push ${addr}/bb:v1 >/dev/null`);
    await sshOk(
      t,
      hosts,
      WORKERS[0],
      'docker logout >/dev/null 2>&1; docker rmi -f bb:v1 >/dev/null 2>&1; true',
    );
    const anonymous = await hosts.ssh(WORKERS[0], `docker pull ${addr}/bb:v1`);
    t.not(anonymous.code, 0, 'a pull without login is refused');
    await sshOk(t, hosts, WORKERS[0], `printf '%s\\n' '${REGISTRY_PASSWORD}' | ${login}`);
    await sshOk(t, hosts, WORKERS[0], `docker pull ${addr}/bb:v1 >/dev/null`);
    t.is(
      (await sshOk(t, hosts, WORKERS[0], `docker run --rm ${addr}/bb:v1 cat /www/index.html`)).trim(),
      `hello from ${MANAGER}`,
    );

    // Nothing changes on a second run (the salted htpasswd file is not rewritten).
    const again = await provision(project.dir, withRegistry());
    t.is(assertAllConverged(t, again), 0, again.stdout);
  },
);
