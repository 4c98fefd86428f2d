/**
 * What each deploy runtime contributes, asked the way plan.ts, site.ts and the sites role ask it
 * (`runtimeOf(site)`): its options' schema, its plan steps, its state and status lines, and what the
 * role provisions for it. And the rule that makes a runtime one file: nothing outside
 * src/deploy/runtimes/ branches on a site's runtime type.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { runtimeOf } from '../../src/deploy/runtimes/index.js';
import { NODE_PATH } from '../../src/deploy/runtimes/node.js';
import type { GoLiveInput, ReleaseInput } from '../../src/deploy/runtimes/runtime.js';
import { type Site, type SiteInput, siteSchema, sitesVarsSchema } from '../../src/deploy/site.js';
import { sitePaths } from '../../src/deploy/site-base.js';
import { UserError } from '../../src/util/errors.js';
import { compileTemplate } from '../../src/util/handlebars.js';
import { quote } from '../../src/util/shell.js';
import { hostInfo } from '../fixtures/roles/host-info.js';

const R = '20261122T034507Z-3f2a9c1';
const OLD = '20261121T100000Z-aaaaaaa';

const site = (runtime: SiteInput['runtime'], over: Partial<SiteInput> = {}): Site =>
  siteSchema.parse({
    name: 'app',
    repo: 'x',
    runtime,
    process: { command: 'serve --port $PORT', workers: [{ name: 'queue', command: 'work' }] },
    ...over,
  });

/** The plan's input for a release of `s`: a live release on blue unless `first`. */
function input(s: Site, first = false): ReleaseInput<Site> {
  return {
    site: s,
    paths: sitePaths(s, '/srv'),
    release: R,
    current: first ? undefined : OLD,
    upstream: first ? undefined : 'blue',
    registryPassword: 'registry-pass',
  };
}

function goLive(s: Site, published = true): GoLiveInput<Site> {
  return {
    ...input(s),
    published,
    currentTitle: 'current → new release',
    onceLive: [{ phase: 'switch', title: 'maintenance off', command: 'rm -f flag' }],
  };
}

const titles = (steps: Array<{ title: string }>) => steps.map((s) => s.title);

test('every runtime of the registry parses its own options, and an unknown type is refused', (t) => {
  for (const type of ['python', 'node', 'docker', 'swarm'] as const) {
    const s = site({ type });
    t.is(s.runtime.type, type);
    t.is(runtimeOf(s).schema.parse({ type }).type, type);
  }
  t.throws(() => siteSchema.parse({ name: 'app', repo: 'x', runtime: { type: 'php' } }));
  // A site without a runtime is a python site with its defaults.
  t.deepEqual(siteSchema.parse({ name: 'app', repo: 'x' }).runtime, {
    type: 'python',
    python: 'system',
    pyenvRoot: '/opt/pyenv',
    virtualenv: true,
    systemSitePackages: false,
    requirements: 'requirements.txt',
    pipOptions: [],
  });
});

