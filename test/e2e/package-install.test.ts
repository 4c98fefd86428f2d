/**
 * Verdandi as users get it: `npm pack`, then `npm install ./verdandi-x.y.z.tgz` in an empty folder (the
 * npm registry serves the dependencies; the local npm cache makes that quick), then from there only:
 * `npx verdandi init`, `testhost up`, `provision local`, a playbook with the scaffold's TypeScript role,
 * and a built-in role whose templates come from the installed package.
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
import { PROJECT_ROOT } from '../helpers/cli.js';
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

test('the packed tarball installs alone, scaffolds a project and provisions a test host from it', async (t) => {
  t.timeout(20 * 60_000);
  const work = mkdtempSync(join(tmpdir(), 'vd-package-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));

  // --ignore-scripts: pack the dist/ that is built, without rebuilding it under other tests' feet.
  const packed = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], PROJECT_ROOT);
  t.is(packed.code, 0, show(packed));
  const tarball = readdirSync(work).find((name) => /^verdandi-\d+\.\d+\.\d+\.tgz$/.test(name));
  if (!tarball) return t.fail(`no tarball in ${readdirSync(work).join(', ')}`);
  const listing = await run('tar', ['tzf', join(work, tarball)], work);
  const files = listing.stdout.split('\n');
  for (const file of [
    'package/bin/verdandi.js',
    'package/dist/src/cli/main.js',
    'package/dist/src/index.d.ts',
    'package/roles/nginx/templates/nginx.conf.hbs',
    'package/templates/project/site.ts',
    'package/templates/project/roles/example/templates/motd.hbs',
  ]) {
    t.true(files.includes(file), file);
  }
  t.false(
    files.some((file) => file.startsWith('package/test/') || file.startsWith('package/dist/test/')),
    'no tests in the package',
  );

  const project = join(work, 'ops');
  mkdirSync(project);
  const installed = await run(
    'npm',
    ['install', `../${tarball}`, '--no-audit', '--no-fund', '--prefer-offline'],
    project,
    10 * 60_000,
  );
  t.is(installed.code, 0, show(installed));
  for (const dev of ['typescript', 'ava', '@biomejs/biome', '@types/node']) {
    t.false(existsSync(join(project, 'node_modules', dev)), `${dev} (a dev dependency) is not installed`);
  }

  const version = await run('npx', ['verdandi', '--version'], project);
  t.is(version.code, 0, show(version));
  t.is(version.stdout.trim(), JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')).version);

  const init = await run('npx', ['verdandi', 'init'], project);
  t.is(init.code, 0, show(init));
  t.regex(init.stdout, /^created +inventories\/staging\.yml$/m);
  t.regex(init.stdout, /updated package\.json \(added scripts\.check/);
  t.true(existsSync(join(project, 'inventories', 'inventory.schema.json')));

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

  // The host is booted by this file (and stopped by it); `up` of a running host reuses it and writes
  // this project's inventories/local.yml, which lists every running test host: hence --limit below.
  const up = await run('npx', ['verdandi', 'testhost', 'up', HOST], project);
  t.is(up.code, 0, show(up));
  const local = readFileSync(join(project, 'inventories', 'local.yml'), 'utf8');
  t.true(local.includes(`${HOST}:`), local);

  const provisioned = await run('npx', ['verdandi', 'provision', 'local', '--limit', HOST], project);
  t.is(provisioned.code, 0, show(provisioned));
  t.regex(provisioned.stdout, new RegExp(`^${HOST} +\\d+ +\\d+ +0 +\\d+ +no `, 'm'));

  // The scaffold's playbook: its TypeScript role (roles/example) with its template, on the host.
  const played = await run('npx', ['verdandi', 'run', 'local', 'site.ts', '--limit', HOST], project);
  t.is(played.code, 0, show(played));
  t.regex(played.stdout, /changed +init-pkg +example › template \/etc\/motd/);
  const motd = await hosts.ssh(HOST, 'cat /etc/motd');
  t.is(motd.code, 0, motd.stderr);
  t.regex(motd.stdout, new RegExp(`${HOST} \\(local\\) is managed by Verdandi`));
  t.regex(motd.stdout, /Team: ops\n/);
  const again = await run('npx', ['verdandi', 'run', 'local', 'site.ts', '--limit', HOST], project);
  t.is(again.code, 0, show(again));
  t.regex(again.stdout, new RegExp(`^${HOST} +\\d+ +0 +0 `, 'm'), 'a second run changes nothing');

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
