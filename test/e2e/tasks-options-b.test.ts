/**
 * More options of existing task types that come from Ansible's modules (copy and template `force` and
 * `backup`, apt `purge`, `deb`, `defaultRelease`, `allowDowngrade`, user `password`, `expires`,
 * `passwordLock`, postgresUser role attributes, git `force` and `update`), end to end over real SSH:
 * each converges the host, a rerun changes nothing, check mode changes nothing, and drift made by hand
 * is repaired where the option repairs it. Each test works on its own paths, packages and accounts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { taskRuns } from '../helpers/task-runs.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'toe-opts';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-tasks-options-b-e2e-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const { playbook, run, ssh, changedBy } = taskRuns(hosts, HOST, dir);

/** The files of a directory with their content, one `name: content` line each, sorted by name. */
const listing = (directory: string) =>
  ssh(`cd ${directory} && for f in $(ls -A | sort); do printf '%s: %s\\n' "$f" "$(cat "$f")"; done`);

test.serial(
  'copy and template: backup keeps the replaced file; force false writes a missing file only',
  async (t) => {
    const root = '/etc/toe-copy';
    await ssh(`mkdir -p ${root} && printf 'old\\n' > ${root}/app.conf && chmod 0640 ${root}/app.conf`);
    await ssh(`printf 'by hand\\n' > ${root}/kept.conf`);
    const src = join(dir, 'motd.hbs');
    writeFileSync(src, 'hello {{who}}\n');
    const file = playbook(
      'copy-backup',
      ['copy', 'template'],
      [
        `copy(${JSON.stringify({ path: `${root}/app.conf`, content: 'new\n', backup: true })})`,
        `template(${JSON.stringify({ path: `${root}/kept.conf`, src, vars: { who: 'x' }, force: false })})`,
        `copy(${JSON.stringify({ path: `${root}/seed.conf`, content: 'seed\n', force: false, mode: '0600' })})`,
      ],
    );
    const fresh = await listing(root);
    const check = await run(file, '--check');
    t.is(check.code, 0, check.stdout + check.stderr);
    t.regex(check.stdout, /would change\s+toe-opts\s+.*copy \/etc\/toe-copy\/app\.conf \(content differs\)/);
    t.regex(check.stdout, /would change\s+toe-opts\s+.*copy \/etc\/toe-copy\/seed\.conf \(file is missing\)/);
    t.regex(check.stdout, /ok\s+toe-opts\s+.*template \/etc\/toe-copy\/kept\.conf\n/);
    t.is(await listing(root), fresh, '--check changed nothing');

    const first = await run(file);
    t.is(first.code, 0, first.stdout + first.stderr);
    const reported = first.stdout.match(
      /changed\s+toe-opts\s+.*copy \/etc\/toe-copy\/app\.conf \(content differs, backup (\/etc\/toe-copy\/app\.conf\.\d+\.\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d~)\)/,
    );
    t.truthy(reported, first.stdout);
    const backup = reported?.[1] ?? '';
    const backupName = backup.slice(root.length + 1);
    t.is(
      await listing(root),
      `app.conf: new\n${backupName}: old\nkept.conf: by hand\nseed.conf: seed\n`,
      'the backup holds the old content; force false left kept.conf alone',
    );
    t.is(await ssh(`stat -c %a ${root}/app.conf ${backup}`), '640\n640\n', 'the backup keeps the old mode');
    t.is(await ssh(`stat -c %a ${root}/seed.conf`), '600\n');

    t.is(await changedBy(t, file), 0, 'a second run changes nothing and makes no backup');
    t.is((await ssh(`ls ${root} | wc -l`)).trim(), '4');

    // Drift: app.conf edited, seed.conf removed, kept.conf edited again (force false leaves it).
    await ssh(
      `printf 'edited\\n' > ${root}/app.conf && rm ${root}/seed.conf && printf 'mine\\n' > ${root}/kept.conf`,
    );
    const repaired = await run(file);
    t.is(repaired.code, 0, repaired.stdout + repaired.stderr);
    t.regex(repaired.stdout, /changed\s+toe-opts\s+.*copy \/etc\/toe-copy\/seed\.conf \(file is missing\)/);
    const second = repaired.stdout.match(
      /app\.conf \(content differs, backup (\/etc\/toe-copy\/\S+~)\)/,
    )?.[1];
    t.truthy(second, repaired.stdout);
    t.not(second, backup);
    t.is(
      await ssh(`cat ${root}/app.conf ${second} ${backup} ${root}/kept.conf ${root}/seed.conf`),
      'new\nedited\nold\nmine\nseed\n',
    );
    t.is(await changedBy(t, file), 0);
  },
);
