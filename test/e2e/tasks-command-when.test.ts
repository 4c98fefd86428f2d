/**
 * command and shell's changedWhen, failedWhen, retries, delay and until end to end, over real SSH
 * against one test host, through the real CLI: a changedWhen reading stdout converges and reports ok
 * on the rerun, failedWhen turns an exit code into success and a matching stderr into a failure (exit
 * code 2), retries with until wait for a file a background process creates (each try counted on the
 * host and in `-v`), and `--check` runs none of them.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { removeProject } from '../helpers/cli.js';
import { taskRuns } from '../helpers/task-runs.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'hc-cmd-when';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-command-when-'));
test.after.always(() => removeProject(dir));

const { playbook, run, ssh, changedBy, lifecycle } = taskRuns(hosts, HOST, dir);

test.serial('changedWhen from stdout: changed when it did something, ok on the rerun', async (t) => {
  t.timeout(5 * 60_000);
  const file = playbook(
    'changed-when',
    ['shell'],
    [
      `shell({
    name: 'make the marker',
    script: 'mkdir -p /srv/hc; if [ -e /srv/hc/marker ]; then echo exists; else echo made > /srv/hc/marker; echo created; fi',
    changedWhen: ({ stdout }) => stdout.includes('created'),
  })`,
    ],
  );
  await lifecycle(t, {
    file,
    label: /make the marker/,
    state: 'cat /srv/hc/marker 2>/dev/null; true',
    converged: 'made\n',
    drift: 'rm /srv/hc/marker',
  });
  const rerun = await run(file);
  t.is(rerun.code, 0, rerun.stdout + rerun.stderr);
  t.regex(rerun.stdout, /ok\s+hc-cmd-when\s+.*make the marker.*changedWhen says no change/);
});

test.serial('failedWhen: exit code 1 is ok; a matching stderr is a failure, exit code 2', async (t) => {
  t.timeout(5 * 60_000);
  const notFound = playbook(
    'failed-when-rc',
    ['command'],
    [
      `command({
    argv: ['grep', '-q', 'no-such-line', '/etc/hostname'],
    failedWhen: ({ rc }) => rc > 1,
    changedWhen: false,
  })`,
    ],
  );
  t.is(await changedBy(t, notFound), 0, 'grep exiting 1 is ok, and changed nothing');

  const withoutRule = await run(
    playbook(
      'failed-rc',
      ['command'],
      [`command({ argv: ['grep', '-q', 'no-such-line', '/etc/hostname'] })`],
    ),
  );
  t.is(withoutRule.code, 2, 'without failedWhen, exit code 1 fails');

  const stderrRule = await run(
    playbook(
      'failed-when-stderr',
      ['shell'],
      [
        `shell({
    name: 'warns then succeeds',
    script: 'echo "ERROR: the disk is full" >&2; exit 0',
    failedWhen: ({ stderr }) => stderr.includes('ERROR'),
  })`,
      ],
    ),
  );
  t.is(stderrRule.code, 2, stderrRule.stdout + stderrRule.stderr);
  const output = stderrRule.stdout + stderrRule.stderr;
  t.regex(output, /failed\s+hc-cmd-when\s+.*warns then succeeds/);
  t.regex(output, /failedWhen is true \(exit code: 0\)/);
  t.regex(output, /ERROR: the disk is full/);
});

test.serial(
  'retries and until wait for a file a background process creates; --check runs nothing',
  async (t) => {
    t.timeout(5 * 60_000);
    const file = playbook(
      'until',
      ['shell'],
      [
        `shell({
    name: 'wait for ready',
    script: 'echo try >> /srv/hc/tries; if [ -e /srv/hc/ready ]; then echo ready; else echo waiting; fi',
    retries: 20,
    delay: 1,
    until: ({ stdout }) => stdout.trim() === 'ready',
    changedWhen: false,
  })`,
      ],
    );
    await ssh('mkdir -p /srv/hc && rm -f /srv/hc/tries /srv/hc/ready');

    const check = await run(file, '--check');
    t.is(check.code, 0, check.stdout + check.stderr);
    t.regex(check.stdout, /would change\s+hc-cmd-when\s+.*wait for ready.*would run/);
    t.is(await ssh('test -e /srv/hc/tries && echo tried || echo none'), 'none\n', '--check ran no try');

    // The file appears about 4 seconds from now, in a process of its own that outlives this ssh session.
    await ssh('setsid sh -c "sleep 4; touch /srv/hc/ready" </dev/null >/dev/null 2>&1 &');
    const res = await run(file, '-v');
    const output = res.stdout + res.stderr;
    t.is(res.code, 0, output);
    const tries = (await ssh('wc -l < /srv/hc/tries')).trim();
    const retried =
      output.match(/wait for ready: try \d+ of 21: exit code: 0, until is false; next try in 1 s/g) ?? [];
    t.true(Number(tries) >= 2, `the first try found no file (${tries} tries)`);
    t.is(retried.length + 1, Number(tries), 'each try but the last is in -v, the last one said ready');
    t.regex(output, new RegExp(`\\(try ${tries} of 21\\)`));
    t.regex(output, /ok\s+hc-cmd-when\s+.*wait for ready/);

    // Never ready within the tries: the task fails, naming how many were made.
    await ssh('rm -f /srv/hc/ready /srv/hc/tries');
    const never = await run(
      playbook(
        'until-never',
        ['shell'],
        [
          `shell({
    name: 'never ready',
    script: 'echo try >> /srv/hc/tries; echo waiting',
    retries: 2,
    delay: 0,
    until: ({ stdout }) => stdout.trim() === 'ready',
  })`,
        ],
      ),
    );
    t.is(never.code, 2, never.stdout + never.stderr);
    t.regex(never.stdout + never.stderr, /until was still false after 3 tries/);
    t.is((await ssh('wc -l < /srv/hc/tries')).trim(), '3');
  },
);
