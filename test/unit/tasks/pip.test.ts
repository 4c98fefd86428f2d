import test from 'ava';
import type { RunStep } from '../../../src/engine/types.js';
import { normalizeName, type PipOptions, pip, reportedInstalls } from '../../../src/tasks/pip.js';
import { UserError } from '../../../src/util/errors.js';
import { redact } from '../../../src/util/redact.js';

const out = (...lines: string[]) => ({ stdout: `${lines.join('\n')}\n`, exitCode: 0 });
const b64 = (text: string) => Buffer.from(text).toString('base64');
const report = (install: Array<[string, string]>) =>
  `verdandi-pip report ${b64(JSON.stringify({ version: '1', install: install.map(([name, version]) => ({ metadata: { name, version } })) }))}`;

test('pip would install nothing: converged', (t) => {
  const task = pip({ virtualenv: '/srv/venv', packages: ['flask>=3', 'gunicorn'] });
  t.deepEqual(task.plan(out(report([]))), { steps: [] });
  t.is(task.name, 'pip flask>=3 gunicorn in /srv/venv');
});

test('what pip would install is the reason; the install runs the venv’s pip with the PIP_ variables on stdin', (t) => {
  const task = pip({
    virtualenv: '/srv/venv',
    packages: 'tbdemo==1.0',
    requirements: '/srv/app/requirements.txt',
    findLinks: '/srv/wheels',
    extraArgs: ['--no-index'],
  });
  const plan = task.plan(
    out(
      report([
        ['tbdemo', '1.0'],
        ['six', '1.16.0'],
      ]),
    ),
  );
  t.is(plan.reason, 'installs tbdemo 1.0, six 1.16.0');
  const step = plan.steps[0] as RunStep;
  t.true(
    step.command.endsWith(
      '\n/srv/venv/bin/python -m pip install --no-index -r /srv/app/requirements.txt tbdemo==1.0',
    ),
    step.command,
  );
  t.false(step.command.includes('/srv/wheels'), 'find-links travel on stdin');
  t.true(step.stdin?.includes(`PIP_FIND_LINKS=${b64('/srv/wheels')}`));
  t.is(step.description, 'pip install tbdemo==1.0 -r /srv/app/requirements.txt into /srv/venv');
});

test('latest upgrades; the index URL is never on the command line and its password is redacted', (t) => {
  const task = pip({
    virtualenv: '/srv/venv',
    packages: 'tbdemo',
    state: 'latest',
    indexUrl: 'https://deploy:s3cr3t-t0ken@pypi.example.org/simple',
  });
  t.regex(task.probe, /--dry-run .*--upgrade tbdemo/);
  const step = task.plan(out(report([['tbdemo', '2.0']]))).steps[0] as RunStep;
  t.regex(step.command, /pip install --upgrade tbdemo$/);
  t.false(step.command.includes('s3cr3t-t0ken'));
  t.true(step.stdin?.includes(`PIP_INDEX_URL=${b64('https://deploy:s3cr3t-t0ken@pypi.example.org/simple')}`));
  t.false(redact('index https://deploy:s3cr3t-t0ken@pypi.example.org/simple').includes('s3cr3t-t0ken'));
});

test('a missing virtualenv is created first; check mode says why; absent has nothing to do', (t) => {
  const task = pip({ virtualenv: '/srv/venv', packages: 'tbdemo' });
  const plan = task.plan(out('verdandi-pip no-virtualenv'));
  t.is(plan.reason, 'virtualenv /srv/venv is missing');
  t.deepEqual(plan.steps[0], {
    kind: 'run',
    command: 'python3 -m venv /srv/venv',
    description: 'python3 -m venv /srv/venv',
  });
  t.regex((plan.steps[1] as RunStep).command, /\/srv\/venv\/bin\/python -m pip install tbdemo$/);
  t.deepEqual(
    pip({ virtualenv: '/srv/venv', packages: 'x', state: 'absent' }).plan(out('verdandi-pip no-virtualenv')),
    {
      steps: [],
    },
  );
});

test('absent uninstalls the listed packages that are installed (names compared as pip does)', (t) => {
  const task = pip({ virtualenv: '/srv/venv', packages: ['TB_Demo', 'other==1'], state: 'absent' });
  const plan = task.plan(
    out('verdandi-pip installed tb.demo 1.0', 'verdandi-pip installed pip 23.0.1', 'verdandi-pip listed'),
  );
  t.is(plan.reason, 'removes tb-demo');
  t.regex((plan.steps[0] as RunStep).command, /pip uninstall --yes tb-demo$/);
  t.deepEqual(task.plan(out('verdandi-pip installed pip 23.0.1', 'verdandi-pip listed')), { steps: [] });
});

test('errors: no python3-venv names the package, pip’s own words, an old pip, no python3', (t) => {
  const task = pip({ virtualenv: '/srv/venv', packages: 'nope' });
  t.deepEqual(task.plan(out('verdandi-pip no-venv-module')), {
    steps: [],
    error:
      "pip /srv/venv: python3 cannot create virtualenvs: install Debian's python3-venv first with apt({ packages: 'python3-venv' })",
  });
  t.regex(task.plan(out('verdandi-pip no-python')).error ?? '', /python3 is not installed on the host/);
  const failed = `verdandi-pip failed ${b64('ERROR: No matching distribution found for nope\n')}`;
  t.is(
    task.plan(out(failed)).error,
    'pip /srv/venv: pip cannot install the packages: ERROR: No matching distribution found for nope',
  );
  t.regex(
    task.plan(out(`verdandi-pip report ${b64('no json')}`)).error ?? '',
    /pip 22\.2 or later is needed/,
  );
});

test('reportedInstalls and normalizeName', (t) => {
  t.deepEqual(reportedInstalls('{"install":[{"metadata":{"name":"a","version":"1"}}]}'), ['a 1']);
  t.is(reportedInstalls('{}'), undefined);
  t.is(normalizeName('Foo__Bar.baz'), 'foo-bar-baz');
});

test('options are checked when the task is built', (t) => {
  const build = (opts: PipOptions) => () => pip(opts);
  t.throws(build({ virtualenv: '/srv/venv' }), {
    instanceOf: UserError,
    message: /give packages, requirements or both/,
  });
  t.throws(build({ virtualenv: 'venv', packages: 'a' }), {
    instanceOf: UserError,
    message: /virtualenv must be an absolute path/,
  });
  t.throws(build({ virtualenv: '/v', packages: ['a; rm -rf /'] }), {
    instanceOf: UserError,
    message: /packages must hold requirements .*got "a; rm -rf \/"/,
  });
  t.throws(build({ virtualenv: '/v', requirements: '/r.txt', state: 'absent' }), {
    instanceOf: UserError,
    message: /state absent needs packages/,
  });
  t.throws(build({ virtualenv: '/v', packages: 'a', indexUrl: 'not a url' }), {
    instanceOf: UserError,
    message: /indexUrl must be a URL/,
  });
  t.throws(build({ virtualenv: '/v', packages: 'a', state: 'newest' as 'latest' }), {
    instanceOf: UserError,
    message: /state must be present, absent or latest/,
  });
  t.notThrows(build({ virtualenv: '/v', packages: ['uvicorn[standard]>=0.29,<1', 'Django~=5.0'] }));
});
