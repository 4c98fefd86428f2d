/**
 * Declared facts and onlyIfChanged end to end, over real SSH on one fresh test host, through the real
 * CLI: a role whose tasks depend on a stat, a getent, an installedPackages and a command fact converges
 * the host, changes nothing when run again (with one more round trip than a run without facts, for the
 * facts), changes nothing in --check; its onlyIfChanged follow-up, and a later role's that names the
 * file's task by role and task, are skipped on the rerun and run after a hand edit of the file; the
 * handler the file notifies is built with the role's facts. A fact whose command fails, and an
 * onlyIfChanged naming a task of a later role, stop the run before any change.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { removeProject, runCli } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'hf-facts';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-tasks-facts-'));
test.after.always(() => removeProject(dir));

const ssh = async (command: string) => {
  const result = await hosts.ssh(HOST, command);
  if (result.code !== 0) throw new Error(`${command} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
};

function inventory(): string {
  const h = hosts.get(HOST);
  const file = join(dir, 'hosts.ini');
  writeFileSync(
    file,
    `[facts]\n${HOST} ansible_host=${h.address} ansible_user=${h.user} ansible_ssh_private_key_file=${h.key}\n`,
  );
  return file;
}

/**
 * The role: the app's home comes from the account (getent), the report names the installed version of
 * base-files (installedPackages), the kernel's name (a command fact) and where /etc/os-release points
 * (stat); the app's settings are written only where the data directory is a directory (stat). The
 * "reload" command follows the settings file: it runs only when that file changed.
 */
const ROLE = `
import { commandFact, copy, definePlaybook, defineRole, directory, getent, installedPackages, shell, stat } from 'verdandi';

const app = defineRole({
  name: 'app',
  facts: {
    account: getent('passwd', 'vdapp'),
    osRelease: stat('/etc/os-release'),
    data: stat('/srv/vdapp-data'),
    pkgs: installedPackages(['base-files', 'vd-not-a-package']),
    kernel: commandFact(['uname', '-s'], ({ stdout }) => stdout.trim()),
  },
  tasks: (_vars, _host, facts) => {
    if (!facts.account) throw new Error('the vdapp account is missing');
    const home = facts.account.home;
    const settings = copy({ path: home + '/app.conf', content: 'port=8080\\n', owner: 'vdapp', mode: '0640', notify: 'note' });
    return [
      directory({ path: home, owner: 'vdapp' }),
      settings,
      copy({
        path: home + '/facts.txt',
        content: [
          'base-files=' + facts.pkgs['base-files'],
          'missing=' + (facts.pkgs['vd-not-a-package'] ?? 'not installed'),
          'kernel=' + facts.kernel,
          'os-release=' + (facts.osRelease.exists ? facts.osRelease.type + ' ' + (facts.osRelease.linkTarget ?? '') : 'absent'),
          '',
        ].join('\\n'),
      }),
      facts.data.exists && facts.data.type === 'dir'
        ? copy({ path: '/srv/vdapp-data/README', content: 'data of vdapp\\n' })
        : null,
      shell({ name: 'reload app', script: 'echo reloaded >> ' + home + '/reloads', onlyIfChanged: settings }),
    ];
  },
  handlers: {
    // The handler sees the facts tasks() saw: the account's home and the kernel's name.
    note: (_vars, _host, facts) =>
      shell({ script: 'echo "kernel=' + facts.kernel + ' home=' + facts.account?.home + '" >> /home/vdapp/handler.log' }),
  },
});

// A later role follows a task of the app role, named by role and task.
const web = defineRole({
  name: 'web',
  tasks: () => [
    shell({
      name: 'restart web',
      script: 'echo restarted >> /home/vdapp/web-restarts',
      onlyIfChanged: { role: 'app', task: 'copy /home/vdapp/app.conf' },
    }),
  ],
});

export default definePlaybook({ plays: [{ hosts: 'facts', roles: [app, web] }] });
`;

