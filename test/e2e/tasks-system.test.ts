/**
 * The system task types end to end, over real SSH against fresh test hosts, through the real CLI: each
 * converges a fresh host, changes nothing when run again, changes nothing in check mode, and repairs a
 * change made by hand. Each test uses its own paths and names; they run serially on one host.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import * as openpgp from 'openpgp';
import { sha256Hex } from '../../src/tasks/probe-output.js';
import { removeProject, runCli } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'ta-system';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-tasks-system-'));
test.after.always(() => removeProject(dir));

const ssh = async (command: string, input?: string) => {
  const result = await hosts.ssh(HOST, command, input === undefined ? undefined : { input });
  if (result.code !== 0) throw new Error(`${command} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
};
/** The host's answer to a command that may fail: its exit code and output. */
const tryHost = (command: string) => hosts.ssh(HOST, command);

function inventory(): string {
  const h = hosts.get(HOST);
  const file = join(dir, 'hosts.ini');
  writeFileSync(
    file,
    `[sys]\n${HOST} ansible_host=${h.address} ansible_user=${h.user} ansible_ssh_private_key_file=${h.key}\n`,
  );
  return file;
}

/** Writes a playbook whose one play runs `tasks` (TypeScript array items) on the host. */
function playbook(file: string, imports: string[], tasks: string): string {
  writeFileSync(
    join(dir, file),
    `import { definePlaybook, ${imports.join(', ')} } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'sys', tasks: () => [
${tasks}
] }] });
`,
  );
  return file;
}

interface Report {
  hosts: Record<string, { changed: number; failed: number; ok: number }>;
}

async function run(file: string, ...extra: string[]) {
  const result = await runCli(['run', inventory(), join(dir, file), '--host-key-checking=off', ...extra], {
    cwd: dir,
  });
  return { ...result, output: result.stdout + result.stderr };
}

/** Runs the playbook with --json: exit 0 and this many changed tasks. */
async function changedCount(
  t: { is: (a: unknown, b: unknown, m?: string) => void },
  file: string,
  extra: string[] = [],
) {
  const result = await run(file, '--json', ...extra);
  t.is(result.code, 0, result.output);
  const report = JSON.parse(result.stdout) as Report;
  t.is(report.hosts[HOST].failed, 0, result.output);
  return report.hosts[HOST].changed;
}

// ---------------------------------------------------------------------------------------------------
// aptRepository: a flat repository built on the host, signed by a key made here, served on its loopback

const REPO_PORT = 8765;
const REPO_URL = `http://127.0.0.1:${REPO_PORT}/`;
const SOURCES = '/etc/apt/sources.list.d/ta-local.sources';
const KEYRING = '/etc/apt/keyrings/ta-local.gpg';

/** Builds the package ta-hello 1.0 and a flat repository for it in /srv/ta-repo, signed with a new key. */
async function serveRepository(): Promise<{ armored: string; binary: Buffer }> {
  const { privateKey, publicKey } = await openpgp.generateKey({
    userIDs: [{ name: 'ta repository', email: 'repo@example.org' }],
  });
  await ssh(`set -e
rm -rf /srv/ta-repo /tmp/ta-pkg
mkdir -p /tmp/ta-pkg/DEBIAN /tmp/ta-pkg/usr/share/ta-hello /srv/ta-repo
echo hello > /tmp/ta-pkg/usr/share/ta-hello/hello.txt
printf 'Package: ta-hello\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: Test <t@example.org>\\nDescription: test package\\n' > /tmp/ta-pkg/DEBIAN/control
dpkg-deb --build /tmp/ta-pkg /srv/ta-repo/ta-hello_1.0_all.deb >/dev/null
cd /srv/ta-repo
f=ta-hello_1.0_all.deb
{ cat /tmp/ta-pkg/DEBIAN/control; echo "Filename: ./$f"; echo "Size: $(stat -c %s $f)"; echo "SHA256: $(sha256sum $f | cut -d' ' -f1)"; } > Packages
{ echo 'Origin: ta'; echo 'Label: ta'; echo "Date: $(LC_ALL=C date -Ru)"; echo 'SHA256:'; echo " $(sha256sum Packages | cut -d' ' -f1) $(stat -c %s Packages) Packages"; } > Release`);
  const release = await ssh('cat /srv/ta-repo/Release');
  const signingKey = await openpgp.readPrivateKey({ armoredKey: privateKey });
  const inRelease = await openpgp.sign({
    message: await openpgp.createCleartextMessage({ text: release }),
    signingKeys: signingKey,
  });
  await ssh('cat > /srv/ta-repo/InRelease', inRelease);
  await ssh('cat > /srv/ta-repo/key.asc', publicKey);
  await ssh(
    `systemd-run --unit ta-repo-http python3 -m http.server --bind 127.0.0.1 ${REPO_PORT} --directory /srv/ta-repo
for i in $(seq 100); do curl -fs -o /dev/null ${REPO_URL}InRelease && exit 0; sleep 0.1; done; exit 1`,
  );
  const binary = Buffer.from((await openpgp.readKey({ armoredKey: publicKey })).write());
  return { armored: publicKey, binary };
}

