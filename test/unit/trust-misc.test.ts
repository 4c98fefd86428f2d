/**
 * Promises an adversarial user found broken, through the built CLI (`npm run build` first) on hosts that
 * run on this machine (`connection: local`, files in a temporary folder) and through the pure functions:
 * an unknown `--tags` value is an error, a role without `vars` works, `ignoreErrors` failures are
 * counted as ignored and do not fail the run (as in Ansible).
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { vars as postgresSchema } from '../../roles/postgres/index.js';
import { postgresVars } from '../../src/backup/index.js';
import { deployPlan } from '../../src/deploy/plan.js';
import { siteSchema } from '../../src/deploy/site.js';
import { sitePaths } from '../../src/deploy/site-base.js';
import { unknownTagsError } from '../../src/engine/run.js';
import { defineRole } from '../../src/engine/types.js';
import { loadInventory } from '../../src/inventory/index.js';
import { copy } from '../../src/tasks/index.js';
import { runVmScript, scriptResult, vagrantBoxName } from '../../src/testhost/vm.js';
import { UserError, UserErrors } from '../../src/util/errors.js';
import { cliProjects } from '../helpers/cli.js';

const { project, cli } = cliProjects('trust-misc');

/** A role without `vars` whose first task fails (`exit 3`) with `ignoreErrors`, then writes a file. */
function ignoringRole(out: string, alsoFailing = false): string {
  return [
    "import { command, copy, defineRole } from 'verdandi';",
    '',
    'export default defineRole({',
    "  name: 'lenient',",
    '  tasks: (_vars, host) => [',
    "    command({ name: 'warm cache', argv: ['sh', '-c', 'echo no cache >&2; exit 3'], ignoreErrors: true }),",
    `    copy({ path: ${JSON.stringify(out)} + '/' + host.name, content: 'written\\n', tags: ['files'] }),`,
    ...(alsoFailing ? ["    command({ name: 'must work', argv: ['false'] }),"] : []),
    '  ],',
    '});',
    '',
  ].join('\n');
}

const INVENTORY = [
  'hosts:',
  '  one: { connection: local }',
  'groups:',
  '  g:',
  '    hosts: [one]',
  '    roles: [lenient]',
  '',
].join('\n');

test("unknownTagsError: known tags are the tasks', the roles' own and their names; none given, none known: no error", (t) => {
  const units = [
    { name: 'nginx', tags: ['web'], tasks: [copy({ path: '/etc/a', content: 'a', tags: ['config'] })] },
    { name: 'empty', tags: ['never'], tasks: [] },
  ];
  t.is(unknownTagsError(undefined, units), undefined);
  t.is(unknownTagsError([], units), undefined);
  t.is(unknownTagsError(['nginx', 'web', 'config'], units), undefined);
  const err = unknownTagsError(['ngnix'], units);
  t.is(err?.exitCode, 1);
  t.is(err?.message, '--tags "ngnix": no task of this run has this tag (did you mean "nginx"?)');
  t.is(err?.hint, 'known tags (roles count as tags of their tasks): config, nginx, web');
  // A role without tasks contributes nothing: its tag would select nothing.
  t.regex(unknownTagsError(['never', 'web'], units)?.message ?? '', /^--tags "never": /);
  t.regex(
    unknownTagsError(['x', 'y'], units)?.message ?? '',
    /^--tags "x", "y": no task of this run has these tags/,
  );
  // Nothing planned at all (every host unreachable): the run reports that, not the tags.
  t.is(unknownTagsError(['x'], []), undefined);
});

test('defineRole without vars: an empty schema that accepts no var', (t) => {
  const role = defineRole({ name: 'bare', tasks: () => [] });
  t.deepEqual(role.vars.parse({}), {});
  t.is(role.kind, 'role');
});

