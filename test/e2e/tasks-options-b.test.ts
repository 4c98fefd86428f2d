/**
 * More options of existing task types that come from Ansible's modules (copy and template `force` and
 * `backup`, apt `purge`, `deb`, `defaultRelease`, `allowDowngrade`, user `password`, `expires`,
 * `passwordLock`, postgresUser role attributes, git `force` and `update`), end to end over real SSH:
 * each converges the host, a rerun changes nothing, check mode changes nothing, and drift made by hand
 * is repaired where the option repairs it. Each test works on its own paths, packages and accounts.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { removeProject } from '../helpers/cli.js';
import { taskRuns } from '../helpers/task-runs.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'toe-opts';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-tasks-options-b-e2e-'));
test.after.always(() => removeProject(dir));
const { playbook, run, ssh, changedBy, lifecycle } = taskRuns(hosts, HOST, dir);

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

const APT = 'DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0';
const DEB_PORT = 8771;

/** Builds `<name>_<version>_all.deb` into `out` with dpkg-deb, with the conffile /etc/<name>.conf. */
const buildDeb = (name: string, version: string, out: string) =>
  ssh(`set -e
d=$(mktemp -d)
mkdir -p "$d/DEBIAN" "$d/etc" ${out}
echo '${name} ${version}' > "$d/etc/${name}.conf"
echo /etc/${name}.conf > "$d/DEBIAN/conffiles"
printf 'Package: ${name}\\nVersion: ${version}\\nArchitecture: all\\nMaintainer: Test <t@example.org>\\nDescription: test package\\n' > "$d/DEBIAN/control"
dpkg-deb --build "$d" ${out}/${name}_${version}_all.deb >/dev/null
rm -rf "$d"`);

/** dpkg's version and status of a package, or `none`. */
const dpkgState = (name: string) =>
  `dpkg-query -W -f='\${Version} \${Status}\\n' ${name} 2>/dev/null || echo none`;

