/**
 * Verdandi as users get it: `npm pack`, then the README's "Your own project" commands exactly as written
 * there (read from README.md): `npm install --save-dev` of the tarball in an empty folder (the npm
 * registry serves the dependencies; the local npm cache makes that quick), `npx verdandi init`,
 * `npm run check`, `testhost up`, `provision local`, the scaffold's playbook with its TypeScript role;
 * then the scaffold's tsconfig type-checking a role, and a built-in role whose templates come from the
 * installed package.
 * (Packs the built CLI as it is: `npm run build` first, as `npm test` does.)
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { PROJECT_ROOT, removeProject } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'init-pkg';
const hosts = useTestHosts(test, [HOST]);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (killed after `timeoutMs`: exit 124), in CI mode (plain output). */
function run(command: string, args: string[], cwd: string, timeoutMs = 5 * 60_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? 124 : (code ?? 1), stdout, stderr });
    });
  });
}

const show = (r: Result) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

/**
 * The commands of the README's "Your own project" block, as written there (comments dropped): the test
 * runs exactly these, so the README cannot drift from what works.
 */
function readmeQuickStart(): string[] {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Your own project'));
  const block = section.match(/```sh\n([\s\S]*?)```/)?.[1] ?? '';
  return block
    .split('\n')
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter(Boolean);
}