test('python: a virtualenv per requirements, pruned after the deploy; supervisor programs; python3-venv', (t) => {
  const s = site({ type: 'python', pipOptions: ['--no-index'] });
  const rt = runtimeOf(s);
  const [deps] = rt.buildSteps(input(s));
  t.is(deps.title, 'dependencies');
  t.regex(deps.command, /^runuser -u app -- env HOME=\/srv\/app sh -c /);
  t.regex(deps.command, /\/usr\/bin\/python3 -m venv/);
  t.regex(deps.command, /pip" install --quiet --disable-pip-version-check --no-index -r requirements\.txt/);
  t.deepEqual(titles(rt.cleanupSteps(s, sitePaths(s, '/srv'))), ['unused virtualenvs']);
  t.regex(rt.renderEnv({ A: "it's" }), /^A='it'\\''s'$/m);

  const needs = rt.roleNeeds(s, sitePaths(s, '/srv'), hostInfo('h'));
  t.deepEqual(needs.packages, ['python3-venv']);
  t.deepEqual(needs.supervisor, {
    command: 'serve --port $PORT',
    prelude: '',
    programs: [
      { program: 'app-blue', args: 'web blue 8000', logName: 'blue' },
      { program: 'app-green', args: 'web green 8001', logName: 'green' },
      { program: 'app-worker-queue', args: 'worker queue', logName: 'worker-queue' },
    ],
  });
  t.deepEqual(needs.upstream, {
    content: '# Written by verdandi deploy: the live color of this site.\nserver 127.0.0.1:8000; # blue\n',
    owner: 'deploy',
  });

  // A pyenv interpreter brings its own venv module; without a virtualenv nothing is built nor pruned.
  const pyenv = site({ type: 'python', python: '3.11.9' });
  t.deepEqual(runtimeOf(pyenv).roleNeeds(pyenv, sitePaths(pyenv, '/srv'), hostInfo('h')).packages, []);
  t.regex(
    runtimeOf(pyenv).buildSteps(input(pyenv))[0].command,
    /\/opt\/pyenv\/versions\/3\.11\.9\/bin\/python -m venv/,
  );
  const bare = site({ type: 'python', virtualenv: false });
  t.deepEqual(runtimeOf(bare).buildSteps(input(bare)), []);
  t.deepEqual(runtimeOf(bare).cleanupSteps(bare, sitePaths(bare, '/srv')), []);

  const noCommand = site({ type: 'python' }, { process: {} });
  t.throws(() => runtimeOf(noCommand).roleNeeds(noCommand, sitePaths(noCommand, '/srv'), hostInfo('h')), {
    instanceOf: UserError,
    message: 'site app: a python site needs process.command (what serves HTTP on $PORT)',
  });
});

test('node: the install command in the release, the same colors as python, nodejs and npm', (t) => {
  const s = site({ type: 'node', install: 'npm ci --omit=dev' });
  const rt = runtimeOf(s);
  const steps = rt.buildSteps(input(s));
  t.deepEqual(titles(steps), ['dependencies']);
  // In the release, as the app user; the command is a here-document (never an argument, so not in ps).
  t.regex(
    steps[0].command,
    /sh \/srv\/app\/releases\/20261122T034507Z-3f2a9c1 3<<'VD_[0-9a-f]+'\nnpm ci --omit=dev\nVD_/,
  );
  t.deepEqual(rt.cleanupSteps(s, sitePaths(s, '/srv')), []);
  const needs = rt.roleNeeds(s, sitePaths(s, '/srv'), hostInfo('h'));
  t.deepEqual(needs.packages, ['nodejs', 'npm']);
  t.is(needs.supervisor?.programs.length, 3);
  t.deepEqual(rt.hostPorts(s), [8000, 8001]);
});

test('node: node_modules/.bin first on PATH for the checks, build and migrations, and the programs', (t) => {
  const s = site({ type: 'node' });
  const rt = runtimeOf(s);
  const paths = sitePaths(s, '/srv');
  // A check (`jest`) is a tool of the release: found as npm scripts find it.
  t.regex(
    rt.inRelease(s, paths, R, 'jest --ci'),
    /3<<'VD_[0-9a-f]+'\nPATH="\$PWD\/node_modules\/\.bin:\$PATH"; export PATH; jest --ci\nVD_/,
  );
  t.is(rt.roleNeeds(s, paths, hostInfo('h')).supervisor?.prelude, NODE_PATH);
  // Python's programs have no prelude: their virtualenv is on PATH already.
  const py = site({ type: 'python' });
  t.is(runtimeOf(py).roleNeeds(py, sitePaths(py, '/srv'), hostInfo('h')).supervisor?.prelude, '');
});

test("the sites role's run script: a node program's command finds the release's node_modules/.bin", (t) => {
  // The real template, run by sh on a site laid out in a temporary directory.
  const root = mkdtempSync(join(tmpdir(), 'vd-run-sh-'));
  try {
    const release = join(root, 'releases', R);
    mkdirSync(join(release, 'node_modules', '.bin'), { recursive: true });
    writeFileSync(
      join(release, 'node_modules', '.bin', 'serve-here'),
      '#!/bin/sh\necho "served on $PORT by $0"\n',
      {
        mode: 0o755,
      },
    );
    writeFileSync(join(release, '.env'), "GREETING='hi'\n");
    mkdirSync(join(root, 'slots'));
    symlinkSync(release, join(root, 'slots', 'blue'));
    const render = (prelude: string) =>
      compileTemplate(
        readFileSync(
          fileURLToPath(new URL('../../roles/sites/templates/run.sh.hbs', import.meta.url)),
          'utf8',
        ),
      )({
        name: 'app',
        dir: root,
        bluePort: 8000,
        greenPort: 8001,
        command: quote('serve-here && echo "$GREETING"'),
        workers: [],
        prelude,
      });
    const script = join(root, 'run.sh');
    writeFileSync(script, render(NODE_PATH));
    const out = execFileSync('sh', [script, 'web', 'blue', '8000'], { encoding: 'utf8' });
    t.is(out, `served on 8000 by ${release}/node_modules/.bin/serve-here\nhi\n`);
    // Without the prelude (a python site), the release's node_modules/.bin is not looked in.
    writeFileSync(script, render(''));
    const python = spawnSync('sh', [script, 'web', 'blue', '8000'], { encoding: 'utf8' });
    t.not(python.status, 0);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('colors (python, node, docker): workers and the live color stop for migrations; blue/green switch', (t) => {
  const s = site({ type: 'python' });
  const rt = runtimeOf(s);
  const stops = rt.migrationStops(input(s));
  t.deepEqual(titles(stops), ['stop workers', 'stop blue for migrations']);
  t.deepEqual(stops[0].undo, ['supervisorctl restart app-worker-queue']);
  t.is(stops[1].command, 'supervisorctl stop app-blue >/dev/null 2>&1; true');
  t.is(stops[1].undo?.[0], 'supervisorctl start app-blue');
  t.regex(stops[1].undo?.[1] ?? '', /http:\/\/127\.0\.0\.1:8000\//);
  // The first deploy has no live color to stop.
  t.deepEqual(titles(rt.migrationStops(input(s, true))), ['stop workers']);

  const live = rt.goLiveSteps(goLive(s));
  t.deepEqual(titles(live), [
    'start green',
    'health check green',
    'nginx → green',
    'current → new release',
    'restart workers',
    'maintenance off',
    'stop blue',
  ]);
  t.true(live[2].pointOfNoReturn);
  t.deepEqual(rt.publishSteps(input(s)), []);
  t.deepEqual(rt.stateLines(s, sitePaths(s, '/srv')).length, 2);
  t.regex(rt.statusLines(s, sitePaths(s, '/srv')).join('\n'), /proc_green=.*supervisorctl status app-green/);
  t.is(rt.parseStack('swarm_service=x|1/1|img'), undefined);
  t.is(rt.failureHeadline('converge', 3), undefined);
});

test('docker: the image is built from the release, commands run in it, each color is a container', (t) => {
  const s = site({ type: 'docker', containerPort: 8080, runOptions: ['-v', '/data:/data'] }, { process: {} });
  const rt = runtimeOf(s);
  const paths = sitePaths(s, '/srv');
  const [build] = rt.buildSteps(input(s));
  t.is(build.title, 'image build');
  t.regex(
    build.command,
    /--exclude=\.\/\.env -c \. \| docker build --quiet -t verdandi\/app:20261122T034507Z-3f2a9c1 -f Dockerfile -$/,
  );
  // The command is a here-document on docker's stdin, evaluated by the container's shell: no argument.
  const inImage = rt.inRelease(s, paths, R, 'pytest --token=s3cret');
  t.regex(
    inImage,
    /^docker run --rm -i --env-file \/srv\/app\/releases\/.*\/\.env --network host verdandi\/app:\S+ sh -c 'vd_s=\$\(cat\); exec 0<\/dev\/null; eval "\$vd_s"' 0<<'VD_[0-9a-f]{16}'\npytest --token=s3cret\nVD_[0-9a-f]{16}$/,
  );
  t.false(inImage.split('\n')[0].includes('s3cret'), 'the command is not on the command line');
  t.is(rt.renderEnv({ A: 'a b' }), 'A=a b\n');
  t.throws(() => rt.renderEnv({ A: 'two\nlines' }), {
    message: /A: a docker env file cannot hold a value with a line break/,
  });

  const live = rt.goLiveSteps(goLive(s));
  t.regex(
    live[0].command,
    /--publish 127\.0\.0\.1:8001:8080 .*-v \/data:\/data verdandi\/app:20261122T034507Z-3f2a9c1$/,
  );
  t.deepEqual(titles(rt.migrationStops(input(s))), ['stop blue for migrations']);
  t.regex(rt.removeArtifacts(s, [OLD]) ?? '', /^docker rmi verdandi\/app:20261121T100000Z-aaaaaaa/);
  t.regex(rt.stateLines(s, paths)[0], /docker inspect .*app-blue/);

  const needs = rt.roleNeeds(s, paths, hostInfo('h'));
  t.deepEqual(needs.packages, []);
  t.is(needs.supervisor, undefined);
  t.is(needs.upstream.owner, 'deploy');
  const withWorkers = site({ type: 'docker' });
  t.throws(() => runtimeOf(withWorkers).roleNeeds(withWorkers, paths, hostInfo('h')), {
    message: 'site app: process.workers are for python and node sites (supervisor programs)',
  });
});

test('swarm: no colors nor host ports; publish, scale down for migrations, roll out; the role writes the front', (t) => {
  const s = site(
    {
      type: 'swarm',
      registry: { address: '10.0.0.31:5000', username: 'deploy', password: 'registry_password' },
      workers: ['worker'],
      port: 8080,
    },
    { process: {} },
  );
  const rt = runtimeOf(s);
  const paths = sitePaths(s, '/srv');
  t.deepEqual(rt.hostPorts(s), []);
  t.deepEqual(rt.stateLines(s, paths), []);
  t.deepEqual(rt.parseStack('swarm_service=app_web|2/2|img\nswarm_task=app_web.1|w1|Running|img\n'), {
    services: [{ name: 'app_web', replicas: '2/2', image: 'img' }],
    tasks: [{ name: 'app_web.1', node: 'w1', state: 'Running', image: 'img' }],
  });
  t.is(rt.registryPasswordSecret(s), 'registry_password');
  t.regex(rt.buildSteps(input(s))[0].command, /-t 10\.0\.0\.31:5000\/verdandi\/app:20261122T034507Z-3f2a9c1/);

  const publish = rt.publishSteps(input(s));
  t.deepEqual(titles(publish), ['registry login', 'push image', 'environment secret']);
  t.is(publish[0].stdin, 'registry-pass\n');
  t.false(publish[0].command.includes('registry-pass'));
  t.deepEqual(titles(rt.migrationStops(input(s))), ['workers to 0', 'stop web']);
  t.deepEqual(rt.migrationStops(input(s, true)), []);

  t.deepEqual(titles(rt.goLiveSteps(goLive(s))), [
    'stack deploy',
    'converge',
    'current → new release',
    'maintenance off',
  ]);
  // A rollback did not publish: it logs in again and makes sure the target's secret exists.
  t.deepEqual(titles(rt.goLiveSteps(goLive(s, false))).slice(0, 2), ['registry login', 'environment secret']);
  t.regex(rt.failureHeadline('converge', 3) ?? '', /^ROLLED BACK: .*Swarm rolled the update back/);
  t.is(rt.failureHeadline('converge', 1), undefined);

  const inventory = {
    hosts: [
      { name: 'm', address: '10.0.0.31', groups: [], vars: { docker_swarm: 'manager' } },
      { name: 'w1', address: '10.0.0.32', groups: [], vars: { docker_swarm: 'worker' } },
    ],
  };
  const needs = rt.roleNeeds(s, paths, hostInfo('m', { inventory }));
  t.is(needs.supervisor, undefined);
  t.is(needs.upstream.owner, 'role');
  t.regex(needs.upstream.content, /^server 10\.0\.0\.32:8080 max_fails=1 fail_timeout=1s; # w1$/m);
});

test('sites with colors take two ports each; a clash is refused, swarm sites take none', (t) => {
  const vars = (sites: SiteInput[]) => sitesVarsSchema.safeParse({ sites });
  const clash = vars([
    { name: 'a', repo: 'x', runtime: { type: 'docker' }, process: { port: 9000 } },
    { name: 'b', repo: 'x', runtime: { type: 'node' }, process: { port: 9001 } },
  ]);
  t.false(clash.success);
  t.deepEqual(
    clash.error?.issues.map((i) => i.message),
    ['sites "a" and "b" both use port 9001 (each site takes process.port and process.port + 1)'],
  );
  t.true(
    vars([
      { name: 'a', repo: 'x', runtime: { type: 'swarm' } },
      { name: 'b', repo: 'x', runtime: { type: 'swarm' } },
    ]).success,
  );
});

test('nothing outside src/deploy/runtimes/ branches on a site runtime type', (t) => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const branches = /runtime\.type\s*[!=]==|case\s+'(python|node|docker|swarm)'|usesSupervisor/;
  const found: string[] = [];
  for (const dir of ['src', 'roles']) {
    for (const entry of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
      const file = join(entry.parentPath, entry.name);
      const path = relative(root, file);
      if (path.startsWith(join('src', 'deploy', 'runtimes'))) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (branches.test(line)) found.push(`${path}:${i + 1}: ${line.trim()}`);
        });
    }
  }
  t.deepEqual(found, []);
});