test('provision --tags with a tag no task has: exit 1 naming the closest and the known tags, nothing run', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'vd-trust-misc-out-'));
  const dir = project({ 'roles/lenient/index.ts': ignoringRole(out), 'inventories/s.yml': INVENTORY });
  const res = await cli(dir, ['provision', 's', '--tags', 'fils']);
  t.is(res.code, 1, res.stdout + res.stderr);
  t.regex(res.stderr, /--tags "fils": no task of this run has this tag \(did you mean "files"\?\)/);
  t.regex(res.stderr, /known tags \(roles count as tags of their tasks\): files, lenient/);
  t.notRegex(res.stderr, /internal error|at .*\.js:\d+/);
  t.false(existsSync(join(out, 'one')));

  const ok = await cli(dir, ['provision', 's', '--tags', 'files']);
  t.is(ok.code, 0, ok.stdout + ok.stderr);
  t.is(readFileSync(join(out, 'one'), 'utf8'), 'written\n');
});

test('run <playbook> --tags with an unknown tag: exit 1 too', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'vd-trust-misc-out-'));
  const dir = project({
    'roles/lenient/index.ts': ignoringRole(out),
    'inventories/s.yml': INVENTORY,
    'site.ts': [
      "import { definePlaybook } from 'verdandi';",
      "export default definePlaybook({ plays: [{ hosts: 'all', roles: ['lenient'] }] });",
      '',
    ].join('\n'),
  });
  const res = await cli(dir, ['run', 's', 'site.ts', '--tags', 'lenent']);
  t.is(res.code, 1, res.stdout + res.stderr);
  t.regex(res.stderr, /--tags "lenent": no task of this run has this tag \(did you mean "lenient"\?\)/);
  t.false(existsSync(join(out, 'one')));
});

test('a role without vars: check passes (it crashed on the missing schema)', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'vd-trust-misc-out-'));
  const dir = project({ 'roles/lenient/index.ts': ignoringRole(out), 'inventories/s.yml': INVENTORY });
  const checked = await cli(dir, ['check', 's']);
  t.is(checked.code, 0, checked.stdout + checked.stderr);
  t.regex(checked.stdout, /checked 1 host, 1 role and play, 2 tasks in \d+ ms: ok/);
  t.notRegex(checked.stderr, /internal error/);
});

test('ignoreErrors: every failure ignored → exit 0, the next task ran, recap column and task names', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'vd-trust-misc-out-'));
  const dir = project({ 'roles/lenient/index.ts': ignoringRole(out), 'inventories/s.yml': INVENTORY });
  const res = await cli(dir, ['provision', 's']);
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, /failed +one +lenient › warm cache \(step failed; ignored: ignoreErrors\)/);
  t.regex(res.stdout, /exit code: 3/);
  t.is(readFileSync(join(out, 'one'), 'utf8'), 'written\n');
  // The recap: failed 0, ignored 1, and which task.
  t.regex(res.stdout, /host +ok +changed +failed +ignored +skipped +unreachable +round trips/);
  t.regex(res.stdout, /\none +0 +1 +0 +1 +0 +no +\d+\n/);
  t.regex(res.stdout, /one: ignored failures: lenient › warm cache/);

  const json = await cli(dir, ['provision', 's', '--json']);
  t.is(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout) as {
    hosts: Record<string, { failed: number; ignored: number; ignoredTasks: string[]; ok: number }>;
  };
  t.like(doc.hosts.one, { failed: 0, ignored: 1, ok: 1 });
  t.deepEqual(doc.hosts.one.ignoredTasks, ['lenient › warm cache']);
});

test('ignoreErrors with another, real failure: exit 2, both counted where they belong', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'vd-trust-misc-out-'));
  const dir = project({ 'roles/lenient/index.ts': ignoringRole(out, true), 'inventories/s.yml': INVENTORY });
  const res = await cli(dir, ['provision', 's']);
  t.is(res.code, 2, res.stdout + res.stderr);
  t.regex(res.stdout, /failed +one +lenient › must work/);
  t.regex(res.stdout, /\none +0 +1 +1 +1 +0 +no +\d+\n/);
  t.regex(res.stdout, /one: ignored failures: lenient › warm cache/);
});

