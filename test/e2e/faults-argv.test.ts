/**
 * No payload in argv, ever: the command line of every process Verdandi starts on a host is the short
 * fixed bootstrap; scripts, file contents, SQL and env values travel on stdin. A sampler on the host
 * records `ps -eww` every 50 ms during a run whose tasks carry a secret in copy, template, lineinfile,
 * command env and stdin, a shell script (as root, as another user, under a timeout), the unless and
 * onlyIf guards, a postgres password and a deploy's site command run as the app user: the secret never appears, while the sampler did see
 * Verdandi's bootstrap (it sampled during the run). `command({ argv })` is documented as the one
 * exception (the program's argv is its command line): the sampler sees it. And a play of 1,000 tasks,
 * whose probes are far beyond Linux's 128 KiB limit for one argument, runs.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { asApp } from '../../src/deploy/release-files.js';
import type { SitePaths } from '../../src/deploy/site-base.js';
import { buildProbeBatch } from '../../src/engine/probe-batch.js';
import { copy } from '../../src/tasks/index.js';
import { runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'faults-e';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-faults-argv-'));
const SAMPLES = '/root/ps-samples.log';
const SAMPLING = '/root/sampling';

test.serial('a secret in every kind of task never shows in the host process list', async (t) => {
  const secret = `S3cr3t-${randomBytes(8).toString('hex')}`;
  const argvMark = randomBytes(4).toString('hex');
  const inventory = writeInventory(dir, { hosts: { [HOST]: hosts.get(HOST) } });
  writeFileSync(join(dir, 'app.conf.hbs'), 'password = {{password}}\n');
  const site = join(dir, 'secrets.ts');
  writeFileSync(
    site,
    `import { definePlaybook, apt, copy, template, lineinfile, command, shell, postgresUser } from 'verdandi';
const secret = ${JSON.stringify(secret)};
const argvMark = ${JSON.stringify(argvMark)};
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [
  copy({ path: '/srv/secret-copy', content: 'key=' + secret + '\\n', mode: '0600' }),
  template({ path: '/srv/secret-template', src: new URL('./app.conf.hbs', import.meta.url), vars: { password: secret }, mode: '0600' }),
  lineinfile({ path: '/srv/secret-lines', line: 'db_password=' + secret, regexp: '^db_password=', create: true }),
  lineinfile({ path: '/srv/secret-lines', line: 'other=1', create: true }),
  command({ argv: ['sh', '-c', 'sleep 0.3; test "$DB_PASSWORD" = "$(cat /srv/secret-copy | cut -d= -f2)" && echo env-ok > /srv/secret-env'], env: { DB_PASSWORD: secret } }),
  shell({ script: 'sleep 0.3; cat > /srv/secret-stdin', stdin: secret + '\\n' }),
  shell({ script: 'sleep 0.5; test "' + secret + '" = "$(cut -d= -f2 /srv/secret-copy)" && echo script-ok > /srv/secret-script', timeout: 60 }),
  shell({ script: 'sleep 0.5; echo "' + secret + '" > /tmp/secret-user', user: 'nobody', cwd: '/tmp' }),
  shell({ script: 'echo guarded > /srv/secret-guarded', unless: 'sleep 0.5; test "' + secret + '" = nope', onlyIf: 'sleep 0.5; test -n "' + secret + '"' }),
  command({ argv: ['sh', '-c', 'sleep 0.5', 'argv-is-visible-' + argvMark] }),
  apt({ packages: ['postgresql'] }),
  postgresUser({ name: 'app', password: secret }),
] }] });
`,
  );
  await hosts.ssh(
    HOST,
    [
      'id deploy2 >/dev/null 2>&1 || useradd -m -s /bin/bash deploy2',
      `echo 'deploy2:${secret}' | chpasswd`,
      "echo 'deploy2 ALL=(ALL) ALL' > /etc/sudoers.d/deploy2",
      'mkdir -p /home/deploy2/.ssh && cp /root/.ssh/authorized_keys /home/deploy2/.ssh/ && chown -R deploy2: /home/deploy2/.ssh',
    ].join(' && '),
  );
  const h = hosts.get(HOST);
  const sudoInventory = writeInventory(
    dir,
    {
      hosts: {
        viasudo: { address: h.address, user: 'deploy2', key: h.key, become: true, become_password: secret },
      },
    },
    'sudo',
  );
  const sudoSite = join(dir, 'sudo.ts');
  writeFileSync(
    sudoSite,
    `import { definePlaybook, copy, command } from 'verdandi';
const secret = ${JSON.stringify(secret)};
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [
  copy({ path: '/srv/secret-sudo', content: secret + '\\n', mode: '0600' }),
  command({ argv: ['sh', '-c', 'sleep 0.3; test "$S" = "$(cat /srv/secret-sudo)" && echo env-ok > /srv/secret-sudo-env'], env: { S: secret } }),
] }] });
`,
  );
  // The sampler: every 50 ms, every process's full command line.
  await hosts.ssh(
    HOST,
    `rm -f ${SAMPLES}; touch ${SAMPLING}; nohup sh -c 'while [ -e ${SAMPLING} ]; do ps -eww -o args >> ${SAMPLES}; echo --- >> ${SAMPLES}; sleep 0.05; done' >/dev/null 2>&1 &`,
  );
  const res = await runCli(['run', inventory, site, '--host-key-checking=off', '-v'], {
    cwd: dir,
    timeoutMs: 10 * 60_000,
  });
  // The same through a user whose sudo needs a password (the secret): it is stdin's first line.
  const viaSudo = await runCli(['run', sudoInventory, sudoSite, '--host-key-checking=off', '-v'], {
    cwd: dir,
  });
  // A deploy's site command (build, migration), as the app user: its text is on no command line either.
  const siteCommand = asApp(
    { user: 'nobody', dir: '/tmp' } as SitePaths,
    '/tmp',
    `sleep 0.5; echo "${secret}" > /tmp/secret-site-command`,
  );
  // On stdin: the harness's ssh would put a command given as its argument on the host's command line.
  const deployStep = await hosts.ssh(HOST, 'sh -s', { input: `${siteCommand}\n` });
  await hosts.ssh(HOST, `rm -f ${SAMPLING}`);
  t.is(deployStep.code, 0, deployStep.stderr);
  t.is(res.code, 0, res.stdout + res.stderr);
  t.false(`${res.stdout}${res.stderr}`.includes(secret), 'the secret is not printed');
  t.is(viaSudo.code, 0, viaSudo.stdout + viaSudo.stderr);
  t.false(`${viaSudo.stdout}${viaSudo.stderr}`.includes(secret), 'the secret is not printed');
  t.is(
    (await hosts.ssh(HOST, 'stat -c %U:%a /srv/secret-sudo; cat /srv/secret-sudo-env')).stdout,
    'root:600\nenv-ok\n',
  );

  // The run did what it says: the secret reached every file, the env and psql.
  const state = await hosts.ssh(
    HOST,
    `cat /srv/secret-env /srv/secret-script /srv/secret-guarded; stat -c %U /tmp/secret-user /tmp/secret-site-command; ` +
      `grep -c ${secret} /srv/secret-copy /srv/secret-template /srv/secret-lines /srv/secret-stdin /tmp/secret-user /tmp/secret-site-command; ` +
      `runuser -u postgres -- psql -tAc "select rolname from pg_roles where rolname = 'app'"`,
  );
  t.is(
    state.stdout,
    'env-ok\nscript-ok\nguarded\nnobody\nnobody\n' +
      '/srv/secret-copy:1\n/srv/secret-template:1\n/srv/secret-lines:1\n/srv/secret-stdin:1\n/tmp/secret-user:1\n' +
      '/tmp/secret-site-command:1\napp\n',
    state.stderr,
  );

  const samples = (await hosts.ssh(HOST, `cat ${SAMPLES}`, { timeoutMs: 60_000 })).stdout;
  const count = samples.split('\n---\n').length;
  t.true(count > 20, `only ${count} samples`);
  t.true(samples.includes('IFS= read -r vd_n'), 'the sampler saw the bootstrap of a Verdandi command');
  const showing = [...new Set(samples.split('\n').filter((line) => line.includes(secret)))];
  t.deepEqual(
    showing.map((line) => line.split(secret).join('<secret>')),
    [],
    'the secret appeared in the process list',
  );
  // What the README says of argv: the program's own command line, seen by ps (no secret there).
  t.true(samples.includes(`argv-is-visible-${argvMark}`), 'the sampler did not see the argv of command()');
  // Nothing but the fixed bootstrap: no probe or step script shows either.
  t.false(samples.includes('@@vd-'), 'a script (probe batch markers) appeared in the process list');
  t.false(samples.includes('db_password'), 'a lineinfile line appeared in the process list');
});

test.serial('a play of 1,000 tasks runs: probes travel on stdin, no argument length limit', async (t) => {
  const inventory = writeInventory(dir, { hosts: { [HOST]: hosts.get(HOST) } }, 'many');
  const site = join(dir, 'many.ts');
  writeFileSync(
    site,
    `import { definePlaybook, copy } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () =>
  Array.from({ length: 1000 }, (_, i) => copy({ path: '/srv/many/file-' + i + '-with-a-rather-long-name-to-make-probes-bigger.conf', content: 'file ' + i + '\\n', mode: '0644' })),
}] });
`,
  );
  const tasks = Array.from({ length: 1000 }, (_, i) =>
    copy({
      path: `/srv/many/file-${i}-with-a-rather-long-name-to-make-probes-bigger.conf`,
      content: `file ${i}\n`,
    }),
  );
  const probes = buildProbeBatch(tasks.map((task, i) => [String(i), task.probe, task.files])).script.length;
  t.true(probes > 128 * 1024, `the probe script is ${probes} bytes: not beyond one argument's limit`);
  // All but the last three exist already: one probe round trip for 1,000 tasks, then three writes
  // each carrying the re-probe of what remains.
  await hosts.ssh(
    HOST,
    'mkdir -p /srv/many && cd /srv/many && for i in $(seq 0 996); do printf "file %s\\n" $i > file-$i-with-a-rather-long-name-to-make-probes-bigger.conf; done; chmod 0644 /srv/many/*',
  );
  const res = await runCli(['run', inventory, site, '--host-key-checking=off', '--json'], { cwd: dir });
  t.is(res.code, 0, res.stderr);
  const report = JSON.parse(res.stdout) as {
    hosts: Record<string, { ok: number; changed: number; roundTrips: number }>;
  };
  t.is(report.hosts[HOST].ok, 997);
  t.is(report.hosts[HOST].changed, 3);
  t.true(report.hosts[HOST].roundTrips <= 4, `${report.hosts[HOST].roundTrips} round trips`);
  const again = await runCli(['run', inventory, site, '--host-key-checking=off', '--json'], { cwd: dir });
  t.is(again.code, 0, again.stderr);
  const second = (JSON.parse(again.stdout) as typeof report).hosts[HOST];
  t.is(second.ok, 1000);
  t.is(second.roundTrips, 1);
});
