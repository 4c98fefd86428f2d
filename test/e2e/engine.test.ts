/**
 * The engine end to end, over real SSH against fresh test hosts: an Ansible INI inventory and a
 * TypeScript playbook with every generic task type converge a host, the second run changes nothing in
 * one round trip, --check --diff shows a manual edit and restores nothing, handlers run after a later
 * failure, an unreachable host is reported while the others finish, sudo users work, and a changed
 * host key is refused. (postgres* and docker* tasks are proven by the roles' e2e tests.)
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const hosts = useTestHosts(test, ['eng-a', 'eng-b']);
const dir = mkdtempSync(join(tmpdir(), 'vd-engine-e2e-'));

interface JsonReport {
  hosts: Record<
    string,
    { ok: number; changed: number; failed: number; skipped: number; unreachable: boolean; roundTrips: number }
  >;
}

function iniInventory(name: string, lines: string[]): string {
  const file = join(dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function hostLine(name: string, extra = ''): string {
  const h = hosts.get(name);
  return `${name} ansible_host=${h.address} ansible_user=${h.user} ansible_ssh_private_key_file=${h.key} ${extra}`.trim();
}

const PLAYBOOK = `
import { definePlaybook, apt, group, user, directory, file, copy, template, link, lineinfile, service, git, command, shell, absent } from 'verdandi';

export default definePlaybook({
  plays: [{
    name: 'generic',
    hosts: 'web',
    tasks: (host) => [
      apt({ packages: ['cron', 'tree'] }),
      group({ name: 'app' }),
      user({ name: 'app', group: 'app', shell: '/bin/bash', createHome: true }),
      directory({ path: '/srv/app', owner: 'app', group: 'app', mode: '0750' }),
      file({ path: '/srv/app/touched', mode: '0600' }),
      copy({ path: '/srv/app/motd', content: 'hello from verdandi\\n', owner: 'app', mode: '0644' }),
      template({ path: '/etc/cron.d/verdandi-demo', src: new URL('./demo.cron.hbs', import.meta.url),
                 vars: { who: host.name }, mode: '0644', notify: 'restart cron' }),
      link({ path: '/srv/app/current', target: '/srv/app/motd' }),
      lineinfile({ path: '/etc/environment', line: 'VERDANDI_DEMO=1', regexp: '^VERDANDI_DEMO=' }),
      service({ name: 'cron', state: 'started', enabled: true }),
      shell({ script: 'mkdir -p /srv/src && cd /srv/src && git init -q -b main && git -c user.email=t@t -c user.name=t commit -q --allow-empty -m one',
              creates: '/srv/src/.git' }),
      git({ repo: '/srv/src', dest: '/srv/checkout', version: 'main' }),
      command({ argv: ['touch', '/srv/app/once'], creates: '/srv/app/once' }),
      shell({ script: 'echo marker > /srv/app/unless', unless: 'test -f /srv/app/unless' }),
      absent({ path: '/srv/app/garbage' }),
    ],
    handlers: { 'restart cron': () => service({ name: 'cron', state: 'restarted' }) },
  }],
});
`;

test.serial('first run converges, second run changes nothing in one round trip', async (t) => {
  writeFileSync(join(dir, 'demo.cron.hbs'), '# managed by verdandi for {{who}}\n*/5 * * * * root true\n');
  writeFileSync(join(dir, 'site.ts'), PLAYBOOK);
  const inv = iniInventory('hosts.ini', ['[web]', hostLine('eng-a'), '', '[web:vars]', 'app_env=staging']);
  await hosts.ssh('eng-a', 'touch /srv-garbage-marker; mkdir -p /srv/app && echo x > /srv/app/garbage');

  const first = await runCli(['run', inv, join(dir, 'site.ts'), '--json', '--host-key-checking=off'], {
    cwd: dir,
  });
  t.is(first.code, 0, first.stderr);
  const r1 = (JSON.parse(first.stdout) as JsonReport).hosts['eng-a'];
  t.is(r1.failed, 0);
  t.true(r1.changed >= 14, `changed ${r1.changed}`);

  const second = await runCli(['run', inv, join(dir, 'site.ts'), '--json', '--host-key-checking=off'], {
    cwd: dir,
  });
  t.is(second.code, 0, second.stderr);
  const r2 = (JSON.parse(second.stdout) as JsonReport).hosts['eng-a'];
  t.is(r2.changed, 0);
  t.is(r2.ok, 15);
  t.is(r2.roundTrips, 1);

  // The host really is in the described state.
  const check = await hosts.ssh(
    'eng-a',
    'cat /srv/app/motd; readlink /srv/app/current; stat -c %a:%U /srv/app; grep -c VERDANDI_DEMO=1 /etc/environment; ' +
      'systemctl is-active cron; test ! -e /srv/app/garbage && echo gone; git -C /srv/checkout rev-parse --abbrev-ref HEAD',
  );
  t.is(check.stdout, 'hello from verdandi\n/srv/app/motd\n750:app\n1\nactive\ngone\nmain\n');
});

test.serial('--check --diff after a manual edit shows the diff and restores nothing', async (t) => {
  const inv = iniInventory('hosts.ini', ['[web]', hostLine('eng-a')]);
  await hosts.ssh('eng-a', 'echo edited by hand > /srv/app/motd');
  const snapshot =
    'find /etc /srv -xdev -type f -newer /etc/hostname -print0 2>/dev/null | sort -z | xargs -0 sha256sum | sha256sum';
  const before = (await hosts.ssh('eng-a', snapshot)).stdout;
  const res = await runCli(
    ['run', inv, join(dir, 'site.ts'), '--check', '--diff', '--host-key-checking=off'],
    { cwd: dir },
  );
  t.is(res.code, 0, res.stderr);
  t.regex(res.stdout, /-edited by hand/);
  t.regex(res.stdout, /\+hello from verdandi/);
  t.regex(res.stdout, /would change/);
  t.is((await hosts.ssh('eng-a', 'cat /srv/app/motd')).stdout, 'edited by hand\n');
  t.is((await hosts.ssh('eng-a', snapshot)).stdout, before);
});