/** The context backup and restore read vars from, for an inventory written in `yaml`. */
async function backupContext(yaml: string, extraVars: Record<string, unknown> = {}) {
  const dir = project({ 'inventories/db.yml': yaml });
  const inventory = await loadInventory('db', { cwd: dir, extraVars });
  const hosts = [...inventory.hosts.values()];
  const ctx = {
    vars: new Map(hosts.map((h) => [h.name, h.vars])),
    extraVars,
    sensitive: new Map<string, string[]>(),
  };
  return { ctx, hosts };
}

test('backup/restore read postgres vars through the role schema: defaults, --var, types and unknown vars', async (t) => {
  const { ctx, hosts } = await backupContext(
    [
      'hosts:',
      '  db1: { address: 10.0.0.1 }',
      '  db2: { address: 10.0.0.2, postgres_port: 5433 }',
      'groups:',
      '  db:',
      '    hosts: [db1, db2]',
      '    roles: [postgres]',
      '',
    ].join('\n'),
  );
  const vars = postgresVars(ctx, hosts, postgresSchema);
  t.deepEqual(vars.get('db1'), { postgres_port: 5432 }); // the role's default
  t.deepEqual(vars.get('db2'), { postgres_port: 5433 });

  const extra = await backupContext(
    'hosts:\n  db1: { address: 10.0.0.1, postgres_port: 5433 }\ngroups:\n  db: { hosts: [db1], roles: [postgres] }\n',
    { postgres_port: 6000 },
  );
  t.deepEqual(postgresVars(extra.ctx, extra.hosts, postgresSchema).get('db1'), { postgres_port: 6000 });

  const bad = await backupContext(
    [
      'hosts:',
      '  db1: { address: 10.0.0.1, postgres_port: "fivefour" }',
      '  db2: { address: 10.0.0.2, postgres_prot: 5433 }',
      'groups:',
      '  db: { hosts: [db1, db2], roles: [postgres] }',
      '',
    ].join('\n'),
  );
  const err = t.throws(() => postgresVars(bad.ctx, bad.hosts, postgresSchema), { instanceOf: UserErrors });
  const messages = (err as UserErrors).errors.map((e) => e.message);
  t.regex(
    messages[0],
    /^role postgres, host db1: var postgres_port must be a number, got "fivefour" \(set in inventories\/db\.yml:2:44\)/,
  );
  t.regex(
    messages[1],
    /^role postgres, host db2: unknown var "postgres_prot" \(did you mean "postgres_port"\?\)/,
  );

  // A project's own postgres role without postgres_port: said plainly, not a crash.
  const { z } = await import('zod');
  const own = t.throws(() => postgresVars(ctx, hosts.slice(0, 1), z.object({})), { instanceOf: UserError });
  t.regex(own?.message ?? '', /the role's vars have no postgres_port \(a number\)/);
});

test('VM scripts: the result is the last "verdandi-result:" line, whatever else the tools printed on stdout', (t) => {
  // What a first `testhost box` printed: mkfs's chatter, then the directory.
  const firstBuild = [
    'Creating regular file /var/cache/verdandi/vm/box.build/box.raw',
    'verdandi-result: /var/cache/verdandi/vm/box-2',
    '',
  ].join('\n');
  const dir = scriptResult('box.sh', firstBuild);
  t.is(dir, '/var/cache/verdandi/vm/box-2');
  t.is(vagrantBoxName(dir), 'verdandi/bookworm64-2');
  // vm.sh up ran box.sh and other tools first: the last result line wins, CRLF tolerated.
  t.is(
    scriptResult('vm.sh', 'verdandi-result: stopped\nnoise\r\nverdandi-result: 10.231.253.2\r\nmore noise\n'),
    '10.231.253.2',
  );
  const err = t.throws(
    () => scriptResult('box.sh', 'Creating regular file /x/box.raw\n/var/cache/verdandi/vm/box-2\n'),
    {
      instanceOf: UserError,
    },
  );
  t.regex(
    err?.message ?? '',
    /^box\.sh ended without its result line \("verdandi-result: \.\.\." on stdout\); its stdout ended with: Creating regular file/,
  );
  t.throws(() => scriptResult('vm.sh', ''), { message: /^vm\.sh ended without its result line/ });
});

test('box.sh with a box already built hands back its directory through the result line', async (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'vd-trust-misc-vmcache-'));
  mkdirSync(join(cache, 'vm', 'box-2'), { recursive: true });
  writeFileSync(join(cache, 'vm', 'box-2', '.complete'), '');
  const dir = await runVmScript('box.sh', [], { env: { ...process.env, VERDANDI_CACHE: cache } });
  t.is(dir, join(cache, 'vm', 'box-2'));
});