/** A role naming a task of a role that runs after it: refused before anything runs. */
const ORDER = `
import { copy, definePlaybook, defineRole, shell } from 'verdandi';

const later = defineRole({ name: 'later', tasks: () => [copy({ path: '/etc/vd-later', content: 'x' })] });
const early = defineRole({
  name: 'early',
  tasks: () => [
    copy({ path: '/etc/vd-early', content: 'x' }),
    shell({ script: 'true', onlyIfChanged: { role: 'later', task: 'copy /etc/vd-later' } }),
  ],
});

export default definePlaybook({ plays: [{ hosts: 'facts', roles: [early, later] }] });
`;

const BROKEN = `
import { commandFact, copy, definePlaybook, defineRole } from 'verdandi';

const broken = defineRole({
  name: 'broken',
  facts: { version: commandFact(['sh', '-c', 'exit 7'], ({ stdout }) => stdout) },
  tasks: (_vars, _host, facts) => [copy({ path: '/etc/vd-broken', content: facts.version })],
});

export default definePlaybook({ plays: [{ hosts: 'facts', roles: [broken] }] });
`;

interface Report {
  hosts: Record<string, { changed: number; failed: number; ok: number; skipped: number; roundTrips: number }>;
  events: Array<{ type: string; label?: string; status?: string; detail?: string }>;
}

async function run(file: string, ...extra: string[]) {
  const result = await runCli(['run', inventory(), join(dir, file), '--host-key-checking=off', ...extra], {
    cwd: dir,
  });
  return { ...result, output: result.stdout + result.stderr };
}

async function json(file: string, ...extra: string[]): Promise<Report> {
  const result = await run(file, '--json', ...extra);
  if (result.code !== 0) throw new Error(result.output);
  return JSON.parse(result.stdout) as Report;
}

const taskEvent = (report: Report, label: string) =>
  report.events.find((e) => e.type === 'task' && e.label === label);
const reloadEvent = (report: Report) => taskEvent(report, 'app › reload app');
const restartEvent = (report: Report) => taskEvent(report, 'web › restart web');

/** Everything the roles manage, as one text. */
const STATE =
  'cd /home/vdapp 2>/dev/null && stat -c "%n %U %a" app.conf facts.txt 2>&1; cat app.conf facts.txt reloads handler.log web-restarts /srv/vdapp-data/README 2>&1; true';
const HANDLER_LINE = 'kernel=Linux home=/home/vdapp\n';

