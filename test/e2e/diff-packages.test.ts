/**
 * Ansible as the oracle for the task types that install software or fetch files
 * (test/helpers/ansible-twin.ts): the same desired state applied by Verdandi on dif-packages-v and by
 * ansible-playbook on dif-packages-a, then both hosts' states and both tools' verdicts compared on the
 * first run, a rerun and after the same drift.
 *
 * Cases:
 * - apt-present: a tiny package installed (removed again by the drift);
 * - apt-latest: a package at its latest version;
 * - apt-absent-never: a package never installed, absent (nothing to do);
 * - apt-absent-installed: an installed package removed;
 * - cron-new / cron-special / cron-absent: a job in its own /etc/cron.d file, a special time, a removed
 *   job (here: Ansible's cron module needs the cron package);
 * - unarchive-tgz: a .tar.gz of the controller extracted (Verdandi's marker file is a documented
 *   difference, and a file deleted from the extracted tree is noticed by Ansible only);
 * - unarchive-creates: extracted while a path is missing;
 * - unarchive-owner: extracted entries given an owner and group;
 * - download-checksum / download-missing / download-attrs: get_url with a checksum, without one (fetched
 *   only when missing), with owner and mode, from a server on the host's loopback;
 * - git-branch / git-tag / git-depth: a checkout of a branch, a tag, and a shallow one (Ansible with
 *   `force: true`: Verdandi's checkout is a deployment, local changes are not kept).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { type Probe, type TwinCase, useAnsibleTwin } from '../helpers/ansible-twin.js';

const D = '/srv/dif';
const PAYLOAD = 'payload of the download\n';
const PAYLOAD_SHA = createHash('sha256').update(PAYLOAD).digest('hex');
const URL = 'http://127.0.0.1:8181/file.txt';
const RUN_SCRIPT = '#!/bin/sh\necho run\n';

const apt = (packages: string, state: string) => ({
  verdandi: ['apt', { packages, state }] as [string, Record<string, unknown>],
  ansible: { apt: { name: packages, state, update_cache: true, cache_valid_time: 3600 } },
});

/** The same commits on both hosts: fixed dates and author, so their shas are equal. */
const GIT_REPO = [
  `mkdir -p ${D}/repo && cd ${D}/repo && git init -q -b main`,
  'export GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z',
  'export GIT_AUTHOR_NAME=twin GIT_AUTHOR_EMAIL=twin@example.org GIT_COMMITTER_NAME=twin GIT_COMMITTER_EMAIL=twin@example.org',
  'echo one > a && git add a && git commit -q -m one && git tag v1',
  'echo two > a && echo b > b && git add a b && git commit -q -m two',
  'cd /',
].join(' && ');

/** The commit checked out and the files it holds (local changes: the `worktree` probe). */
const checkout = (dest: string): Probe => `sh:git -C ${dest} rev-parse HEAD && git -C ${dest} ls-files -s`;
const worktree = (dest: string): Probe => `sh:git -C ${dest} status --porcelain`;

