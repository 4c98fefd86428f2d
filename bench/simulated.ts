/**
 * The `many-hosts` scenario: how the controller copes with an inventory of hundreds of hosts, Verdandi
 * alone, no-change runs with a fixed `--forks`.
 *
 * The machine cannot boot 1,000 test hosts, so an inventory host is a port of one of a few real ones:
 * inside each backend host's network namespace, ports `firstPort..firstPort+max-1` are redirected to its
 * sshd (iptables REDIRECT), and sshd accepts that many handshakes at once (MaxStartups). Simulated host
 * i is `backend[i % backends]:firstPort+i`; each keeps its own file (sim-work.ts), so they share a
 * machine without sharing state. Every simulated host is one SSH connection and one session, as a real
 * host would be; only the hosts' side (sshd, probes) shares the backends' CPU.
 *
 * Host keys are checked the way users run (`accept-new` into the project's `.verdandi/known_hosts`):
 * each port of an address is its own `[address]:port` line, all with the backend's key; an untimed run
 * per size records the new ones and converges the hosts, then the timed runs verify them.
 *
 * Per size, two kinds of run. **Converge**: the first run of the size, every simulated host's file
 * removed and the project's known_hosts emptied before it, so every host is a first contact (its key
 * recorded) with one file to write. **No-change**: the timed runs after it. Both are measured: wall-clock
 * time, hosts reached, the controller's CPU time and peak memory (GNU time: user + system, maximum RSS
 * of the verdandi process). Per host means above a 1-host run of the same kind:
 * (figure(N) - figure(1)) / (N - 1), so Node's start-up and the engine's loading are not spread over
 * the hosts. Targets (issues 11 and 25): all hosts reached in both kinds of run, at most 10 ms CPU and
 * 1 MB per host, and CPU per host at the biggest size at most 2× that at the smallest. A handshake
 * Verdandi had to try twice is said in its output: the runs count those lines (a note per run).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import yaml from 'js-yaml';
import { pathWithSbin } from '../src/testhost/exec.js';
import { namespaceName } from '../src/testhost/naming.js';
import { type BenchHost, ssh, sshOk } from './hosts.js';
import { mapLimit, median, runOk, seconds } from './proc.js';
import { SIM_DIR } from './spec.js';
import { type RunOutcome, verdandi } from './tools.js';

export interface SimFigure {
  hosts: number;
  forks: number;
  /** Wall-clock ms of each timed run. */
  runs: number[];
  cpu: number[];
  /** Peak RSS of the verdandi process, KiB, per run. */
  maxRssKb: number[];
  /** Hosts that finished without failure and were reached, per run. */
  reached: number[];
  /** Exit code of each run. */
  codes: number[];
  /** Round trips per host, from `--json` (median over the hosts of the first timed run). */
  roundTrips?: number;
  /** Simulated hosts on each backend, in the backends' order (1,000 on 4: 250 each). */
  perBackend: number[];
  /** The size's first run, from no file and no known host key (one run; its `reached`, CPU...). */
  converge?: SimFigure;
  notes: string[];
}

export interface SimResult {
  backends: string[];
  forks: number;
  /** The runs' `--connect-timeout`, seconds. */
  connectTimeout?: number;
  /** The same command on 1 simulated host: what is not per host. */
  baseline: SimFigure;
  figures: SimFigure[];
  /** Lines of the project's known_hosts after the biggest size. */
  knownHostsLines: number;
  notes: string[];
}

export interface SimOptions {
  /** Inventory sizes, ascending (50, 200, 1000). */
  counts: number[];
  forks: number;
  firstPort: number;
  /** Verdandi's `--connect-timeout`, seconds (its default is 10). */
  connectTimeout: number;
  /** Timed runs for a size of this many hosts. */
  runsFor: (hosts: number) => number;
}

const playbook = new URL('./sim-work.ts', import.meta.url).pathname;
const RULE_COMMENT = 'verdandi-bench-many-hosts';

/** Runs a build-machine command inside the backend's network namespace (iptables lives in /sbin). */
export function inNamespace(host: BenchHost, command: string[]) {
  return runOk('ip', ['netns', 'exec', namespaceName(host.name), ...command], {
    env: { ...process.env, PATH: pathWithSbin() },
  });
}

/**
 * Makes the backends answer on every simulated port: the REDIRECT rule in each one's namespace (added
 * once; it goes with the namespace when the host stops), and sshd accepting `maxConnections`
 * unauthenticated connections at once instead of OpenSSH's default of 10 (beyond which it drops them at
 * random, which would read as unreachable hosts).
 */
