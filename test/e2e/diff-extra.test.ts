/**
 * Ansible as the oracle for pip, aptRepository, systemdTimer, locale and mount
 * (test/helpers/ansible-twin.ts): the same desired state applied by Verdandi on hxdif-x-v and by
 * ansible-playbook on hxdif-x-a, then both hosts' states and both tools' verdicts compared on the first
 * run, a rerun and after the same drift.
 *
 * Cases:
 * - pip-new: a package into a virtualenv that does not exist yet (both create it with `python3 -m venv`);
 * - pip-pinned: a version pin below the installed version (a downgrade);
 * - pip-absent: one package of two removed;
 * - pip-requirements: a requirements file with a pin and a lower bound;
 *   (the wheels are built on the hosts and installed with --no-index: no package index is reached;
 *   Ansible's pip module needs python3-setuptools on the host, installed on both)
 * - aptrepo-new: a signed flat repository served from the host (file://) with its key, and a package
 *   installed from it in the same run (Ansible: the key copied, apt_repository, apt);
 * - aptrepo-stale-key: a repository whose keyring file already holds another key;
 * - aptrepo-absent-never: a repository never added, absent, and its key removed when it appears;
 * - timer-calendar / timer-user / timer-absent: a job on a calendar whose command needs systemd's
 *   escaping, a job run as a user at an interval, a timer removed (Ansible: the units copied, then
 *   `systemd` with daemon_reload, as roles do);
 * - locale-new / locale-latin / locale-absent: a UTF-8 locale, a locale named without its charset
 *   (en_GB is ISO-8859-1), a generated locale removed;
 * - mount-tmpfs / mount-present / mount-opts / mount-absent: a tmpfs mounted, a bind mount's fstab line
 *   only, new options on a mounted file system (remounted), a mount removed.
 *
 * The firewall task has no counterpart to compare with: it writes an nftables table, and Debian's
 * ansible package has no nftables module (community.general.ufw drives iptables rules through ufw,
 * ansible.posix.firewalld a firewalld daemon: other rules, another tool at boot).
 */
import test from 'ava';
import { serviceUnit, timerUnit } from '../../src/tasks/systemd-timer.js';
import { type Probe, type TwinCase, type TwinTask, useAnsibleTwin } from '../helpers/ansible-twin.js';
import { buildRepository } from '../helpers/apt-repo.js';

const D = '/srv/dif';
const WHEELS = `${D}/wheels`;

/**
 * Wheels of two tiny packages (difpkg 1.0 and 2.0, difother 1.0), written on the host with Python's
 * zipfile: pip installs them from a directory, no index.
 */
const BUILD_WHEELS = `mkdir -p ${WHEELS} && python3 - <<'EOF'
import base64, hashlib, zipfile
def wheel(name, version):
    info = f'{name}-{version}.dist-info'
    files = {
        f'{name}/__init__.py': f'VERSION = "{version}"\\n',
        f'{info}/METADATA': f'Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n',
        f'{info}/WHEEL': 'Wheel-Version: 1.0\\nGenerator: twin\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n',
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()
        record.append(f'{path},sha256={digest},{len(text.encode())}')
    files[f'{info}/RECORD'] = '\\n'.join(record + [f'{info}/RECORD,,']) + '\\n'
    with zipfile.ZipFile(f'${WHEELS}/{name}-{version}-py3-none-any.whl', 'w') as z:
        for path, text in files.items():
            z.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
for name, version in [('difpkg', '1.0'), ('difpkg', '2.0'), ('difother', '1.0')]:
    wheel(name, version)
EOF`;

