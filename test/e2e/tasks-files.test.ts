/**
 * The file-editing task types and the firewall end to end, over real SSH against fresh Debian test
 * hosts: each one
 * converges the host, a second run changes nothing, `--check` leaves the host as it was, and a change
 * made by hand is repaired by the next run. Each test works on paths of its own, so they can share
 * the host.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { removeProject } from '../helpers/cli.js';
import { taskRuns } from '../helpers/task-runs.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'tb-files';
/** The firewall's own host: its rules must not disturb the other tests. */
const FIREWALL = 'tb-firewall';
const hosts = useTestHosts(test, [HOST, FIREWALL]);
const dir = mkdtempSync(join(tmpdir(), 'vd-tasks-files-'));
test.after.always(() => removeProject(dir));

const { playbook, run, ssh, changedBy, lifecycle } = taskRuns(hosts, HOST, dir);

test('replace: every match replaced with backreferences, attributes kept, drift repaired', async (t) => {
  const path = '/etc/tb-replace.conf';
  await ssh(
    `printf 'listen 80\\n# listen 1\\nlisten 8080\\n' > ${path} && chown root:adm ${path} && chmod 640 ${path}`,
  );
  const file = playbook(
    'replace',
    ['replace'],
    [`replace(${JSON.stringify({ path, regexp: '^listen (\\d+)$', replace: 'listen 127.0.0.1:\\1' })})`],
  );
  await lifecycle(t, {
    file,
    label: /replace \/etc\/tb-replace\.conf \(2 replacements\)/,
    state: `cat ${path}; stat -c '%a %U:%G' ${path}`,
    converged: 'listen 127.0.0.1:80\n# listen 1\nlisten 127.0.0.1:8080\n640 root:adm\n',
    drift: `sed -i 's/127.0.0.1:8080/8080/' ${path}`,
  });
});

test('replace: a missing file fails the task with exit code 2 and says which file', async (t) => {
  const file = playbook(
    'replace-missing',
    ['replace'],
    [`replace(${JSON.stringify({ path: '/etc/tb-replace-none.conf', regexp: 'a' })})`],
  );
  const res = await run(file);
  t.is(res.code, 2, res.stdout + res.stderr);
  t.regex(
    res.stdout + res.stderr,
    /replace \/etc\/tb-replace-none\.conf: \/etc\/tb-replace-none\.conf does not exist/,
  );
  t.notRegex(res.stdout + res.stderr, /\n\s+at /, 'no stack trace');
});

test('blockinfile: the block goes before a match, is kept in place, repaired when edited', async (t) => {
  const path = '/etc/tb-blockinfile.conf';
  await ssh(`printf 'Port 22\\nMatch User backup\\n  X11Forwarding yes\\n' > ${path} && chmod 600 ${path}`);
  const file = playbook(
    'blockinfile',
    ['blockinfile'],
    [
      `blockinfile(${JSON.stringify({ path, block: 'PasswordAuthentication no\nPermitRootLogin no\n', insertBefore: '^Match' })})`,
    ],
  );
  await lifecycle(t, {
    file,
    label: /blockinfile \/etc\/tb-blockinfile\.conf \(block is missing\)/,
    state: `cat ${path}; stat -c '%a' ${path}`,
    converged:
      'Port 22\n# BEGIN VERDANDI MANAGED BLOCK\nPasswordAuthentication no\nPermitRootLogin no\n# END VERDANDI MANAGED BLOCK\nMatch User backup\n  X11Forwarding yes\n600\n',
    drift: `sed -i 's/^PermitRootLogin no$/PermitRootLogin yes/' ${path}`,
  });
});

test('blockinfile: state absent removes the block, create makes the file', async (t) => {
  const path = '/etc/tb-blockinfile-new.conf';
  const created = playbook(
    'blockinfile-create',
    ['blockinfile'],
    [`blockinfile(${JSON.stringify({ path, block: 'a=1', create: true, marker: '; {mark} app' })})`],
  );
  t.is(await changedBy(t, created), 1);
  t.is(await ssh(`cat ${path}; stat -c '%a' ${path}`), '; BEGIN app\na=1\n; END app\n644\n');
  await ssh(`echo 'kept=1' >> ${path}`);
  const removed = playbook(
    'blockinfile-absent',
    ['blockinfile'],
    [`blockinfile(${JSON.stringify({ path, marker: '; {mark} app', state: 'absent' })})`],
  );
  t.is(await changedBy(t, removed), 1);
  t.is(await ssh(`cat ${path}`), 'kept=1\n');
  t.is(await changedBy(t, removed), 0);
});

