/**
 * becomeUser end to end on one real test host, through the real CLI: a directory, a copy, a lineinfile,
 * a command, a shell and a git clone run as an unprivileged user converge a fresh host (every file the
 * user's), change nothing when run again or in check mode, and repair drift (a file taken by root is
 * the user's again). A process sampler on the host shows that neither a secret nor a script shows in
 * the process list. A missing user fails naming it; a root-only task type is refused before any host
 * is touched.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { removeProject } from '../helpers/cli.js';
import { taskRuns } from '../helpers/task-runs.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'hb-become';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-become-user-'));
test.after.always(() => removeProject(dir));
const { playbook, run, ssh, changedBy } = taskRuns(hosts, HOST, dir);

const USER = 'hbapp';
const SITE = `/home/${USER}/site`;
const ORIGIN = '/srv/hb-origin.git';
const SAMPLES = '/root/hb-ps-samples.log';
const SAMPLING = '/root/hb-sampling';

/** Owner, mode and content of everything the play manages. */
const STATE = [
  `cd ${SITE} 2>/dev/null || { echo none; exit 0; }`,
  `stat -c '%U:%G %a %n' . app.env app.conf made-by touched checkout checkout/.git checkout/app.txt 2>&1`,
  'cat app.env app.conf made-by 2>&1',
  `runuser -u ${USER} -- git -C checkout rev-parse --abbrev-ref HEAD`,
  'cat checkout/app.txt 2>&1',
  'true',
].join('; ');

test.serial('copy, lineinfile, command, shell and git as an unprivileged user', async (t) => {
  const secret = `S3cr3t-${randomBytes(8).toString('hex')}`;
  await ssh(`set -e
id ${USER} >/dev/null 2>&1 || useradd -m -s /bin/sh ${USER}
rm -rf ${ORIGIN} /tmp/hb-work ${SITE}
git init -q --bare -b main ${ORIGIN}
git clone -q ${ORIGIN} /tmp/hb-work 2>/dev/null
cd /tmp/hb-work && git -c user.email=t@example.org -c user.name=t commit -q --allow-empty -m v0
echo v1 > app.txt && git add app.txt && git -c user.email=t@example.org -c user.name=t commit -q -m v1
git push -q origin main`);
  const as = { becomeUser: USER };
  const file = playbook(
    'become',
    ['directory', 'copy', 'lineinfile', 'command', 'shell', 'git'],
    [
      `directory(${JSON.stringify({ path: SITE, mode: '0750', ...as })})`,
      `copy(${JSON.stringify({ path: `${SITE}/app.env`, content: `TOKEN=${secret}\n`, mode: '0600', ...as })})`,
      `lineinfile(${JSON.stringify({ path: `${SITE}/app.conf`, line: `password=${secret}`, regexp: '^password=', create: true, ...as })})`,
      `command(${JSON.stringify({ argv: ['touch', 'touched'], cwd: SITE, creates: 'touched', ...as })})`,
      `shell(${JSON.stringify({ script: `sleep 1\ntest -n "${secret}" && id -un > made-by`, cwd: SITE, creates: 'made-by', ...as })})`,
      `git(${JSON.stringify({ repo: ORIGIN, dest: `${SITE}/checkout`, version: 'main', ...as })})`,
    ],
  );
  const converged = [
    `${USER}:${USER} 750 .`,
    `${USER}:${USER} 600 app.env`,
    `${USER}:${USER} 644 app.conf`,
    `${USER}:${USER} 644 made-by`,
    `${USER}:${USER} 644 touched`,
    `${USER}:${USER} 755 checkout`,
    `${USER}:${USER} 755 checkout/.git`,
    `${USER}:${USER} 644 checkout/app.txt`,
    `TOKEN=${secret}`,
    `password=${secret}`,
    USER,
    'main',
    'v1',
    '',
  ].join('\n');

  // --check: every task would change (the user exists; nothing of it yet), the host stays as it was.
  const fresh = await ssh(STATE);
  t.is(fresh, 'none\n');
  const check = await run(file, '--check', '--json');
  t.is(check.code, 0, check.stdout + check.stderr);
  t.is(JSON.parse(check.stdout).hosts[HOST].changed, 6, check.stdout);
  t.is(await ssh(STATE), fresh, '--check changed nothing');

  // The converging run, with a process sampler on the host.
  await ssh(
    `rm -f ${SAMPLES}; touch ${SAMPLING}; nohup sh -c 'while [ -e ${SAMPLING} ]; do ps -eww -o user=,args= >> ${SAMPLES}; echo --- >> ${SAMPLES}; sleep 0.05; done' >/dev/null 2>&1 &`,
  );
  const first = await run(file, '--json');
  await ssh(`rm -f ${SAMPLING}`);
  t.is(first.code, 0, first.stdout + first.stderr);
  t.is(JSON.parse(first.stdout).hosts[HOST].changed, 6, first.stdout);
  const printed = `${first.stdout}${first.stderr}`.split('\n').filter((line) => line.includes(secret));
  t.deepEqual(printed, [], 'the secret is not printed');
  t.is(await ssh(STATE), converged);

  const samples = await ssh(`cat ${SAMPLES}`);
  t.true(samples.split('\n---\n').length > 10, 'the sampler ran');
  // The user's shell ran while sampled (the shell task sleeps 1 s): the test saw what it checks.
  t.regex(samples, new RegExp(`^${USER} +sh -c cd "\\$HOME" 2>/dev/null \\|\\| cd /; vd_s=`, 'm'));
  const showing = samples.split('\n').filter((line) => line.includes(secret) || line.includes('made-by'));
  t.deepEqual(showing, [], 'neither a secret nor a script is on a command line');

  // Run again: nothing changes; check mode neither.
  t.is(await changedBy(t, file), 0, 'a second run changes nothing');
  const again = await run(file, '--check', '--json');
  t.is(again.code, 0, again.stdout + again.stderr);
  t.is(JSON.parse(again.stdout).hosts[HOST].changed, 0, again.stdout);

  // Drift: root takes the env file and edits it, the line changes, the checkout moves, a file goes.
  await ssh(
    [
      `cd ${SITE}`,
      'echo TOKEN=old > app.env && chown root:root app.env',
      "sed -i 's/^password=.*/password=old/' app.conf",
      'rm made-by',
      `runuser -u ${USER} -- git -C checkout checkout -q --detach HEAD~1`,
    ].join(' && '),
  );
  t.not(await ssh(STATE), converged);
  t.is(await changedBy(t, file), 4, 'copy, lineinfile, shell and git repair the drift');
  t.is(await ssh(STATE), converged, 'the env file is the user’s again');
  t.is(await changedBy(t, file), 0);
});