const hostSha = async (path: string) => (await ssh(`sha256sum ${path} | cut -d' ' -f1`)).trim();

test.serial(
  'aptRepository: a signed repository whose key the host fetches; apt installs from it in the same run',
  async (t) => {
    t.timeout(10 * 60_000);
    const key = await serveRepository();
    const checksum = sha256Hex(key.armored);
    const file = playbook(
      'apt-repository.ts',
      ['apt', 'aptRepository'],
      `aptRepository({ repository: 'ta-local', uris: '${REPO_URL}', suites: './', key: { url: '${REPO_URL}key.asc', checksum: '${checksum}' } }),
apt({ packages: 'ta-hello' }),`,
    );

    // Check mode on the fresh host: it says what would change and changes nothing.
    const check = await run(file, '--check');
    t.is(check.code, 0, check.output);
    t.regex(check.stdout, /would change\s+ta-system\s+.*aptRepository ta-local/);
    t.is((await tryHost(`test -e ${SOURCES} || test -e ${KEYRING}`)).code, 1);

    const first = await run(file);
    t.is(first.code, 0, first.output);
    t.regex(first.stdout, /changed\s+ta-system\s+.*aptRepository ta-local/);
    t.is(await hostSha(KEYRING), sha256Hex(key.binary), 'the key is stored dearmored');
    t.is((await ssh('ls -A /etc/apt/keyrings')).trim(), 'ta-local.gpg', 'no temporary file left');
    t.is((await ssh(`stat -c %a ${KEYRING} ${SOURCES}`)).trim(), '644\n644');
    const sources = await ssh(`cat ${SOURCES}`);
    t.regex(sources, new RegExp(`^Signed-By: ${KEYRING}$`, 'm'));
    t.regex(sources, /^URIs: http:\/\/127\.0\.0\.1:8765\/$/m);
    t.is(
      (await ssh("dpkg -s ta-hello | grep -E '^(Status|Version):'")).trim(),
      'Status: install ok installed\nVersion: 1.0',
    );

    t.is(await changedCount(t, file), 0, 'a second run changes nothing');

    // Drift: the key deleted and the .sources file edited by hand are both restored.
    await ssh(`rm ${KEYRING} && sed -i 's/^Suites: .*/Suites: bookworm/' ${SOURCES}`);
    const checkDrift = await run(file, '--check');
    t.is(checkDrift.code, 0, checkDrift.output);
    t.is((await tryHost(`test -e ${KEYRING}`)).code, 1, 'check mode fetched nothing');
    t.is(await changedCount(t, file), 1);
    t.is(await ssh(`cat ${SOURCES}`), sources);
    t.is(await hostSha(KEYRING), sha256Hex(key.binary));
    t.is(await changedCount(t, file), 0);

    // The same key from a file on the controller (armored): the same binary keyring, nothing changes
    // but the .sources comment naming the URL.
    writeFileSync(join(dir, 'ta-key.asc'), key.armored);
    playbook(
      'apt-repository-src.ts',
      ['aptRepository'],
      `aptRepository({ repository: 'ta-local', uris: '${REPO_URL}', suites: './', key: { src: '${join(dir, 'ta-key.asc')}' } }),`,
    );
    t.is(await changedCount(t, 'apt-repository-src.ts'), 1);
    t.notRegex(await ssh(`cat ${SOURCES}`), /fetched from/);
    t.is(await hostSha(KEYRING), sha256Hex(key.binary));
    await ssh(`echo garbage > ${KEYRING}`);
    t.is(await changedCount(t, 'apt-repository-src.ts'), 1, 'a key changed by hand is rewritten');
    t.is(await hostSha(KEYRING), sha256Hex(key.binary));
    t.is(await changedCount(t, 'apt-repository-src.ts'), 0);

    // A wrong checksum fails the task with exit code 2, naming the URL; nothing is installed.
    playbook(
      'apt-repository-bad.ts',
      ['aptRepository'],
      `aptRepository({ repository: 'ta-bad', uris: '${REPO_URL}', suites: './', key: { url: '${REPO_URL}key.asc', checksum: '${'0'.repeat(64)}' } }),`,
    );
    const bad = await run('apt-repository-bad.ts');
    t.is(bad.code, 2, bad.output);
    t.regex(
      bad.output,
      /the key at http:\/\/127\.0\.0\.1:8765\/key\.asc has sha256 [0-9a-f]{64}, not the checksum given/,
    );
    t.is(
      (
        await tryHost(
          'test -e /etc/apt/keyrings/ta-bad.gpg || test -e /etc/apt/sources.list.d/ta-bad.sources',
        )
      ).code,
      1,
    );

    // Absent removes both files; again changes nothing.
    playbook(
      'apt-repository-absent.ts',
      ['aptRepository'],
      `aptRepository({ repository: 'ta-local', state: 'absent' }),`,
    );
    t.is(await changedCount(t, 'apt-repository-absent.ts'), 1);
    t.is((await tryHost(`test -e ${SOURCES} || test -e ${KEYRING}`)).code, 1);
    t.is(await changedCount(t, 'apt-repository-absent.ts'), 0);
  },
);

