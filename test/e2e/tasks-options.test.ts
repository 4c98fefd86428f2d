/**
 * Options of the file and service tasks that come from Ansible's modules, end to end over real SSH
 * against one fresh test host: each option group converges the host, a rerun changes nothing, check
 * mode changes nothing, and drift made by hand is repaired. Each test works on its own paths.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { removeProject, runCli } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'tc-opts';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-tasks-options-e2e-'));
test.after.always(() => removeProject(dir));

function inventory(): string {
  const h = hosts.get(HOST);
  const file = join(dir, 'hosts.ini');
  writeFileSync(
    file,
    `[web]\n${HOST} ansible_host=${h.address} ansible_user=${h.user} ansible_ssh_private_key_file=${h.key}\n`,
  );
  return file;
}

/** A playbook of these tasks (TypeScript source) for the `web` group, written to the project. */
function playbook(file: string, imports: string, tasks: string): string {
  writeFileSync(
    join(dir, file),
    `import { definePlaybook, ${imports} } from 'verdandi';\n\nexport default definePlaybook({ plays: [{ hosts: 'web', tasks: () => [\n${tasks}\n] }] });\n`,
  );
  return file;
}

const run = (file: string, ...extra: string[]) =>
  runCli(['run', inventory(), join(dir, file), '--host-key-checking=off', ...extra], { cwd: dir });

interface Report {
  hosts: Record<string, { changed: number; failed: number }>;
}

/** Runs the playbook with --json and returns the exit code and the host's changed count. */
async function runJson(
  file: string,
  ...extra: string[]
): Promise<{ code: number; changed: number; output: string }> {
  const res = await run(file, '--json', ...extra);
  const output = res.stdout + res.stderr;
  let changed = -1;
  try {
    changed = (JSON.parse(res.stdout) as Report).hosts[HOST].changed;
  } catch {
    // The assertion on changed shows the output.
  }
  return { code: res.code, changed, output };
}

/** Content hash, owner, group and mode of each path (or "absent"), one line each. */
async function fileStates(...paths: string[]): Promise<string> {
  const script = paths
    .map(
      (p) =>
        `if [ -e '${p}' ]; then printf '%s %s\\n' "$(stat -c '%U:%G %a' '${p}')" "$(sha256sum < '${p}' | cut -c1-16)"; else echo absent; fi`,
    )
    .join('\n');
  const res = await hosts.ssh(HOST, script);
  return res.stdout;
}

const cat = async (path: string) => (await hosts.ssh(HOST, `cat '${path}'`)).stdout;

test.serial('lineinfile: backrefs, insertBefore, owner/group/mode, validate, create', async (t) => {
  const conf = '/etc/tc-lineinfile/sshd.conf';
  const created = '/etc/tc-lineinfile/new.conf';
  await hosts.ssh(
    HOST,
    `mkdir -p /etc/tc-lineinfile && printf 'Port 22\\n#ListenAddress 0.0.0.0\\n# end\\n' > ${conf} && chmod 0644 ${conf}`,
  );
  const file = playbook(
    'lineinfile.ts',
    'lineinfile',
    `
  lineinfile({ path: '${conf}', regexp: '^#?ListenAddress[[:space:]]+([0-9.]+)', line: 'ListenAddress \\\\1', backrefs: true }),
  lineinfile({ path: '${conf}', line: 'MaxAuthTries 3', insertBefore: '^# end', owner: 'nobody', group: 'nogroup', mode: '0640', validate: 'grep -q "^Port " %s' }),
  lineinfile({ path: '${conf}', line: '# managed', insertBefore: 'BOF' }),
  lineinfile({ path: '${conf}', regexp: '^Nothing (.*)', line: 'x \\\\1', backrefs: true }),
  lineinfile({ path: '${created}', line: 'created', create: true, mode: '0600' }),`,
  );
  const wanted = '# managed\nPort 22\nListenAddress 0.0.0.0\nMaxAuthTries 3\n# end\n';

  const first = await runJson(file);
  t.is(first.code, 0, first.output);
  t.is(first.changed, 4, first.output);
  t.is(await cat(conf), wanted);
  t.is(await cat(created), 'created\n');
  const converged = await fileStates(conf, created);
  t.regex(converged, /^nobody:nogroup 640 \S+\nroot:root 600 \S+\n$/);

  const second = await runJson(file);
  t.is(second.code, 0, second.output);
  t.is(second.changed, 0, second.output);

  // Drift: the line commented again, the inserted line gone, the attributes back to root 0644.
  await hosts.ssh(
    HOST,
    `printf '# managed\\nPort 22\\n#ListenAddress 0.0.0.0\\n# end\\n' > ${conf} && chown root:root ${conf} && chmod 0644 ${conf} && rm ${created}`,
  );
  const drifted = await fileStates(conf, created);
  const check = await run(file, '--check');
  t.is(check.code, 0, check.stdout + check.stderr);
  t.regex(check.stdout, /would change\s+tc-opts\s+.*lineinfile \/etc\/tc-lineinfile\/sshd\.conf/);
  t.is(await fileStates(conf, created), drifted);

  const repaired = await runJson(file);
  t.is(repaired.code, 0, repaired.output);
  t.is(repaired.changed, 3, repaired.output);
  t.is(await cat(conf), wanted);
  t.is(await fileStates(conf, created), converged);
});