test.serial(
  'a user an earlier task creates: check mode says it does not exist yet, the run converges',
  async (t) => {
    await ssh('userdel -r hbnew 2>/dev/null; true');
    const file = playbook(
      'created',
      ['user', 'copy'],
      [
        `user(${JSON.stringify({ user: 'hbnew', home: '/home/hbnew', createHome: true })})`,
        `copy(${JSON.stringify({ path: '/home/hbnew/hello', content: 'hi\n', becomeUser: 'hbnew' })})`,
      ],
    );
    const check = await run(file, '--check');
    t.is(check.code, 0, check.stdout + check.stderr);
    t.regex(check.stdout, /copy \/home\/hbnew\/hello \(user hbnew does not exist \(yet\)\)/);
    t.is(await ssh('id hbnew >/dev/null 2>&1 && echo present || echo absent'), 'absent\n');
    t.is(await changedBy(t, file), 2);
    t.is(await ssh("stat -c '%U %a' /home/hbnew/hello; cat /home/hbnew/hello"), 'hbnew 644\nhi\n');
    t.is(await changedBy(t, file), 0);
  },
);

test.serial('a missing user: check mode says so, a run fails naming the user', async (t) => {
  const file = playbook(
    'missing',
    ['copy'],
    [`copy(${JSON.stringify({ path: '/tmp/hb-missing', content: 'x\n', becomeUser: 'hbnobody' })})`],
  );
  const check = await run(file, '--check');
  t.is(check.code, 0, check.stdout + check.stderr);
  t.regex(check.stdout, /user hbnobody does not exist \(yet\)/);
  const res = await run(file);
  t.not(res.code, 0);
  t.regex(res.stdout + res.stderr, /becomeUser: there is no user hbnobody on the host/);
  t.is(await ssh('test -e /tmp/hb-missing && echo present || echo absent'), 'absent\n');
});

test.serial('a root-only task type refuses becomeUser before any host is touched', async (t) => {
  const file = playbook(
    'refused',
    ['service'],
    [`service(${JSON.stringify({ unit: 'ssh', state: 'started', becomeUser: USER })})`],
  );
  const res = await run(file);
  t.is(res.code, 1, res.stdout + res.stderr);
  t.regex(
    res.stderr,
    /service cannot run as another user: only root may start, stop, enable or mask system units/,
  );
  t.regex(res.stderr, /refused\.ts:\d+/);
  t.false(res.stderr.includes('    at '), 'no stack trace');
});
