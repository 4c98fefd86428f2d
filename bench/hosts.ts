/**
 * The machines the benchmark runs on: test hosts it boots itself (`bench-1`..`bench-N`, stopped at the
 * end whatever happens), or the hosts of an inventory given with `--inventory`.
 *
 * Also what happens on them outside the timed runs, over plain `ssh`:
 * - `seedHosts`: once after boot, downloads the .deb files of the work on ONE host and copies them (and
 *   its fresh apt lists) to every other host, so a 50-host converge does not download everything 50
 *   times; installs python3-apt (Ansible's apt module needs it); records the packages installed so far.
 * - `resetHosts`: before each converge run, removes everything the work created (the packages it
 *   installed, the user, the files) and ages the apt lists, so both tools start from the same state as
 *   a fresh host (the .deb files stay in apt's cache: that is the shared cache).
 */
import { words } from '../src/util/shell.js';
import { type Finished, mapLimit, runTimed } from './proc.js';
import { BENCH_DIR, BENCH_PACKAGES, BENCH_USER } from './spec.js';

export interface BenchHost {
  name: string;
  address: string;
  port: number;
  user: string;
  /** Private key file; undefined: the ssh agent / default keys. */
  key?: string;
}

export type Log = (line: string) => void;

/** OpenSSH options of every plain ssh call of the benchmarks: the test hosts are fresh, their keys new. */
export const SSH_OPTIONS = [
  '-o',
  'StrictHostKeyChecking=no',
  '-o',
  'UserKnownHostsFile=/dev/null',
  '-o',
  'BatchMode=yes',
  '-o',
  'LogLevel=ERROR',
  '-o',
  'ConnectTimeout=10',
];

/** Options of every plain `ssh` call: the benchmark's own calls and the raw-ssh baseline alike. */
export function sshArgs(host: BenchHost, remoteCommand: string): string[] {
  return [
    ...(host.key ? ['-i', host.key] : []),
    '-p',
    String(host.port),
    ...SSH_OPTIONS,
    `${host.user}@${host.address}`,
    remoteCommand,
  ];
}

/** Runs a POSIX sh script on the host (as `sh -c SCRIPT`) over one plain ssh call. */
export function ssh(
  host: BenchHost,
  script: string,
  input?: string | Buffer,
  timeoutMs = 600_000,
): Promise<Finished> {
  return runTimed('ssh', sshArgs(host, words('sh', '-c', script)), { input, timeoutMs });
}

export async function sshOk(host: BenchHost, script: string, input?: string | Buffer): Promise<Finished> {
  const res = await ssh(host, script, input);
  if (res.code !== 0) {
    const tail = `${res.stdout}\n${res.stderr}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${host.name}: remote script exited ${res.code}:\n${tail}`);
  }
  return res;
}

// ---- booting and stopping test hosts ----------------------------------------------------------------

/** Names of the benchmark's own test hosts. */
export function benchHostNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `bench-${i + 1}`);
}

/**
 * Every container's systemd takes inotify instances of the build machine's root user; the kernel's
 * default (128 per user) runs out at about 20 test hosts ("Failed to allocate manager object: Too many
 * open files"). Raised here, never lowered.
 */
async function raiseInotifyLimits(log: Log): Promise<void> {
  const { readFile, writeFile } = await import('node:fs/promises');
  for (const [name, wanted] of [
    ['max_user_instances', 8192],
    ['max_user_watches', 1_048_576],
  ] as const) {
    const file = `/proc/sys/fs/inotify/${name}`;
    const current = Number((await readFile(file, 'utf8').catch(() => '0')).trim());
    if (current >= wanted) continue;
    await writeFile(file, `${wanted}\n`);
    log(`fs.inotify.${name}: ${current} → ${wanted} (systemd in many containers needs more)`);
  }
}

/**
 * Boots the hosts in batches (a whole Debian boots per host: 50 at once would starve the machine),
 * fresh (a running host of the same name from an earlier run is stopped first).
 */
