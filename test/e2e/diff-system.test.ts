/**
 * Ansible as the oracle for the system task types (test/helpers/ansible-twin.ts): the same desired
 * state applied by Verdandi on dif-system-v and by ansible-playbook on dif-system-a, then both hosts'
 * states and both tools' verdicts compared on the first run, a rerun and after the same drift.
 *
 * Cases:
 * - user-new: a user created with uid, shell and home;
 * - user-groups-replace: supplementary groups replaced (append false);
 * - user-groups-append: supplementary groups appended (the others kept);
 * - user-absent: a user removed;
 * - group-new / group-system / group-absent: a group with a gid, a system group, a group removed;
 * - service-start: a tiny unit started and enabled;
 * - service-stop: a running, enabled unit stopped and disabled;
 * - service-enable: a unit only enabled (its state left alone);
 * - command-creates / command-removes / shell-creates: commands guarded by a path;
 * - command-always: a command without a guard (changed on every run in both tools);
 * - sysctl-new / sysctl-text / sysctl-absent: a key in a sysctl.d file and the running kernel, a
 *   value with a space, a key removed from a file;
 * - authorized-key-add / authorized-key-exclusive / authorized-key-absent: keys with options added,
 *   only these keys kept, a key removed;
 * - hostname: the host's name (one per host: a single case, with drift);
 * - timezone: the time zone (one per host: a single case, with drift).
 *
 * The cron cases are in diff-packages.test.ts: Ansible's cron module needs the cron package installed.
 */
import test from 'ava';
import { type TwinCase, useAnsibleTwin } from '../helpers/ansible-twin.js';

const D = '/srv/dif';
const KEY_A = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ1Ww5mXb7oXWd2zq4rS6s4bGfX0YkN3l1wJ0ZpQk0a alice@twin';
const KEY_B = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh4dmJ0c2VjcmV0bm90cmVhbGtleWZvcnRlc3RzMDE bob@twin';

/** Why the running host name differs (Ansible 2.14's hostname module with `use: alpine`). */
const KERNEL_NAME =
  'Ansible without D-Bus (use: alpine) sets the running name from /etc/hostname before writing the new name there, and compares only the file';

/** A unit that runs until stopped. */
const unit = (name: string) =>
  `printf '[Unit]\\nDescription=%s\\n[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n' ${name} > /etc/systemd/system/${name}.service`;

