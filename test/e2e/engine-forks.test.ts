/**
 * `--forks` over real SSH: with `--forks 1` the runs of three hosts never overlap (each host records
 * the start and end of its run from the kernel clock the test hosts share), and a playbook of two plays
 * over more hosts than `--forks` reconnects for the second play and still converges every host.
 * (The bound on open connections itself is proven with fake connections in engine-connection-pool.)
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli } from '../helpers/cli.js';
import { dropPackets } from '../helpers/faults.js';
import { useTestHosts } from '../helpers/testhosts.js';

const NAMES = ['scale-a', 'scale-b', 'scale-c'];
const hosts = useTestHosts(test, NAMES);
const dir = mkdtempSync(join(tmpdir(), 'vd-forks-e2e-'));

interface JsonReport {
  hosts: Record<
    string,
    { ok: number; changed: number; failed: number; unreachable: boolean; roundTrips: number }
  >;
}

/** A role whose first and last tasks record when the host's run started and ended (ns). */
const SPAN_ROLE = `
import { copy, defineRole, shell, z } from 'verdandi';

export default defineRole({
  name: 'span',
  vars: z.object({}),
  tasks: (_vars, host) => [
    shell({ script: 'date +%s%N > /root/vd-span-start' }),
    copy({ path: '/root/vd-span-who', content: host.name + '\\n' }),
    shell({ script: 'date +%s%N > /root/vd-span-end' }),
  ],
});
`;

function inventory(): string {
  const lines = ['hosts:'];
  for (const name of NAMES) {
    const h = hosts.get(name);
    lines.push(`  ${name}: { address: ${h.address}, user: ${h.user}, key: ${JSON.stringify(h.key)} }`);
  }
  lines.push('roles: [span]', '');
  mkdirSync(join(dir, 'inventories'), { recursive: true });
  writeFileSync(join(dir, 'inventories', 'forks.yml'), lines.join('\n'));
  mkdirSync(join(dir, 'roles', 'span'), { recursive: true });
  writeFileSync(join(dir, 'roles', 'span', 'index.ts'), SPAN_ROLE);
  return 'forks';
}

test.serial('--forks 1: host runs never overlap, every host converges', async (t) => {
  const env = inventory();
  const res = await runCli(['provision', env, '--forks', '1', '--json', '--host-key-checking=off'], {
    cwd: dir,
  });
  t.is(res.code, 0, res.stderr);
  const report = JSON.parse(res.stdout) as JsonReport;
  const spans: Array<[bigint, bigint]> = [];
  for (const name of NAMES) {
    t.is(report.hosts[name].failed, 0);
    const out = await hosts.ssh(name, 'cat /root/vd-span-start /root/vd-span-end /root/vd-span-who');
    const [start, end, who] = out.stdout.trim().split('\n');
    t.is(who, name);
    spans.push([BigInt(start), BigInt(end)]);
  }
  spans.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  for (let i = 1; i < spans.length; i++) {
    t.true(spans[i][0] > spans[i - 1][1], `host runs overlap: ${spans.map((s) => s.join('-')).join(', ')}`);
  }
});

test.serial('two plays over more hosts than --forks: connections reopen for the second play', async (t) => {
  inventory();
  writeFileSync(
    join(dir, 'two-plays.ts'),
    `
import { copy, definePlaybook } from 'verdandi';
export default definePlaybook({
  plays: [
    { hosts: 'all', tasks: (host) => [copy({ path: '/root/vd-play-1', content: host.name + '\\n' })] },
    { hosts: 'all', tasks: (host) => [copy({ path: '/root/vd-play-2', content: host.name + '\\n' })] },
  ],
});
`,
  );
  await Promise.all(NAMES.map((n) => hosts.ssh(n, 'rm -f /root/vd-play-1 /root/vd-play-2')));
  const res = await runCli(
    ['run', 'forks', 'two-plays.ts', '--forks', '2', '--json', '--host-key-checking=off'],
    {
      cwd: dir,
    },
  );
  t.is(res.code, 0, res.stderr);
  const report = JSON.parse(res.stdout) as JsonReport;
  for (const name of NAMES) {
    // Each play: one probe and one change, on a connection of its own; the counts add up.
    t.is(report.hosts[name].changed, 2);
    t.is(report.hosts[name].roundTrips, 4);
    t.is((await hosts.ssh(name, 'cat /root/vd-play-1 /root/vd-play-2')).stdout, `${name}\n${name}\n`);
  }
});