test.serial('lineinfile: content that validate refuses leaves the file as it was, exit 2', async (t) => {
  const conf = '/etc/tc-lineinfile/validated.conf';
  await hosts.ssh(HOST, `mkdir -p /etc/tc-lineinfile && printf 'Port 22\\n' > ${conf}`);
  const before = await fileStates(conf);
  const file = playbook(
    'lineinfile-validate.ts',
    'lineinfile',
    `  lineinfile({ path: '${conf}', regexp: '^Port ', line: 'Port none', validate: 'grep -q "^Port [0-9]" %s' }),`,
  );
  const res = await run(file);
  t.is(res.code, 2, res.stdout + res.stderr);
  t.regex(res.stdout + res.stderr, /validation failed/);
  t.is(await fileStates(conf), before);
});

test.serial('file: state touch and symbolic modes computed against the host’s mode', async (t) => {
  const script = '/etc/tc-file/script.sh';
  const touched = '/etc/tc-file/touched';
  await hosts.ssh(HOST, `mkdir -p /etc/tc-file && printf 'echo hi\\n' > ${script} && chmod 0664 ${script}`);
  const file = playbook(
    'file.ts',
    'file',
    `
  file({ path: '${script}', mode: 'u+x,g-w,o=' }),
  file({ path: '${touched}', state: 'touch', mode: 'a=r,u+w', owner: 'nobody' }),`,
  );

  const first = await runJson(file);
  t.is(first.code, 0, first.output);
  t.is(first.changed, 2, first.output);
  const converged = await fileStates(script, touched);
  t.regex(converged, /^root:root 740 \S+\nnobody:root 644 e3b0c44298fc1c14\n$/);

  const second = await runJson(file);
  t.is(second.code, 0, second.output);
  t.is(second.changed, 0, second.output);

  // Drift: the script back to 0664 (a symbolic mode is relative: from 0775 it would give 0750), the
  // touched file gone.
  await hosts.ssh(HOST, `chmod 0664 ${script} && rm ${touched}`);
  const drifted = await fileStates(script, touched);
  const check = await run(file, '--check');
  t.is(check.code, 0, check.stdout + check.stderr);
  t.regex(check.stdout, /would change\s+tc-opts\s+.*file \/etc\/tc-file\/script\.sh/);
  t.is(await fileStates(script, touched), drifted);

  const repaired = await runJson(file);
  t.is(repaired.code, 0, repaired.output);
  t.is(repaired.changed, 2, repaired.output);
  t.is(await fileStates(script, touched), converged);
});

test.serial("file: modificationTime 'now' sets the time on every run, reported as a change", async (t) => {
  const stamp = '/etc/tc-file/stamp';
  await hosts.ssh(HOST, `mkdir -p /etc/tc-file && touch -d '2001-01-01 00:00:00' ${stamp}`);
  const file = playbook(
    'file-now.ts',
    'file',
    `  file({ path: '${stamp}', state: 'touch', modificationTime: 'now' }),`,
  );
  const mtime = async () => Number((await hosts.ssh(HOST, `stat -c %Y ${stamp}`)).stdout.trim());
  const old = await mtime();
  const check = await run(file, '--check');
  t.is(check.code, 0, check.stdout + check.stderr);
  t.is(await mtime(), old);
  for (const round of [1, 2]) {
    const res = await runJson(file);
    t.is(res.code, 0, res.output);
    t.is(res.changed, 1, `round ${round}: ${res.output}`);
    t.true((await mtime()) > old + 365 * 24 * 3600, `round ${round}`);
    await hosts.ssh(HOST, `touch -d '2001-01-01 00:00:00' ${stamp}`);
  }
});

test.serial('service: masked true masks the unit, masked false unmasks, starts and enables it', async (t) => {
  const unit = 'tc-opts-sleeper';
  await hosts.ssh(
    HOST,
    `printf '[Unit]\\nDescription=sleeper\\n[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n' > /usr/lib/systemd/system/${unit}.service && systemctl daemon-reload && systemctl start ${unit}`,
  );
  const unitState = async () =>
    (await hosts.ssh(HOST, `systemctl is-enabled ${unit}; systemctl is-active ${unit}`)).stdout
      .trim()
      .replace(/\n/g, ' ');
  t.is(await unitState(), 'disabled active');

  const mask = playbook(
    'mask.ts',
    'service',
    `  service({ unit: '${unit}', masked: true, state: 'stopped' }),`,
  );
  const first = await runJson(mask);
  t.is(first.code, 0, first.output);
  t.is(first.changed, 1, first.output);
  t.is(await unitState(), 'masked inactive');
  const second = await runJson(mask);
  t.is(second.code, 0, second.output);
  t.is(second.changed, 0, second.output);

  // Drift: unmasked by hand. Check mode leaves it so; the run masks it again.
  await hosts.ssh(HOST, `systemctl unmask ${unit}`);
  const check = await run(mask, '--check');
  t.is(check.code, 0, check.stdout + check.stderr);
  t.regex(check.stdout, /would change\s+tc-opts\s+.*service tc-opts-sleeper \(masked\)/);
  t.is(await unitState(), 'disabled inactive');
  const repaired = await runJson(mask);
  t.is(repaired.code, 0, repaired.output);
  t.is(repaired.changed, 1, repaired.output);
  t.is(await unitState(), 'masked inactive');

  const unmask = playbook(
    'unmask.ts',
    'service',
    `  service({ unit: '${unit}', masked: false, state: 'started', enabled: true }),`,
  );
  const started = await runJson(unmask);
  t.is(started.code, 0, started.output);
  t.is(started.changed, 1, started.output);
  t.is(await unitState(), 'enabled active');
  const again = await runJson(unmask);
  t.is(again.code, 0, again.output);
  t.is(again.changed, 0, again.output);
});
