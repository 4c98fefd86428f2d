/**
 * The docker role on a fresh test host over real SSH: Debian's docker.io with log rotation, a user in
 * the docker group, a single-node swarm; a container and a compose project that answer; a stack whose
 * rolling update (the role's start-first defaults, healthcheck-gated) keeps it answering: a bounded
 * request loop on the host during the update sees no failure. The second run changes nothing.
 *
 * No registry is reachable from the test hosts: images are made on the host with `docker import` from
 * busybox-static's binary (see busyboxImageScript).
 *
 * The test hosts' kernel has no IPVS, so Swarm's routing mesh (ingress ports, virtual IPs) cannot work
 * there: the test stack uses `endpoint_mode: dnsrr` and a `front` service publishing its port in host
 * mode that fetches from the `web` service by its DNS name (busybox httpd + a CGI script). On a real
 * server the usual ingress ports work the same way with the role; nothing in the role differs.
 */
import test from 'ava';
import {
  assertConverged,
  busyboxImageScript,
  projectDir,
  provision,
  sshOk,
  stackInventory,
  waitOnHost,
} from '../fixtures/roles/e2e.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'roles-docker';
const hosts = useTestHosts(test, [HOST]);
const project = projectDir('roles-docker');
test.after.always(() => project.cleanup());

const healthcheck = {
  test: ['CMD', 'wget', '-q', '-O', '-', 'http://127.0.0.1/'],
  interval: '2s',
  retries: 3,
};

function stack(webImage: string) {
  return {
    name: 'shop',
    compose: {
      version: '3.8',
      services: {
        web: { image: webImage, healthcheck, deploy: { replicas: 2, endpoint_mode: 'dnsrr' } },
        front: {
          image: 'bb:v1',
          ports: [{ target: 80, published: 8080, mode: 'host' }],
          deploy: { endpoint_mode: 'dnsrr' },
        },
      },
    },
  };
}

const baseVars = { docker_swarm: 'manager', docker_users: ['deployer'] };
const fullVars = (webImage: string) => ({
  ...baseVars,
  docker_containers: [
    {
      name: 'hello',
      image: 'bb:v1',
      ports: ['8081:80'],
      healthcheck: { test: 'wget -q -O - http://127.0.0.1/', interval: '5s' },
    },
  ],
  docker_compose_projects: [
    {
      name: 'legacy',
      compose: {
        version: '3.8',
        services: { app: { image: 'bb:v1', ports: ['8082:80'], restart: 'unless-stopped' } },
      },
      env: { GREETING: 'hello' },
    },
  ],
  docker_stacks: [stack(webImage)],
});

const inventory = (vars: Record<string, unknown>) =>
  stackInventory(project.dir, [hosts.get(HOST)], ['docker'], vars);
const FRONT = 'curl -fsS -m 5 http://127.0.0.1:8080/cgi-bin/upstream';

test.serial(
  'converges: docker.io with log rotation, the user in the docker group, a swarm manager',
  async (t) => {
    await sshOk(t, hosts, HOST, 'useradd --create-home deployer');
    const r = await provision(project.dir, inventory(baseVars));
    t.true(assertConverged(t, r, HOST).changed > 0);

    t.is((await sshOk(t, hosts, HOST, 'systemctl is-active docker')).trim(), 'active');
    t.is((await sshOk(t, hosts, HOST, "docker info --format '{{.LoggingDriver}}'")).trim(), 'json-file');
    const daemon = JSON.parse(await sshOk(t, hosts, HOST, 'cat /etc/docker/daemon.json'));
    t.deepEqual(daemon['log-opts'], { 'max-size': '10m', 'max-file': '3' });
    t.regex(await sshOk(t, hosts, HOST, 'id -nG deployer'), /\bdocker\b/);
    t.is(
      (
        await sshOk(
          t,
          hosts,
          HOST,
          "docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'",
        )
      ).trim(),
      'active true',
    );
    await sshOk(t, hosts, HOST, 'command -v docker-compose');
  },
);

