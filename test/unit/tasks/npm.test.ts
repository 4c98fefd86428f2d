import test from 'ava';
import type { RunStep } from '../../../src/engine/types.js';
import { type NpmOptions, npm } from '../../../src/tasks/npm.js';
import { UserError } from '../../../src/util/errors.js';

const out = (...lines: string[]) => ({ stdout: `${lines.join('\n')}\n`, exitCode: 0 });
const b64 = (text: string) => Buffer.from(text).toString('base64');

test('installed at the wanted version, or at any version when none is asked: converged', (t) => {
  t.deepEqual(
    npm({ package: 'pm2', version: '5.3.1', global: true }).plan(out('verdandi-npm installed 5.3.1')),
    {
      steps: [],
    },
  );
  t.deepEqual(npm({ package: 'pm2', path: '/srv/app' }).plan(out('verdandi-npm installed 1.0.0')), {
    steps: [],
  });
});

test('missing: npm install in the directory (created), name@version', (t) => {
  const plan = npm({ package: '@scope/tool', version: '2.0.0', path: '/srv/app' }).plan(
    out('verdandi-npm missing'),
  );
  t.deepEqual(plan, {
    steps: [
      {
        kind: 'run',
        command:
          'mkdir -p /srv/app && cd /srv/app && npm install @scope/tool@2.0.0 --no-audit --no-fund --no-update-notifier',
        description: 'npm install @scope/tool@2.0.0 in /srv/app',
      },
    ],
    reason: '@scope/tool is not installed',
  });
});

test('another version: reinstalled from the source, globally, with extra arguments', (t) => {
  const task = npm({
    package: 'tbnpm',
    version: '2.0.0',
    source: '/srv/tbnpm-2.0.0.tgz',
    global: true,
    extraArgs: ['--offline'],
  });
  const plan = task.plan(out('verdandi-npm installed 1.0.0'));
  t.is(plan.reason, 'tbnpm 1.0.0 → 2.0.0');
  t.is(
    (plan.steps[0] as RunStep).command,
    'npm install --offline /srv/tbnpm-2.0.0.tgz --no-audit --no-fund --no-update-notifier --global',
  );
});

test('absent uninstalls what is installed, nothing when it is not', (t) => {
  const task = npm({ package: 'tbnpm', global: true, state: 'absent' });
  t.deepEqual(task.plan(out('verdandi-npm missing')), { steps: [] });
  const plan = task.plan(out('verdandi-npm installed 1.0.0'));
  t.is(plan.reason, 'tbnpm 1.0.0 is installed');
  t.is(
    (plan.steps[0] as RunStep).command,
    'npm uninstall tbnpm --no-audit --no-fund --no-update-notifier --global',
  );
});

test('the registry travels on stdin, not on the command line', (t) => {
  const task = npm({ package: 'x', path: '/srv/a', registry: 'https://npm.example.org/' });
  const step = task.plan(out('verdandi-npm missing')).steps[0] as RunStep;
  t.false(step.command.includes('npm.example.org'));
  t.is(step.stdin, `npm_config_registry=${b64('https://npm.example.org/')}\n\n`);
});

test('errors: no npm on the host names the packages, an unreadable probe', (t) => {
  const task = npm({ package: 'x', global: true });
  t.deepEqual(task.plan(out('verdandi-npm no-npm')), {
    steps: [],
    error:
      "npm x: npm is not installed on the host: install it first with apt({ packages: ['nodejs', 'npm'] })",
  });
  t.regex(task.plan({ stdout: '', exitCode: 1 }).error ?? '', /could not read whether x is installed/);
});

test('options are checked when the task is built', (t) => {
  const build = (opts: NpmOptions) => () => npm(opts);
  t.throws(build({ package: 'x' }), {
    instanceOf: UserError,
    message: /give either path .* or global: true/,
  });
  t.throws(build({ package: 'x', global: true, path: '/a' }), {
    instanceOf: UserError,
    message: /give either path/,
  });
  t.throws(build({ package: 'Bad Name', global: true }), {
    instanceOf: UserError,
    message: /package must be an npm package name/,
  });
  t.throws(build({ package: 'x', version: '^1.0', global: true }), {
    instanceOf: UserError,
    message: /version must be an exact version/,
  });
  t.throws(build({ package: 'x', global: true, state: 'latest' as 'present' }), {
    instanceOf: UserError,
    message: /state must be present or absent/,
  });
});