test.serial(
  'a role steered by declared facts converges, reruns unchanged, and its follow-up runs only after a change',
  async (t) => {
    writeFileSync(join(dir, 'site.ts'), ROLE);
    await ssh('useradd --home-dir /home/vdapp --no-create-home vdapp && mkdir -p /srv/vdapp-data');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format field
    const version = (await ssh("dpkg-query -W -f '${Version}' base-files")).trim();
    const target = (await ssh('readlink /etc/os-release')).trim();

    const fresh = await ssh(STATE);
    const check = await run('site.ts', '--check');
    t.is(check.code, 0, check.output);
    t.regex(check.output, /would change\s+hf-facts\s+.*app.conf/);
    t.regex(check.output, /reload app.*would run/, 'the follow-up of a change to come would run');
    t.regex(check.output, /restart web.*would run/, "a later role's follow-up of a change to come would run");
    t.is(await ssh(STATE), fresh, '--check changed nothing');

    const first = await json('site.ts');
    t.is(first.hosts[HOST].failed, 0);
    t.is(first.hosts[HOST].changed, 7, 'five tasks, the handler, and the later role follow-up');
    t.like(restartEvent(first), { status: 'changed' });
    t.is(await ssh('cat /home/vdapp/handler.log'), HANDLER_LINE, 'the handler was built with the facts');
    t.is(await ssh('cat /home/vdapp/web-restarts'), 'restarted\n');
    t.is(
      await ssh('cat /home/vdapp/facts.txt'),
      `base-files=${version}\nmissing=not installed\nkernel=Linux\nos-release=link ${target}\n`,
    );
    t.is(await ssh('stat -c "%U %a" /home/vdapp/app.conf'), 'vdapp 640\n');
    t.is(await ssh('cat /srv/vdapp-data/README'), 'data of vdapp\n');
    t.is(await ssh('cat /home/vdapp/reloads'), 'reloaded\n');

    const again = await json('site.ts');
    t.like(again.hosts[HOST], { changed: 0, failed: 0, skipped: 2 });
    t.is(again.hosts[HOST].roundTrips, 2, 'the facts, then the probes of both roles: one round trip each');
    t.like(reloadEvent(again), {
      status: 'skipped',
      detail: 'onlyIfChanged: "copy /home/vdapp/app.conf" changed',
    });
    t.like(restartEvent(again), {
      status: 'skipped',
      detail: 'onlyIfChanged: "copy /home/vdapp/app.conf" (role app) changed',
    });
    t.is(await ssh('cat /home/vdapp/reloads /home/vdapp/web-restarts'), 'reloaded\nrestarted\n');

    const converged = await ssh(STATE);
    const checkAgain = await json('site.ts', '--check');
    t.like(checkAgain.hosts[HOST], { changed: 0, skipped: 2 });
    t.like(restartEvent(checkAgain), { status: 'skipped' });
    t.is(await ssh(STATE), converged);

    await ssh('echo port=1 > /home/vdapp/app.conf');
    const checkDrift = await json('site.ts', '--check');
    t.is(checkDrift.hosts[HOST].changed, 4, 'the drift, its handler and both follow-ups would run');
    t.like(reloadEvent(checkDrift), { status: 'changed', detail: 'would run' });
    t.like(restartEvent(checkDrift), { status: 'changed', detail: 'would run' });
    t.is(await ssh(STATE), converged.replace('port=8080', 'port=1'), '--check changed nothing');
    const repaired = await json('site.ts');
    t.like(repaired.hosts[HOST], { changed: 4, skipped: 0, failed: 0 });
    t.like(restartEvent(repaired), { status: 'changed' });
    t.is(await ssh('cat /home/vdapp/app.conf /home/vdapp/reloads'), 'port=8080\nreloaded\nreloaded\n');
    t.is(
      await ssh(STATE),
      converged
        .replace('reloaded\n', 'reloaded\nreloaded\n')
        .replace(HANDLER_LINE, HANDLER_LINE + HANDLER_LINE)
        .replace('restarted\n', 'restarted\nrestarted\n'),
    );
  },
);

test.serial(
  'a fact whose command fails stops the run before any change, naming the role and the fact',
  async (t) => {
    writeFileSync(join(dir, 'broken.ts'), BROKEN);
    const result = await run('broken.ts');
    t.is(result.code, 1, result.output);
    t.regex(
      result.output,
      /role broken.*host hf-facts: fact version \(command sh -c exit 7\): the command exited with 7/,
    );
    t.is((await hosts.ssh(HOST, 'test -e /etc/vd-broken')).code, 1, 'nothing was written');
  },
);

test.serial(
  'onlyIfChanged naming a task of a role that runs after it stops the run before any change, with its line',
  async (t) => {
    writeFileSync(join(dir, 'order.ts'), ORDER);
    const result = await run('order.ts');
    t.is(result.code, 1, result.output);
    t.regex(
      result.output,
      /role early.*host hf-facts: early: task "shell true" has onlyIfChanged \{ role: "later", task: "copy \/etc\/vd-later" \}, but role later runs after it on host hf-facts \(at order\.ts:9\)/,
    );
    t.notRegex(result.output, /\n\s+at /, 'no stack trace');
    t.is((await hosts.ssh(HOST, 'test -e /etc/vd-early')).code, 1, 'nothing was written');
  },
);