/** Role `n` of four: a file, a line in another, a mode; role 2's file notifies a handler (a command). */
function fourRoles(): string {
  const names = ['rt1', 'rt2', 'rt3', 'rt4'];
  for (const [i, name] of names.entries()) {
    const notify = name === 'rt2' ? ", notify: 'count'" : '';
    const handlers =
      name === 'rt2'
        ? "handlers: { 'count': () => shell({ script: 'echo ran >> /root/vd-rt2-handler' }) },"
        : '';
    mkdirSync(join(dir, 'roles', name), { recursive: true });
    writeFileSync(
      join(dir, 'roles', name, 'index.ts'),
      `import { copy, defineRole, file, lineinfile, shell, z } from 'verdandi';
export default defineRole({
  name: '${name}',
  vars: z.object({}),
  tasks: () => [
    copy({ path: '/root/vd-${name}', content: 'role ${i + 1}\\n'${notify} }),
    lineinfile({ path: '/root/vd-${name}.conf', line: 'managed=yes', create: true }),
    file({ path: '/root/vd-${name}', mode: '0640' }),
  ],
  ${handlers}
});
`,
    );
  }
  const lines = ['hosts:'];
  for (const name of NAMES) {
    const h = hosts.get(name);
    lines.push(`  ${name}: { address: ${h.address}, user: ${h.user}, key: ${JSON.stringify(h.key)} }`);
  }
  lines.push(`roles: [${names.join(', ')}]`, '');
  writeFileSync(join(dir, 'inventories', 'four.yml'), lines.join('\n'));
  return 'four';
}

test.serial('a provision of four roles that changes nothing costs one round trip per host', async (t) => {
  mkdirSync(join(dir, 'inventories'), { recursive: true });
  const env = fourRoles();
  const provision = async (...extra: string[]) => {
    const res = await runCli(['provision', env, '--json', '--host-key-checking=off', ...extra], { cwd: dir });
    t.is(res.code, 0, res.stderr);
    return JSON.parse(res.stdout) as JsonReport;
  };
  const first = await provision();
  for (const name of NAMES) t.is(first.hosts[name].changed, 13, `${name}: 12 tasks and the handler`);

  const again = await provision();
  const check = await provision('--check');
  for (const name of NAMES) {
    t.like(again.hosts[name], { changed: 0, ok: 12, roundTrips: 1 });
    t.like(check.hosts[name], { changed: 0, ok: 12, roundTrips: 1 });
  }

  // A drift in role 2 on one host: repaired, its handler runs, and the roles after it are probed
  // again after the change (here they find nothing to do).
  const [drifted] = NAMES;
  await hosts.ssh(drifted, 'echo drift > /root/vd-rt2; chmod 600 /root/vd-rt4');
  const repaired = await provision();
  t.like(repaired.hosts[drifted], { changed: 3, ok: 10 });
  // All roles probed (1); rt2's copy, with the rest of rt2 probed again on the host, found as it was,
  // so the handler runs and rt3 and rt4 are probed in the same script (1, see continuation.ts); rt4's
  // mode (1).
  t.is(repaired.hosts[drifted].roundTrips, 3);
  t.is((await hosts.ssh(drifted, 'cat /root/vd-rt2-handler')).stdout, 'ran\nran\n');
  for (const other of NAMES.slice(1)) t.like(repaired.hosts[other], { changed: 0, roundTrips: 1 });
  const state = await hosts.ssh(
    drifted,
    'cat /root/vd-rt2 /root/vd-rt2.conf; stat -c %a /root/vd-rt2 /root/vd-rt4',
  );
  t.is(state.stdout, 'role 2\nmanaged=yes\n640\n640\n');
});