const twin = useAnsibleTwin(test, 'dif-system', (): TwinCase[] => [
  {
    name: 'user-new',
    tasks: [
      {
        name: 'user-new: user',
        verdandi: ['user', { user: 'difnew', uid: 2101, shell: '/bin/bash', home: '/home/difnew' }],
        ansible: { user: { name: 'difnew', uid: 2101, shell: '/bin/bash', home: '/home/difnew' } },
      },
    ],
    drift: 'usermod -s /bin/sh difnew',
    probes: ['user:difnew', 'group:difnew', 'tree:/home/difnew'],
  },
  {
    name: 'user-groups-replace',
    setup: 'useradd -m -G audio,video difrep',
    tasks: [
      {
        name: 'user-groups-replace: user',
        verdandi: ['user', { user: 'difrep', groups: ['adm', 'audio'] }],
        ansible: { user: { name: 'difrep', groups: ['adm', 'audio'] } },
      },
    ],
    drift: 'usermod -aG video difrep',
    probes: ['user:difrep'],
  },
  {
    name: 'user-groups-append',
    setup: 'useradd -m -G video difapp',
    tasks: [
      {
        name: 'user-groups-append: user',
        verdandi: ['user', { user: 'difapp', groups: ['adm'], append: true }],
        ansible: { user: { name: 'difapp', groups: ['adm'], append: true } },
      },
    ],
    drift: 'gpasswd -d difapp adm >/dev/null',
    probes: ['user:difapp'],
  },
  {
    name: 'user-absent',
    setup: 'useradd -m difgone',
    tasks: [
      {
        name: 'user-absent: user',
        verdandi: ['user', { user: 'difgone', state: 'absent' }],
        ansible: { user: { name: 'difgone', state: 'absent' } },
      },
    ],
    drift: 'useradd difgone',
    probes: ['user:difgone', 'group:difgone', 'path:/home/difgone'],
  },
  {
    name: 'group-new',
    tasks: [
      {
        name: 'group-new: group',
        verdandi: ['group', { group: 'difgrp', gid: 2201 }],
        ansible: { group: { name: 'difgrp', gid: 2201 } },
      },
    ],
    drift: 'groupmod -g 2202 difgrp',
    probes: ['group:difgrp'],
  },
  {
    name: 'group-system',
    tasks: [
      {
        name: 'group-system: group',
        verdandi: ['group', { group: 'difsys', system: true }],
        ansible: { group: { name: 'difsys', system: true } },
      },
    ],
    drift: 'groupdel difsys',
    probes: ['group:difsys'],
  },
  {
    name: 'group-absent',
    setup: 'groupadd difold',
    tasks: [
      {
        name: 'group-absent: group',
        verdandi: ['group', { group: 'difold', state: 'absent' }],
        ansible: { group: { name: 'difold', state: 'absent' } },
      },
    ],
    drift: 'groupadd difold',
    probes: ['group:difold'],
  },
  {
    name: 'service-start',
    setup: `${unit('dif-start')} && systemctl daemon-reload`,
    tasks: [
      {
        name: 'service-start: service',
        verdandi: ['service', { unit: 'dif-start', state: 'started', enabled: true }],
        ansible: { systemd: { name: 'dif-start', state: 'started', enabled: true } },
      },
    ],
    drift: 'systemctl disable --now dif-start 2>/dev/null',
    probes: ['service:dif-start'],
  },
  {
    name: 'service-stop',
    setup: `${unit('dif-stop')} && systemctl daemon-reload && systemctl enable --now dif-stop 2>/dev/null`,
    tasks: [
      {
        name: 'service-stop: service',
        verdandi: ['service', { unit: 'dif-stop', state: 'stopped', enabled: false }],
        ansible: { systemd: { name: 'dif-stop', state: 'stopped', enabled: false } },
      },
    ],
    drift: 'systemctl enable --now dif-stop 2>/dev/null',
    probes: ['service:dif-stop'],
  },
  {
    name: 'service-enable',
    setup: `${unit('dif-enable')} && systemctl daemon-reload`,
    tasks: [
      {
        name: 'service-enable: service',
        verdandi: ['service', { unit: 'dif-enable', enabled: true }],
        ansible: { systemd: { name: 'dif-enable', enabled: true } },
      },
    ],
    drift: 'systemctl disable dif-enable 2>/dev/null',
    probes: ['service:dif-enable'],
  },
  {
    name: 'command-creates',
    setup: `mkdir -p ${D}/command-creates`,
    tasks: [
      {
        name: 'command-creates: command',
        verdandi: [
          'command',
          { argv: ['touch', `${D}/command-creates/done`], creates: `${D}/command-creates/done` },
        ],
        ansible: {
          command: { argv: ['touch', `${D}/command-creates/done`], creates: `${D}/command-creates/done` },
        },
      },
    ],
    drift: `rm ${D}/command-creates/done`,
    probes: [`sh:ls ${D}/command-creates`],
  },
  {
    name: 'command-removes',
    setup: `mkdir -p ${D}/command-removes && touch ${D}/command-removes/todo`,
    tasks: [
      {
        name: 'command-removes: command',
        verdandi: [
          'command',
          { argv: ['rm', `${D}/command-removes/todo`], removes: `${D}/command-removes/todo` },
        ],
        ansible: {
          command: { argv: ['rm', `${D}/command-removes/todo`], removes: `${D}/command-removes/todo` },
        },
      },
    ],
    drift: `touch ${D}/command-removes/todo`,
    probes: [`sh:ls ${D}/command-removes`],
  },
  {
    name: 'shell-creates',
    setup: `mkdir -p ${D}/shell-creates`,
    tasks: [
      {
        name: 'shell-creates: shell',
        verdandi: [
          'shell',
          { script: `echo made > ${D}/shell-creates/out`, creates: `${D}/shell-creates/out` },
        ],
        ansible: { shell: `echo made > ${D}/shell-creates/out`, args: { creates: `${D}/shell-creates/out` } },
      },
    ],
    drift: `rm ${D}/shell-creates/out`,
    probes: [`path:${D}/shell-creates/out`],
  },
  {
    name: 'command-always',
    setup: `mkdir -p ${D}/command-always`,
    tasks: [
      {
        name: 'command-always: command',
        verdandi: ['command', { argv: ['touch', `${D}/command-always/f`] }],
        ansible: { command: { argv: ['touch', `${D}/command-always/f`] } },
      },
    ],
    probes: [`sh:ls ${D}/command-always`],
    differences: {
      verdicts: (['rerun', 'drift'] as const).map((phase) => ({
        task: 'command-always: command',
        phase,
        verdandi: 'changed' as const,
        ansible: 'changed' as const,
        why: 'a command without a guard runs on every run and reports a change, in both tools',
      })),
    },
  },
  {
    name: 'sysctl-new',
    tasks: [
      {
        name: 'sysctl-new: sysctl',
        verdandi: [
          'sysctl',
          { key: 'net.core.somaxconn', value: 1000, file: '/etc/sysctl.d/60-dif-new.conf' },
        ],
        ansible: {
          'ansible.posix.sysctl': {
            name: 'net.core.somaxconn',
            value: '1000',
            sysctl_file: '/etc/sysctl.d/60-dif-new.conf',
            sysctl_set: true,
          },
        },
      },
    ],
    drift: 'sysctl -q -w net.core.somaxconn=4096',
    probes: [
      'sysctl:net.core.somaxconn',
      "sh:stat -c '%a %U %G' /etc/sysctl.d/60-dif-new.conf",
      'sh:cat /etc/sysctl.d/60-dif-new.conf',
    ],
    differences: {
      state: [
        {
          probe: 'sh:cat /etc/sysctl.d/60-dif-new.conf',
          verdandi: 'net.core.somaxconn = 1000',
          ansible: 'net.core.somaxconn=1000',
          why: 'Ansible rewrites every line of the file as key=value; Verdandi writes key = value and leaves the other lines as written',
        },
      ],
    },
  },
  {
    name: 'sysctl-text',
    tasks: [
      {
        name: 'sysctl-text: sysctl',
        verdandi: [
          'sysctl',
          {
            key: 'net.ipv4.ip_local_port_range',
            value: '32800 60800',
            file: '/etc/sysctl.d/60-dif-ports.conf',
          },
        ],
        ansible: {
          'ansible.posix.sysctl': {
            name: 'net.ipv4.ip_local_port_range',
            value: '32800 60800',
            sysctl_file: '/etc/sysctl.d/60-dif-ports.conf',
            sysctl_set: true,
          },
        },
      },
    ],
    drift: 'echo "net.ipv4.ip_local_port_range = 1 2" > /etc/sysctl.d/60-dif-ports.conf',
    probes: [
      'sysctl:net.ipv4.ip_local_port_range',
      "sh:stat -c '%a %U %G' /etc/sysctl.d/60-dif-ports.conf",
      'sh:cat /etc/sysctl.d/60-dif-ports.conf',
    ],
    differences: {
      state: [
        {
          probe: 'sh:cat /etc/sysctl.d/60-dif-ports.conf',
          verdandi: 'net.ipv4.ip_local_port_range = 32800 60800',
          ansible: 'net.ipv4.ip_local_port_range=32800 60800',
          why: 'Ansible rewrites every line of the file as key=value; Verdandi writes key = value and leaves the other lines as written',
        },
      ],
    },
  },
  {
    name: 'sysctl-absent',
    setup:
      "printf 'net.ipv4.tcp_syncookies = 1\\nnet.core.netdev_max_backlog = 2000\\n' > /etc/sysctl.d/60-dif-absent.conf",
    tasks: [
      {
        name: 'sysctl-absent: sysctl',
        verdandi: [
          'sysctl',
          { key: 'net.core.netdev_max_backlog', state: 'absent', file: '/etc/sysctl.d/60-dif-absent.conf' },
        ],
        ansible: {
          'ansible.posix.sysctl': {
            name: 'net.core.netdev_max_backlog',
            state: 'absent',
            sysctl_file: '/etc/sysctl.d/60-dif-absent.conf',
          },
        },
      },
    ],
    drift: 'echo "net.core.netdev_max_backlog = 3000" >> /etc/sysctl.d/60-dif-absent.conf',
    probes: [
      "sh:stat -c '%a %U %G' /etc/sysctl.d/60-dif-absent.conf",
      'sh:cat /etc/sysctl.d/60-dif-absent.conf',
    ],
    differences: {
      state: [
        {
          probe: 'sh:cat /etc/sysctl.d/60-dif-absent.conf',
          verdandi: 'net.ipv4.tcp_syncookies = 1',
          ansible: 'net.ipv4.tcp_syncookies=1',
          why: 'Ansible rewrites every line of the file as key=value; Verdandi writes key = value and leaves the other lines as written',
        },
      ],
    },
  },
  {
    name: 'authorized-key-add',
    setup: 'useradd -m -s /bin/sh difkeys',
    tasks: [
      {
        name: 'authorized-key-add: authorizedKey',
        verdandi: ['authorizedKey', { user: 'difkeys', key: [KEY_A, KEY_B], keyOptions: 'no-pty' }],
        ansible: {
          'ansible.posix.authorized_key': {
            user: 'difkeys',
            key: `${KEY_A}\n${KEY_B}`,
            key_options: 'no-pty',
          },
        },
      },
    ],
    drift: "sed -i '/bob@twin/d' /home/difkeys/.ssh/authorized_keys",
    probes: ['tree:/home/difkeys/.ssh', 'sh:cat /home/difkeys/.ssh/authorized_keys'],
  },
  {
    name: 'authorized-key-exclusive',
    setup: `useradd -m -s /bin/sh difexcl && mkdir -m 700 /home/difexcl/.ssh && echo '${KEY_B}' > /home/difexcl/.ssh/authorized_keys && chown -R difexcl: /home/difexcl/.ssh`,
    tasks: [
      {
        name: 'authorized-key-exclusive: authorizedKey',
        verdandi: ['authorizedKey', { user: 'difexcl', key: KEY_A, exclusive: true }],
        ansible: { 'ansible.posix.authorized_key': { user: 'difexcl', key: KEY_A, exclusive: true } },
      },
    ],
    drift: `echo '${KEY_B}' >> /home/difexcl/.ssh/authorized_keys`,
    probes: ['tree:/home/difexcl/.ssh', 'sh:cat /home/difexcl/.ssh/authorized_keys'],
  },
  {
    name: 'authorized-key-absent',
    setup: `useradd -m -s /bin/sh difrm && mkdir -m 700 /home/difrm/.ssh && printf '%s\\n' '${KEY_A}' '${KEY_B}' > /home/difrm/.ssh/authorized_keys && chmod 600 /home/difrm/.ssh/authorized_keys && chown -R difrm: /home/difrm/.ssh`,
    tasks: [
      {
        name: 'authorized-key-absent: authorizedKey',
        verdandi: ['authorizedKey', { user: 'difrm', key: KEY_B, state: 'absent' }],
        ansible: { 'ansible.posix.authorized_key': { user: 'difrm', key: KEY_B, state: 'absent' } },
      },
    ],
    drift: `echo '${KEY_B}' >> /home/difrm/.ssh/authorized_keys`,
    probes: ['tree:/home/difrm/.ssh', 'sh:cat /home/difrm/.ssh/authorized_keys'],
  },
  {
    name: 'hostname',
    // The twins start with their own names: the same one for both.
    setup:
      "hostname dif-old && echo dif-old > /etc/hostname && sed -i '/^127.0.1.1/d' /etc/hosts && echo '127.0.1.1 dif-old' >> /etc/hosts",
    tasks: [
      {
        name: 'hostname: hostname',
        verdandi: ['hostname', { hostname: 'dif-web1' }],
        // On Debian, Ansible's default (`use: debian`) is hostnamectl, which needs D-Bus (the test hosts,
        // like many containers, have none); `alpine` writes /etc/hostname and runs `hostname -F`.
        ansible: { hostname: { name: 'dif-web1', use: 'alpine' } },
      },
    ],
    drift: 'hostname dif-drift',
    probes: ['sh:hostname', 'sh:cat /etc/hostname', "sh:grep '^127.0.1.1' /etc/hosts"],
    differences: {
      state: [
        {
          probe: "sh:grep '^127.0.1.1' /etc/hosts",
          verdandi: '127.0.1.1\tdif-web1',
          ansible: '127.0.1.1 dif-old',
          why: 'Verdandi also names the host on the 127.0.1.1 line of /etc/hosts, so it resolves without DNS',
        },
        { probe: 'sh:hostname', after: 'first', verdandi: 'dif-web1', ansible: 'dif-old', why: KERNEL_NAME },
        {
          probe: 'sh:hostname',
          after: 'drift',
          verdandi: 'dif-web1',
          ansible: 'dif-drift',
          why: KERNEL_NAME,
        },
      ],
      verdicts: [
        { task: 'hostname: hostname', phase: 'drift', verdandi: 'changed', ansible: 'ok', why: KERNEL_NAME },
      ],
    },
  },
  {
    name: 'timezone',
    tasks: [
      {
        name: 'timezone: timezone',
        verdandi: ['timezone', { zone: 'Europe/Paris' }],
        ansible: { 'community.general.timezone': { name: 'Europe/Paris' } },
      },
    ],
    drift: 'ln -sfn /usr/share/zoneinfo/Asia/Tokyo /etc/localtime',
    probes: ['path:/etc/localtime', 'sh:cat /etc/timezone', 'sh:date +%Z'],
  },
]);

test('both tools exit 0 in every phase', (t) => twin.assertRuns(t));

for (const c of twin.cases) {
  test(c.name, (t) => twin.assertCase(t, c));
}