test.serial('a container and a stack answer', async (t) => {
  await sshOk(t, hosts, HOST, busyboxImageScript('bb:v1', 'hello v1'));
  await sshOk(t, hosts, HOST, busyboxImageScript('bb:v2', 'hello v2'));
  const r = await provision(project.dir, inventory(fullVars('bb:v1')));
  t.true(assertConverged(t, r, HOST).changed > 0);

  t.true(await waitOnHost(hosts, HOST, 'curl -fsS http://127.0.0.1:8081/', 60), 'the container answers');
  t.is(await sshOk(t, hosts, HOST, 'curl -fsS http://127.0.0.1:8081/'), 'hello v1\n');
  t.true(
    await waitOnHost(hosts, HOST, 'curl -fsS http://127.0.0.1:8082/', 60),
    'the compose project answers',
  );
  t.is(await sshOk(t, hosts, HOST, 'curl -fsS http://127.0.0.1:8082/'), 'hello v1\n');
  t.is((await sshOk(t, hosts, HOST, 'stat -c %a /opt/verdandi/compose/legacy/.env')).trim(), '600');
  t.true(await waitOnHost(hosts, HOST, FRONT, 120), 'the stack answers');
  t.is(await sshOk(t, hosts, HOST, FRONT), 'hello v1\n');
  // The role's rolling update defaults are on the service.
  const update = JSON.parse(
    await sshOk(t, hosts, HOST, "docker service inspect shop_web --format '{{json .Spec.UpdateConfig}}'"),
  );
  t.is(update.Parallelism, 1);
  t.is(update.Order, 'start-first');
  t.is(update.FailureAction, 'rollback');
});

test.serial('a second run changes nothing', async (t) => {
  // Both replicas up first: the converged state the next run must find.
  t.true(
    await waitOnHost(
      hosts,
      HOST,
      "docker service ls --filter name=shop_web --format '{{.Replicas}}' | grep -qx 2/2",
      120,
    ),
  );
  const r = await provision(project.dir, inventory(fullVars('bb:v1')));
  t.is(assertConverged(t, r, HOST).changed, 0, r.stdout);
});

test.serial('a rolling update of the stack keeps it answering', async (t) => {
  // A bounded request loop on the host (at most 600 requests, or until told to stop), started before
  // the update and stopped once it is over; every answer is recorded.
  await sshOk(
    t,
    hosts,
    HOST,
    `rm -f /tmp/loop.stop /tmp/loop.log; setsid sh -c 'i=0; while [ $i -lt 600 ] && [ ! -e /tmp/loop.stop ]; do if out=$(${FRONT} 2>&1); then echo "ok $out"; else echo "FAIL $out"; fi; i=$((i+1)); sleep 0.1; done > /tmp/loop.log; touch /tmp/loop.done' </dev/null >/dev/null 2>&1 &`,
  );
  t.true(await waitOnHost(hosts, HOST, 'grep -q "^ok" /tmp/loop.log', 30), 'the loop runs');

  const r = await provision(project.dir, inventory(fullVars('bb:v2')));
  t.true(assertConverged(t, r, HOST).changed > 0);
  const done = await waitOnHost(
    hosts,
    HOST,
    `[ "$(docker service inspect shop_web --format '{{.UpdateStatus.State}}')" = completed ] && [ "$(docker service ps shop_web --filter desired-state=running --format '{{.Image}} {{.CurrentState}}' | grep -c '^bb:v2 Running')" = 2 ]`,
    180,
  );
  t.true(done, 'the update completed');
  // A few more requests after the update, then stop the loop.
  await sshOk(
    t,
    hosts,
    HOST,
    'n=$(wc -l < /tmp/loop.log); while [ $(wc -l < /tmp/loop.log) -lt $((n + 10)) ] && [ ! -e /tmp/loop.done ]; do sleep 0.2; done; touch /tmp/loop.stop',
  );
  t.true(await waitOnHost(hosts, HOST, 'test -e /tmp/loop.done', 30));

  const log = (await sshOk(t, hosts, HOST, 'cat /tmp/loop.log')).split('\n').filter((l) => l !== '');
  const failures = log.filter((l) => !l.startsWith('ok '));
  t.deepEqual(failures, [], `${failures.length} failed requests of ${log.length}`);
  t.true(log.length >= 30, `only ${log.length} requests during the update`);
  t.true(log.some((l) => l === 'ok hello v1'));
  t.is(log[log.length - 1], 'ok hello v2');
});
