/**
 * The run history with a real host: a provision and a failing run on `hist-a` are recorded in the
 * project's .verdandi/history.sqlite; `history` lists them newest first (filters, --json), `history
 * show` prints one as it ran; `report` writes the page. Secrets go through every path (a diff, a
 * failing command and its stderr, the environment of a command, a --var on the command line) and
 * neither the SQLite file nor the HTML holds any of them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { projectWithSecrets, runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'hist-a';
const hosts = useTestHosts(test, [HOST]);
const SECRET_PASSWORD = 'Hist-Pa55-w0rd-9c1e';
const SECRET_TOKEN = 'tok_hist_55d2e7a1';
const VAULT_PASSWORD = 'hist vault password staple';

test.serial(
  'a provision and a failing run are recorded, listed, shown and reported, without secrets',
  async (t) => {
    t.timeout(10 * 60_000);
    const project = await projectWithSecrets('vd-history-', 'staging', VAULT_PASSWORD, {
      db_password: SECRET_PASSWORD,
      api_token: SECRET_TOKEN,
    });
    const h = hosts.get(HOST);
    writeInventory(
      project,
      {
        hosts: { web: { address: h.address, user: h.user, key: h.key } },
        roles: ['histapp'],
        vars: { db_password: '{{ secrets.db_password }}' },
      },
      'staging',
    );
    mkdirSync(join(project, 'roles', 'histapp'), { recursive: true });
    writeFileSync(
      join(project, 'roles', 'histapp', 'index.ts'),
      `import { copy, defineRole, z } from 'verdandi';
export default defineRole({
  name: 'histapp',
  vars: z.object({ db_password: z.string() }),
  tasks: (vars) => [copy({ path: '/etc/histapp.env', mode: '0600', content: 'DB_PASSWORD=' + vars.db_password + '\\n' })],
});
`,
    );
    writeFileSync(
      join(project, 'fail.ts'),
      `import { definePlaybook, shell } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: (host) => [
  shell({ script: 'TOKEN=' + host.secrets.api_token + ' sh -c \\'echo "auth failed for $TOKEN" >&2; exit 7\\'' }),
] }] });
`,
    );
    // The project is a git repository: the record names its commit, and whether the tree was dirty.
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], {
        cwd: project,
        encoding: 'utf8',
      }).trim();
    writeFileSync(join(project, '.gitignore'), '.verdandi/\nsecrets/*.vault-password\n');
    git('init', '-q');
    git('add', '-A');
    git('commit', '-q', '-m', 'project');
    const head = git('rev-parse', 'HEAD');
    const cli = (args: string[]) => runCli(args, { cwd: project });
    const common = ['--host-key-checking=off'];

    const provision = await cli(['provision', 'staging', '--diff', ...common]);
    t.is(provision.code, 0, provision.stderr);
    writeFileSync(join(project, 'fail.ts'), `${readFileSync(join(project, 'fail.ts'), 'utf8')}// edited\n`);
    const failing = await cli(['run', 'staging', 'fail.ts', '--var', `note=${SECRET_TOKEN}`, ...common]);
    t.is(failing.code, 2, failing.stderr);
    t.notRegex(failing.stderr, /warning/);

    const list = await cli(['history']);
    t.is(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split('\n');
    t.is(lines.length, 3, list.stdout);
    t.regex(lines[1], /^\d+ +\S+ \S+ +run +staging +failed +0\/0\/1 /);
    t.regex(lines[2], /^\d+ +\S+ \S+ +provision +staging +changed +0\/1\/0 /);

    const json = JSON.parse((await cli(['history', 'staging', '--json'])).stdout);
    t.deepEqual(
      json.runs.map((r: { command: string; status: string; exitCode: number }) => [
        r.command,
        r.status,
        r.exitCode,
      ]),
      [
        ['run', 'failed', 2],
        ['provision', 'changed', 0],
      ],
    );
    // Ids are given as runs are written (by background imports); the list's order is the runs' start.
    const [runId, provisionId] = json.runs.map((r: { id: number }) => r.id);
    t.deepEqual(json.runs[1].hostNames, ['web']);
    t.deepEqual(
      json.runs.map((r: { gitCommit: string; gitDirty: boolean }) => [r.gitCommit, r.gitDirty]),
      [
        [head, true],
        [head, false],
      ],
    );
    t.is(json.runs[0].user, userInfo().username);
    t.is(json.runs[0].machine, hostname());
    const failedOnly = JSON.parse(
      (await cli(['history', '--status', 'failed', '--host', 'web', '--json'])).stdout,
    );
    t.deepEqual(
      failedOnly.runs.map((r: { id: number }) => r.id),
      [runId],
    );
    t.deepEqual(JSON.parse((await cli(['history', '--command', 'deploy', '--json'])).stdout).runs, []);

    const shown = await cli(['history', 'show', String(runId)]);
    t.is(shown.code, 0, shown.stderr);
    t.regex(
      shown.stdout,
      /^run 2: verdandi run staging fail\.ts --var note=\[secret\] --host-key-checking=off$/m,
    );
    t.regex(shown.stdout, /^failed +web +play 1 › shell .* \(step failed\) {2}\[\d+\.\d s, [1-9]\d* rt\]$/m);
    t.regex(shown.stdout, /^ {4}exit code: 7$/m);
    t.regex(shown.stdout, /^ {4}auth failed for \[secret\]$/m);
    t.regex(shown.stdout, /status failed \(exit 2\)/);

    const one = JSON.parse((await cli(['history', 'show', String(provisionId), '--json'])).stdout);
    t.is(one.command, 'provision');
    t.is(one.hosts[0].name, 'web');
    t.is(one.hosts[0].tasks[0].label, 'histapp › copy /etc/histapp.env');
    t.is(one.hosts[0].tasks[0].status, 'changed');
    t.regex(one.hosts[0].tasks[0].diff, /\+DB_PASSWORD=\[secret\]/);
    t.true(one.hosts[0].roundTrips >= 1);
    // The role's probe and the copy's step: counted on its task.
    t.true(one.hosts[0].tasks[0].roundTrips >= 2, `${one.hosts[0].tasks[0].roundTrips} round trips`);

    const missing = await cli(['history', 'show', '99']);
    t.is(missing.code, 1);
    t.regex(missing.stderr, /^error: no run 99 in the history at /);

    const report = await cli(['report']);
    t.is(report.code, 0, report.stderr);
    const html = readFileSync(join(project, '.verdandi', 'report.html'), 'utf8');
    t.regex(html, /auth failed for \[secret\]/);

    // The host got the real value; the history and the report none.
    t.is((await hosts.ssh(HOST, 'cat /etc/histapp.env')).stdout, `DB_PASSWORD=${SECRET_PASSWORD}\n`);
    const stored = readFileSync(join(project, '.verdandi', 'history.sqlite'));
    for (const secret of [SECRET_PASSWORD, SECRET_TOKEN, VAULT_PASSWORD]) {
      t.false(stored.includes(secret), `the history file holds ${secret}`);
      t.false(html.includes(secret), `the report holds ${secret}`);
    }
  },
);

test.serial(
  'VERDANDI_HISTORY_URL=off records nothing; a broken history keeps the runs, warns, keeps the exit code',
  async (t) => {
    t.timeout(5 * 60_000);
    const project = mkdtempSync(join(tmpdir(), 'vd-history-off-'));
    const h = hosts.get(HOST);
    writeInventory(project, { hosts: { web: { address: h.address, user: h.user, key: h.key } } }, 'dev');
    writeFileSync(
      join(project, 'site.ts'),
      `import { definePlaybook, shell } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [shell({ script: 'exit 5' })] }] });
`,
    );
    const off = await runCli(['run', 'dev', 'site.ts', '--host-key-checking=off'], {
      cwd: project,
      env: { VERDANDI_HISTORY_URL: 'off' },
    });
    t.is(off.code, 2);
    const listOff = await runCli(['history'], { cwd: project, env: { VERDANDI_HISTORY_URL: 'off' } });
    t.is(listOff.code, 1);
    t.regex(listOff.stderr, /the run history is off/);
    // A directory where the file should be: the runs fail for their own reason only, wait in the spool,
    // and the run after a failed import says so.
    mkdirSync(join(project, '.verdandi', 'history.sqlite'), { recursive: true });
    const first = await runCli(['run', 'dev', 'site.ts', '--host-key-checking=off'], { cwd: project });
    t.is(first.code, 2);
    // Marker: the run's background import failed and said why.
    const lastError = join(project, '.verdandi', 'history-spool', 'last-error');
    const deadline = Date.now() + 60_000;
    while (!existsSync(lastError) && Date.now() < deadline) await sleep(50);
    t.true(existsSync(lastError), 'the background import left its error');
    const imported = await runCli(['history', 'import'], { cwd: project });
    t.is(imported.code, 1);
    t.regex(
      imported.stderr,
      /^error: cannot write the run history: .+\n {2}→ the runs stay in \.verdandi\/history-spool\n$/,
    );
    const second = await runCli(['run', 'dev', 'site.ts', '--host-key-checking=off'], { cwd: project });
    t.is(second.code, 2);
    t.regex(
      second.stderr,
      /^warning: the run history cannot be written \(.+\); \d run\(s\) wait in \.verdandi\/history-spool/m,
    );
    // Repaired: the waiting runs land, none lost, none twice.
    rmSync(join(project, '.verdandi', 'history.sqlite'), { recursive: true });
    const list = await runCli(['history', '--json'], { cwd: project });
    t.is(list.code, 0, list.stderr);
    t.deepEqual(
      JSON.parse(list.stdout).runs.map((r: { status: string }) => r.status),
      ['failed', 'failed'],
    );
  },
);
