import test from 'ava';
import type { Plan, RunStep } from '../../../src/engine/types.js';
import { canonicalJson, containerConfigHash, dockerContainer } from '../../../src/tasks/docker-container.js';
import { UserError } from '../../../src/util/errors.js';

const IMG = `sha256:${'1'.repeat(64)}`;
const OTHER_IMG = `sha256:${'2'.repeat(64)}`;

const base = {
  container: 'web',
  image: 'app:latest',
  ports: ['8080:80'],
  env: { DATABASE_URL: 'postgres://app:Sup3rS3cret@db/app', MODE: 'prod' },
  volumes: ['/srv/data:/data:ro'],
  restart: 'unless-stopped',
  healthcheck: { test: 'curl -fs http://localhost/', interval: '10s', retries: 3 },
  network: 'backend',
  labels: { team: 'ops' },
};
const HASH = containerConfigHash(base);

function probe(container: string | 'missing' | { error: string }, image: string | 'missing' = IMG) {
  const lines: string[] = [];
  if (container === 'missing')
    lines.push('verdandi-docker container-exit 1', 'verdandi-docker container Error: No such container: web');
  else if (typeof container === 'object')
    lines.push('verdandi-docker container-exit 1', `verdandi-docker container ${container.error}`);
  else lines.push('verdandi-docker container-exit 0', `verdandi-docker container ${container}`);
  if (image === 'missing')
    lines.push('verdandi-docker image-exit 1', 'verdandi-docker image Error: No such image: app:latest');
  else lines.push('verdandi-docker image-exit 0', `verdandi-docker image ${image}`);
  return { stdout: `${lines.join('\n')}\n`, exitCode: 0 };
}
const commands = (plan: Plan) => plan.steps.map((s) => (s as RunStep).command);

const RUN = [
  'docker run -d --name web',
  `--label verdandi.config-hash=${HASH} --label team=ops`,
  '--restart unless-stopped -p 8080:80 -v /srv/data:/data:ro --network backend',
  "--health-cmd 'curl -fs http://localhost/' --health-interval 10s --health-retries 3",
  '--env-file /dev/stdin app:latest',
].join(' ');

test('config hash: stable across key order, changes with any value', (t) => {
  const reordered = {
    labels: { team: 'ops' },
    network: 'backend',
    healthcheck: { retries: 3, interval: '10s', test: 'curl -fs http://localhost/' },
    restart: 'unless-stopped',
    volumes: ['/srv/data:/data:ro'],
    env: { MODE: 'prod', DATABASE_URL: 'postgres://app:Sup3rS3cret@db/app' },
    ports: ['8080:80'],
    image: 'app:latest',
    container: 'web',
  };
  t.is(containerConfigHash(reordered), HASH);
  t.is(
    containerConfigHash({ ...base, container: 'other', state: 'stopped' } as typeof base),
    HASH,
    'container name and state are not config',
  );
  t.is(
    containerConfigHash({ ...base, command: undefined } as typeof base),
    HASH,
    'undefined options are left out',
  );
  t.not(containerConfigHash({ ...base, env: { ...base.env, MODE: 'dev' } }), HASH);
  t.not(containerConfigHash({ ...base, ports: ['8081:80'] }), HASH);
  t.regex(HASH, /^[0-9a-f]{64}$/);
  t.is(canonicalJson({ b: [1, { d: 1, c: 2 }], a: 'x', u: undefined }), '{"a":"x","b":[1,{"c":2,"d":1}]}');
});

test('missing container: docker run with every option, env on stdin only', (t) => {
  const plan = dockerContainer(base).plan(probe('missing'));
  t.deepEqual(commands(plan), [RUN]);
  t.is(plan.reason, 'container does not exist');
  const step = plan.steps[0] as RunStep;
  t.is(step.stdin, 'DATABASE_URL=postgres://app:Sup3rS3cret@db/app\nMODE=prod\n');
});

test('no secret in any command line, in any plan', (t) => {
  const task = dockerContainer(base);
  const plans = [
    task.plan(probe('missing')),
    task.plan(probe(`running|${'0'.repeat(64)}|${IMG}`)),
    task.plan(probe(`exited|${HASH}|${IMG}`)),
    task.plan(probe(`running|${HASH}|${OTHER_IMG}`)),
  ];
  for (const plan of plans) {
    for (const command of commands(plan)) {
      t.false(command.includes('Sup3rS3cret'), command);
      t.false(command.includes('prod'), command);
    }
  }
});

test('same config, same image, running: converged', (t) => {
  t.deepEqual(dockerContainer(base).plan(probe(`running|${HASH}|${IMG}`)), { steps: [] });
  t.deepEqual(dockerContainer(base).plan(probe(`restarting|${HASH}|${IMG}`)).steps, []);
});