test('authorizedKey: .ssh made 0700, keys written 0600, the key logs in; drift repaired', async (t) => {
  const user = 'tbkeys';
  await ssh(`useradd -m -s /bin/sh ${user}`);
  const keyFile = join(dir, 'id_tbkeys');
  const keygen = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tb@test', '-f', keyFile]);
  t.is(keygen.status, 0, String(keygen.stderr));
  const key = readFileSync(`${keyFile}.pub`, 'utf8').trim();
  const other = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC2 other@test';
  const file = playbook(
    'authorized-key',
    ['authorizedKey'],
    [`authorizedKey(${JSON.stringify({ user, key: [key, other], keyOptions: 'no-port-forwarding' })})`],
  );
  const home = `/home/${user}`;
  await lifecycle(t, {
    file,
    label: /authorizedKey tbkeys \(.*adds 2 keys\)/,
    state: `stat -c '%n %a %U' ${home}/.ssh ${home}/.ssh/authorized_keys 2>/dev/null; cat ${home}/.ssh/authorized_keys 2>/dev/null; true`,
    converged: `${home}/.ssh 700 ${user}\n${home}/.ssh/authorized_keys 600 ${user}\nno-port-forwarding ${key}\nno-port-forwarding ${other}\n`,
    drift: `sed -i '/other@test/d' ${home}/.ssh/authorized_keys && chmod 644 ${home}/.ssh/authorized_keys`,
  });

  // sshd (StrictModes) accepts the key for the user.
  const login = spawnSync(
    'ssh',
    [
      ...['-i', keyFile, '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no'],
      ...[
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-o',
        'ConnectTimeout=10',
        `${user}@${hosts.get(HOST).address}`,
        'id -un',
      ],
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  t.is(login.status, 0, login.stderr);
  t.is(login.stdout, `${user}\n`);

  const exclusive = playbook(
    'authorized-key-exclusive',
    ['authorizedKey'],
    [`authorizedKey(${JSON.stringify({ user, key, exclusive: true })})`],
  );
  t.is(await changedBy(t, exclusive), 1);
  t.is(await ssh(`cat ${home}/.ssh/authorized_keys`), `${key}\n`);
  const absent = playbook(
    'authorized-key-absent',
    ['authorizedKey'],
    [`authorizedKey(${JSON.stringify({ user, key, state: 'absent' })})`],
  );
  t.is(await changedBy(t, absent), 1);
  t.is(await ssh(`cat ${home}/.ssh/authorized_keys`), '');
});

/** A .tar.gz made on this machine holding app/VERSION (`version`) owned by nobody in particular. */
function tarball(version: string): string {
  const tree = join(dir, `unarchive-${version}`);
  mkdirSync(join(tree, 'app'), { recursive: true });
  writeFileSync(join(tree, 'app', 'VERSION'), `${version}\n`);
  const archive = join(dir, 'app.tar.gz');
  const made = spawnSync('tar', ['-czf', archive, '--owner=4321', '--group=4321', '-C', tree, 'app']);
  if (made.status !== 0) throw new Error(String(made.stderr));
  return archive;
}

test('unarchive: a local tar.gz extracted once with its owner, again when it changes or dest is emptied', async (t) => {
  const dest = '/opt/tb-unarchive';
  const archive = tarball('1');
  const file = playbook(
    'unarchive',
    ['unarchive'],
    [`unarchive(${JSON.stringify({ src: archive, dest, owner: 'www-data', group: 'www-data' })})`],
  );
  const state = `cat ${dest}/app/VERSION 2>/dev/null; stat -c '%U:%G' ${dest}/app ${dest}/app/VERSION 2>/dev/null; cat ${dest}/.verdandi-unarchive-app.tar.gz 2>/dev/null; true`;
  const sha = createHash('sha256').update(readFileSync(archive)).digest('hex');
  await lifecycle(t, {
    file,
    label: /unarchive \/opt\/tb-unarchive \(not extracted yet\)/,
    state,
    converged: `1\nwww-data:www-data\nwww-data:www-data\n${sha}\n`,
    drift: `rm -rf ${dest}`,
  });

  tarball('2');
  const res = await run(file);
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, /changed\s+tb-files\s+.*unarchive \/opt\/tb-unarchive \(the archive changed\)/);
  t.is(await ssh(`cat ${dest}/app/VERSION`), '2\n');
  t.is(await changedBy(t, file), 0);
});

test('unarchive: a zip already on the host needs unzip (a clear error), then extracts once', async (t) => {
  const tree = join(dir, 'zip-tree');
  mkdirSync(join(tree, 'site'), { recursive: true });
  writeFileSync(join(tree, 'site', 'index.html'), '<h1>tb</h1>\n');
  const zip = join(dir, 'site.zip');
  const made = spawnSync('python3', ['-m', 'zipfile', '-c', zip, 'site'], { cwd: tree });
  t.is(made.status, 0, String(made.stderr));
  const put = await hosts.ssh(HOST, 'base64 -d > /root/site.zip', {
    input: readFileSync(zip).toString('base64'),
  });
  t.is(put.code, 0, put.stderr);
  await ssh('apt-get remove -y -q unzip >/dev/null 2>&1 || true');
  const dest = '/srv/tb-zip';
  const file = playbook(
    'unarchive-zip',
    ['unarchive'],
    [
      `unarchive(${JSON.stringify({ remoteSrc: '/root/site.zip', dest, creates: `${dest}/site/index.html` })})`,
    ],
  );
  const missing = await run(file);
  t.is(missing.code, 2, missing.stdout + missing.stderr);
  t.regex(
    missing.stdout + missing.stderr,
    /unarchive \/srv\/tb-zip: unzip is not installed on the host: install it first with apt\(\{ packages: 'unzip' \}\)/,
  );
  t.is((await hosts.ssh(HOST, `test -e ${dest}`)).code, 1, 'nothing was created');

  await ssh(
    'DEBIAN_FRONTEND=noninteractive apt-get install -y -q unzip >/dev/null 2>&1 || (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q unzip >/dev/null)',
  );
  await lifecycle(t, {
    file,
    label: /unarchive \/srv\/tb-zip \(\/srv\/tb-zip\/site\/index\.html does not exist\)/,
    state: `cat ${dest}/site/index.html 2>/dev/null; true`,
    converged: '<h1>tb</h1>\n',
    drift: `rm -f ${dest}/site/index.html`,
  });
});

test('firewall: allowed ports answer, others are dropped, SSH stays open; a dropping config is refused', async (t) => {
  const firewallDir = join(dir, 'firewall');
  mkdirSync(firewallDir);
  const fw = taskRuns(hosts, FIREWALL, firewallDir);
  const APT = 'DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0';
  await fw.ssh(
    `(${APT} install nftables python3 || (apt-get -q update && ${APT} install nftables python3)) >/dev/null 2>&1`,
  );
  for (const port of [8080, 8081]) {
    await fw.ssh(`systemd-run --unit=tb-fw-${port} --quiet python3 -m http.server ${port}`);
  }
  const address = hosts.get(FIREWALL).address;
  /** Whether an HTTP request from this machine gets an answer within 3 seconds. */
  const answers = (port: number) =>
    spawnSync('curl', ['-s', '-o', '/dev/null', '--max-time', '3', `http://${address}:${port}/`]).status ===
    0;
  const waitFor = async (port: number) => {
    for (let i = 0; i < 50 && !answers(port); i++) await new Promise((r) => setTimeout(r, 100));
  };
  await waitFor(8080);
  await waitFor(8081);
  t.true(answers(8080) && answers(8081), 'both servers answer before the firewall');

  const file = fw.playbook(
    'firewall',
    ['firewall'],
    [`firewall(${JSON.stringify({ allow: [{ port: 8080 }, { port: 8081, from: '192.0.2.0/24' }] })})`],
  );
  const state =
    'nft list table inet verdandi >/dev/null 2>&1 && echo loaded || echo none; systemctl is-enabled nftables 2>/dev/null; grep -c \'^include "/etc/nftables.d/verdandi.nft"$\' /etc/nftables.conf; true';
  await fw.lifecycle(t, {
    file,
    label: /firewall inet verdandi \(\/etc\/nftables\.d\/verdandi\.nft is missing/,
    state,
    converged: 'loaded\nenabled\n1\n',
    drift: 'nft delete table inet verdandi',
  });
  t.true(answers(8080), 'an allowed port answers');
  t.false(answers(8081), 'a port allowed only from another network is dropped');
  t.regex(await fw.ssh('nft list table inet verdandi'), /policy drop;[\s\S]*tcp dport 22 accept/);

  const rulesBefore = await fw.ssh('sha256sum /etc/nftables.d/verdandi.nft');
  const cutOff = fw.playbook(
    'firewall-cut-off',
    ['firewall'],
    [`firewall(${JSON.stringify({ allowSsh: false, allow: [{ port: 22, from: '192.0.2.0/24' }] })})`],
  );
  const refused = await fw.run(cutOff);
  t.is(refused.code, 2, refused.stdout + refused.stderr);
  t.regex(
    refused.stdout + refused.stderr,
    /firewall inet verdandi: refusing rules that would drop this run's own SSH connection \(from [0-9.]+ to port 22\)/,
  );
  t.is(await fw.ssh('sha256sum /etc/nftables.d/verdandi.nft'), rulesBefore, 'nothing was installed');

  const absent = fw.playbook('firewall-absent', ['firewall'], [`firewall({ state: 'absent' })`]);
  t.is(await fw.changedBy(t, absent), 1);
  t.is(await fw.ssh(state), 'none\nenabled\n0\n');
  t.true(answers(8081), 'without the table the port answers again');
  t.is(await fw.changedBy(t, absent), 0);
});
