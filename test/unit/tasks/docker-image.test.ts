import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { RunStep } from '../../../src/engine/types.js';
import { dockerImage, inputsHash } from '../../../src/tasks/docker-image.js';
import { UserError } from '../../../src/util/errors.js';

const CTX = 'f'.repeat(64);

function probe(context: string, label: string | 'missing') {
  const lines = [`verdandi-image context ${context}`];
  if (label === 'missing')
    lines.push('verdandi-docker image-exit 1', 'verdandi-docker image Error: No such image: app:1');
  else lines.push('verdandi-docker image-exit 0', `verdandi-docker image ${label}`);
  return { stdout: `${lines.join('\n')}\n`, exitCode: 0 };
}

test('missing image: docker build with the inputs hash as label', (t) => {
  const plan = dockerImage({ tag: 'app:1', context: '/srv/app' }).plan(probe(CTX, 'missing'));
  t.deepEqual(plan.steps, [
    {
      kind: 'run',
      command: `docker build -t app:1 --label verdandi.context-hash=${inputsHash(CTX, undefined)} /srv/app`,
      description: 'docker build app:1',
    },
  ]);
  t.is(plan.reason, 'image does not exist');
});

test('label matches the context: converged; differs: rebuilt', (t) => {
  const task = dockerImage({ tag: 'app:1', context: '/srv/app' });
  t.deepEqual(task.plan(probe(CTX, inputsHash(CTX, undefined))), { steps: [] });
  const plan = task.plan(probe('e'.repeat(64), inputsHash(CTX, undefined)));
  t.is(plan.reason, 'build inputs changed');
  t.is(plan.steps.length, 1);
  t.is(task.plan(probe(CTX, '')).reason, 'build inputs changed', 'an image without the label is rebuilt');
});

test('inline Dockerfile: sent on stdin (-f - with a context, lone - without); part of the hash', (t) => {
  const dockerfile = 'FROM scratch\nCOPY . /\n';
  const withContext = dockerImage({ tag: 'app:1', context: '/srv/app', dockerfile }).plan(
    probe(CTX, 'missing'),
  );
  const step = withContext.steps[0] as RunStep;
  t.true(step.command.endsWith(' -f - /srv/app'));
  t.is(step.stdin, dockerfile);
  const alone = dockerImage({ tag: 'app:1', dockerfile }).plan(probe('none', 'missing'));
  t.true(
    (alone.steps[0] as RunStep).command.endsWith(
      ` --label verdandi.context-hash=${inputsHash('none', dockerfile)} -`,
    ),
  );
  t.not(inputsHash(CTX, dockerfile), inputsHash(CTX, `${dockerfile}# changed\n`));
  t.not(inputsHash(CTX, dockerfile), inputsHash(CTX, undefined));
});

test('context directory missing on the host: error', (t) => {
  const plan = dockerImage({ tag: 'app:1', context: '/srv/app' }).plan(probe('missing', 'missing'));
  t.regex(plan.error ?? '', /build context \/srv\/app is not a directory on the host/);
});

test('the context hash of the probe (run by sh) is stable and follows content and names, not location', (t) => {
  const hashOf = (dir: string) => {
    const task = dockerImage({ tag: 'x:1', context: dir });
    // Only the context part of the probe; docker is not needed for it.
    const contextPart = task.probe.split('\nout=$(')[0];
    const out = spawnSync('sh', ['-c', contextPart], { encoding: 'utf8' }).stdout;
    return out.trim().split(' ').at(-1);
  };
  const make = (files: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), 'verdandi-ctx-'));
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(join(dir, name, '..'), { recursive: true });
      writeFileSync(join(dir, name), content);
    }
    return dir;
  };
  const a = hashOf(make({ Dockerfile: 'FROM x\n', 'src/app.py': 'print(1)\n' }));
  t.regex(a ?? '', /^[0-9a-f]{64}$/);
  t.is(hashOf(make({ 'src/app.py': 'print(1)\n', Dockerfile: 'FROM x\n' })), a, 'another folder, same files');
  t.not(hashOf(make({ Dockerfile: 'FROM x\n', 'src/app.py': 'print(2)\n' })), a);
  t.not(hashOf(make({ Dockerfile: 'FROM x\n', 'src/main.py': 'print(1)\n' })), a);
  t.is(hashOf('/nonexistent-verdandi-context'), 'missing');
});

test('validation', (t) => {
  t.throws(() => dockerImage({ tag: 'app:1' }), { instanceOf: UserError });
  t.throws(() => dockerImage({ tag: 'app:1', context: 'relative/dir' }), { instanceOf: UserError });
  t.throws(() => dockerImage({ tag: 'bad tag', context: '/srv' }), { instanceOf: UserError });
  t.is(dockerImage({ tag: 'app:1', context: '/srv/app' }).name, 'docker image app:1');
});
