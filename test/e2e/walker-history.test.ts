/**
 * Every command walks its hosts on the one walker and says what happens as typed events; the run
 * history is one of their consumers. On a real test host (`wk-hist`): a provision where one host does
 * not answer (an address nobody answers on), a deploy refused by another deployer's lock, and a
 * backup, each end up in `verdandi history --json` as typed records: the unreachable host with its
 * reason, the refused lock as the host's failed `deploy lock` task naming the holder, the backup's
 * dump as its step.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { git } from './deploy-helpers.js';

const HOST = 'wk-hist';
const hosts = useTestHosts(test, [HOST]);
/** In the test hosts' network, where no host answers. */
const NOBODY = '10.231.254.9';
const LOCK_DIR = '/var/lib/verdandi/deploy.lock';
const DUMP = '/var/backups/postgresql/wkdb/wkdb-20260101T000000Z.dump';
const DUMP_CONTENT = 'PGDMP walker history test dump\n';

interface Task {
  label: string;
  status: string;
  detail: string | null;
  failure: string | null;
}
interface HostRecord {
  name: string;
  status: string;
  detail: string | null;
  tasks: Task[];
}
interface Run {
  id: number;
  command: string;
  status: string;
  exitCode: number;
  hosts: HostRecord[];
}

test.serial(
  'an unreachable host, a refused lock and a backup are typed records of the history',
  async (t) => {
    t.timeout(15 * 60_000);
    const h = hosts.get(HOST);
    const project = mkdtempSync(join(tmpdir(), 'vd-walker-history-'));

    // A site to deploy (its repository here) and a database to back up.
    const repo = join(project, 'site-repo');
    mkdirSync(repo);
    await git(repo, 'init', '-q', '-b', 'main');
    writeFileSync(join(repo, 'index.html'), 'one\n');
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-q', '-m', 'one');
    const app = { address: h.address, user: h.user, key: h.key };
    writeInventory(
      project,
      { hosts: { app, ghost: { address: NOBODY, user: 'root' } }, roles: ['wkrole'] },
      'wk',
    );
    writeInventory(
      project,
      {
        hosts: { app },
        roles: ['postgres'],
        vars: {
          sites: [
            {
              name: 'web',
              repo,
              runtime: { type: 'python', virtualenv: false },
              process: { command: 'exec python3 -m http.server "$PORT" --bind 127.0.0.1', port: 8300 },
              health: { path: '/index.html', status: 200, timeout: 20 },
            },
          ],
        },
      },
      'wkdb',
    );
    mkdirSync(join(project, 'roles', 'wkrole'), { recursive: true });
    writeFileSync(
      join(project, 'roles', 'wkrole', 'index.ts'),
      `import { copy, defineRole, z } from 'verdandi';
export default defineRole({
  name: 'wkrole',
  vars: z.object({}),
  tasks: () => [copy({ path: '/etc/wk-walker', mode: '0644', content: 'walked\\n' })],
});
`,
    );
    writeFileSync(join(project, '.gitignore'), '.verdandi/\nsite-repo/\n');
    execFileSync('git', ['init', '-q'], { cwd: project });
    const cli = (args: string[]) =>
      runCli([...args, '--host-key-checking=off'], { cwd: project, timeoutMs: 5 * 60_000 });

    // 1. Provision: app converges, ghost does not answer: exit 3.
    const provision = await cli(['provision', 'wk', '--connect-timeout', '3']);
    t.is(provision.code, 3, provision.stdout + provision.stderr);
    t.regex(provision.stdout, new RegExp(`unreachable ghost .*${NOBODY.replace(/\./g, '\\.')}`));
    t.is((await hosts.ssh(HOST, 'cat /etc/wk-walker')).stdout, 'walked\n');

    // 2. Deploy: another deployer (on another machine, refreshed just now) holds the lock: refused.
    const lockFile = [
      'Locked by: alice@laptop',
      `Since: ${new Date().toISOString()}`,
      'Reason: deploy wkdb --branch other',
      'Controller: alice-laptop',
      'Pid: 4242',
      'Pid-Start: 1',
      'Token: 0123456789abcdef',
      '',
    ].join('\n');
    const held = await hosts.ssh(
      HOST,
      `mkdir -p ${LOCK_DIR} && cat > ${LOCK_DIR}/info && sha256sum ${LOCK_DIR}/info`,
      {
        input: lockFile,
      },
    );
    t.is(held.code, 0, held.stderr);
    const deploy = await cli(['deploy', 'wkdb', '--branch', 'main', '--lock-wait', '0']);
    t.is(deploy.code, 2, deploy.stdout + deploy.stderr);
    t.regex(deploy.stdout, /app {2}lock FAILED\n {4}another deploy holds the lock of app: alice@laptop/);
    // The lock is the other deployer's still, untouched; nothing was deployed.
    t.is((await hosts.ssh(HOST, `sha256sum ${LOCK_DIR}/info`)).stdout, held.stdout);
    t.is((await hosts.ssh(HOST, 'test -e /srv/web/current || echo none')).stdout.trim(), 'none');
    await hosts.ssh(HOST, `rm -rf ${LOCK_DIR}`);

    // 3. Backup: the postgres role's backup script (a stand-in that writes one dump) runs on app.
    const script = `#!/bin/sh\nset -e\nmkdir -p ${DUMP.slice(0, DUMP.lastIndexOf('/'))}\nprintf '%s' '${DUMP_CONTENT}' > ${DUMP}\necho ${DUMP}\n`;
    const installed = await hosts.ssh(
      HOST,
      'cat > /usr/local/sbin/verdandi-pg-backup && chmod 0755 /usr/local/sbin/verdandi-pg-backup',
      { input: script },
    );
    t.is(installed.code, 0, installed.stderr);
    const backup = await cli(['backup', 'wkdb']);
    t.is(backup.code, 0, backup.stdout + backup.stderr);
    t.regex(backup.stdout, new RegExp(`wkdb → ${DUMP} \\(${DUMP_CONTENT.length} bytes\\)`));
    const sum = createHash('sha256').update(DUMP_CONTENT).digest('hex');
    t.is((await hosts.ssh(HOST, `sha256sum ${DUMP}`)).stdout.split(' ')[0], sum);

    // The history: each run with its typed facts.
    const listed = await runCli(['history', '--json', '--last', '10'], { cwd: project });
    t.is(listed.code, 0, listed.stderr);
    const runs: { id: number; command: string; status: string; exitCode: number }[] = JSON.parse(
      listed.stdout,
    ).runs;
    t.deepEqual(
      runs.map((r) => [r.command, r.status, r.exitCode]),
      [
        ['backup', 'ok', 0],
        ['deploy', 'failed', 2],
        ['provision', 'unreachable', 3],
      ],
    );
    const show = async (id: number): Promise<Run> => {
      const res = await runCli(['history', 'show', String(id), '--json'], { cwd: project });
      t.is(res.code, 0, res.stderr);
      return JSON.parse(res.stdout);
    };
    const [backupRun, deployRun, provisionRun] = await Promise.all(runs.map((r) => show(r.id)));

    const byName = (run: Run) => Object.fromEntries(run.hosts.map((x) => [x.name, x]));
    const prov = byName(provisionRun);
    t.is(prov.ghost.status, 'unreachable');
    t.regex(prov.ghost.detail ?? '', new RegExp(NOBODY.replace(/\./g, '\\.')));
    t.deepEqual(prov.ghost.tasks, []);
    t.is(prov.app.status, 'changed');
    t.deepEqual(
      prov.app.tasks.map((x) => [x.label, x.status]),
      [['wkrole › copy /etc/wk-walker', 'changed']],
    );

    const [lockHost] = deployRun.hosts;
    t.is(lockHost.name, 'app');
    t.is(lockHost.status, 'failed');
    const lockTask = lockHost.tasks.find((x) => x.label === 'deploy lock');
    t.is(lockTask?.status, 'failed');
    t.regex(lockTask?.detail ?? '', /another deploy holds the lock of app: alice@laptop/);

    const [dumped] = backupRun.hosts;
    t.is(dumped.name, 'app');
    t.is(dumped.status, 'ok');
    t.deepEqual(
      dumped.tasks.map((x) => [x.label, x.status]),
      [['postgres › backup wkdb', 'ok']],
    );
    t.regex(dumped.tasks[0].detail ?? '', new RegExp(`wkdb → ${DUMP}`));
  },
);
