/**
 * examples/ansible-port: the Ansible role (nginx + TLS files from the controller + ufw + swap + cron +
 * an apt repository) converged by ansible-playbook on hxport-a, its Verdandi port by Verdandi on
 * hxport-v (test/helpers/ansible-twin.ts with whole projects), then both hosts compared after the
 * first run and after the same hand edits repaired, and each rerun changing nothing.
 *
 * The apt repository is served by the host itself (file:///srv/tools-repo, built and signed on the
 * controller): no internet. The firewalls are different tools (ufw's iptables rules, Verdandi's nftables
 * table), so they are compared by what they let through from the controller.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { PHASES, type Probe, useAnsibleTwin } from '../helpers/ansible-twin.js';
import { buildRepository } from '../helpers/apt-repo.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/ansible-port/', import.meta.url));
const PREFIX = 'hxport';

let repository: { tarball: string; keyFile: string } | undefined;

const twin = useAnsibleTwin(
  test,
  PREFIX,
  (local) => {
    repository = buildRepository(local, 'site-tools');
    return [
      {
        name: 'apt repository',
        setup: `mkdir -p /srv/tools-repo && echo '${repository.tarball}' | base64 -d | tar -xz -C /srv/tools-repo`,
        tasks: [],
        drift: 'apt-get remove -y -qq site-tools >/dev/null',
        probes: [
          'path:/etc/apt/keyrings/tools.gpg',
          'sh:ls /etc/apt/sources.list.d',
          'sh:apt-cache madison site-tools',
          'package:site-tools',
          'package:nginx',
          'package:cron',
        ],
        differences: {
          state: [
            {
              probe: 'sh:ls /etc/apt/sources.list.d',
              verdandi: 'tools.sources',
              ansible: 'tools.list',
              why: 'Verdandi writes a deb822 .sources file; Ansible 2.14 has only apt_repository, a one-line .list',
            },
          ],
        },
      },
      {
        name: 'nginx',
        tasks: [],
        drift:
          'rm /etc/nginx/sites-enabled/site.conf && chmod 0644 /etc/nginx/tls/site.key && systemctl stop nginx',
        probes: [
          'tree:/etc/nginx/tls',
          'path:/etc/nginx/sites-available/site.conf',
          'path:/etc/nginx/sites-enabled/site.conf',
          'path:/etc/nginx/sites-enabled/default',
          'service:nginx',
        ],
      },
      {
        name: 'swap',
        tasks: [],
        drift: 'chmod 0644 /swapfile',
        probes: [
          "sh:stat -c '%s %a %U %G' /swapfile && blkid -o value -s TYPE /swapfile",
          'sh:grep -F /swapfile /etc/fstab',
        ] satisfies Probe[],
      },
      {
        name: 'cron',
        tasks: [],
        drift: 'rm /etc/cron.d/web-reload',
        probes: ["sh:stat -c '%a %U %G' /etc/cron.d/web-reload", "sh:grep -v '^#' /etc/cron.d/web-reload"],
      },
    ];
  },
  {
    group: 'web',
    verdandi: { dir: join(EXAMPLE, 'verdandi'), playbook: 'site.ts' },
    ansible: { dir: join(EXAMPLE, 'ansible'), playbook: 'site.yml' },
    files: (local) => {
      // What certbot would have written: a self-signed certificate for the site's name.
      const r = spawnSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '3650',
          '-subj',
          '/CN=www.example.org',
          '-keyout',
          join(local, 'site.key'),
          '-out',
          join(local, 'site.crt'),
        ],
        { encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
      if (!repository) throw new Error('the repository was not built');
      return {
        'files/tls/site.crt': readFileSync(join(local, 'site.crt')),
        'files/tls/site.key': readFileSync(join(local, 'site.key')),
        'files/apt/tools.gpg': readFileSync(repository.keyFile),
      };
    },
  },
);

test('both tools exit 0 in every phase', (t) => twin.assertRuns(t));

test('each tool ran its tasks, and its rerun changed nothing', (t) => {
  const { verdandi, ansible } = twin.get();
  for (const [tool, side] of [
    ['verdandi', verdandi],
    ['ansible', ansible],
  ] as const) {
    for (const phase of PHASES)
      t.true(side.verdicts[phase].size >= 10, `${tool} reported its tasks (${phase})`);
    const changed = [...side.verdicts.rerun].filter(
      ([, verdict]) => verdict !== 'ok' && verdict !== 'skipped',
    );
    t.deepEqual(changed, [], `${tool}'s rerun changes nothing`);
    t.true(
      [...side.verdicts.first.values()].includes('changed'),
      `${tool}'s first run changed the fresh host`,
    );
  }
});

for (const c of twin.cases) {
  test(c.name, (t) => twin.assertCase(t, c));
}

/** Whether a TCP connection from the controller is accepted (`open`), refused, or dropped. */
function reach(address: string, port: number): Promise<'open' | 'refused' | 'dropped'> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    socket.setTimeout(3000, () => {
      socket.destroy();
      resolve('dropped');
    });
    socket.on('connect', () => {
      socket.destroy();
      resolve('open');
    });
    socket.on('error', () => resolve('refused'));
  });
}

test('both firewalls let through SSH, HTTP and HTTPS, and drop the rest', async (t) => {
  const ports = [22, 80, 443, 8081];
  const result: Record<string, Record<number, string>> = {};
  for (const host of [`${PREFIX}-v`, `${PREFIX}-a`]) {
    // Something listening on 8081: only the firewall keeps the controller out.
    const listen = await twin.hosts.ssh(
      host,
      'systemd-run --quiet --unit=hxport-listen python3 -m http.server 8081 && sleep 1',
    );
    t.is(listen.code, 0, listen.stderr);
    const { address } = twin.hosts.get(host);
    result[host] = {};
    for (const port of ports) result[host][port] = await reach(address, port);
    await twin.hosts.ssh(host, 'systemctl stop hxport-listen');
  }
  const expected = { 22: 'open', 80: 'open', 443: 'open', 8081: 'dropped' };
  t.deepEqual(result[`${PREFIX}-v`], expected, 'Verdandi host');
  t.deepEqual(result[`${PREFIX}-a`], expected, 'Ansible host');
});