// ---------------------------------------------------------------------------------------------------
// download

const FILES_PORT = 8766;

test.serial(
  'download from the host: fetched when missing or when its sha256 differs from the checksum',
  async (t) => {
    const content = `#!/bin/sh\necho tool ${Date.now()}\n`;
    await ssh(
      `mkdir -p /srv/ta-files /opt/ta-dl && cat > /srv/ta-files/tool.sh
systemd-run --unit ta-files-http python3 -m http.server --bind 127.0.0.1 ${FILES_PORT} --directory /srv/ta-files
for i in $(seq 100); do curl -fs -o /dev/null http://127.0.0.1:${FILES_PORT}/tool.sh && exit 0; sleep 0.1; done; exit 1`,
      content,
    );
    const url = `http://127.0.0.1:${FILES_PORT}/tool.sh`;
    const file = playbook(
      'download-host.ts',
      ['download'],
      `download({ url: '${url}', path: '/opt/ta-dl/tool.sh', checksum: '${sha256Hex(content)}', mode: '0750' }),
download({ url: '${url}', path: '/opt/ta-dl/once.sh' }),`,
    );

    const check = await run(file, '--check');
    t.is(check.code, 0, check.output);
    t.regex(check.stdout, /would change\s+ta-system\s+.*download \/opt\/ta-dl\/tool\.sh \(file is missing\)/);
    t.is((await ssh('ls -A /opt/ta-dl')).trim(), '');

    t.is(await changedCount(t, file), 2);
    t.is(await hostSha('/opt/ta-dl/tool.sh'), sha256Hex(content));
    t.is((await ssh('stat -c %a /opt/ta-dl/tool.sh /opt/ta-dl/once.sh')).trim(), '750\n644');
    t.is(await changedCount(t, file), 0);

    // Drift: the checksummed file is fetched again; the other one, without checksum, is left as it is.
    await ssh(
      'echo changed > /opt/ta-dl/tool.sh && chmod 0600 /opt/ta-dl/tool.sh && echo changed > /opt/ta-dl/once.sh',
    );
    const drift = await run(file, '--check');
    t.regex(drift.stdout, /would change\s+ta-system\s+.*tool\.sh \(sha256 differs from the checksum\)/);
    t.is(await changedCount(t, file), 1);
    t.is(await hostSha('/opt/ta-dl/tool.sh'), sha256Hex(content));
    t.is((await ssh('stat -c %a /opt/ta-dl/tool.sh')).trim(), '750');
    t.is((await ssh('cat /opt/ta-dl/once.sh')).trim(), 'changed');
    t.is((await ssh('ls -A /opt/ta-dl')).trim(), 'once.sh\ntool.sh', 'no temporary file left');

    // A URL that serves something else fails the task (exit 2) and installs nothing.
    playbook(
      'download-bad.ts',
      ['download'],
      `download({ url: '${url}', path: '/opt/ta-dl/bad.sh', checksum: '${'0'.repeat(64)}' }),`,
    );
    const bad = await run('download-bad.ts');
    t.is(bad.code, 2, bad.output);
    t.regex(bad.output, /served a file whose sha256 is [0-9a-f]{64}, not the checksum given/);
    t.is((await ssh('ls -A /opt/ta-dl')).trim(), 'once.sh\ntool.sh');
  },
);