test('the packed tarball installs alone and the README quick start works from it as written', async (t) => {
  t.timeout(20 * 60_000);
  const work = mkdtempSync(join(tmpdir(), 'vd-package-'));
  t.teardown(() => removeProject(work));
  const version = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')).version as string;

  // The README's block: `mkdir ops && cd ops`, the install of the tarball, then the verdandi commands.
  const [first, install, ...commands] = readmeQuickStart();
  t.is(first, 'mkdir ops && cd ops');
  const tarballArg = `../verdandi/verdandi-${version}.tgz`;
  t.is(install, `npm install --save-dev ${tarballArg}`, 'the README installs the tarball of this version');
  t.deepEqual(
    commands.map((c) => c.split(' ').slice(0, 3).join(' ')),
    [
      'npx verdandi init',
      'npm run check',
      'npx verdandi testhost',
      'npx verdandi provision',
      'npx verdandi run',
    ],
  );

  // "the package `npm pack` makes in a clone of this repository": ../verdandi/ beside ops/.
  // --ignore-scripts: pack the dist/ that is built, without rebuilding it under other tests' feet.
  const clone = join(work, 'verdandi');
  mkdirSync(clone);
  const packed = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', clone], PROJECT_ROOT);
  t.is(packed.code, 0, show(packed));
  const tarball = `verdandi-${version}.tgz`;
  t.true(existsSync(join(clone, tarball)), readdirSync(clone).join(', '));
  const listing = await run('tar', ['tzf', join(clone, tarball)], work);
  const files = listing.stdout.split('\n');
  for (const file of [
    'package/bin/verdandi.js',
    'package/dist/bundle/main.js',
    'package/dist/bundle/index.js',
    'package/dist/src/index.d.ts',
    'package/roles/nginx/templates/nginx.conf.hbs',
    'package/templates/project/site.ts',
    'package/templates/project/roles/example/templates/motd.hbs',
    'package/src/testhost/vm/box.sh',
    'package/src/testhost/vm/vm.sh',
    'package/LICENSE',
    'package/README.md',
  ]) {
    t.true(files.includes(file), file);
  }
  t.false(
    files.some((file) => file.startsWith('package/test/') || file.startsWith('package/dist/test/')),
    'no tests in the package',
  );

  const project = join(work, 'ops');
  mkdirSync(project);
  // The npm registry serves the dependencies; the local cache makes that quick (flags that change
  // nothing of what is installed).
  const installed = await run(
    'npm',
    [...install.split(' ').slice(1), '--no-audit', '--no-fund', '--prefer-offline'],
    project,
    10 * 60_000,
  );
  t.is(installed.code, 0, show(installed));
  for (const dev of ['typescript', 'ava', '@biomejs/biome', '@types/node']) {
    t.false(existsSync(join(project, 'node_modules', dev)), `${dev} (a dev dependency) is not installed`);
  }
  const versionOut = await run('npx', ['verdandi', '--version'], project);
  t.is(versionOut.code, 0, show(versionOut));
  t.is(versionOut.stdout.trim(), version);

  // The host is this file's own (and stopped by it), not the README's test1: `up` of a running host
  // reuses it and writes this project's inventories/local.yml, which lists every running test host.
  const results = new Map<string, Result>();
  for (const command of commands) {
    let argv = command.split(' ').map((arg) => (arg === 'test1' ? HOST : arg));
    if (command === 'npx verdandi testhost up') argv = [...argv, HOST];
    const res = await run(argv[0], argv.slice(1), project);
    t.is(res.code, 0, `${argv.join(' ')}: ${show(res)}`);
    results.set(argv.slice(0, 3).join(' '), res);
  }
  const init = results.get('npx verdandi init');
  t.regex(init?.stdout ?? '', /^created +inventories\/staging\.yml$/m);
  t.regex(init?.stdout ?? '', /updated package\.json \(added scripts\.check/);
  t.true(existsSync(join(project, 'inventories', 'inventory.schema.json')));
  const manifest = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8'));
  t.is(
    manifest.devDependencies?.verdandi,
    `file:${tarballArg}`,
    'the installed tarball stays the dependency',
  );
  const checkOutput = results.get('npm run check')?.stdout ?? '';
  t.is(checkOutput.match(/^checked \d+ hosts?, .*: ok$/gm)?.length, 2, checkOutput);
  const local = readFileSync(join(project, 'inventories', 'local.yml'), 'utf8');
  t.true(local.includes(`${HOST}:`), local);
  const provisioned = results.get('npx verdandi provision') as Result;
  t.regex(provisioned.stdout, new RegExp(`^${HOST} +\\d+ +\\d+ +0 +\\d+ +\\d+ +no `, 'm'));
  // The scaffold's playbook: its TypeScript role (roles/example) with its template, on the host.
  const played = results.get('npx verdandi run') as Result;
  t.regex(played.stdout, /changed +init-pkg +example › template \/etc\/motd/);
  const motd = await hosts.ssh(HOST, 'cat /etc/motd');
  t.is(motd.code, 0, motd.stderr);
  t.regex(motd.stdout, new RegExp(`${HOST} \\(local\\) is managed by Verdandi`));
  t.regex(motd.stdout, /Team: ops\n/);
  const again = await run('npx', ['verdandi', 'run', 'local', 'site.ts', '--limit', HOST], project);
  t.is(again.code, 0, show(again));
  t.regex(again.stdout, new RegExp(`^${HOST} +\\d+ +0 +0 `, 'm'), 'a second run changes nothing');

  // The scaffold's tsconfig.json: the editor (here tsc) checks roles against the installed Verdandi's types.
  const tsc = join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const typed = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], project);
  t.is(typed.code, 0, show(typed));
  mkdirSync(join(project, 'roles', 'typo'));
  writeFileSync(
    join(project, 'roles', 'typo', 'index.ts'),
    "import { defineRole, service, z } from 'verdandi';\n" +
      'export default defineRole({\n' +
      "  name: 'typo',\n" +
      '  vars: z.object({ typo_port: z.number().default(80) }),\n' +
      "  tasks: (vars) => [service({ name: vars.typo_port.toUpperCase(), state: 'strated' })],\n" +
      '});\n',
  );
  const mistyped = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], project);
  t.is(mistyped.code, 2, show(mistyped));
  t.regex(
    mistyped.stdout,
    /roles\/typo\/index\.ts\(5,\d+\): error TS2339: Property 'toUpperCase' does not exist on type 'number'/,
  );
  t.regex(
    mistyped.stdout,
    /roles\/typo\/index\.ts\(5,\d+\): error TS\d+: Type '"strated"' is not assignable/,
  );
  rmSync(join(project, 'roles', 'typo'), { recursive: true });

  // A built-in role, loaded from node_modules/verdandi/roles, renders its templates (check mode: the
  // templates are rendered when the tasks are built, before anything is probed).
  writeFileSync(
    join(project, 'builtin.ts'),
    "import { definePlaybook } from 'verdandi';\n" +
      `export default definePlaybook({ plays: [{ hosts: '${HOST}', roles: ['nginx', 'supervisor'] }] });\n`,
  );
  const checked = await run(
    'npx',
    ['verdandi', 'run', 'local', 'builtin.ts', '--limit', HOST, '--check'],
    project,
  );
  t.is(checked.code, 0, show(checked));
  t.regex(checked.stdout, /nginx › template \/etc\/nginx\/nginx\.conf/);
  t.regex(checked.stdout, /check mode: nothing was changed/);
});