/** The same pip task in both tools, installing from the local wheels only. */
function pip(name: string, venv: string, options: Record<string, unknown>): TwinTask {
  const { packages, requirements, state } = options as {
    packages?: string[];
    requirements?: string;
    state?: string;
  };
  return {
    name,
    verdandi: ['pip', { virtualenv: venv, ...options, findLinks: WHEELS, extraArgs: ['--no-index'] }],
    ansible: {
      pip: {
        ...(packages ? { name: packages } : {}),
        ...(requirements ? { requirements } : {}),
        ...(state ? { state } : {}),
        virtualenv: venv,
        virtualenv_command: 'python3 -m venv',
        // Ansible passes extra_args to `pip uninstall` too, which refuses --no-index.
        ...(state === 'absent' ? {} : { extra_args: `--no-index --find-links ${WHEELS}` }),
      },
    },
  };
}

/** What is installed in a virtualenv, and how it was made. */
const venvProbes = (venv: string): Probe[] => [
  `sh:${venv}/bin/python -m pip list --format=freeze --disable-pip-version-check`,
  `path:${venv}/pyvenv.cfg`,
  `path:${venv}/bin/python`,
];

/** `pip install` into a new virtualenv, for a case's setup. */
const venvWith = (venv: string, ...packages: string[]) =>
  `python3 -m venv ${venv} && ${venv}/bin/pip install -q --no-index --find-links ${WHEELS} ${packages.join(' ')}`;

/** The same timer in both tools: Verdandi's task, and the units it writes copied by Ansible. */
function timer(name: string, options: Record<string, unknown> & { timer: string }): TwinTask {
  const parsed = {
    persistent: true,
    state: 'present',
    ...options,
    onCalendar: typeof options.onCalendar === 'string' ? [options.onCalendar] : options.onCalendar,
  } as Parameters<typeof serviceUnit>[0];
  const unit = (suffix: string, content: string) => ({
    copy: { dest: `/etc/systemd/system/${options.timer}.${suffix}`, content, mode: '0644' },
  });
  return {
    name,
    verdandi: ['systemdTimer', options],
    ansible: [
      unit('service', serviceUnit(parsed)),
      unit('timer', timerUnit(parsed)),
      { systemd: { name: `${options.timer}.timer`, enabled: true, state: 'started', daemon_reload: true } },
    ],
  };
}

const timerProbes = (name: string): Probe[] => [
  `path:/etc/systemd/system/${name}.service`,
  `path:/etc/systemd/system/${name}.timer`,
  `service:${name}.timer`,
];

/** A locale's lines in /etc/locale.gen (with their numbers) and whether it is generated. */
const localeProbes = (pattern: string): Probe[] => [
  `sh:grep -n -E '^#? *${pattern} ' /etc/locale.gen`,
  `sh:locale -a | grep -E '^${pattern}$' || echo not generated`,
];

/** A mount point's fstab line, what is mounted there, and the directory. */
const mountProbes = (path: string): Probe[] => [
  `sh:grep -F ' ${path} ' /etc/fstab || echo no line`,
  `sh:findmnt -n -o SOURCE,FSTYPE,OPTIONS --mountpoint ${path} || echo not mounted`,
  `path:${path}`,
];

const REMOVE_FROM_LOCALE_GEN = (name: string) =>
  `sed -i 's/^${name} /# ${name} /' /etc/locale.gen && locale-gen >/dev/null`;

