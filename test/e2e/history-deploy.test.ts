/**
 * The run history of a whole life cycle on a real test host (`hi-app`: nginx, supervisor, PostgreSQL
 * and a site): provision, two deploys, a rollback, a backup, a failing run, and a run stopped by
 * Ctrl-C, each recorded with its status, host, tasks and round trips. Secrets travel every path: a
 * diff (`--diff` of a file holding a multi-line key and a password), the site's environment, a
 * command's environment, a failing command echoing them on stderr, the command line (`--var`); neither
 * the SQLite file nor the report holds any secret value, nor any line (8 characters or more) of the
 * key. A deploy made elsewhere (history off, another deployer) is found by `report --hosts` in the
 * host's deploy log and merged with the deploys recorded here; a host that does not answer is a note.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import yaml from 'js-yaml';
import { projectWithSecrets, runCli, writeInventory } from '../helpers/cli.js';
import { startVerdandi, waitOnHost } from '../helpers/faults.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { commitBranch, git, httpGet } from './deploy-helpers.js';

const HOST = 'hi-app';
const hosts = useTestHosts(test, [HOST]);
const DB_PASSWORD = 'Hi-db-Pa55-7f3a91';
const API_TOKEN = 'tok_hi_0c4e2b9d5a';
const VAULT_PASSWORD = 'hi vault password lantern';
const KEY_LINES = [
  '-----BEGIN PRIVATE KEY-----',
  'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7hiKeyLine1',
  'hiSecondLineOfTheKeyq8Zr2XbT0mWcVfLpN4sY6uJ1oA3dE5gH7kQ9wRtz',
  '-----END PRIVATE KEY-----',
];
const TLS_KEY = `${KEY_LINES.join('\n')}\n`;
const SECRETS = [DB_PASSWORD, API_TOKEN, VAULT_PASSWORD, ...KEY_LINES.filter((l) => l.length >= 8)];

interface ListedRun {
  id: number;
  command: string;
  status: string;
  exitCode: number;
  hostNames: string[];
}

test.serial(
  'provision, deploy, rollback, backup, a failure and a Ctrl-C: recorded, reported, no secret',
  async (t) => {
    t.timeout(40 * 60_000);
    const project = await projectWithSecrets('vd-history-deploy-', 'hi', VAULT_PASSWORD, {
      db_password: DB_PASSWORD,
      api_token: API_TOKEN,
      tls_key: TLS_KEY,
    });

    // The site's repository: a static page served by python's http.server under supervisor.
    const repo = join(project, 'site-repo');
    mkdirSync(repo);
    await git(repo, 'init', '-q', '-b', 'main');
    writeFileSync(join(repo, 'index.html'), 'one\n');
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-q', '-m', 'one');
    await commitBranch(repo, 'main', 'two', { 'index.html': 'two\n' });
    await commitBranch(repo, 'main', 'three', { 'index.html': 'three\n' });

    const h = hosts.get(HOST);
    const inventory = {
      hosts: { app: { address: h.address, user: h.user, key: h.key } },
      groups: {
        web: {
          hosts: ['app'],
          roles: ['hiapp', 'nginx', 'supervisor', 'postgres', 'sites'],
          vars: {
            db_password: '{{ secrets.db_password }}',
            tls_key: '{{ secrets.tls_key }}',
            postgres_users: [{ name: 'hiapp', password: '{{ secrets.db_password }}' }],
            postgres_databases: [{ name: 'hiapp', owner: 'hiapp' }],
            sites: [
              {
                name: 'web',
                repo,
                runtime: { type: 'python', virtualenv: false },
                env: {
                  vars: { MODE: 'test' },
                  secrets: { DB_PASSWORD: 'db_password', API_TOKEN: 'api_token' },
                },
                process: { command: 'exec python3 -m http.server "$PORT" --bind 127.0.0.1', port: 8200 },
                health: { path: '/index.html', status: 200, timeout: 40 },
              },
            ],
          },
        },
      },
    };
    writeInventory(project, inventory, 'hi');
    mkdirSync(join(project, 'roles', 'hiapp'), { recursive: true });
    writeFileSync(
      join(project, 'roles', 'hiapp', 'index.ts'),
      `import { copy, defineRole, directory, z } from 'verdandi';
export default defineRole({
  name: 'hiapp',
  vars: z.object({ db_password: z.string(), tls_key: z.string() }),
  tasks: (vars) => [
    directory({ path: '/etc/hiapp', mode: '0700' }),
    copy({ path: '/etc/hiapp/app.env', mode: '0600', content: 'DB_PASSWORD=' + vars.db_password + '\\n' }),
    copy({ path: '/etc/hiapp/tls.key', mode: '0600', content: vars.tls_key }),
  ],
});
`,
    );
    // A command that fails, its environment and its text holding secrets, echoing them on stderr.
    writeFileSync(
      join(project, 'fail.ts'),
      `import { definePlaybook, shell } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: (host) => [
  shell({
    script: 'echo "auth failed for $API_TOKEN / $DB" >&2; printf "%s" "$KEY" >&2; echo ' + host.secrets.db_password + '; exit 7',
    env: { API_TOKEN: host.secrets.api_token, DB: host.secrets.db_password, KEY: host.secrets.tls_key },
  }),
] }] });
`,
    );
    writeFileSync(
      join(project, 'slow.ts'),
      `import { definePlaybook, shell } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [
  // Ctrl-C lets the running command finish (a clean stop) and starts nothing after it.
  shell({ script: 'touch /tmp/hi-slow-started; sleep 10' }),
  shell({ script: 'touch /tmp/hi-never' }),
] }] });
`,
    );
    writeFileSync(join(project, '.gitignore'), '.verdandi/\nsecrets/*.vault-password\nsite-repo/\n');
    execFileSync('git', ['init', '-q'], { cwd: project });
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', 'add', '-A'], {
      cwd: project,
    });
    execFileSync(
      'git',
      ['-c', 'user.name=t', '-c', 'user.email=t@example.org', 'commit', '-q', '-m', 'ops'],
      {
        cwd: project,
      },
    );

    const cli = (args: string[], env: Record<string, string> = {}) =>
      runCli([...args, '--host-key-checking=off'], { cwd: project, env, timeoutMs: 20 * 60_000 });
    const local = (args: string[]) => runCli(args, { cwd: project });
    const served = async () => (await httpGet(`http://${h.address}/index.html`)).body.trim();

    const provision = await cli(['provision', 'hi', '--diff']);
    t.is(provision.code, 0, provision.stdout + provision.stderr);
    const first = await cli(['deploy', 'hi', '--branch', 'main']);
    t.is(first.code, 0, first.stdout + first.stderr);
    const second = await cli(['deploy', 'hi', '--branch', 'two']);
    t.is(second.code, 0, second.stdout + second.stderr);
    t.is(await served(), 'two');
    const rollback = await cli(['rollback', 'hi']);
    t.is(rollback.code, 0, rollback.stdout + rollback.stderr);
    t.is(await served(), 'one');
    const backup = await cli(['backup', 'hi']);
    t.is(backup.code, 0, backup.stdout + backup.stderr);
    const failing = await cli(['run', 'hi', 'fail.ts', '--var', `note=${API_TOKEN}`]);
    t.is(failing.code, 2, failing.stdout + failing.stderr);

    // Ctrl-C while the host runs a command (the marker says it started).
    const slow = startVerdandi(['run', 'hi', 'slow.ts', '--host-key-checking=off'], {
      cwd: project,
      timeoutMs: 5 * 60_000,
    });
    await waitOnHost(hosts, HOST, 'test -e /tmp/hi-slow-started', 120_000);
    slow.kill('SIGINT');
    const stopped = await slow.result;
    t.is(stopped.code, 130, stopped.stdout + stopped.stderr);

    // A deploy from another machine: this history does not see it, the host's deploy log does.
    const elsewhere = await cli(['deploy', 'hi', '--branch', 'three'], {
      VERDANDI_HISTORY_URL: 'off',
      VERDANDI_DEPLOYER: 'bob@colleague',
    });
    t.is(elsewhere.code, 0, elsewhere.stdout + elsewhere.stderr);
    t.is(await served(), 'three');

    // The runs: newest first, with their status, exit code and host.
    const listed = await local(['history', 'hi', '--json', '--last', '50']);
    t.is(listed.code, 0, listed.stderr);
    const runs: ListedRun[] = JSON.parse(listed.stdout).runs;
    t.deepEqual(
      runs.map((r) => [r.command, r.status, r.exitCode, r.hostNames]),
      [
        ['run', 'interrupted', 130, ['app']],
        ['run', 'failed', 2, ['app']],
        ['backup', 'ok', 0, ['app']],
        ['rollback', 'ok', 0, ['app']],
        ['deploy', 'ok', 0, ['app']],
        ['deploy', 'ok', 0, ['app']],
        ['provision', 'changed', 0, ['app']],
      ],
    );
    const [slowId, failId, , rollbackId, secondId, firstId, provisionId] = runs.map((r) => r.id);
    const show = async (id: number) => {
      const res = await local(['history', 'show', String(id), '--json']);
      t.is(res.code, 0, res.stderr);
      return JSON.parse(res.stdout);
    };

    // The provision: every task of the host, the diff on its task, round trips per task and per host.
    const prov = await show(provisionId);
    const app = prov.hosts[0];
    t.is(app.name, 'app');
    const labels = app.tasks.map((x: { label: string }) => x.label);
    t.true(labels.includes('hiapp › copy /etc/hiapp/tls.key'), labels.join('\n'));
    t.true(labels.some((l: string) => l.startsWith('postgres › ')));
    t.true(labels.some((l: string) => l.startsWith('sites › ')));
    const tls = app.tasks.find((x: { label: string }) => x.label === 'hiapp › copy /etc/hiapp/tls.key');
    t.is(tls.status, 'changed');
    t.regex(tls.diff, /\[secret\]/);
    const perTask = app.tasks.reduce((n: number, x: { roundTrips: number }) => n + x.roundTrips, 0);
    t.true(perTask > 0 && perTask <= app.roundTrips, `${perTask} of ${app.roundTrips} round trips`);

    // The deploys: their steps as tasks, the releases they wrote into the site's log.
    const [d1, d2, rb] = [await show(firstId), await show(secondId), await show(rollbackId)];
    t.true(d1.hosts[0].tasks.some((x: { label: string }) => x.label.startsWith('web › ')));
    t.true(d1.hosts[0].roundTrips > 0);
    t.deepEqual(
      [d1, d2].map((d) => [d.deploys.length, d.deploys[0].action, d.deploys[0].outcome, d.deploys[0].branch]),
      [
        [1, 'deploy', 'deployed', 'main'],
        [1, 'deploy', 'deployed', 'two'],
      ],
    );
    t.deepEqual(
      [rb.deploys[0].action, rb.deploys[0].release, rb.deploys[0].from],
      ['rollback', d1.deploys[0].release, d2.deploys[0].release],
    );
    const shown = await local(['history', 'show', String(secondId)]);
    t.regex(
      shown.stdout,
      new RegExp(`^logged +app +web +release ${d2.deploys[0].release} \\(\\w{12}, two\\): deployed$`, 'm'),
    );

    // The failure and the Ctrl-C.
    const fail = await show(failId);
    const failed = fail.hosts[0].tasks.find((x: { status: string }) => x.status === 'failed');
    t.regex(failed.failure, /exit code: 7/);
    t.regex(failed.failure, /auth failed for \[secret\] \/ \[secret\]/);
    t.regex(fail.argv, /--var note=\[secret\]/);
    const int = await show(slowId);
    t.deepEqual(
      [int.status, int.exitCode, int.hosts[0].status, int.hosts[0].tasks.length],
      // The first Ctrl-C stops the command in flight with its process group: no task of that host ended.
      ['interrupted', 130, 'interrupted', 0],
    );
    t.not((await hosts.ssh(HOST, 'test -e /tmp/hi-never')).code, 0);

    // The report with the hosts' logs; an extra host that does not answer is a note, not a failure.
    const withGhost = structuredClone(inventory) as typeof inventory & { hosts: Record<string, unknown> };
    withGhost.hosts.ghost = { address: '127.0.0.1', port: 9, user: 'root', key: h.key };
    (withGhost.groups.web.hosts as string[]).push('ghost');
    writeFileSync(join(project, 'inventories', 'hi.yml'), yaml.dump(withGhost, { lineWidth: -1 }));
    const report = await cli(['report', '--env', 'hi', '--hosts']);
    t.is(report.code, 0, report.stdout + report.stderr);
    t.regex(report.stderr, /^warning: ghost: not read \(.+\)$/m);
    const html = readFileSync(join(project, '.verdandi', 'report.html'), 'utf8');
    const data = JSON.parse(html.match(/id="report-data">(.*?)<\/script>/s)?.[1] ?? '{}');
    const rows: string[][] = data.deploys.rows;
    const sourceOf = (release: string, action = 'deploy') =>
      rows.filter((r) => r[3] === release && r[2] === action).map((r) => [r[0], r[1], r[12]]);
    t.deepEqual(sourceOf(d1.deploys[0].release), [['web', 'app', 'both']]);
    t.deepEqual(sourceOf(d2.deploys[0].release), [['web', 'app', 'both']]);
    t.deepEqual(sourceOf(d1.deploys[0].release, 'rollback'), [['web', 'app', 'both']]);
    const theirs = rows.filter((r) => r[6] === 'bob@colleague');
    t.deepEqual(
      theirs.map((r) => [r[1], r[2], r[5], r[8], r[11], r[12]]),
      [['app', 'deploy', 'three', 'deployed', 0, 'host']],
    );
    t.deepEqual(data.deploys.notes.filter((n: string) => n.startsWith('ghost: not read')).length, 1);

    // No secret anywhere in what was recorded or written: the store, the report, the spool.
    const stored = readFileSync(join(project, '.verdandi', 'history.sqlite'));
    const spool = join(project, '.verdandi', 'history-spool');
    const spooled = readdirSync(spool).map((f) => readFileSync(join(spool, f)));
    for (const secret of SECRETS) {
      t.false(stored.includes(secret), `the history file holds ${secret}`);
      t.false(html.includes(secret), `the report holds ${secret}`);
      for (const file of spooled) t.false(file.includes(secret), `a spooled run holds ${secret}`);
    }
    // While the host got them.
    t.is((await hosts.ssh(HOST, 'cat /etc/hiapp/tls.key')).stdout.trimEnd(), TLS_KEY.trimEnd());
    t.regex(
      (await hosts.ssh(HOST, 'cat /srv/web/current/.env')).stdout,
      new RegExp(`API_TOKEN=.*${API_TOKEN}`),
    );
  },
);
