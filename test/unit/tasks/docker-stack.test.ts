import { createHash } from 'node:crypto';
import test from 'ava';
import type { RunStep, WriteStep } from '../../../src/engine/types.js';
import { dockerStack } from '../../../src/tasks/docker-stack.js';
import { UserError } from '../../../src/util/errors.js';

const COMPOSE = `version: "3.8"
services:
  web:
    image: app:latest
    environment:
      DATABASE_URL: \${DATABASE_URL}
    deploy:
      replicas: 2
      update_config: { parallelism: 1, order: start-first }
`;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function probe(opts: {
  compose?: string;
  env?: string;
  services?: string[];
  exit?: number;
  detach?: boolean;
}) {
  const lines = [
    `verdandi-stack compose ${opts.compose ?? 'none'}`,
    `verdandi-stack env ${opts.env ?? 'none'}`,
    `verdandi-docker services-exit ${opts.exit ?? 0}`,
    ...(opts.services ?? ['Nothing found in stack: app']).map((s) => `verdandi-docker services ${s}`),
    `verdandi-stack detach-flag ${opts.detach ? 'yes' : 'no'}`,
  ];
  return { stdout: `${lines.join('\n')}\n`, exitCode: 0 };
}

test('not deployed: mkdir, write the compose file (0600), deploy with --prune', (t) => {
  const plan = dockerStack({ stack: 'app', compose: COMPOSE }).plan(probe({}));
  t.deepEqual(plan.steps, [
    { kind: 'run', command: 'mkdir -p -m 0700 /etc/verdandi/stacks' },
    {
      kind: 'write',
      path: '/etc/verdandi/stacks/app.yml',
      content: COMPOSE,
      mode: '0600',
      owner: 'root',
      group: 'root',
    },
    { kind: 'run', command: 'rm -f /etc/verdandi/stacks/app.env' },
    {
      kind: 'run',
      command: 'docker stack deploy --with-registry-auth=false --prune -c /etc/verdandi/stacks/app.yml app',
      description: 'docker stack deploy app',
    },
  ]);
  t.is(plan.reason, 'stack has no services, compose file missing');
  t.deepEqual(plan.diff, { path: '/etc/verdandi/stacks/app.yml', after: COMPOSE });
});

test('deployed with the same compose file: converged', (t) => {
  const plan = dockerStack({ stack: 'app', compose: COMPOSE }).plan(
    probe({ compose: sha(COMPOSE), services: ['app_web'] }),
  );
  t.deepEqual(plan, { steps: [] });
});

test('compose changed: redeployed', (t) => {
  const plan = dockerStack({ stack: 'app', compose: COMPOSE }).plan(
    probe({ compose: sha('old'), services: ['app_web'] }),
  );
  t.is(plan.reason, 'compose file differs');
  t.is(plan.steps.length, 4);
});

test('services removed by hand: redeployed though the file matches', (t) => {
  const plan = dockerStack({ stack: 'app', compose: COMPOSE }).plan(probe({ compose: sha(COMPOSE) }));
  t.is(plan.reason, 'stack has no services');
});

test('Docker 26+: waits for convergence with --detach=false; wait: false never waits', (t) => {
  const deploy = (p: ReturnType<typeof dockerStack>) =>
    (p.plan(probe({ detach: true })).steps.at(-1) as RunStep).command;
  t.is(
    deploy(dockerStack({ stack: 'app', compose: COMPOSE })),
    'docker stack deploy --with-registry-auth=false --prune --detach=false -c /etc/verdandi/stacks/app.yml app',
  );
  t.false(deploy(dockerStack({ stack: 'app', compose: COMPOSE, wait: false })).includes('--detach'));
});

test('envFile: written 0600 beside the compose file, sourced for the deploy; values not in commands', (t) => {
  const task = dockerStack({
    stack: 'app',
    compose: COMPOSE,
    envFile: { DATABASE_URL: "postgres://a:S3cret'x@db/a" },
  });
  const envContent = "DATABASE_URL='postgres://a:S3cret'\\''x@db/a'\n";
  const plan = task.plan(probe({ compose: sha(COMPOSE), services: ['app_web'] }));
  t.is(plan.reason, 'env file differs');
  t.deepEqual(plan.steps[2], {
    kind: 'write',
    path: '/etc/verdandi/stacks/app.env',
    content: envContent,
    mode: '0600',
    owner: 'root',
    group: 'root',
  } satisfies WriteStep);
  const deploy = (plan.steps[3] as RunStep).command;
  t.is(
    deploy,
    'set -a && . /etc/verdandi/stacks/app.env && set +a && docker stack deploy --with-registry-auth=false --prune -c /etc/verdandi/stacks/app.yml app',
  );
  for (const s of plan.steps) if (s.kind === 'run') t.false(s.command.includes('S3cret'));
  t.deepEqual(
    task.plan(probe({ compose: sha(COMPOSE), env: sha(envContent), services: ['app_web'] })).steps,
    [],
  );
});

test('envFile no longer wanted: removed and redeployed', (t) => {
  const plan = dockerStack({ stack: 'app', compose: COMPOSE }).plan(
    probe({ compose: sha(COMPOSE), env: sha('X=1\n'), services: ['app_web'] }),
  );
  t.is(plan.reason, 'env file no longer wanted');
});

test('not a swarm manager: error that says so', (t) => {
  const plan = dockerStack({ stack: 'app', compose: COMPOSE }).plan(
    probe({ exit: 1, services: ['Error response from daemon: This node is not a swarm manager.'] }),
  );
  t.regex(
    plan.error ?? '',
    /docker stack services app failed \(exit code 1\): Error response from daemon: This node is not a swarm manager\..*swarm manager/,
  );
});

test('absent: stack rm and the files removed', (t) => {
  const task = dockerStack({ stack: 'app', compose: '', state: 'absent' });
  t.deepEqual(
    task
      .plan(probe({ compose: sha(COMPOSE), services: ['app_web'] }))
      .steps.map((s) => (s as RunStep).command),
    ['docker stack rm app', 'rm -f /etc/verdandi/stacks/app.yml /etc/verdandi/stacks/app.env'],
  );
  t.deepEqual(task.plan(probe({})).steps, []);
});

test('probe: file hashes, stack services, deploy --help for the detach flag', (t) => {
  const { probe: text } = dockerStack({ stack: 'app', compose: COMPOSE });
  t.true(text.includes('sha256sum < /etc/verdandi/stacks/app.yml'));
  t.true(text.includes("docker stack services --format '{{.Name}}' app"));
  t.true(text.includes('docker stack deploy --help'));
});

test('a compose syntax error fails when the task is built, with its line', (t) => {
  const err = t.throws(
    () => dockerStack({ stack: 'app', compose: 'services:\n  web:\n    image: [unclosed\n' }),
    {
      instanceOf: UserError,
    },
  );
  t.regex(err?.message ?? '', /compose is not valid YAML at line \d+, column \d+/);
  t.throws(() => dockerStack({ stack: 'app', compose: 'version: "3"\n' }), {
    instanceOf: UserError,
    message: /no services/,
  });
  t.throws(() => dockerStack({ stack: 'bad/name', compose: COMPOSE }), { instanceOf: UserError });
});