test.serial('download from the controller: fetched once per run for every task, sent whole', async (t) => {
  // Binary content: every byte value.
  const content = Buffer.concat(
    Array.from({ length: 200 }, () => Buffer.from(Array.from({ length: 256 }, (_, i) => i))),
  );
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    res.end(content);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/blob.bin`;
  await ssh('mkdir -p /opt/ta-dl-ctl');
  const file = playbook(
    'download-controller.ts',
    ['download'],
    `download({ url: '${url}', path: '/opt/ta-dl-ctl/a.bin', from: 'controller', checksum: '${sha256Hex(content)}' }),
download({ url: '${url}', path: '/opt/ta-dl-ctl/b.bin', from: 'controller', checksum: '${sha256Hex(content)}', owner: 'nobody' }),`,
  );

  const check = await run(file, '--check');
  t.is(check.code, 0, check.output);
  t.is(requests, 0, 'check mode fetches nothing');
  t.is((await ssh('ls -A /opt/ta-dl-ctl')).trim(), '');

  t.is(await changedCount(t, file), 2);
  t.is(requests, 1, 'one fetch for both tasks');
  t.is(await hostSha('/opt/ta-dl-ctl/a.bin'), sha256Hex(content));
  t.is(await hostSha('/opt/ta-dl-ctl/b.bin'), sha256Hex(content));
  t.is((await ssh('stat -c %U /opt/ta-dl-ctl/b.bin')).trim(), 'nobody');

  t.is(await changedCount(t, file), 0);
  t.is(requests, 1, 'a converged run fetches nothing');

  await ssh('truncate -s 10 /opt/ta-dl-ctl/a.bin');
  t.is(await changedCount(t, file), 1);
  t.is(await hostSha('/opt/ta-dl-ctl/a.bin'), sha256Hex(content));

  // Larger than maxBytes: refused on the controller, the task fails, nothing is installed.
  playbook(
    'download-too-big.ts',
    ['download'],
    `download({ url: '${url}', path: '/opt/ta-dl-ctl/big.bin', from: 'controller', maxBytes: 1000 }),`,
  );
  const big = await run('download-too-big.ts');
  t.is(big.code, 2, big.output);
  t.regex(
    big.output,
    new RegExp(`blob\\.bin is ${content.length} bytes, more than the 1000 allowed \\(maxBytes\\)`),
  );
  t.is((await tryHost('test -e /opt/ta-dl-ctl/big.bin')).code, 1);
});

// ---------------------------------------------------------------------------------------------------
// sysctl (keys the container's network namespace lets it write)

test.serial('sysctl: the value in a sysctl.d file and in the running kernel', async (t) => {
  const file = playbook(
    'sysctl.ts',
    ['sysctl'],
    `sysctl({ key: 'net.core.somaxconn', value: 1000 }),
sysctl({ key: 'net.ipv4.ip_local_port_range', value: '32800 60800', file: '/etc/sysctl.d/60-ta-ports.conf' }),`,
  );
  const live = async () =>
    (await ssh('sysctl -n net.core.somaxconn net.ipv4.ip_local_port_range')).replace(/\t/g, ' ');
  const before = await live();
  t.notRegex(before, /^1000\n/);

  const check = await run(file, '--check');
  t.is(check.code, 0, check.output);
  t.regex(check.stdout, /would change\s+ta-system\s+.*sysctl net\.core\.somaxconn/);
  t.is(await live(), before);
  t.is((await tryHost('test -e /etc/sysctl.d/99-verdandi.conf')).code, 1);

  t.is(await changedCount(t, file), 2);
  t.is(await live(), '1000\n32800 60800\n');
  t.is(await ssh('cat /etc/sysctl.d/99-verdandi.conf'), 'net.core.somaxconn = 1000\n');
  t.is(await ssh('cat /etc/sysctl.d/60-ta-ports.conf'), 'net.ipv4.ip_local_port_range = 32800 60800\n');
  t.is(await changedCount(t, file), 0);

  // Drift: the live value changed by hand, the file edited by hand.
  await ssh(
    'sysctl -q -w net.core.somaxconn=4096 && echo "net.ipv4.ip_local_port_range = 1 2" >> /etc/sysctl.d/60-ta-ports.conf',
  );
  t.is(await changedCount(t, file), 2);
  t.is(await live(), '1000\n32800 60800\n');
  t.is(await ssh('cat /etc/sysctl.d/60-ta-ports.conf'), 'net.ipv4.ip_local_port_range = 32800 60800\n');
  t.is(await changedCount(t, file), 0);
});

// ---------------------------------------------------------------------------------------------------
// cron and systemdTimer

test.serial('cron: a job in its own /etc/cron.d file; absent removes it', async (t) => {
  const job = '/etc/cron.d/ta-backup';
  const file = playbook(
    'cron.ts',
    ['cron'],
    `cron({ job: 'ta-backup', schedule: '30 2 * * *', user: 'nobody', command: 'echo backup >/dev/null', environment: { MAILTO: '' } }),`,
  );
  const expected = [
    '# Managed by verdandi (cron ta-backup): changes made here are overwritten.',
    'MAILTO=',
    '30 2 * * * nobody echo backup >/dev/null',
    '',
  ].join('\n');

  const check = await run(file, '--check');
  t.is(check.code, 0, check.output);
  t.regex(check.stdout, /would change\s+ta-system\s+.*cron ta-backup \(file is missing\)/);
  t.is((await tryHost(`test -e ${job}`)).code, 1);

  t.is(await changedCount(t, file), 1);
  t.is(await ssh(`cat ${job}`), expected);
  t.is((await ssh(`stat -c '%a %U' ${job}`)).trim(), '644 root');
  t.is(await changedCount(t, file), 0);

  await ssh(`echo '* * * * * root rm -rf /' >> ${job} && chmod 0666 ${job}`);
  t.is(await changedCount(t, file), 1);
  t.is(await ssh(`cat ${job}`), expected);
  t.is((await ssh(`stat -c '%a' ${job}`)).trim(), '644');

  playbook('cron-absent.ts', ['cron'], `cron({ job: 'ta-backup', state: 'absent' }),`);
  t.is(await changedCount(t, 'cron-absent.ts'), 1);
  t.is((await tryHost(`test -e ${job}`)).code, 1);
  t.is(await changedCount(t, 'cron-absent.ts'), 0);
});

test.serial('systemdTimer: a service and a timer unit, the timer enabled and started', async (t) => {
  const file = playbook(
    'timer.ts',
    ['systemdTimer'],
    `systemdTimer({ timer: 'ta-job', onCalendar: '*-*-* 03:30:00', command: 'echo "ran at $(date +%s)" > /tmp/ta-job-ran' }),`,
  );
  const state = async () =>
    (await ssh('systemctl is-enabled ta-job.timer; systemctl is-active ta-job.timer; true')).trim();

  const check = await run(file, '--check');
  t.is(check.code, 0, check.output);
  t.regex(check.stdout, /would change\s+ta-system\s+.*systemdTimer ta-job/);
  t.is((await tryHost('test -e /etc/systemd/system/ta-job.timer')).code, 1);

  t.is(await changedCount(t, file), 1);
  t.is(await state(), 'enabled\nactive');
  t.regex(await ssh('systemctl show -p TimersCalendar --value ta-job.timer'), /OnCalendar=\*-\*-\* 03:30:00/);
  // The job runs the command as written: quotes, $( ) and % reach the shell intact.
  await ssh('systemctl start ta-job.service');
  t.regex(await ssh('cat /tmp/ta-job-ran'), /^ran at \d+\n$/);
  t.is(await changedCount(t, file), 0);

  // Drift: the timer stopped and disabled, its unit edited by hand.
  await ssh(
    "systemctl disable --now ta-job.timer && sed -i 's/03:30:00/04:00:00/' /etc/systemd/system/ta-job.timer && systemctl daemon-reload",
  );
  t.is(await changedCount(t, file), 1);
  t.is(await state(), 'enabled\nactive');
  t.regex(await ssh('systemctl show -p TimersCalendar --value ta-job.timer'), /03:30:00/);
  t.is(await changedCount(t, file), 0);

  playbook('timer-absent.ts', ['systemdTimer'], `systemdTimer({ timer: 'ta-job', state: 'absent' }),`);
  t.is(await changedCount(t, 'timer-absent.ts'), 1);
  t.is(
    (await tryHost('test -e /etc/systemd/system/ta-job.timer || test -e /etc/systemd/system/ta-job.service'))
      .code,
    1,
  );
  t.is((await tryHost('systemctl is-active ta-job.timer')).code, 3);
  t.is(await changedCount(t, 'timer-absent.ts'), 0);
});

// ---------------------------------------------------------------------------------------------------
// timezone and hostname

test.serial('timezone: /etc/localtime and /etc/timezone name the zone', async (t) => {
  const file = playbook('timezone.ts', ['timezone'], `timezone({ zone: 'Europe/Paris' }),`);
  const state = async () => (await ssh('readlink /etc/localtime; cat /etc/timezone')).trim();
  const before = await state();

  const check = await run(file, '--check');
  t.is(check.code, 0, check.output);
  t.regex(check.stdout, /would change\s+ta-system\s+.*timezone Europe\/Paris/);
  t.is(await state(), before);

  t.is(await changedCount(t, file), 1);
  t.is(await state(), '/usr/share/zoneinfo/Europe/Paris\nEurope/Paris');
  t.is((await ssh("env -u TZ date +%Z -d '2026-01-15 12:00'")).trim(), 'CET', 'programs use the new zone');
  t.is(await changedCount(t, file), 0);

  await ssh('ln -sfn /usr/share/zoneinfo/Etc/UTC /etc/localtime');
  t.is(await changedCount(t, file), 1);
  t.is(await state(), '/usr/share/zoneinfo/Europe/Paris\nEurope/Paris');

  playbook('timezone-bad.ts', ['timezone'], `timezone({ zone: 'Mars/Olympus' }),`);
  const bad = await run('timezone-bad.ts');
  t.is(bad.code, 2, bad.output);
  t.regex(bad.output, /the host has no \/usr\/share\/zoneinfo\/Mars\/Olympus: not a known time zone/);
});

test.serial('hostname: /etc/hostname, the running name and the 127.0.1.1 line of /etc/hosts', async (t) => {
  const file = playbook('hostname.ts', ['hostname'], `hostname({ hostname: 'ta-web1.example.org' }),`);
  const state = async () =>
    (await ssh('cat /etc/hostname; hostname; grep ^127.0.1.1 /etc/hosts || true')).trim();
  const before = await state();

  const check = await run(file, '--check');
  t.is(check.code, 0, check.output);
  t.regex(check.stdout, /would change\s+ta-system\s+.*hostname ta-web1\.example\.org/);
  t.is(await state(), before);

  t.is(await changedCount(t, file), 1);
  t.is(await state(), 'ta-web1\nta-web1\n127.0.1.1\tta-web1.example.org ta-web1');
  t.regex(await ssh('cat /etc/hosts'), /^127\.0\.0\.1\tlocalhost\n/, 'the other lines stay');
  t.is((await ssh('getent hosts ta-web1')).trim(), '127.0.1.1       ta-web1.example.org ta-web1');
  t.is(await changedCount(t, file), 0);

  await ssh(
    "hostname other && echo other > /etc/hostname && sed -i 's/^127.0.1.1.*/127.0.1.1 other/' /etc/hosts",
  );
  t.is(await changedCount(t, file), 1);
  t.is(await state(), 'ta-web1\nta-web1\n127.0.1.1\tta-web1.example.org ta-web1');
});
