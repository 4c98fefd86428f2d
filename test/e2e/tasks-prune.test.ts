/**
 * Task declarations end to end, over real SSH against a fresh test host: prune removes exactly the
 * stale matching files (check mode names them and removes nothing; the next run changes nothing), the
 * old `name` spelling of a task still converges and warns once per task type, and a wrong option fails
 * before any task of the play runs, with the line of the playbook (not of its bundle) that built it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { removeProject, runCli } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'tasks-prune';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-tasks-e2e-'));
test.after.always(() => removeProject(dir));

const CONF = '/etc/verdandi-demo.d';

function inventory(): string {
  const h = hosts.get(HOST);
  const file = join(dir, 'hosts.ini');
  writeFileSync(
    file,
    `[web]\n${HOST} ansible_host=${h.address} ansible_user=${h.user} ansible_ssh_private_key_file=${h.key}\n`,
  );
  return file;
}

const PLAYBOOK = `
import { definePlaybook, prune, service } from 'verdandi';

export default definePlaybook({
  plays: [{
    hosts: 'web',
    tasks: () => [
      prune({ name: 'remove confs no longer listed', dir: '${CONF}', match: 'verdandi-*.conf', keep: ['verdandi-a.conf'] }),
      // The spelling of the previous release: name was the unit.
      service({ name: 'ssh', state: 'started' }),
      service({ name: 'systemd-journald', state: 'started' }),
    ],
  }],
});
`;

const run = (file: string, ...extra: string[]) =>
  runCli(['run', inventory(), join(dir, file), '--host-key-checking=off', ...extra], { cwd: dir });

const listing = async () =>
  (await hosts.ssh(HOST, `cd ${CONF} && ls -A1 | LC_ALL=C sort | tr '\\n' ' '`)).stdout.trim();

test.serial(
  'prune: check mode names what would go and removes nothing; the run removes it; then nothing changes',
  async (t) => {
    writeFileSync(join(dir, 'site.ts'), PLAYBOOK);
    await hosts.ssh(
      HOST,
      `mkdir -p ${CONF}/verdandi-dir.conf && cd ${CONF} && for f in verdandi-a.conf verdandi-old.conf 'verdandi-x y.conf' other.conf .verdandi-hidden.conf; do echo x > "$f"; done`,
    );
    const before = await listing();
    t.is(
      before,
      '.verdandi-hidden.conf other.conf verdandi-a.conf verdandi-dir.conf verdandi-old.conf verdandi-x y.conf',
    );

    const check = await run('site.ts', '--check');
    t.is(check.code, 0, check.stderr);
    t.regex(
      check.stdout,
      /would change\s+tasks-prune\s+.*remove confs no longer listed \(removes verdandi-old\.conf, verdandi-x y\.conf\)/,
    );
    t.is(await listing(), before);

    const first = await run('site.ts');
    t.is(first.code, 0, first.stderr);
    t.regex(first.stdout, /changed\s+tasks-prune\s+.*remove confs no longer listed/);
    t.is(await listing(), '.verdandi-hidden.conf other.conf verdandi-a.conf verdandi-dir.conf');

    const second = await run('site.ts', '--json');
    t.is(second.code, 0, second.stderr);
    const report = JSON.parse(second.stdout) as {
      hosts: Record<string, { changed: number; failed: number }>;
    };
    t.is(report.hosts[HOST].changed, 0);
    t.is(report.hosts[HOST].failed, 0);
  },
);

test.serial('the old name spelling converges and prints one deprecation warning per task type', async (t) => {
  const res = await run('site.ts');
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, /ok\s+tasks-prune\s+.*service ssh\n/);
  const warnings = res.stderr.split('\n').filter((line) => line.includes('VERDANDI_TASK_NAME'));
  t.is(warnings.length, 1, res.stderr);
  t.regex(
    warnings[0],
    /service\(\{ name \}\) naming the unit is deprecated: write service\(\{ unit \}\) \(at .*site\.ts:\d+\)/,
  );
});

test.serial(
  'a wrong option fails the host before any of its tasks runs, naming the playbook line',
  async (t) => {
    writeFileSync(
      join(dir, 'wrong.ts'),
      `import { definePlaybook, copy, service } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'web', tasks: () => [
  copy({ path: '/srv/never-written', content: 'x' }),
  service({ unit: 'ssh', state: 'running' as 'started' }),
] }] });
`,
    );
    const res = await run('wrong.ts');
    const output = res.stdout + res.stderr;
    t.not(res.code, 0, output);
    // The line of the playbook, not of the bundle the engine runs it as.
    t.regex(
      output,
      /service ssh: state must be started, stopped, restarted or reloaded, got "running" \(at .*wrong\.ts:4\)/,
    );
    t.notRegex(output, /\n\s+at /, 'no stack trace');
    t.is((await hosts.ssh(HOST, 'test -e /srv/never-written')).code, 1);
  },
);