export async function prepareBackends(
  backends: BenchHost[],
  firstPort: number,
  maxConnections: number,
): Promise<void> {
  const ports = `${firstPort}:${firstPort + maxConnections - 1}`;
  const rule = ['PREROUTING', '-p', 'tcp', '--dport', ports, '-m', 'comment', '--comment', RULE_COMMENT];
  const target = ['-j', 'REDIRECT', '--to-ports', '22'];
  await mapLimit(backends, 4, async (host) => {
    const present = await inNamespace(host, ['iptables', '-t', 'nat', '-C', ...rule, ...target]).then(
      () => true,
      () => false,
    );
    if (!present) await inNamespace(host, ['iptables', '-t', 'nat', '-A', ...rule, ...target]);
    await raiseMaxStartups(host, maxConnections + 100);
  });
}

/**
 * sshd of `host` accepts `limit` unauthenticated connections at once (and sessions per connection)
 * instead of OpenSSH's default of 10, past which it drops new ones at random.
 */
export async function raiseMaxStartups(host: BenchHost, limit: number): Promise<void> {
  await sshOk(
    host,
    [
      'set -e',
      `printf 'MaxStartups ${limit}\\nMaxSessions ${limit}\\n' > /etc/ssh/sshd_config.d/bench-many-hosts.conf`,
      'sshd -t',
      'systemctl reload ssh',
    ].join('\n'),
  );
  await waitForSshd(host);
}

/** sshd re-executes itself on a reload: for a moment nothing listens (connection refused). */
async function waitForSshd(host: BenchHost): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const res = await ssh(host, 'true', undefined, 15_000);
    if (res.code === 0) return;
    if (attempt === 50) throw new Error(`${host.name}: sshd did not answer after its reload: ${res.stderr}`);
    await sleep(200); // between attempts of a bounded retry
  }
}

/** Simulated host i (0-based): its name, backend and port. */
export function simulatedHosts(backends: BenchHost[], count: number, firstPort: number) {
  return Array.from({ length: count }, (_, i) => {
    const backend = backends[i % backends.length];
    return {
      name: `sim-${String(i + 1).padStart(4, '0')}`,
      entry: {
        address: backend.address,
        port: firstPort + i,
        user: backend.user,
        ...(backend.key ? { key: backend.key } : {}),
      },
    };
  });
}

async function writeInventory(
  dir: string,
  backends: BenchHost[],
  count: number,
  firstPort: number,
): Promise<string> {
  const file = join(dir, `inventory-${count}.yml`);
  const hosts = Object.fromEntries(simulatedHosts(backends, count, firstPort).map((h) => [h.name, h.entry]));
  await writeFile(file, `# Written by the benchmark driver.\n${yaml.dump({ hosts }, { lineWidth: -1 })}`);
  return file;
}

const reachedCount = (run: RunOutcome) =>
  [...run.hosts.values()].filter((h) => !h.unreachable && h.failed === 0).length;

/** Handshakes tried a second time in a run: Verdandi says each one (`... trying once more in 1.4 s`). */
const retriedCount = (run: RunOutcome) => run.output.match(/trying once more in/g)?.length ?? 0;

function summary(run: RunOutcome, count: number): string {
  const unreachable = [...run.hosts.values()].filter((h) => h.unreachable).length;
  const failed = [...run.hosts.values()].filter((h) => h.failed > 0).length;
  const changed = [...run.hosts.values()].reduce((sum, h) => sum + h.changed, 0);
  // Why hosts were unreachable: the first such line of the output (they mostly share one reason).
  const why =
    unreachable > 0
      ? run.output.split('\n').find((l) => /^unreachable|tried twice/i.test(l.trim()))
      : undefined;
  const tail =
    run.hosts.size === 0
      ? `: ${run.output.trim().split('\n').slice(-3).join(' | ')}`
      : why
        ? ` (first: ${why.trim()})`
        : '';
  return `exit ${run.code}, ${reachedCount(run)}/${count} reached, ${unreachable} unreachable, ${failed} failed, ${changed} changed, ${retriedCount(run)} handshake(s) retried${tail}`.slice(
    0,
    500,
  );
}

