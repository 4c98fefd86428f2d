/**
 * The file-editing task types end to end, over real SSH against a fresh Debian test host: each one
 * converges the host, a second run changes nothing, `--check` leaves the host as it was, and a change
 * made by hand is repaired by the next run. Each test works on paths of its own, so they can share
 * the host.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { runCli } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'tb-files';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-tasks-files-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

interface JsonReport {
  hosts: Record<string, { changed: number; failed: number; ok: number }>;
}

function inventory(): string {
  const h = hosts.get(HOST);
  const file = join(dir, 'hosts.ini');
  writeFileSync(
    file,
    `[files]\n${HOST} ansible_host=${h.address} ansible_user=${h.user} ansible_ssh_private_key_file=${h.key}\n`,
  );
  return file;
}

/** Writes a playbook running `tasks` (TypeScript expressions) on the host; returns its file name. */
function playbook(name: string, imports: string[], tasks: string[]): string {
  const file = `${name}.ts`;
  writeFileSync(
    join(dir, file),
    `import { definePlaybook, ${imports.join(', ')} } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'files', tasks: () => [
  ${tasks.join(',\n  ')},
] }] });
`,
  );
  return file;
}

const run = (file: string, ...extra: string[]) =>
  runCli(['run', inventory(), join(dir, file), '--host-key-checking=off', ...extra], { cwd: dir });

const ssh = async (command: string) => {
  const result = await hosts.ssh(HOST, command);
  if (result.code !== 0) throw new Error(`${command} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
};

/** Runs the playbook with --json: exit code 0 and what changed on the host. */
async function changedBy(t: ExecutionContext, file: string): Promise<number> {
  const res = await run(file, '--json');
  t.is(res.code, 0, res.stdout + res.stderr);
  const report = (JSON.parse(res.stdout) as JsonReport).hosts[HOST];
  t.is(report.failed, 0);
  return report.changed;
}

/**
 * The life of a task on a host: `--check` names it and changes nothing, the run changes it to
 * `converged`, the next run changes nothing, a hand edit (`drift`) is repaired.
 */
async function lifecycle(
  t: ExecutionContext,
  opts: { file: string; label: RegExp; state: string; converged: string; drift: string },
) {
  const { file, label, state } = opts;
  const fresh = await ssh(state);
  const check = await run(file, '--check');
  t.is(check.code, 0, check.stdout + check.stderr);
  t.regex(check.stdout, new RegExp(`would change\\s+${HOST}\\s+.*${label.source}`));
  t.is(await ssh(state), fresh, '--check changed nothing');

  const first = await run(file);
  t.is(first.code, 0, first.stdout + first.stderr);
  t.regex(first.stdout, new RegExp(`changed\\s+${HOST}\\s+.*${label.source}`));
  t.is(await ssh(state), opts.converged);

  t.is(await changedBy(t, file), 0, 'a second run changes nothing');

  await ssh(opts.drift);
  t.not(await ssh(state), opts.converged, 'the hand edit changed the host');
  t.is(await changedBy(t, file), 1, 'the drift is repaired');
  t.is(await ssh(state), opts.converged);
}

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