test('config changed: rm -f then run', (t) => {
  const plan = dockerContainer(base).plan(probe(`running|${'0'.repeat(64)}|${IMG}`));
  t.deepEqual(commands(plan), ['docker rm -f web', RUN]);
  t.is(plan.reason, 'configuration changed');
  t.deepEqual(
    commands(dockerContainer(base).plan(probe(`running||${IMG}`))),
    ['docker rm -f web', RUN],
    'no label yet',
  );
});

test('image rebuilt under the same tag: recreated', (t) => {
  const plan = dockerContainer(base).plan(probe(`running|${HASH}|${OTHER_IMG}`));
  t.deepEqual(commands(plan), ['docker rm -f web', RUN]);
  t.is(plan.reason, 'image app:latest changed');
});

test('wanted image not on the host: recreated (docker run pulls it)', (t) => {
  const plan = dockerContainer(base).plan(probe(`running|${HASH}|${IMG}`, 'missing'));
  t.deepEqual(commands(plan), ['docker rm -f web', RUN]);
});

test('same config but exited or paused: start / unpause, no recreation', (t) => {
  t.deepEqual(commands(dockerContainer(base).plan(probe(`exited|${HASH}|${IMG}`))), ['docker start web']);
  t.deepEqual(commands(dockerContainer(base).plan(probe(`created|${HASH}|${IMG}`))), ['docker start web']);
  t.deepEqual(commands(dockerContainer(base).plan(probe(`paused|${HASH}|${IMG}`))), ['docker unpause web']);
});

test('stopped: running is stopped; missing is created, not started', (t) => {
  const task = dockerContainer({ ...base, state: 'stopped' });
  t.deepEqual(commands(task.plan(probe(`running|${HASH}|${IMG}`))), ['docker stop web']);
  t.deepEqual(task.plan(probe(`exited|${HASH}|${IMG}`)).steps, []);
  t.deepEqual(commands(task.plan(probe('missing'))), [RUN.replace('docker run -d', 'docker create')]);
});

test('absent: rm -f when it exists; the image is not probed', (t) => {
  const task = dockerContainer({ ...base, state: 'absent' });
  t.false(task.probe.includes('docker image inspect'));
  t.deepEqual(commands(task.plan(probe(`running|${HASH}|${IMG}`))), ['docker rm -f web']);
  t.deepEqual(task.plan(probe('missing')).steps, []);
});

test('docker not usable: error, not "missing"', (t) => {
  const plan = dockerContainer(base).plan(
    probe({
      error:
        'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?',
    }),
  );
  t.deepEqual(plan.steps, []);
  t.regex(
    plan.error ?? '',
    /docker container inspect failed \(exit code 1\): Cannot connect to the Docker daemon/,
  );
});

test('probe reads status, config-hash label and image id; and the wanted image id', (t) => {
  const { probe: text } = dockerContainer(base);
  t.true(
    text.includes(
      `docker container inspect -f '{{.State.Status}}|{{index .Config.Labels "verdandi.config-hash"}}|{{.Image}}' web`,
    ),
  );
  t.true(text.includes("docker image inspect -f '{{.Id}}' app:latest"));
});

test('command and healthcheck variants', (t) => {
  const task = dockerContainer({
    container: 'w',
    image: 'busybox',
    command: ['sh', '-c', 'httpd -f -p 80'],
    healthcheck: {
      test: ['CMD', 'wget', '-q', '-O-', 'http://localhost/'],
      timeout: '2s',
      startPeriod: '5s',
    },
  });
  const [run] = commands(task.plan(probe('missing')));
  t.true(run.endsWith("busybox sh -c 'httpd -f -p 80'"), run);
  t.true(
    run.includes("--health-cmd 'wget -q -O- http://localhost/' --health-timeout 2s --health-start-period 5s"),
    run,
  );
  t.is((task.plan(probe('missing')).steps[0] as RunStep).stdin, undefined);
  const none = dockerContainer({ container: 'w', image: 'busybox', healthcheck: { test: ['NONE'] } });
  t.true(commands(none.plan(probe('missing')))[0].includes('--no-healthcheck'));
});

test('validation: bad names, env values with line breaks, restart policies', (t) => {
  t.throws(() => dockerContainer({ ...base, container: 'bad name' }), { instanceOf: UserError });
  const err = t.throws(() => dockerContainer({ ...base, env: { KEY: 'line1\nline2' } }), {
    instanceOf: UserError,
  });
  t.regex(err?.message ?? '', /env KEY holds a line break/);
  t.throws(() => dockerContainer({ ...base, restart: 'sometimes' }), { instanceOf: UserError });
  t.throws(() => dockerContainer({ ...base, healthcheck: { test: 'x', interval: '10 seconds' } }), {
    instanceOf: UserError,
  });
  t.is(dockerContainer(base).name, 'docker container web');
});