const twin = useAnsibleTwin(test, 'hxdif-x', (local): TwinCase[] => {
  const { tarball, keyFile } = buildRepository(local, 'difhello');
  /** The repository's file in sources.list.d, whichever its format. */
  const sourcesFile = (name: string): Probe =>
    `sh:ls /etc/apt/sources.list.d | grep '^${name}\\.' || echo none`;
  const keyring = (name: string) => `/etc/apt/keyrings/${name}.gpg`;
  /** The repository in both tools: Ansible copies the key and writes a one-line source. */
  const repository = (name: string, uri: string): TwinTask => ({
    name: `${name}: aptRepository`,
    verdandi: ['aptRepository', { repository: name, uris: uri, suites: './', key: { src: keyFile } }],
    ansible: [
      { copy: { src: keyFile, dest: keyring(name), mode: '0644' } },
      { apt_repository: { repo: `deb [signed-by=${keyring(name)}] ${uri} ./`, filename: name } },
    ],
  });
  const sourcesDiffer = (name: string) => ({
    probe: sourcesFile(name),
    verdandi: `${name}.sources`,
    ansible: `${name}.list`,
    why: 'Verdandi writes a deb822 .sources file (the format of deb822_repository, Ansible 2.15 and later); Ansible 2.14 has only apt_repository, a one-line .list',
  });
  return [
    {
      name: 'pip-new',
      setup: `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-setuptools >/dev/null && ${BUILD_WHEELS}`,
      tasks: [pip('pip-new: pip', `${D}/pip-new`, { packages: ['difpkg'] })],
      drift: `${D}/pip-new/bin/pip uninstall -q -y difpkg`,
      probes: venvProbes(`${D}/pip-new`),
    },
    {
      name: 'pip-pinned',
      setup: venvWith(`${D}/pip-pinned`, 'difpkg==2.0'),
      tasks: [pip('pip-pinned: pip', `${D}/pip-pinned`, { packages: ['difpkg==1.0'] })],
      drift: `${D}/pip-pinned/bin/pip install -q --no-index --find-links ${WHEELS} difpkg==2.0`,
      probes: venvProbes(`${D}/pip-pinned`),
    },
    {
      name: 'pip-absent',
      setup: venvWith(`${D}/pip-absent`, 'difpkg', 'difother'),
      tasks: [pip('pip-absent: pip', `${D}/pip-absent`, { packages: ['difother'], state: 'absent' })],
      drift: `${D}/pip-absent/bin/pip install -q --no-index --find-links ${WHEELS} difother`,
      probes: venvProbes(`${D}/pip-absent`),
    },
    {
      name: 'pip-requirements',
      setup: `printf 'difother==1.0\\ndifpkg>=2\\n' > ${D}/requirements.txt`,
      tasks: [
        pip('pip-requirements: pip', `${D}/pip-requirements`, { requirements: `${D}/requirements.txt` }),
      ],
      drift: `${D}/pip-requirements/bin/pip install -q --no-index --find-links ${WHEELS} difpkg==1.0`,
      probes: venvProbes(`${D}/pip-requirements`),
    },
    {
      name: 'aptrepo-new',
      setup: `mkdir -p ${D}/repo && echo '${tarball}' | base64 -d | tar -xz -C ${D}/repo`,
      tasks: [
        repository('difrepo', `file://${D}/repo`),
        {
          name: 'aptrepo-new: apt',
          verdandi: ['apt', { packages: 'difhello' }],
          ansible: { apt: { name: 'difhello' } },
        },
      ],
      // Not the key: aptrepo-stale-key's drift breaks the other repository's key, and Verdandi's
      // `apt-get update` fails on any repository's error (apt alone only warns) until that task repairs it.
      drift: 'apt-get remove -y -qq difhello >/dev/null',
      probes: [
        `path:${keyring('difrepo')}`,
        sourcesFile('difrepo'),
        'sh:apt-cache madison difhello',
        'package:difhello',
        'path:/usr/share/difhello/README',
      ],
      differences: { state: [sourcesDiffer('difrepo')] },
    },
    {
      name: 'aptrepo-stale-key',
      setup: `mkdir -p ${D}/repo2 /etc/apt/keyrings && echo '${tarball}' | base64 -d | tar -xz -C ${D}/repo2 && echo 'an old key' > ${keyring('difrepo2')}`,
      tasks: [repository('difrepo2', `file://${D}/repo2`)],
      drift: `echo 'an old key' > ${keyring('difrepo2')}`,
      probes: [`path:${keyring('difrepo2')}`, sourcesFile('difrepo2')],
      differences: { state: [sourcesDiffer('difrepo2')] },
    },
    {
      name: 'aptrepo-absent-never',
      tasks: [
        {
          name: 'aptrepo-absent-never: aptRepository',
          verdandi: ['aptRepository', { repository: 'difgone', state: 'absent' }],
          ansible: [
            {
              apt_repository: {
                repo: `deb [signed-by=${keyring('difgone')}] file://${D}/gone ./`,
                filename: 'difgone',
                state: 'absent',
              },
            },
            { file: { path: keyring('difgone'), state: 'absent' } },
          ],
        },
      ],
      drift: `echo 'a key' > ${keyring('difgone')}`,
      probes: [`path:${keyring('difgone')}`, sourcesFile('difgone')],
    },
    {
      name: 'timer-calendar',
      setup: `mkdir -p ${D}/timer`,
      tasks: [
        timer('timer-calendar: systemdTimer', {
          timer: 'dif-report',
          onCalendar: '*-*-* 03:30:00',
          command: `echo "$HOME is 100% full" > ${D}/timer/report`,
        }),
      ],
      drift: 'systemctl disable --now dif-report.timer 2>/dev/null',
      probes: timerProbes('dif-report'),
    },
    {
      name: 'timer-user',
      tasks: [
        timer('timer-user: systemdTimer', {
          timer: 'dif-poll',
          onBootSec: '5min',
          onUnitActiveSec: '1h',
          user: 'nobody',
          description: 'poll as nobody',
          command: 'true',
        }),
      ],
      drift: "sed -i 's/OnUnitActiveSec=1h/OnUnitActiveSec=2h/' /etc/systemd/system/dif-poll.timer",
      probes: timerProbes('dif-poll'),
    },
    {
      name: 'timer-absent',
      setup:
        "printf '[Service]\\nType=oneshot\\nExecStart=/bin/true\\n' > /etc/systemd/system/dif-old.service && printf '[Timer]\\nOnCalendar=daily\\n[Install]\\nWantedBy=timers.target\\n' > /etc/systemd/system/dif-old.timer && systemctl daemon-reload && systemctl enable --now dif-old.timer 2>/dev/null",
      tasks: [
        {
          name: 'timer-absent: systemdTimer',
          verdandi: ['systemdTimer', { timer: 'dif-old', state: 'absent' }],
          ansible: [
            // The systemd module fails on a unit that does not exist: a role removing a unit ignores it.
            { systemd: { name: 'dif-old.timer', enabled: false, state: 'stopped' }, failed_when: false },
            { file: { path: '/etc/systemd/system/dif-old.timer', state: 'absent' } },
            { file: { path: '/etc/systemd/system/dif-old.service', state: 'absent' } },
          ],
        },
      ],
      drift: "printf '[Timer]\\nOnCalendar=daily\\n' > /etc/systemd/system/dif-old.timer",
      probes: [...timerProbes('dif-old'), 'sh:systemctl list-timers --all --no-legend dif-old.timer'],
    },
    {
      name: 'locale-new',
      setup: 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq locales >/dev/null',
      tasks: [
        {
          name: 'locale-new: locale',
          verdandi: ['locale', { locale: 'fr_FR.UTF-8' }],
          ansible: { 'community.general.locale_gen': { name: 'fr_FR.UTF-8' } },
        },
      ],
      drift: REMOVE_FROM_LOCALE_GEN('fr_FR.UTF-8'),
      probes: localeProbes('fr_FR\\.(UTF-8|utf8)'),
    },
    {
      name: 'locale-latin',
      tasks: [
        {
          name: 'locale-latin: locale',
          verdandi: ['locale', { locale: 'en_GB' }],
          ansible: { 'community.general.locale_gen': { name: 'en_GB' } },
        },
      ],
      drift: REMOVE_FROM_LOCALE_GEN('en_GB'),
      probes: localeProbes('en_GB'),
    },
    {
      name: 'locale-absent',
      setup: "sed -i 's/^# de_DE.UTF-8 /de_DE.UTF-8 /' /etc/locale.gen && locale-gen >/dev/null",
      tasks: [
        {
          name: 'locale-absent: locale',
          verdandi: ['locale', { locale: 'de_DE.UTF-8', state: 'absent' }],
          ansible: { 'community.general.locale_gen': { name: 'de_DE.UTF-8', state: 'absent' } },
        },
      ],
      drift: "sed -i 's/^# de_DE.UTF-8 /de_DE.UTF-8 /' /etc/locale.gen && locale-gen >/dev/null",
      probes: localeProbes('de_DE\\.(UTF-8|utf8)'),
    },
    {
      name: 'mount-tmpfs',
      tasks: [
        {
          name: 'mount-tmpfs: mount',
          verdandi: [
            'mount',
            { path: `${D}/mnt-tmpfs`, src: 'tmpfs', fstype: 'tmpfs', opts: 'size=1m,mode=0750' },
          ],
          ansible: {
            'ansible.posix.mount': {
              path: `${D}/mnt-tmpfs`,
              src: 'tmpfs',
              fstype: 'tmpfs',
              opts: 'size=1m,mode=0750',
              state: 'mounted',
            },
          },
        },
      ],
      drift: `umount ${D}/mnt-tmpfs`,
      probes: mountProbes(`${D}/mnt-tmpfs`),
    },
    {
      name: 'mount-present',
      setup: `mkdir -p ${D}/bind-src`,
      tasks: [
        {
          name: 'mount-present: mount',
          verdandi: [
            'mount',
            { path: `${D}/mnt-bind`, src: `${D}/bind-src`, fstype: 'none', opts: 'bind', state: 'present' },
          ],
          ansible: {
            'ansible.posix.mount': {
              path: `${D}/mnt-bind`,
              src: `${D}/bind-src`,
              fstype: 'none',
              opts: 'bind',
              state: 'present',
            },
          },
        },
      ],
      drift: `sed -i '\\# ${D}/mnt-bind #d' /etc/fstab`,
      probes: mountProbes(`${D}/mnt-bind`),
    },
    {
      name: 'mount-opts',
      setup: `mkdir -p ${D}/mnt-opts && echo 'tmpfs ${D}/mnt-opts tmpfs size=1m 0 0' >> /etc/fstab && mount ${D}/mnt-opts`,
      tasks: [
        {
          name: 'mount-opts: mount',
          verdandi: ['mount', { path: `${D}/mnt-opts`, src: 'tmpfs', fstype: 'tmpfs', opts: 'size=2m' }],
          ansible: {
            'ansible.posix.mount': {
              path: `${D}/mnt-opts`,
              src: 'tmpfs',
              fstype: 'tmpfs',
              opts: 'size=2m',
              state: 'mounted',
            },
          },
        },
      ],
      // Only the live mount: neither tool compares it with the line.
      drift: `mount -o remount,size=3m ${D}/mnt-opts`,
      probes: mountProbes(`${D}/mnt-opts`),
    },
    {
      name: 'mount-absent',
      setup: `mkdir -p ${D}/mnt-gone && echo 'tmpfs ${D}/mnt-gone tmpfs size=1m 0 0' >> /etc/fstab && mount ${D}/mnt-gone`,
      tasks: [
        {
          name: 'mount-absent: mount',
          verdandi: ['mount', { path: `${D}/mnt-gone`, state: 'absent' }],
          ansible: { 'ansible.posix.mount': { path: `${D}/mnt-gone`, state: 'absent' } },
        },
      ],
      drift: `mkdir -p ${D}/mnt-gone && echo 'tmpfs ${D}/mnt-gone tmpfs size=1m 0 0' >> /etc/fstab && mount ${D}/mnt-gone`,
      probes: mountProbes(`${D}/mnt-gone`),
      differences: {
        state: [
          {
            probe: `path:${D}/mnt-gone`,
            verdandi: `${D}/mnt-gone directory 755 root root`,
            ansible: `${D}/mnt-gone missing`,
            why: 'Ansible removes the mount point directory of an absent mount; Verdandi leaves it (it may hold files of its own once unmounted)',
          },
        ],
      },
    },
  ];
});

test('both tools exit 0 in every phase', (t) => twin.assertRuns(t));

for (const c of twin.cases) {
  test(c.name, (t) => twin.assertCase(t, c));
}