/** `address:22` as /proc/net/tcp writes a remote address: the IPv4 bytes in host order, in hex. */
function procNetTcpAddress(address: string): string {
  const ip = address
    .split('.')
    .reverse()
    .map((b) => Number(b).toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
  return `${ip}:0016`;
}

test.serial('a second run of a playbook connects to its first play while the playbook loads', async (t) => {
  inventory();
  const host = hosts.get('scale-a');
  // The playbook looks, while it loads, for this process's TCP connection to the host's sshd (the
  // controller's own sockets, from the kernel): found within 3 s means the run connected before the
  // playbook was loaded. It writes what it saw on the host.
  writeFileSync(
    join(dir, 'early.ts'),
    `
import { readFileSync } from 'node:fs';
import { copy, definePlaybook } from 'verdandi';
const sshd = '${procNetTcpAddress(host.address)}';
function connected(): boolean {
  const lines = readFileSync('/proc/self/net/tcp', 'utf8').split('\\n').slice(1);
  return lines.some((line) => {
    const fields = line.trim().split(/\\s+/);
    return fields[2] === sshd && fields[3] === '01';
  });
}
let early = false;
for (const deadline = Date.now() + 3000; !early && Date.now() < deadline; ) {
  early = connected();
  if (!early) await new Promise((resolve) => setTimeout(resolve, 25));
}
export default definePlaybook({
  plays: [{ hosts: 'scale-a', tasks: () => [copy({ path: '/root/vd-early', content: early ? 'early\\n' : 'late\\n' })] }],
});
`,
  );
  const env = { VERDANDI_TS_CACHE: join(dir, 'ts-cache') };
  /** One run of early.ts, and what its playbook saw while it loaded. */
  const runAndRead = async () => {
    const res = await runCli(['run', 'forks', 'early.ts', '--json', '--host-key-checking=off'], {
      cwd: dir,
      env,
    });
    t.is(res.code, 0, res.stderr);
    return { res, seen: (await hosts.ssh('scale-a', 'cat /root/vd-early')).stdout };
  };
  t.is((await runAndRead()).seen, 'late\n', 'the first load: nothing remembered');
  const { res: second, seen } = await runAndRead();
  t.is(seen, 'early\n', 'the second: connected during the load');
  const report = JSON.parse(second.stdout) as JsonReport;
  t.deepEqual(Object.keys(report.hosts), ['scale-a']);
  t.is(report.hosts['scale-a'].roundTrips, 2, 'the probe and the write');
});

/**
 * moving.ts: one play whose pattern comes from the environment (VD_E2E_HOSTS): the same sources target
 * another host on the next run. It writes the host's name on it.
 */
function movingPlaybook(): void {
  writeFileSync(
    join(dir, 'moving.ts'),
    `
import { copy, definePlaybook } from 'verdandi';
export default definePlaybook({
  plays: [{ hosts: process.env.VD_E2E_HOSTS ?? 'none', tasks: (host) => [copy({ path: '/root/vd-moving', content: host.name + '\\n' })] }],
});
`,
  );
}

test.serial(
  'a first play whose pattern changed since the last run: the remembered host is left untouched',
  async (t) => {
    inventory();
    movingPlaybook();
    await Promise.all(NAMES.map((n) => hosts.ssh(n, 'rm -f /root/vd-moving')));
    const cache = join(dir, 'ts-cache-moving');
    const run = (target: string) =>
      runCli(['run', 'forks', 'moving.ts', '--json', '--host-key-checking=off'], {
        cwd: dir,
        env: { VERDANDI_TS_CACHE: cache, VD_E2E_HOSTS: target },
      });
    const first = await run('scale-a');
    t.is(first.code, 0, first.stderr);
    const second = await run('scale-b');
    t.is(second.code, 0, second.stderr);
    const report = JSON.parse(second.stdout) as JsonReport;
    t.deepEqual(Object.keys(report.hosts), ['scale-b'], "only the play's host is reported");
    t.is(report.hosts['scale-b'].changed, 1);
    t.is((await hosts.ssh('scale-b', 'cat /root/vd-moving')).stdout, 'scale-b\n');
    t.is(
      (await hosts.ssh('scale-a', 'cat /root/vd-moving')).stdout,
      'scale-a\n',
      "scale-a keeps the first run's file",
    );
    t.is((await hosts.ssh('scale-c', 'test -e /root/vd-moving; echo $?')).stdout.trim(), '1');
  },
);

test.serial(
  'a remembered host that no longer answers does not hold the end of a run that does not need it',
  async (t) => {
    inventory();
    movingPlaybook();
    const cache = join(dir, 'ts-cache-silent');
    const run = (target: string) =>
      runCli(['run', 'forks', 'moving.ts', '--json', '--host-key-checking=off', '--connect-timeout', '40'], {
        cwd: dir,
        env: { VERDANDI_TS_CACHE: cache, VD_E2E_HOSTS: target },
      });
    const first = await run('scale-a');
    t.is(first.code, 0, first.stderr);
    // scale-a goes silent (every packet dropped in its namespace): a connect to it waits the whole 40 s.
    const undrop = await dropPackets(hosts.get('scale-a'));
    try {
      const started = Date.now();
      const second = await run('scale-b');
      const seconds = (Date.now() - started) / 1000;
      t.is(second.code, 0, second.stderr);
      t.deepEqual(Object.keys((JSON.parse(second.stdout) as JsonReport).hosts), ['scale-b']);
      t.true(seconds < 20, `the run took ${seconds} s: it waited for the silent host`);
    } finally {
      await undrop();
    }
  },
);