export async function simulatedScenario(
  backends: BenchHost[],
  opts: SimOptions,
  workDir: string,
  log: (line: string) => void,
): Promise<SimResult> {
  const dir = join(workDir, 'many-hosts');
  await mkdir(dir, { recursive: true });
  const max = opts.counts.at(-1) ?? 1;
  await prepareBackends(backends, opts.firstPort, max);
  // The shared directory exists from the start: dozens of simulated hosts of one backend creating it at
  // once in the untimed runs would only be noise.
  await Promise.all(backends.map((b) => sshOk(b, `rm -rf ${SIM_DIR} && mkdir -m 0755 ${SIM_DIR}`)));
  const result: SimResult = {
    backends: backends.map((b) => b.name),
    forks: opts.forks,
    connectTimeout: opts.connectTimeout,
    baseline: newFigure(1, opts.forks, spread(backends, 1)),
    figures: [],
    knownHostsLines: 0,
    notes: [],
  };

  const knownHostsFile = join(dir, '.verdandi', 'known_hosts');
  const measure = async (figure: SimFigure) => {
    const count = figure.hosts;
    const inventory = await writeInventory(dir, backends, count, opts.firstPort);
    const run = () =>
      verdandi(
        [
          'run',
          inventory,
          playbook,
          '--forks',
          String(opts.forks),
          '--connect-timeout',
          String(opts.connectTimeout),
        ],
        'accept-new',
      );
    // Converge: no simulated host has its file, no key is known yet (sizes run in turn reuse ports).
    await Promise.all(backends.map((b) => sshOk(b, `find ${SIM_DIR} -mindepth 1 -delete`)));
    await rm(knownHostsFile, { force: true });
    const converge = newFigure(count, opts.forks, figure.perBackend);
    figure.converge = converge;
    record(converge, await run(), 'converge', 1);
    for (let r = 0; r < opts.runsFor(count); r++) record(figure, await run(), 'no-change', r + 1);
  };

  /** One run into its figure; anything off what its kind expects (a host missed, a change) into its notes. */
  const record = (figure: SimFigure, timed: RunOutcome, kind: 'converge' | 'no-change', n: number) => {
    const count = figure.hosts;
    const reached = reachedCount(timed);
    figure.runs.push(timed.ms);
    figure.reached.push(reached);
    figure.codes.push(timed.code);
    if (timed.cpuMs !== undefined) figure.cpu.push(timed.cpuMs);
    if (timed.maxRssKb !== undefined) figure.maxRssKb.push(timed.maxRssKb);
    figure.roundTrips ??= median([...timed.hosts.values()].map((h) => h.roundTrips));
    // A converge run writes each host's file and nothing else; a no-change run writes nothing.
    const want = kind === 'converge' ? 1 : 0;
    const wrong = [...timed.hosts.values()].some((h) => h.changed !== want);
    if (reached < count || timed.code !== 0 || wrong || retriedCount(timed) > 0)
      figure.notes.push(`${kind} run ${n}: ${summary(timed, count)}`);
    log(
      `many-hosts ${count} ${kind} #${n}: ${seconds(timed.ms)} s, ${reached}/${count} reached, ` +
        `${retriedCount(timed)} handshake(s) retried, ` +
        `CPU ${seconds(timed.cpuMs ?? Number.NaN)} s, max RSS ${((timed.maxRssKb ?? Number.NaN) / 1024).toFixed(0)} MiB`,
    );
  };

  // Untimed: bundles the playbook into the compile cache, which the 1-host converge would otherwise pay.
  const warm = await verdandi(['run', await writeInventory(dir, backends, 1, opts.firstPort), playbook]);
  log(`many-hosts: untimed warm-up run in ${seconds(warm.ms)} s (${summary(warm, 1)})`);
  await measure(result.baseline);
  for (const count of opts.counts) {
    const figure = newFigure(count, opts.forks, spread(backends, count));
    result.figures.push(figure);
    await measure(figure);
  }
  const knownHosts = await readFile(knownHostsFile, 'utf8').catch(() => '');
  result.knownHostsLines = knownHosts.split('\n').filter(Boolean).length;
  await Promise.all(backends.map((b) => sshOk(b, `rm -rf ${SIM_DIR}`)));
  return result;
}

function newFigure(hosts: number, forks: number, perBackend: number[]): SimFigure {
  return { hosts, forks, runs: [], cpu: [], maxRssKb: [], reached: [], codes: [], perBackend, notes: [] };
}

/** How many of `count` simulated hosts each backend serves (simulatedHosts' round robin). */
function spread(backends: BenchHost[], count: number): number[] {
  const hosts = simulatedHosts(backends, count, 1);
  return backends.map((b) => hosts.filter((h) => h.entry.address === b.address).length);
}

/** Controller cost per host above the 1-host baseline: (figure(N) - figure(1)) / (N - 1). */
export function perHost(values: number[], baseline: number[], hosts: number): number {
  if (hosts <= 1) return Number.NaN;
  return (median(values) - median(baseline)) / (hosts - 1);
}
