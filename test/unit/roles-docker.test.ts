/** docker role without a host: daemon.json, packages, rolling-update defaults of stacks, swarm join. */
import test from 'ava';
import yaml from 'js-yaml';
import role, {
  daemonConfig,
  packages,
  registryAddress,
  registryConfig,
  stackCompose,
  swarmManagerAddress,
  vars,
} from '../../roles/docker/index.js';
import { hostInfo } from '../fixtures/roles/host-info.js';

test('daemon.json rotates logs by default; options merge over it', (t) => {
  t.deepEqual(daemonConfig(vars.parse({})), {
    'log-driver': 'json-file',
    'log-opts': { 'max-size': '10m', 'max-file': '3' },
  });
  const merged = daemonConfig(vars.parse({ docker_daemon_options: { 'default-address-pools': [] } }));
  t.deepEqual(merged['default-address-pools'], []);
});

test("packages: Debian's docker.io by default, Docker's repository as an option", (t) => {
  t.deepEqual(packages(vars.parse({})), ['docker.io', 'docker-compose']);
  t.true(packages(vars.parse({ docker_source: 'docker' })).includes('docker-ce'));
  t.true(packages(vars.parse({ docker_source: 'docker' })).includes('docker-compose-plugin'));
});

test('stacks get parallelism 1, start-first, rollback, unless a service sets its own', (t) => {
  const v = vars.parse({
    docker_swarm: 'manager',
    docker_stacks: [
      {
        name: 'web',
        compose: {
          version: '3.8',
          services: {
            app: { image: 'app:1', deploy: { replicas: 2 } },
            custom: { image: 'c:1', deploy: { update_config: { parallelism: 2 } } },
          },
        },
      },
    ],
  });
  const doc = yaml.load(stackCompose(v.docker_stacks[0])) as any;
  t.deepEqual(doc.services.app.deploy.update_config, {
    parallelism: 1,
    order: 'start-first',
    failure_action: 'rollback',
    monitor: '10s',
  });
  t.is(doc.services.app.deploy.replicas, 2);
  t.deepEqual(doc.services.custom.deploy.update_config, { parallelism: 2 });
  // YAML text works the same way.
  const fromText = yaml.load(
    stackCompose(
      vars.parse({ docker_stacks: [{ name: 's', compose: 'services:\n  a:\n    image: x\n' }] })
        .docker_stacks[0],
    ),
  ) as any;
  t.is(fromText.services.a.deploy.update_config.order, 'start-first');
});

test('a worker finds its manager in the inventory; the token comes from it or from the vars', async (t) => {
  const inventory = {
    hosts: [
      { name: 'm1', address: '10.0.0.10', groups: [], vars: { docker_swarm: 'manager' } },
      { name: 'w1', address: '10.0.0.11', groups: [], vars: { docker_swarm: 'worker' } },
    ],
  };
  const host = hostInfo('w1', { inventory, address: '10.0.0.11' });
  t.is(swarmManagerAddress(vars.parse({ docker_swarm: 'worker' }), host), '10.0.0.10');
  const joinOf = async (v: Record<string, unknown>) =>
    ((await role.tasks(vars.parse({ docker_swarm: 'worker', ...v }), host)) as any[]).find(
      (x) => x.type === 'dockerSwarmJoin',
    );

  // No token in the vars: the join reads it from the manager m1 during the run.
  const fromManager = await joinOf({});
  t.true(fromManager.sensitive);
  const [step] = fromManager.plan({ stdout: 'verdandi-swarm-state inactive\n', exitCode: 0 }).steps;
  t.is(step.stdinFrom.host, 'm1');
  t.regex(step.stdinFrom.command, /docker swarm join-token -q worker/);
  t.is(step.stdin, undefined);
  t.regex(step.command, /10\.0\.0\.10:2377/);

  // An explicit token: on stdin, never in the probe or the command.
  const explicit = await joinOf({ docker_swarm_join_token: 'SWMTKN-1-abc' });
  t.false(explicit.probe.includes('SWMTKN-1-abc'));
  const [own] = explicit.plan({ stdout: 'verdandi-swarm-state inactive\n', exitCode: 0 }).steps;
  t.is(own.stdin, 'SWMTKN-1-abc\n');
  t.false(own.command.includes('SWMTKN-1-abc'));
  t.is(own.stdinFrom, undefined);
  t.true(
    ((await role.tasks(vars.parse({ docker_swarm: 'worker' }), host)) as any[]).some(
      (x) => x.name === 'apt curl' || (x.type === 'apt' && x.name.includes('curl')),
    ),
  );

  const noManager = hostInfo('w1', { inventory: { hosts: [inventory.hosts[1]] } });
  t.throws(() => swarmManagerAddress(vars.parse({ docker_swarm: 'worker' }), noManager), {
    message: /no host/,
  });
});

test('stacks on a host that is not a manager are refused', async (t) => {
  const v = vars.parse({ docker_stacks: [{ name: 's', compose: 'services: {}' }] });
  await t.throwsAsync(async () => role.tasks(v, hostInfo('h')), { message: /swarm manager/ });
});

test('container env from the secrets; a missing secret is named', async (t) => {
  const v = vars.parse({
    docker_containers: [{ name: 'api', image: 'api:1', env_secrets: { API_KEY: 'api_key' } }],
  });
  const tasks = (await role.tasks(v, hostInfo('h', { secrets: { api_key: 'k-123456' } }))) as any[];
  const c = tasks.find((x) => x.type === 'dockerContainer');
  t.true(c.sensitive);
  t.false(c.probe.includes('k-123456'));
  await t.throwsAsync(async () => role.tasks(v, hostInfo('h')), { message: /secret "api_key"/ });
});

test('a private registry: on its host only, trusted by every engine, passwords only on stdin', async (t) => {
  const password = 'registry-password-xyz';
  const inventory = {
    hosts: [
      { name: 'm1', address: '10.0.0.10', groups: [], vars: { docker_swarm_advertise_addr: '10.1.0.10' } },
      { name: 'w1', address: '10.0.0.11', groups: [], vars: {} },
    ],
  };
  const v = vars.parse({ docker_registry: { host: 'm1', users: { deploy: password } } });
  const onManager = hostInfo('m1', { inventory, address: '10.0.0.10' });
  const onWorker = hostInfo('w1', { inventory, address: '10.0.0.11' });
  t.is(registryAddress(v, onWorker), '10.1.0.10:5000');
  t.deepEqual(daemonConfig(v, '10.1.0.10:5000')['insecure-registries'], ['10.1.0.10:5000']);
  t.regex(registryConfig('10.1.0.10:5000'), /addr: 10\.1\.0\.10:5000/);
  t.regex(registryConfig('10.1.0.10:5000'), /htpasswd:/);

  const managerTasks = (await role.tasks(v, onManager)) as any[];
  const users = managerTasks.find((x) => x.name.startsWith('registry users'));
  t.truthy(users);
  t.true(users.sensitive);
  const steps = users.plan({ stdout: '', exitCode: 1 }).steps ?? [];
  for (const step of steps) t.false(step.command?.includes(password) ?? false, 'no password in a command');
  t.true(managerTasks.some((x) => x.type === 'apt' && x.name.includes('docker-registry')));
  const workerTasks = (await role.tasks(v, onWorker)) as any[];
  t.false(
    workerTasks.some((x) => x.name.startsWith('registry users')),
    'the registry runs on its host only',
  );

  const nowhere = vars.parse({ docker_registry: { host: 'nope', users: { deploy: password } } });
  t.throws(() => registryAddress(nowhere, onWorker), { message: /"nope", which is not in the inventory/ });
});