test.serial('apt: a deb from a URL and from a path, allowDowngrade, then remove and purge', async (t) => {
  await buildDeb('toe-hello', '1.0', '/srv/toe-debs');
  await buildDeb('toe-hello', '2.0', '/srv/toe-debs');
  await ssh(
    `systemd-run --unit=toe-debs-http --quiet python3 -m http.server ${DEB_PORT} --bind 127.0.0.1 --directory /srv/toe-debs
for i in $(seq 100); do curl -fs -o /dev/null http://127.0.0.1:${DEB_PORT}/toe-hello_2.0_all.deb && exit 0; sleep 0.1; done; exit 1`,
  );
  const fromUrl = playbook(
    'apt-deb-url',
    ['apt'],
    [`apt(${JSON.stringify({ deb: `http://127.0.0.1:${DEB_PORT}/toe-hello_2.0_all.deb` })})`],
  );
  await lifecycle(t, {
    file: fromUrl,
    label:
      /apt http:\/\/127\.0\.0\.1:8771\/toe-hello_2\.0_all\.deb \(toe-hello is not installed \(the \.deb holds 2\.0\)\)/,
    state: dpkgState('toe-hello'),
    converged: '2.0 install ok installed\n',
    drift: `${APT} remove toe-hello >/dev/null`,
  });

  // An older .deb: refused without allowDowngrade (the task fails, 2.0 stays), installed with it.
  const older = { deb: '/srv/toe-debs/toe-hello_1.0_all.deb' };
  const refused = await run(playbook('apt-deb-old', ['apt'], [`apt(${JSON.stringify(older)})`]));
  t.is(refused.code, 2, refused.stdout + refused.stderr);
  t.regex(refused.stdout + refused.stderr, /downgrade/i);
  t.is(await ssh(dpkgState('toe-hello')), '2.0 install ok installed\n');
  const downgrade = playbook(
    'apt-deb-downgrade',
    ['apt'],
    [`apt(${JSON.stringify({ ...older, allowDowngrade: true })})`],
  );
  const check = await run(downgrade, '--check');
  t.regex(check.stdout, /would change\s+toe-opts\s+.*toe-hello 2\.0 is installed, the \.deb holds 1\.0/);
  t.is(await ssh(dpkgState('toe-hello')), '2.0 install ok installed\n', '--check changed nothing');
  t.is(await changedBy(t, downgrade), 1);
  t.is(await ssh(dpkgState('toe-hello')), '1.0 install ok installed\n');
  t.is(await changedBy(t, downgrade), 0);

  // absent keeps the config file; purge removes what remove left.
  const remove = playbook(
    'apt-remove',
    ['apt'],
    [`apt(${JSON.stringify({ packages: 'toe-hello', state: 'absent' })})`],
  );
  t.is(await changedBy(t, remove), 1);
  t.is(
    await ssh(`${dpkgState('toe-hello')}; cat /etc/toe-hello.conf`),
    '1.0 deinstall ok config-files\ntoe-hello 1.0\n',
  );
  t.is(await changedBy(t, remove), 0, 'a package with config files only is not installed');
  const purge = playbook(
    'apt-purge',
    ['apt'],
    [`apt(${JSON.stringify({ packages: 'toe-hello', state: 'absent', purge: true })})`],
  );
  const purgeCheck = await run(purge, '--check');
  t.regex(purgeCheck.stdout, /would change\s+toe-opts\s+.*apt toe-hello \(config files left: toe-hello\)/);
  t.is(await ssh('cat /etc/toe-hello.conf'), 'toe-hello 1.0\n', '--check changed nothing');
  t.is(await changedBy(t, purge), 1);
  t.is(
    await ssh(`${dpkgState('toe-hello')}; ls /etc/toe-hello.conf 2>&1 || true`),
    `none\nls: cannot access '/etc/toe-hello.conf': No such file or directory\n`,
  );
  t.is(await changedBy(t, purge), 0);

  // purge of an installed package removes its config file at once.
  await ssh(`${APT} install /srv/toe-debs/toe-hello_2.0_all.deb >/dev/null 2>&1`);
  t.is(await changedBy(t, purge), 1);
  t.is(
    await ssh(`${dpkgState('toe-hello')}; test -e /etc/toe-hello.conf && echo kept || echo gone`),
    'none\ngone\n',
  );
});

/** A flat repository `<dir>` of release (Suite) `suite`, trusted without signature, holding these debs. */
const flatRepository = (dir: string, suite: string) =>
  ssh(`set -e
cd ${dir}
for f in *.deb; do dpkg-deb -f "$f"; echo "Filename: ./$f"; echo "Size: $(stat -c %s "$f")"; echo "SHA256: $(sha256sum "$f" | cut -d' ' -f1)"; echo; done > Packages
{ echo 'Origin: toe'; echo 'Suite: ${suite}'; echo 'Codename: ${suite}'; echo "Date: $(LC_ALL=C date -Ru)"; echo 'SHA256:'; echo " $(sha256sum Packages | cut -d' ' -f1) $(stat -c %s Packages) Packages"; } > Release`);

test.serial('apt: defaultRelease installs from that release where another has a newer version', async (t) => {
  await buildDeb('toe-rel', '1.0', '/srv/toe-rel-old');
  await buildDeb('toe-rel', '2.0', '/srv/toe-rel-new');
  await flatRepository('/srv/toe-rel-old', 'toe-old');
  await flatRepository('/srv/toe-rel-new', 'toe-new');
  const list = '/etc/apt/sources.list.d/toe-rel.list';
  await ssh(`printf 'deb [trusted=yes] file:/srv/toe-rel-old ./\\ndeb [trusted=yes] file:/srv/toe-rel-new ./\\n' > ${list}
${APT} -o Dir::Etc::sourcelist=${list} -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 update >/dev/null`);
  t.regex(
    await ssh('LC_ALL=C apt-cache policy toe-rel'),
    /Candidate: 2\.0/,
    'without -t the newer release wins',
  );

  const file = playbook(
    'apt-release',
    ['apt'],
    [`apt(${JSON.stringify({ packages: 'toe-rel', defaultRelease: 'toe-old' })})`],
  );
  await lifecycle(t, {
    file,
    label: /apt toe-rel \(not installed: toe-rel/,
    state: dpkgState('toe-rel'),
    converged: '1.0 install ok installed\n',
    drift: `${APT} purge toe-rel >/dev/null`,
  });
});

/** sha512-crypt hashes (`openssl passwd -6`) of two throwaway passwords. */
const HASH_1 =
  '$6$toesalt1$ZDECWJSe2l/sAtTsiA9JUhYUC6oM//cpeTeTIc7BQoXVqaLd9LlH4LgjkHbbvW1z.tJhpfjbfzyz2et3/d4Q61';
const HASH_2 =
  '$6$toesalt2$/LUYgSFP0pvu8g4Sv9ACY08IqHNAy12SrLHZ/tPuH8NFfT9Udg1CMmTpxIf9Sq78ILabS8be.RrbAgBFbnPRy/';

test.serial('user: password hash (never in the output), expires, passwordLock', async (t) => {
  const shadow = 'getent shadow toe-alice | cut -d: -f2,8 || echo none';
  const file = playbook(
    'user-password',
    ['user'],
    [`user(${JSON.stringify({ user: 'toe-alice', password: HASH_1, expires: '2030-01-01' })})`],
  );
  await lifecycle(t, {
    file,
    label: /user toe-alice \(user does not exist\)/,
    state: shadow,
    // 2030-01-01 is day 21915 since 1970-01-01.
    converged: `${HASH_1}:21915\n`,
    drift: `echo 'toe-alice:${HASH_2}' | chpasswd -e && chage -E -1 toe-alice`,
  });
  await ssh(`echo 'toe-alice:${HASH_2}' | chpasswd -e`);
  const verbose = await run(file, '-v');
  t.is(verbose.code, 0, verbose.stdout + verbose.stderr);
  t.regex(verbose.stdout, /changed\s+toe-opts\s+.*user toe-alice \(password differs\)/);
  for (const hash of [HASH_1, HASH_2]) {
    t.false((verbose.stdout + verbose.stderr).includes(hash.slice(12, 40)), 'no hash in the output');
  }
  t.is(await ssh(shadow), `${HASH_1}:21915\n`);

  // Locked: a `!` before the same hash; unlocked again; the expiry removed.
  const lock = playbook(
    'user-lock',
    ['user'],
    [`user(${JSON.stringify({ user: 'toe-alice', passwordLock: true })})`],
  );
  const check = await run(lock, '--check');
  t.regex(check.stdout, /would change\s+toe-opts\s+.*user toe-alice \(password not locked\)/);
  t.is(await ssh(shadow), `${HASH_1}:21915\n`, '--check changed nothing');
  t.is(await changedBy(t, lock), 1);
  t.is(await ssh(shadow), `!${HASH_1}:21915\n`);
  t.is(await changedBy(t, lock), 0);
  t.is(await changedBy(t, file), 0, 'the password is the same while locked');
  const unlock = playbook(
    'user-unlock',
    ['user'],
    [`user(${JSON.stringify({ user: 'toe-alice', passwordLock: false, expires: -1 })})`],
  );
  t.is(await changedBy(t, unlock), 1);
  t.is(await ssh(shadow), `${HASH_1}:\n`);
  t.is(await changedBy(t, unlock), 0);
});

test.serial('postgresUser: replication, createrole, bypassrls and connLimit', async (t) => {
  await ssh(
    `(${APT} install --no-install-recommends postgresql || (apt-get -q update && ${APT} install --no-install-recommends postgresql)) >/dev/null 2>&1`,
  );
  await ssh('systemctl start postgresql');
  const psql = (sql: string) => `cd / && runuser -u postgres -- psql -X -q -A -t -c "${sql}"`;
  const file = playbook(
    'postgres-attributes',
    ['postgresUser'],
    [
      `postgresUser(${JSON.stringify({ user: 'toe_repl', replication: true, createrole: true, bypassrls: true, connLimit: 3 })})`,
    ],
  );
  await lifecycle(t, {
    file,
    label: /postgres user toe_repl \(role does not exist\)/,
    state: psql(
      "select rolreplication, rolcreaterole, rolbypassrls, rolconnlimit from pg_authid where rolname = 'toe_repl'",
    ),
    converged: 't|t|t|3\n',
    drift: psql('ALTER ROLE toe_repl NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1'),
  });
  const off = playbook(
    'postgres-attributes-off',
    ['postgresUser'],
    [`postgresUser(${JSON.stringify({ user: 'toe_repl', createrole: false, connLimit: -1 })})`],
  );
  const check = await run(off, '--check');
  t.regex(
    check.stdout,
    /would change\s+toe-opts\s+.*postgres user toe_repl \(no createrole, connection limit 3 → -1\)/,
  );
  t.is(await changedBy(t, off), 1);
  t.is(
    await ssh(
      psql(
        "select rolreplication, rolcreaterole, rolbypassrls, rolconnlimit from pg_authid where rolname = 'toe_repl'",
      ),
    ),
    't|f|t|-1\n',
  );
  t.is(await changedBy(t, off), 0);
});

test.serial(
  'git: force discards local changes, force false refuses them, update false never updates',
  async (t) => {
    const origin = '/srv/toe-origin.git';
    await ssh(`set -e
command -v git >/dev/null || ${APT} install git >/dev/null 2>&1
rm -rf ${origin} /tmp/toe-work /srv/toe-app /srv/toe-frozen
git init -q --bare -b main ${origin}
git clone -q ${origin} /tmp/toe-work 2>/dev/null
cd /tmp/toe-work && echo v1 > app.txt && git add app.txt
git -c user.email=t@example.org -c user.name=t commit -q -m v1 && git push -q origin main`);
    const app = (dest: string) => `cat ${dest}/app.txt 2>/dev/null || echo none`;
    const forced = playbook(
      'git-force',
      ['git'],
      [`git(${JSON.stringify({ repo: origin, dest: '/srv/toe-app', version: 'main', force: true })})`],
    );
    await lifecycle(t, {
      file: forced,
      label: /git \/srv\/toe-app \(not cloned: clone [0-9a-f]{12} \(branch main\)\)/,
      state: app('/srv/toe-app'),
      converged: 'v1\n',
      drift: 'echo edited > /srv/toe-app/app.txt',
    });

    // force false: the same checkout edited by hand is refused, the edit kept; once reverted, converged.
    const careful = playbook(
      'git-careful',
      ['git'],
      [`git(${JSON.stringify({ repo: origin, dest: '/srv/toe-app', version: 'main', force: false })})`],
    );
    await ssh('echo edited > /srv/toe-app/app.txt');
    const refused = await run(careful);
    t.is(refused.code, 2, refused.stdout + refused.stderr);
    t.regex(
      refused.stdout + refused.stderr,
      /\/srv\/toe-app has local changes to 1 tracked file \(force: false\)/,
    );
    t.is(await ssh(app('/srv/toe-app')), 'edited\n');
    await ssh('git -C /srv/toe-app checkout -q -- app.txt');
    t.is(await changedBy(t, careful), 0);

    // update false: cloned once, left at v1 when the origin moves on; the forced checkout follows it.
    const frozen = playbook(
      'git-frozen',
      ['git'],
      [`git(${JSON.stringify({ repo: origin, dest: '/srv/toe-frozen', version: 'main', update: false })})`],
    );
    const check = await run(frozen, '--check');
    t.regex(check.stdout, /would change\s+toe-opts\s+.*git \/srv\/toe-frozen \(not cloned/);
    t.is(await ssh(app('/srv/toe-frozen')), 'none\n', '--check changed nothing');
    t.is(await changedBy(t, frozen), 1);
    t.is(await ssh(app('/srv/toe-frozen')), 'v1\n');
    await ssh(
      `cd /tmp/toe-work && echo v2 > app.txt && git -c user.email=t@example.org -c user.name=t commit -q -am v2 && git push -q origin main`,
    );
    t.is(await changedBy(t, frozen), 0, 'update false: the new commit is not fetched');
    t.is(await ssh(app('/srv/toe-frozen')), 'v1\n');
    t.is(await changedBy(t, forced), 1);
    t.is(await ssh(app('/srv/toe-app')), 'v2\n');
  },
);