export async function bootHosts(names: string[], batchSize: number, log: Log): Promise<BenchHost[]> {
  const { up } = await import('../src/testhost/index.js');
  if (names.length > 10) await raiseInotifyLimits(log);
  const hosts: BenchHost[] = [];
  for (let i = 0; i < names.length; i += batchSize) {
    const batch = names.slice(i, i + batchSize);
    const started = Date.now();
    const booted = await up(batch, { fresh: true });
    hosts.push(
      ...booted.map((h) => ({ name: h.name, address: h.address, port: h.port, user: h.user, key: h.key })),
    );
    log(`booted ${batch[0]}..${batch[batch.length - 1]} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  return hosts;
}

export async function stopHosts(names: string[], log: Log): Promise<void> {
  if (names.length === 0) return;
  const { down } = await import('../src/testhost/index.js');
  const stopped = await down(names);
  log(`stopped ${stopped.length} test host(s)`);
}

/** The hosts of an inventory (any format Verdandi reads), in file order. */
export async function hostsFromInventory(file: string): Promise<BenchHost[]> {
  const { loadInventory } = await import('../src/inventory/load.js');
  const inventory = await loadInventory(file, { cwd: process.cwd() });
  return [...inventory.hosts.values()].map((h) => ({
    name: h.name,
    address: h.address,
    port: h.port,
    user: h.user,
    key: h.key,
  }));
}

// ---- preparing and resetting -------------------------------------------------------------------------

const BASELINE = '/var/lib/bench-baseline-packages';
const SEED_MARK = '/var/tmp/bench-seed-mark';
const APT_ENV = 'export DEBIAN_FRONTEND=noninteractive LC_ALL=C';
const APT_GET = 'apt-get -q -y -o DPkg::Lock::Timeout=300';

/** Makes the apt lists look two hours old, so the next run of either tool refreshes them (3600 s). */
const AGE_APT_LISTS = [
  'for f in /var/lib/apt/lists /var/lib/apt/lists/partial /var/lib/apt/periodic/update-success-stamp; do',
  '  [ -e "$f" ] && touch -d "2 hours ago" "$f"',
  'done',
  'true',
].join('\n');

/** See the file comment. The first host downloads; the others get its files. */
export async function seedHosts(hosts: BenchHost[], log: Log): Promise<void> {
  const [first, ...others] = hosts;
  const started = Date.now();
  await sshOk(
    first,
    [
      'set -e',
      APT_ENV,
      `touch ${SEED_MARK}`,
      `${APT_GET} update >/dev/null`,
      `${APT_GET} install python3-apt >/dev/null`,
      `${APT_GET} install --download-only ${words(...BENCH_PACKAGES)} >/dev/null`,
    ].join('\n'),
  );
  const archive = await sshOk(
    first,
    `cd / && find var/cache/apt/archives var/lib/apt/lists -type f -newer ${SEED_MARK} ! -name lock | tar -czf - -T - | base64 -w0`,
  );
  const tarball = Buffer.from(archive.stdout.trim(), 'base64');
  log(
    `apt cache of ${first.name}: ${(tarball.length / 1e6).toFixed(1)} MB to copy to ${others.length} host(s)`,
  );
  await mapLimit(others, 8, (host) =>
    sshOk(
      host,
      ['set -e', APT_ENV, 'tar -C / -xzf -', `${APT_GET} install python3-apt >/dev/null`].join('\n'),
      tarball,
    ),
  );
  await mapLimit(hosts, 10, (host) =>
    sshOk(
      host,
      [
        // One-change runs restart nginx a few seconds apart: past 5 starts in 10 s systemd would refuse
        // ("start of the service was attempted too often"), whichever tool asks.
        'mkdir -p /etc/systemd/system/nginx.service.d',
        "printf '[Unit]\\nStartLimitIntervalSec=0\\n' > /etc/systemd/system/nginx.service.d/bench-no-start-limit.conf",
        'systemctl daemon-reload',
        `dpkg-query -W -f='\${db:Status-Abbrev} \${Package}\\n' | awk '$1 == "ii" { print $2 }' | sort > ${BASELINE}`,
        AGE_APT_LISTS,
      ].join('\n'),
    ),
  );
  log(`seeded ${hosts.length} host(s) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** Undoes the work on every host (see the file comment). Needs `seedHosts` to have recorded the baseline. */
export async function resetHosts(hosts: BenchHost[]): Promise<void> {
  const script = [
    APT_ENV,
    `[ -f ${BASELINE} ] || { echo 'no package baseline: run seedHosts first' >&2; exit 1; }`,
    'systemctl stop nginx cron 2>/dev/null',
    `extra=$(dpkg-query -W -f='\${db:Status-Abbrev} \${Package}\\n' | awk '$1 == "ii" { print $2 }' | sort | comm -13 ${BASELINE} -)`,
    `if [ -n "$extra" ]; then ${APT_GET} purge $extra >/dev/null || exit 1; fi`,
    `userdel -r ${BENCH_USER} 2>/dev/null`,
    `groupdel ${BENCH_USER} 2>/dev/null`,
    `rm -rf ${BENCH_DIR} /etc/nginx /var/lib/verdandi`,
    AGE_APT_LISTS,
  ].join('\n');
  // dpkg is CPU-bound: a few hosts at a time.
  await mapLimit(hosts, 6, (host) => sshOk(host, script));
}

/** Checks plain ssh reaches every host (a clear error before the first timed run). */
export async function checkReachable(hosts: BenchHost[]): Promise<void> {
  await mapLimit(hosts, 10, async (host) => {
    const res = await runTimed('ssh', sshArgs(host, 'true'), { timeoutMs: 30_000 });
    if (res.code !== 0)
      throw new Error(`${host.name} (${host.address}) is not reachable over ssh: ${res.stderr.trim()}`);
  });
}