const twin = useAnsibleTwin(test, 'dif-packages', (local): TwinCase[] => {
  const src = join(local, 'tree');
  mkdirSync(join(src, 'app', 'bin'), { recursive: true });
  writeFileSync(join(src, 'app', 'README'), 'readme\n');
  writeFileSync(join(src, 'app', 'bin', 'run'), RUN_SCRIPT, { mode: 0o755 });
  const tgz = join(local, 'app.tar.gz');
  const tar = spawnSync('tar', ['-czf', tgz, '-C', src, 'app']);
  if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
  const marker = '.verdandi-unarchive-app.tar.gz';
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');
  /** The tree probe of an extracted app/ (README left out when `readme` is false). */
  const appTree = (dir: string, runOwner: string, owner: string, group: string, readme = true) =>
    [
      `${dir}/app directory 755 ${owner} ${group}`,
      ...(readme ? [`${dir}/app/README regular file 644 ${owner} ${group}`, sha('readme\n')] : []),
      `${dir}/app/bin directory 755 ${owner} ${group}`,
      `${dir}/app/bin/run regular file 755 ${runOwner} ${group}`,
      sha(RUN_SCRIPT),
    ].join('\n');
  const notRepaired = {
    verdandi: 'ok' as const,
    ansible: 'changed' as const,
    why: 'Verdandi extracts again only when the archive changes: it does not compare the extracted files',
  };
  return [
    {
      name: 'apt-present',
      tasks: [{ name: 'apt-present: apt', ...apt('hello', 'present') }],
      drift: 'apt-get remove -y -qq hello >/dev/null',
      probes: ['package:hello', 'path:/usr/bin/hello'],
    },
    {
      name: 'apt-latest',
      tasks: [{ name: 'apt-latest: apt', ...apt('tree', 'latest') }],
      drift: 'apt-get remove -y -qq tree >/dev/null',
      probes: ['package:tree'],
    },
    {
      name: 'apt-absent-never',
      tasks: [{ name: 'apt-absent-never: apt', ...apt('cowsay', 'absent') }],
      probes: ['package:cowsay'],
    },
    {
      name: 'apt-absent-installed',
      setup: 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sl >/dev/null',
      tasks: [{ name: 'apt-absent-installed: apt', ...apt('sl', 'absent') }],
      drift: 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sl >/dev/null',
      probes: ['package:sl', 'path:/usr/games/sl'],
    },
    {
      name: 'cron-new',
      // Ansible's cron module needs crontab, even to write a cron_file.
      setup: 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cron >/dev/null',
      tasks: [
        {
          name: 'cron-new: cron',
          verdandi: ['cron', { job: 'dif-backup', schedule: '30 2 * * *', command: '/usr/bin/true backup' }],
          ansible: {
            cron: {
              name: 'dif-backup',
              cron_file: 'dif-backup',
              user: 'root',
              minute: '30',
              hour: '2',
              job: '/usr/bin/true backup',
            },
          },
        },
      ],
      drift: "sed -i 's/^30 2/45 3/' /etc/cron.d/dif-backup",
      probes: ["sh:stat -c '%F %a %U %G' /etc/cron.d/dif-backup", 'sh:cat /etc/cron.d/dif-backup'],
      differences: {
        state: [
          {
            probe: 'sh:cat /etc/cron.d/dif-backup',
            verdandi:
              '# Managed by verdandi (cron dif-backup): changes made here are overwritten.\n30 2 * * * root /usr/bin/true backup',
            ansible: '#Ansible: dif-backup\n30 2 * * * root /usr/bin/true backup',
            why: 'each tool marks the file it manages with its own comment',
          },
        ],
      },
    },
    {
      name: 'cron-special',
      tasks: [
        {
          name: 'cron-special: cron',
          verdandi: [
            'cron',
            { job: 'dif-daily', schedule: '@daily', command: '/usr/bin/true daily', user: 'nobody' },
          ],
          ansible: {
            cron: {
              name: 'dif-daily',
              cron_file: 'dif-daily',
              user: 'nobody',
              special_time: 'daily',
              job: '/usr/bin/true daily',
            },
          },
        },
      ],
      drift: 'rm /etc/cron.d/dif-daily',
      probes: ["sh:stat -c '%F %a %U %G' /etc/cron.d/dif-daily", 'sh:cat /etc/cron.d/dif-daily'],
      differences: {
        state: [
          {
            probe: 'sh:cat /etc/cron.d/dif-daily',
            verdandi:
              '# Managed by verdandi (cron dif-daily): changes made here are overwritten.\n@daily nobody /usr/bin/true daily',
            ansible: '#Ansible: dif-daily\n@daily nobody /usr/bin/true daily',
            why: 'each tool marks the file it manages with its own comment',
          },
        ],
      },
    },
    {
      name: 'cron-absent',
      setup: "printf '#Ansible: dif-old\\n0 1 * * * root /usr/bin/true old\\n' > /etc/cron.d/dif-old",
      tasks: [
        {
          name: 'cron-absent: cron',
          verdandi: ['cron', { job: 'dif-old', state: 'absent' }],
          ansible: { cron: { name: 'dif-old', cron_file: 'dif-old', user: 'root', state: 'absent' } },
        },
      ],
      drift: "printf '#Ansible: dif-old\\n0 1 * * * root /usr/bin/true old\\n' > /etc/cron.d/dif-old",
      probes: ['path:/etc/cron.d/dif-old'],
    },
    {
      name: 'unarchive-tgz',
      setup: `mkdir -p ${D}/unarchive-tgz`,
      tasks: [
        {
          name: 'unarchive-tgz: unarchive',
          verdandi: ['unarchive', { src: tgz, dest: `${D}/unarchive-tgz` }],
          ansible: { unarchive: { src: tgz, dest: `${D}/unarchive-tgz` } },
        },
      ],
      drift: `rm ${D}/unarchive-tgz/app/README`,
      probes: [`tree:${D}/unarchive-tgz/app`, `sh:ls -A ${D}/unarchive-tgz`],
      differences: {
        state: [
          {
            probe: `sh:ls -A ${D}/unarchive-tgz`,
            verdandi: `${marker}\napp`,
            ansible: 'app',
            why: 'Verdandi records the sha256 of the archive it extracted in a marker file in dest',
          },
          {
            probe: `tree:${D}/unarchive-tgz/app`,
            after: 'drift',
            verdandi: appTree(`${D}/unarchive-tgz`, 'root', 'root', 'root', false),
            ansible: appTree(`${D}/unarchive-tgz`, 'root', 'root', 'root'),
            why: notRepaired.why,
          },
        ],
        verdicts: [{ task: 'unarchive-tgz: unarchive', phase: 'drift', ...notRepaired }],
      },
    },
    {
      name: 'unarchive-creates',
      setup: `mkdir -p ${D}/unarchive-creates`,
      tasks: [
        {
          name: 'unarchive-creates: unarchive',
          verdandi: [
            'unarchive',
            { src: tgz, dest: `${D}/unarchive-creates`, creates: `${D}/unarchive-creates/app/bin/run` },
          ],
          ansible: {
            unarchive: {
              src: tgz,
              dest: `${D}/unarchive-creates`,
              creates: `${D}/unarchive-creates/app/bin/run`,
            },
          },
        },
      ],
      drift: `rm -r ${D}/unarchive-creates/app`,
      probes: [`tree:${D}/unarchive-creates/app`, `sh:ls -A ${D}/unarchive-creates`],
      differences: {
        state: [
          {
            probe: `sh:ls -A ${D}/unarchive-creates`,
            verdandi: `${marker}\napp`,
            ansible: 'app',
            why: 'Verdandi records the sha256 of the archive it extracted in a marker file in dest',
          },
        ],
        verdicts: [
          {
            task: 'unarchive-creates: unarchive',
            phase: 'rerun',
            verdandi: 'ok',
            ansible: 'skipped',
            why: 'a task whose `creates` path exists is converged (ok) in Verdandi; Ansible says skipped',
          },
        ],
      },
    },
    {
      name: 'unarchive-owner',
      setup: `mkdir -p ${D}/unarchive-owner`,
      tasks: [
        {
          name: 'unarchive-owner: unarchive',
          verdandi: [
            'unarchive',
            { src: tgz, dest: `${D}/unarchive-owner`, owner: 'www-data', group: 'adm' },
          ],
          ansible: { unarchive: { src: tgz, dest: `${D}/unarchive-owner`, owner: 'www-data', group: 'adm' } },
        },
      ],
      drift: `chown root ${D}/unarchive-owner/app/bin/run`,
      probes: [`tree:${D}/unarchive-owner/app`, `path:${D}/unarchive-owner`],
      differences: {
        state: [
          {
            probe: `tree:${D}/unarchive-owner/app`,
            after: 'drift',
            verdandi: appTree(`${D}/unarchive-owner`, 'root', 'www-data', 'adm'),
            ansible: appTree(`${D}/unarchive-owner`, 'www-data', 'www-data', 'adm'),
            why: notRepaired.why,
          },
        ],
        verdicts: [{ task: 'unarchive-owner: unarchive', phase: 'drift', ...notRepaired }],
      },
    },
    {
      name: 'download-checksum',
      setup: [
        `mkdir -p ${D}/www ${D}/download-checksum && printf '%s' '${PAYLOAD}' > ${D}/www/file.txt`,
        `systemd-run -q --unit dif-http python3 -m http.server 8181 --bind 127.0.0.1 --directory ${D}/www`,
        `for i in $(seq 100); do curl -fs ${URL} >/dev/null && break; sleep 0.1; done`,
      ].join(' && '),
      tasks: [
        {
          name: 'download-checksum: download',
          verdandi: [
            'download',
            { url: URL, path: `${D}/download-checksum/file.txt`, checksum: `sha256:${PAYLOAD_SHA}` },
          ],
          ansible: {
            get_url: { url: URL, dest: `${D}/download-checksum/file.txt`, checksum: `sha256:${PAYLOAD_SHA}` },
          },
        },
      ],
      drift: `echo edited > ${D}/download-checksum/file.txt`,
      probes: [`path:${D}/download-checksum/file.txt`],
    },
    {
      name: 'download-missing',
      setup: `mkdir -p ${D}/download-missing`,
      tasks: [
        {
          name: 'download-missing: download',
          verdandi: ['download', { url: URL, path: `${D}/download-missing/file.txt` }],
          ansible: { get_url: { url: URL, dest: `${D}/download-missing/file.txt` } },
        },
      ],
      drift: `echo edited > ${D}/download-missing/file.txt`,
      probes: [`path:${D}/download-missing/file.txt`],
    },
    {
      name: 'download-attrs',
      setup: `mkdir -p ${D}/download-attrs`,
      tasks: [
        {
          name: 'download-attrs: download',
          verdandi: [
            'download',
            {
              url: URL,
              path: `${D}/download-attrs/file.txt`,
              checksum: PAYLOAD_SHA,
              owner: 'www-data',
              mode: '0600',
            },
          ],
          ansible: {
            get_url: {
              url: URL,
              dest: `${D}/download-attrs/file.txt`,
              checksum: `sha256:${PAYLOAD_SHA}`,
              owner: 'www-data',
              mode: '0600',
            },
          },
        },
      ],
      drift: `chmod 644 ${D}/download-attrs/file.txt`,
      probes: [`path:${D}/download-attrs/file.txt`],
    },
    {
      name: 'git-branch',
      setup: GIT_REPO,
      tasks: [
        {
          name: 'git-branch: git',
          verdandi: ['git', { repo: `file://${D}/repo`, dest: `${D}/git-branch`, version: 'main' }],
          ansible: {
            git: { force: true, repo: `file://${D}/repo`, dest: `${D}/git-branch`, version: 'main' },
          },
        },
      ],
      drift: `git -C ${D}/git-branch reset -q --hard HEAD~1`,
      probes: [checkout(`${D}/git-branch`), worktree(`${D}/git-branch`)],
    },
    {
      name: 'git-tag',
      tasks: [
        {
          name: 'git-tag: git',
          verdandi: ['git', { repo: `file://${D}/repo`, dest: `${D}/git-tag`, version: 'v1' }],
          ansible: { git: { force: true, repo: `file://${D}/repo`, dest: `${D}/git-tag`, version: 'v1' } },
        },
      ],
      drift: `git -C ${D}/git-tag reset -q --hard origin/main`,
      probes: [checkout(`${D}/git-tag`), worktree(`${D}/git-tag`)],
    },
    {
      name: 'git-depth',
      tasks: [
        {
          name: 'git-depth: git',
          verdandi: ['git', { repo: `file://${D}/repo`, dest: `${D}/git-depth`, depth: 1 }],
          ansible: { git: { force: true, repo: `file://${D}/repo`, dest: `${D}/git-depth`, depth: 1 } },
        },
      ],
      drift: `rm ${D}/git-depth/b`,
      probes: [
        checkout(`${D}/git-depth`),
        worktree(`${D}/git-depth`),
        `sh:git -C ${D}/git-depth rev-list --count HEAD`,
      ],
      differences: {
        state: [
          {
            probe: worktree(`${D}/git-depth`),
            after: 'drift',
            verdandi: ' D b',
            ansible: '',
            why: 'Verdandi discards local changes when it moves HEAD, not while HEAD is the wanted commit',
          },
        ],
        verdicts: [
          {
            task: 'git-depth: git',
            phase: 'drift',
            verdandi: 'ok',
            ansible: 'changed',
            why: 'Verdandi discards local changes when it moves HEAD, not while HEAD is the wanted commit',
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
