/**
 * locale, mount, swap, service's daemonReload and directory's parents end to end, over real SSH against
 * a fresh test host, through the real CLI: each converges the host, a second run changes nothing,
 * `--check` leaves the host as it was, and a change made by hand is repaired. The tests run serially:
 * mount and swap both edit /etc/fstab (and reload systemd, which the daemonReload test observes).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { removeProject } from '../helpers/cli.js';
import { taskRuns } from '../helpers/task-runs.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'tsd-system-b';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-tasks-system-b-'));
test.after.always(() => removeProject(dir));

const { playbook, run, ssh, changedBy, lifecycle } = taskRuns(hosts, HOST, dir);

test.serial(
  'locale: the locales package installed, fr_FR.UTF-8 generated and the default LANG',
  async (t) => {
    t.timeout(10 * 60_000);
    t.is(
      (await hosts.ssh(HOST, 'test -x /usr/sbin/locale-gen')).code,
      1,
      'a fresh host has no locales package',
    );
    const file = playbook('locale', ['locale'], [`locale({ locale: 'fr_FR.UTF-8', default: true })`]);
    await lifecycle(t, {
      file,
      label: /locale fr_FR\.UTF-8/,
      state:
        "locale -a | grep -ix 'fr_fr.utf8'; grep -c '^fr_FR.UTF-8 UTF-8$' /etc/locale.gen; grep '^LANG=' /etc/default/locale; true",
      converged: 'fr_FR.utf8\n1\nLANG=fr_FR.UTF-8\n',
      drift: "sed -i 's/^fr_FR.UTF-8/# fr_FR.UTF-8/' /etc/locale.gen && locale-gen >/dev/null",
    });
    t.is((await ssh('LANG=fr_FR.UTF-8 date -d 2024-01-01 +%A')).trim(), 'lundi', 'the locale works');

    const unknown = await run(playbook('locale-unknown', ['locale'], [`locale({ locale: 'xx_YY.UTF-8' })`]));
    t.is(unknown.code, 2, unknown.stdout + unknown.stderr);
    t.regex(unknown.stdout + unknown.stderr, /locale xx_YY\.UTF-8 is not in \/usr\/share\/i18n\/SUPPORTED/);
  },
);

test.serial(
  'mount: a tmpfs and a bind mount in fstab and mounted; new options remount; absent',
  async (t) => {
    t.timeout(5 * 60_000);
    const fstabBefore = await ssh('cat /etc/fstab');
    const file = playbook(
      'mount',
      ['mount'],
      [`mount({ path: '/mnt/tsd-cache', src: 'tmpfs', fstype: 'tmpfs', opts: 'size=8m,mode=0755' })`],
    );
    await lifecycle(t, {
      file,
      label: /mount \/mnt\/tsd-cache/,
      state:
        "grep ' /mnt/tsd-cache ' /etc/fstab; findmnt -rn -o FSTYPE,TARGET --mountpoint /mnt/tsd-cache; true",
      converged: 'tmpfs /mnt/tsd-cache tmpfs size=8m,mode=0755 0 0\ntmpfs /mnt/tsd-cache\n',
      drift: 'umount /mnt/tsd-cache',
    });
    t.is(await ssh('cat /etc/fstab'), `${fstabBefore}tmpfs /mnt/tsd-cache tmpfs size=8m,mode=0755 0 0\n`);

    // Options in another order are the same set; a new size remounts with it.
    await ssh("sed -i 's/size=8m,mode=0755/mode=0755,size=8m/' /etc/fstab");
    t.is(await changedBy(t, file), 0, 'options are compared as a set');
    const bigger = playbook(
      'mount-bigger',
      ['mount'],
      [`mount({ path: '/mnt/tsd-cache', src: 'tmpfs', fstype: 'tmpfs', opts: ['size=16m', 'mode=0755'] })`],
    );
    const remount = await run(bigger);
    t.is(remount.code, 0, remount.stdout + remount.stderr);
    t.regex(remount.stdout, /options changed: remounted/);
    t.regex(await ssh('findmnt -rn -o OPTIONS --mountpoint /mnt/tsd-cache'), /size=16384k/);

    // A bind mount: the directory's files show through it.
    await ssh('mkdir -p /srv/tsd-src && echo bound > /srv/tsd-src/marker');
    const bind = playbook(
      'mount-bind',
      ['mount'],
      [`mount({ path: '/mnt/tsd-bind', src: '/srv/tsd-src', fstype: 'none', opts: 'bind' })`],
    );
    t.is(await changedBy(t, bind), 1);
    t.is(await ssh('cat /mnt/tsd-bind/marker'), 'bound\n');
    t.is(await changedBy(t, bind), 0);

    const absent = playbook(
      'mount-absent',
      ['mount'],
      [
        `mount({ path: '/mnt/tsd-cache', state: 'absent' })`,
        `mount({ path: '/mnt/tsd-bind', state: 'absent' })`,
      ],
    );
    t.is(await changedBy(t, absent), 2);
    t.is(await ssh('cat /etc/fstab'), fstabBefore, 'only the lines of those mount points went');
    t.is(
      (await hosts.ssh(HOST, 'findmnt --mountpoint /mnt/tsd-bind || findmnt --mountpoint /mnt/tsd-cache'))
        .code,
      1,
    );
    t.is(await changedBy(t, absent), 0);
  },
);

test.serial(
  'swap: in a container, swapon is refused clearly; activate: false makes the file and its line',
  async (t) => {
    t.timeout(5 * 60_000);
    const refused = await run(
      playbook('swap-on', ['swap'], [`swap({ path: '/tsd-swapfile', size: '16M' })`]),
    );
    t.is(refused.code, 2, refused.stdout + refused.stderr);
    t.regex(
      refused.stdout + refused.stderr,
      /swap \/tsd-swapfile: the host is a container \(systemd-nspawn\): its kernel refuses swapon there; set activate: false/,
    );
    t.is((await hosts.ssh(HOST, 'test -e /tsd-swapfile')).code, 1, 'nothing was made');

    const file = playbook(
      'swap',
      ['swap'],
      [`swap({ path: '/tsd-swapfile', size: '16M', activate: false })`],
    );
    const state =
      "stat -c '%s %a %U' /tsd-swapfile; blkid -p -o value -s TYPE /tsd-swapfile; grep '^/tsd-swapfile ' /etc/fstab; true";
    await lifecycle(t, {
      file,
      label: /swap \/tsd-swapfile/,
      state,
      converged: '16777216 600 root\nswap\n/tsd-swapfile none swap sw 0 0\n',
      drift: 'chmod 0644 /tsd-swapfile',
    });
    await ssh('dd if=/dev/zero of=/tsd-swapfile bs=4096 count=1 conv=notrunc status=none');
    t.is(await changedBy(t, file), 1, 'a lost signature is repaired');
    t.is(await ssh(state), '16777216 600 root\nswap\n/tsd-swapfile none swap sw 0 0\n');

    const bigger = playbook(
      'swap-32',
      ['swap'],
      [`swap({ path: '/tsd-swapfile', size: '32M', priority: 5, activate: false })`],
    );
    t.is(await changedBy(t, bigger), 1);
    t.is(await ssh(state), '33554432 600 root\nswap\n/tsd-swapfile none swap sw,pri=5 0 0\n');

    const absent = playbook('swap-absent', ['swap'], [`swap({ path: '/tsd-swapfile', state: 'absent' })`]);
    t.is(await changedBy(t, absent), 1);
    t.is(await ssh(state), '');
    t.is(await changedBy(t, absent), 0);
  },
);

test.serial('service daemonReload alone: reloads only when a loaded unit changed on disk', async (t) => {
  t.timeout(5 * 60_000);
  const unit = '/etc/systemd/system/tsd-reload.service';
  await ssh(
    `printf '[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/bin/true\\n' > ${unit} && systemctl daemon-reload && systemctl start tsd-reload`,
  );
  const file = playbook('daemon-reload', ['service'], [`service({ daemonReload: true })`]);
  t.is(await changedBy(t, file), 0, 'no unit changed on disk: no reload');
  const needs = 'systemctl show -p NeedDaemonReload --value tsd-reload';

  await ssh(`echo '# edited' >> ${unit}`);
  t.is((await ssh(needs)).trim(), 'yes');
  const check = await run(file, '--check');
  t.is(check.code, 0, check.stdout + check.stderr);
  t.regex(
    check.stdout,
    /would change\s+tsd-system-b\s+.*service daemon-reload.*changed on disk: tsd-reload\.service/,
  );
  t.is((await ssh(needs)).trim(), 'yes', '--check did not reload');

  const first = await run(file);
  t.is(first.code, 0, first.stdout + first.stderr);
  t.regex(first.stdout, /changed\s+tsd-system-b\s+.*service daemon-reload/);
  t.is((await ssh(needs)).trim(), 'no');
  t.is(await changedBy(t, file), 0, 'a second run changes nothing');

  // A drop-in in a folder created after systemd loaded the unit: systemd itself does not notice it.
  const env = 'systemctl show -p Environment --value tsd-reload';
  await ssh(
    "mkdir /etc/systemd/system/tsd-reload.service.d && printf '[Service]\\nEnvironment=TSD=1\\n' > /etc/systemd/system/tsd-reload.service.d/env.conf",
  );
  t.is((await ssh(needs)).trim(), 'no', 'systemd does not see the new drop-in folder');
  const byUnit = playbook('daemon-reload-unit', ['service'], [`service({ unit: 'tsd-reload' })`]);
  const checkUnit = await run(byUnit, '--check');
  t.regex(checkUnit.stdout, /would change\s+tsd-system-b\s+.*service tsd-reload.*new drop-in on disk/);
  t.is((await ssh(env)).trim(), '', '--check did not reload');
  t.is(await changedBy(t, byUnit), 1);
  t.is((await ssh(env)).trim(), 'TSD=1', 'the drop-in is read');
  t.is(await changedBy(t, byUnit), 0, 'a second run changes nothing');

  // The same for daemonReload alone, which looks at every loaded unit.
  await ssh(
    "rm -r /etc/systemd/system/tsd-reload.service.d && systemctl daemon-reload && mkdir /etc/systemd/system/tsd-reload.service.d && printf '[Service]\\nEnvironment=TSD=2\\n' > /etc/systemd/system/tsd-reload.service.d/env.conf",
  );
  t.is((await ssh(needs)).trim(), 'no');
  t.is(await changedBy(t, file), 1, 'daemonReload alone reloads it');
  t.is((await ssh(env)).trim(), 'TSD=2');
  t.is(await changedBy(t, file), 0);
});

test.serial('directory: missing parents get its owner and its mode without group/other write', async (t) => {
  t.timeout(5 * 60_000);
  await ssh('mkdir -p /srv/tsd-keep && chmod 0711 /srv/tsd-keep');
  const file = playbook(
    'directory-parents',
    ['directory'],
    [`directory({ path: '/srv/tsd-keep/a/b', owner: 'nobody', group: 'nogroup', mode: '0770' })`],
  );
  await lifecycle(t, {
    file,
    label: /directory \/srv\/tsd-keep\/a\/b/,
    state: "stat -c '%n %U:%G %a' /srv/tsd-keep /srv/tsd-keep/a /srv/tsd-keep/a/b 2>/dev/null; true",
    converged:
      '/srv/tsd-keep root:root 711\n/srv/tsd-keep/a nobody:nogroup 750\n/srv/tsd-keep/a/b nobody:nogroup 770\n',
    drift: 'chmod 0700 /srv/tsd-keep/a/b',
  });
});