test.serial('a handler runs after a later task failed', async (t) => {
  writeFileSync(
    join(dir, 'failing.ts'),
    `import { definePlaybook, copy, command, shell } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [
  copy({ path: '/srv/handler-input', content: String(Date.now()), notify: 'mark' }),
  command({ argv: ['false'] }),
  copy({ path: '/srv/never-written', content: 'x' }),
], handlers: { mark: () => shell({ script: 'echo ran >> /srv/handler-ran' }) } }] });
`,
  );
  const inv = iniInventory('hosts.ini', ['[web]', hostLine('eng-a')]);
  const res = await runCli(['run', inv, join(dir, 'failing.ts'), '--host-key-checking=off'], { cwd: dir });
  t.is(res.code, 2);
  t.regex(res.stdout, /failed/);
  t.regex(res.stdout, /command: .*false/);
  const state = await hosts.ssh(
    'eng-a',
    'cat /srv/handler-ran; test -e /srv/never-written && echo written || echo not-written',
  );
  t.is(state.stdout, 'ran\nnot-written\n');
});

test.serial('an unreachable host is reported while the others finish', async (t) => {
  const inv = iniInventory('mixed.ini', [
    '[web]',
    hostLine('eng-a'),
    `dead ansible_host=10.231.254.2 ansible_user=root ansible_ssh_private_key_file=${hosts.get('eng-a').key}`,
  ]);
  const res = await runCli(
    ['run', inv, join(dir, 'site.ts'), '--json', '--connect-timeout=3', '--host-key-checking=off'],
    { cwd: dir },
  );
  t.is(res.code, 3);
  const report = JSON.parse(res.stdout) as JsonReport;
  t.true(report.hosts.dead.unreachable);
  t.false(report.hosts['eng-a'].unreachable);
  t.is(report.hosts['eng-a'].failed, 0);
  // 15 tasks; the motd edited by hand in the previous test is put back.
  t.is(report.hosts['eng-a'].ok + report.hosts['eng-a'].changed, 15);
});

test.serial('a non-root user with sudo works (no password, then with a password)', async (t) => {
  await hosts.ssh(
    'eng-b',
    [
      'apt-get install -y -q sudo >/dev/null 2>&1 || true',
      'id deploy >/dev/null 2>&1 || useradd -m -s /bin/bash deploy',
      'id deploy2 >/dev/null 2>&1 || useradd -m -s /bin/bash deploy2',
      "echo 'deploy2:s3cret-sudo-pw' | chpasswd",
      "echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deploy",
      "echo 'deploy2 ALL=(ALL) ALL' > /etc/sudoers.d/deploy2",
      'for u in deploy deploy2; do mkdir -p /home/$u/.ssh && cp /root/.ssh/authorized_keys /home/$u/.ssh/ && chown -R $u: /home/$u/.ssh; done',
    ].join(' && '),
  );
  writeFileSync(
    join(dir, 'sudo.ts'),
    `import { definePlaybook, copy } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: (h) => [
  copy({ path: '/root/written-by-' + h.name, content: 'via sudo\\n', mode: '0600' }),
] }] });
`,
  );
  const key = hosts.get('eng-b').key;
  const addr = hosts.get('eng-b').address;
  const inv = iniInventory('sudo.ini', [
    '[app]',
    `nopw ansible_host=${addr} ansible_user=deploy ansible_become=true ansible_ssh_private_key_file=${key}`,
    `withpw ansible_host=${addr} ansible_user=deploy2 ansible_become=true ansible_become_password=s3cret-sudo-pw ansible_ssh_private_key_file=${key}`,
  ]);
  const res = await runCli(['run', inv, join(dir, 'sudo.ts'), '--host-key-checking=off', '-v'], { cwd: dir });
  t.is(res.code, 0, res.stdout + res.stderr);
  t.false(`${res.stdout}${res.stderr}`.includes('s3cret-sudo-pw'));
  const files = await hosts.ssh('eng-b', 'stat -c %U:%a /root/written-by-nopw /root/written-by-withpw');
  t.is(files.stdout, 'root:600\nroot:600\n');
});

test.serial('a changed host key is refused with how to clear it', async (t) => {
  const inv = iniInventory('hostkey.ini', ['[web]', hostLine('eng-b')]);
  // Host keys are recorded in the project of the inventory (here: its folder) under .verdandi/.
  const first = await runCli(['ping', inv], { cwd: dir });
  t.is(first.code, 0, first.stdout + first.stderr);
  await hosts.ssh('eng-b', 'rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh');
  const second = await runCli(['ping', inv], { cwd: dir });
  t.is(second.code, 3);
  t.regex(second.stdout, /host key of .* changed/);
  t.regex(second.stdout, /delete line 1 of .*known_hosts/);
});

test.serial('a syntax error in the inventory names its line, and changes nothing', async (t) => {
  const inv = iniInventory('broken.ini', ['[web', hostLine('eng-a')]);
  const res = await runCli(['run', inv, join(dir, 'site.ts')], { cwd: dir });
  t.is(res.code, 1);
  t.regex(res.stderr, /broken\.ini:1/);
  t.notRegex(res.stderr, /at .*\.js:\d+/);
});