/** A stand-in `docker` that, like Docker, refuses an empty secret, and keeps what a secret was given. */
function fakeDocker(): { bin: string; kept: string } {
  const bin = mkdtempSync(join(tmpdir(), 'vd-trust-misc-docker-'));
  const kept = join(bin, 'secret-data');
  writeFileSync(
    join(bin, 'docker'),
    [
      '#!/bin/sh',
      'case "$1 $2" in',
      '  "secret inspect") exit 1 ;;',
      '  "secret create")',
      '    for a; do last=$a; done',
      `    if [ "$last" = - ]; then cat >${kept}; else cat "$last" >${kept}; fi`,
      `    [ -s ${kept} ] || { echo "secret data must be larger than 0" >&2; exit 1; } ;;`,
      '  *) exit 2 ;;',
      'esac',
      '',
    ].join('\n'),
  );
  chmodSync(join(bin, 'docker'), 0o755);
  return { bin, kept };
}

function sh(command: string, path: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'sh',
      ['-c', command],
      { env: { ...process.env, PATH: `${path}:${process.env.PATH}` } },
      (err, _out, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

test("swarm site without env: the plan's environment secret is one empty line (Docker refuses an empty one)", async (t) => {
  const R = '20261205T210000Z-abcdef0';
  const site = siteSchema.parse({ name: 'web', repo: 'x', runtime: { type: 'swarm', port: 8080 } });
  const root = mkdtempSync(join(tmpdir(), 'vd-trust-misc-srv-'));
  const paths = sitePaths(site, root);
  const record = {
    release: R,
    site: 'web',
    commit: 'a'.repeat(40),
    branch: 'main',
    time: '2026-12-05T21:00:00.000Z',
    by: 'me@here',
  };
  const state = { provisioned: true, maintenance: false, releases: [], deployed: [], slots: {} };
  const envFile = join(paths.releases, R, '.env');
  mkdirSync(join(paths.releases, R), { recursive: true });
  const secretStep = (env: string) => {
    const plan = deployPlan({ site, paths, state, record, env });
    const step = plan.steps.find((s) => s.title === 'environment secret');
    if (!step) throw new Error(`no environment secret step: ${plan.steps.map((s) => s.title).join(', ')}`);
    return step.command;
  };

  const { bin, kept } = fakeDocker();
  writeFileSync(envFile, '');
  const empty = await sh(secretStep(''), bin);
  t.is(empty.code, 0, empty.stderr);
  t.is(readFileSync(kept, 'utf8'), '\n');

  // With env, the secret is the file as it is.
  writeFileSync(envFile, 'A=1\nB=two\n');
  const full = await sh(secretStep('A=1\nB=two\n'), bin);
  t.is(full.code, 0, full.stderr);
  t.is(readFileSync(kept, 'utf8'), 'A=1\nB=two\n');

  // No file at all (a step before it went wrong): a failure that says so, not an empty secret.
  const missing = await sh(secretStep('').replaceAll(envFile, `${envFile}.gone`), bin);
  t.not(missing.code, 0);
  t.regex(missing.stderr, /\.env\.gone is missing/);
});
