/**
 * The benchmark driver (`npm run bench`): Verdandi against Ansible and against the raw-ssh limit.
 *
 *   npm run bench                              boot bench-1..bench-50 (+ bench-staging), everything,
 *                                              write bench/RESULTS.md, stop the hosts
 *   npm run bench -- --hosts 1,10 --runs 3     fewer hosts and runs
 *   npm run bench -- --inventory inv.yml       against existing hosts (any inventory Verdandi reads);
 *                                              converge only with --allow-reset (it purges packages)
 *   npm run bench -- --scenarios copies,many-hosts --label scale
 *                                              Verdandi alone at scale: a role of 300 and 1,000 tasks,
 *                                              and 50, 200, 1,000 simulated hosts (see RESULTS.md)
 *   npm run bench -- --scenarios check --runs 10 --label check
 *                                              `verdandi check` of the example inventories (no host)
 *   npm run bench -- --scenarios check-scale --runs 3 --label check-scale
 *                                              `verdandi check` of 1,000, 5,000, 10,000 generated hosts
 *
 * Options: --hosts 1,10,50  --runs 5 (timed runs per figure)  --big-runs 3 (for 25+ hosts; first + all-changed pairs of copies)
 *   --converge-runs 3 (under 10 hosts)  --big-converge-runs 1 (10+ hosts)  --no-ansible
 *   --scenarios converge,no-change,one-change,staging (the default; also copies,many-hosts,check)
 *   --boot-batch 10  --keep-hosts  --out FILE
 *   --label NAME (the block of RESULTS.md this run rewrites, default main)
 *   copies: --copies 300 (tasks of the first/all-changed/no-change runs)  --copies-big 1000 (no-change)
 *   many-hosts: --sim-hosts 50,200,1000  --sim-forks 100  --sim-backends 4 (real test hosts behind them)
 *     --sim-first-port 2201  --huge-runs 1 (timed runs for 500+ simulated hosts)
 *     --sim-connect-timeout 10 (s: Verdandi's --connect-timeout; more on a machine too loaded for it)
 *
 * Scenarios, for each host count (the first N hosts):
 *   converge    from a fresh host (packages, user, files...): the hosts are reset before every run
 *   no-change   everything already converged: what users feel every day (raw ssh too)
 *   one-change  one template var changes: one file is written and nginx restarts
 *   staging     Verdandi alone provisions one more host with the built-in roles (STAGING_ROLES)
 * and, Verdandi alone, once (not per host count; only when named in --scenarios):
 *   copies      one role of many `copy` tasks on the first host (copies.ts)
 *   many-hosts  hundreds of inventory hosts that are ports of the first few hosts (simulated.ts)
 *   check       `verdandi check` of the repository's example inventories, no host (check.ts)
 *   check-scale `verdandi check` of generated inventories of thousands of hosts, no host (check-scale.ts)
 * Verdandi and Ansible alternate inside each scenario (and raw ssh on no-change), so a change in the
 * machine's load hits all of them; each figure is the median of the runs.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { type CheckResult, checkScenario } from './check.js';
import { type CheckScaleResult, checkScaleScenario } from './check-scale.js';
import { type CopiesResult, copiesScenario } from './copies.js';
import {
  type BenchHost,
  benchHostNames,
  bootHosts,
  checkReachable,
  hostsFromInventory,
  resetHosts,
  seedHosts,
  stopHosts,
} from './hosts.js';
import { machineInfo } from './machine.js';
import { loadAverage, median, runTimed, seconds } from './proc.js';
import { writeReport } from './report.js';
import { type SimResult, simulatedScenario } from './simulated.js';
import { STAGING_ROLES } from './spec.js';
import {
  type AnsibleFiles,
  allOk,
  type RunOutcome,
  repoRoot,
  runAnsible,
  runRaw,
  runVerdandi,
  runVerdandiProvision,
  verdandiBin,
  writeAnsibleFiles,
  writeVerdandiInventory,
} from './tools.js';

export type Scenario = 'converge' | 'no-change' | 'one-change';
/** `staging`: Verdandi alone provisions a host with the built-in roles (see STAGING_ROLES). */
const SCENARIOS = [
  'converge',
  'no-change',
  'one-change',
  'staging',
  'copies',
  'many-hosts',
  'check',
  'check-scale',
] as const;
type ScenarioName = (typeof SCENARIOS)[number];
/** Without `--scenarios`: the comparison and staging; copies, many-hosts and check are asked for by name. */
const DEFAULT_SCENARIOS: readonly ScenarioName[] = ['converge', 'no-change', 'one-change', 'staging'];
/** The scenarios that compare Verdandi with Ansible and raw ssh, for each host count of `--hosts`. */
const COMPARISONS: readonly ScenarioName[] = ['converge', 'no-change', 'one-change'];

export interface StagingResult {
  host: string;
  roles: string[];
  convergeMs: number;
  convergeRoundTrips: number;
  noChange: number[];
  noChangeCpu: number[];
  noChangeInner: number[];
  roundTrips: number;
  notes: string[];
}

export interface Figure {
  scenario: Scenario;
  hosts: number;
  runs: { verdandi: number[]; ansible: number[]; raw: number[]; verdandiInner: number[] };
  /** CPU time on this machine per run (ms), same order as `runs`. */
  cpu: { verdandi: number[]; ansible: number[]; raw: number[] };
  /** Per host, from the first timed run: Verdandi's round trips; Ansible's ssh invocations. */
  roundTrips: { verdandi?: number; ansible?: number; raw?: number };
  /** Tasks Ansible reported per host (ok + changed) in the first run. */
  ansibleTasks?: number;
  /** Anything that did not go as expected (a tool reporting changes on a no-change run...). */
  notes: string[];
}

export interface Results {
  command: string;
  startedAt: string;
  machine: Record<string, string>;
  help: { medianMs: number; runs: number; hyperfine?: string };
  figures: Figure[];
  staging?: StagingResult;
  copies?: CopiesResult;
  simulated?: SimResult;
  check?: CheckResult;
  checkScale?: CheckScaleResult;
  loadBefore: number;
  loadAfter: number;
  totalSeconds: number;
  notes: string[];
}

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

function parseCli() {
  const { values } = parseArgs({
    options: {
      hosts: { type: 'string', default: '1,10,50' },
      runs: { type: 'string', default: '5' },
      'big-runs': { type: 'string', default: '3' },
      'converge-runs': { type: 'string', default: '3' },
      'big-converge-runs': { type: 'string', default: '1' },
      scenarios: { type: 'string', default: DEFAULT_SCENARIOS.join(',') },
      inventory: { type: 'string' },
      'allow-reset': { type: 'boolean', default: false },
      'no-ansible': { type: 'boolean', default: false },
      'boot-batch': { type: 'string', default: '10' },
      'keep-hosts': { type: 'boolean', default: false },
      'help-runs': { type: 'string', default: '30' },
      out: { type: 'string', default: join(repoRoot, 'bench', 'RESULTS.md') },
      label: { type: 'string', default: 'main' },
      copies: { type: 'string', default: '300' },
      'copies-big': { type: 'string', default: '1000' },
      'sim-hosts': { type: 'string', default: '50,200,1000' },
      'sim-forks': { type: 'string', default: '100' },
      'sim-backends': { type: 'string', default: '4' },
      'sim-first-port': { type: 'string', default: '2201' },
      'sim-connect-timeout': { type: 'string', default: '10' },
      'huge-runs': { type: 'string', default: '1' },
      'check-hosts': { type: 'string', default: '1000,5000,10000' },
    },
    allowPositionals: false,
  });
  const num = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number, got ${v}`);
    return n;
  };
  const list = (name: string, v: string) =>
    v
      .split(',')
      .map((x) => num(name, x.trim()))
      .sort((a, b) => a - b);
  const counts = list('hosts', values.hosts);
  const simFirstPort = num('sim-first-port', values['sim-first-port']);
  const simCounts = list('sim-hosts', values['sim-hosts']);
  if (simFirstPort + simCounts.at(-1)! - 1 > 65535)
    throw new Error(`--sim-first-port ${simFirstPort} leaves no room for ${simCounts.at(-1)} ports`);
  const scenarios = values.scenarios.split(',').map((s) => s.trim()) as ScenarioName[];
  for (const s of scenarios)
    if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}: ${SCENARIOS.join(', ')}`);
  return {
    counts,
    runs: num('runs', values.runs),
    bigRuns: num('big-runs', values['big-runs']),
    convergeRuns: num('converge-runs', values['converge-runs']),
    bigConvergeRuns: num('big-converge-runs', values['big-converge-runs']),
    scenarios,
    inventory: values.inventory,
    allowReset: values['allow-reset'],
    ansible: !values['no-ansible'],
    bootBatch: num('boot-batch', values['boot-batch']),
    keepHosts: values['keep-hosts'],
    helpRuns: num('help-runs', values['help-runs']),
    out: values.out,
    label: values.label,
    copies: num('copies', values.copies),
    copiesBig: num('copies-big', values['copies-big']),
    simCounts,
    simForks: num('sim-forks', values['sim-forks']),
    simBackends: num('sim-backends', values['sim-backends']),
    simFirstPort,
    simConnectTimeout: num('sim-connect-timeout', values['sim-connect-timeout']),
    hugeRuns: num('huge-runs', values['huge-runs']),
    checkHosts: list('check-hosts', values['check-hosts']),
  };
}
type Cli = ReturnType<typeof parseCli>;

/** Counts of 25 hosts and more get fewer runs: one Ansible run on 50 hosts takes minutes. */
const isBig = (count: number) => count >= 25;
/** Simulated hosts: from 500 on, `--huge-runs` (one run of 1,000 hosts takes a minute here). */
const simRuns = (cli: Cli) => (count: number) =>
  count >= 500 ? cli.hugeRuns : isBig(count) ? cli.bigRuns : cli.runs;

/** How many of the benchmark's hosts the selected scenarios use (bench-1..bench-N). */
function hostsNeeded(cli: Cli): number {
  const compares = cli.scenarios.some((s) => COMPARISONS.includes(s));
  return Math.max(
    compares ? cli.counts.at(-1)! : 0,
    cli.scenarios.includes('copies') ? 1 : 0,
    cli.scenarios.includes('many-hosts') ? cli.simBackends : 0,
  );
}

/** `verdandi --help`: a loop of spawns (median), plus hyperfine when it is installed. */
async function measureHelp(runs: number): Promise<Results['help']> {
  const times: number[] = [];
  for (let i = 0; i < runs + 3; i++) {
    const r = await runTimed(process.execPath, [verdandiBin, '--help']);
    if (r.code !== 0) throw new Error(`verdandi --help exited ${r.code}: ${r.stderr}`);
    if (i >= 3) times.push(r.ms); // the first spawns warm the page cache
  }
  let hyperfine: string | undefined;
  // A file, not /dev/stdout: Node's stdio pipes are sockets, which cannot be opened by path.
  const jsonFile = join(tmpdir(), `verdandi-bench-hyperfine-${process.pid}.json`);
  const hf = await runTimed('hyperfine', [
    '-N',
    '--warmup',
    '3',
    '--runs',
    String(runs),
    '--export-json',
    jsonFile,
    '--style',
    'none',
    `${process.execPath} ${verdandiBin} --help`,
  ]).catch(() => undefined);
  if (hf && hf.code === 0) {
    try {
      const json = JSON.parse(await readFile(jsonFile, 'utf8')) as {
        results: Array<{ mean: number; stddev: number; median: number; min: number }>;
      };
      const r = json.results[0];
      hyperfine = `hyperfine: median ${(r.median * 1000).toFixed(1)} ms, mean ${(r.mean * 1000).toFixed(1)} ± ${(r.stddev * 1000).toFixed(1)} ms, min ${(r.min * 1000).toFixed(1)} ms`;
    } catch {
      hyperfine = undefined;
    }
  }
  await rm(jsonFile, { force: true });
  return { medianMs: median(times), runs, hyperfine };
}

/** Why a run is not what the scenario expects, or undefined when it is. */
function problem(
  run: RunOutcome,
  hosts: BenchHost[],
  expectChanged?: (changed: number) => boolean,
): string | undefined {
  if (run.hosts.size !== hosts.length || !allOk(run)) {
    return `${run.tool} failed:\n${run.output.trim().split('\n').slice(-25).join('\n')}`;
  }
  if (expectChanged) {
    const odd = [...run.hosts.entries()].filter(([, h]) => !expectChanged(h.changed));
    if (odd.length > 0) {
      return `${run.tool}: unexpected changed count on ${odd.length} host(s), e.g. ${odd[0][0]}: changed=${odd[0][1].changed}`;
    }
  }
  return undefined;
}

const perHost = (run: RunOutcome) => median([...run.hosts.values()].map((h) => h.roundTrips));

class Bench {
  private messageCounter = 0;
  constructor(
    private readonly cli: Cli,
    private readonly workDir: string,
  ) {}

  /** A message no host has yet: each one-change run changes exactly one file on every host. */
  private nextMessage(): string {
    this.messageCounter++;
    return `bench change ${this.messageCounter}`;
  }

  async runCount(all: BenchHost[], count: number, figures: Figure[], resettable: boolean): Promise<void> {
    const hosts = all.slice(0, count);
    const dir = join(this.workDir, `n${count}`);
    const ansibleFiles = await writeAnsibleFiles(dir, hosts, count);
    const inventory = await writeVerdandiInventory(dir, hosts);
    const runs = isBig(count) ? this.cli.bigRuns : this.cli.runs;
    // A converge run installs nginx & co. on every host: dpkg on 10 hosts already takes a while.
    const convergeRuns = count >= 10 ? this.cli.bigConvergeRuns : this.cli.convergeRuns;
    const base = 'hello';
    const ctx = { hosts, count, inventory, ansibleFiles };

    if (this.cli.scenarios.includes('converge')) {
      if (resettable) figures.push(await this.converge(ctx, convergeRuns, base));
      else
        log(
          "converge skipped: the hosts are not the benchmark's own (give --allow-reset to purge and redo them)",
        );
    }
    // Converged with the base message, by Verdandi (the converge scenario may have ended with Ansible).
    const prime = await runVerdandi(inventory, count, base);
    const primeProblem = problem(prime, hosts);
    if (primeProblem)
      throw new Error(`could not converge the hosts before the no-change runs: ${primeProblem}`);
    if (this.cli.scenarios.includes('no-change')) figures.push(await this.noChange(ctx, runs, base));
    if (this.cli.scenarios.includes('one-change')) figures.push(await this.oneChange(ctx, runs));
  }

  private tools(): Array<'verdandi' | 'ansible'> {
    return this.cli.ansible ? ['verdandi', 'ansible'] : ['verdandi'];
  }

  private run(
    tool: 'verdandi' | 'ansible' | 'raw',
    ctx: { hosts: BenchHost[]; count: number; inventory: string; ansibleFiles: AnsibleFiles },
    message: string,
    id: string,
  ): Promise<RunOutcome> {
    if (tool === 'verdandi') return runVerdandi(ctx.inventory, ctx.count, message);
    if (tool === 'ansible') return runAnsible(ctx.ansibleFiles, ctx.hosts, message, id);
    return runRaw(ctx.hosts, message);
  }

  private record(figure: Figure, run: RunOutcome, first: boolean): void {
    if (run.cpuMs !== undefined) figure.cpu[run.tool].push(run.cpuMs);
    if (run.tool === 'verdandi') {
      figure.runs.verdandi.push(run.ms);
      if (run.innerMs !== undefined) figure.runs.verdandiInner.push(run.innerMs);
    } else if (run.tool === 'ansible') figure.runs.ansible.push(run.ms);
    else figure.runs.raw.push(run.ms);
    if (first || figure.roundTrips[run.tool] === undefined) figure.roundTrips[run.tool] = perHost(run);
    if (run.tool === 'ansible' && figure.ansibleTasks === undefined) {
      const h = [...run.hosts.values()][0];
      figure.ansibleTasks = h ? h.ok : undefined;
    }
  }

  private async converge(ctx: Parameters<Bench['run']>[1], runs: number, message: string): Promise<Figure> {
    const figure = newFigure('converge', ctx.count);
    for (let r = 0; r < runs; r++) {
      const order = r % 2 === 0 ? this.tools() : [...this.tools()].reverse();
      for (const tool of order) {
        const resetStarted = Date.now();
        await resetHosts(ctx.hosts);
        log(
          `n=${ctx.count} converge #${r + 1}: reset in ${seconds(Date.now() - resetStarted)} s, running ${tool}`,
        );
        const run = await this.run(tool, ctx, message, `c${r}`);
        const bad = problem(run, ctx.hosts, (changed) => changed > 0);
        if (bad) throw new Error(`converge run failed: ${bad}`);
        this.record(figure, run, r === 0);
        log(`n=${ctx.count} converge #${r + 1} ${tool}: ${seconds(run.ms)} s`);
      }
    }
    return figure;
  }

  private async noChange(ctx: Parameters<Bench['run']>[1], runs: number, message: string): Promise<Figure> {
    const figure = newFigure('no-change', ctx.count);
    const contestants: Array<'verdandi' | 'ansible' | 'raw'> = [...this.tools(), 'raw'];
    // A warm-up run of each (untimed): page cache, Python bytecode; and the cross-check that every
    // tool sees the hosts converged by the other (same bytes, same modes). Ansible's is skipped on
    // big counts, where it costs minutes: the cross-check was made on the smaller ones.
    const warmUps = isBig(ctx.count) ? contestants.filter((t) => t !== 'ansible') : contestants;
    for (const tool of warmUps) {
      const run = await this.run(tool, ctx, message, 'warm');
      const bad = problem(run, ctx.hosts, (changed) => changed === 0);
      if (bad) {
        figure.notes.push(`warm-up: ${bad.split('\n')[0]}`);
        log(`warning: ${bad}`);
      }
    }
    for (let r = 0; r < runs; r++) {
      const shift = r % contestants.length;
      const order = [...contestants.slice(shift), ...contestants.slice(0, shift)];
      for (const tool of order) {
        const run = await this.run(tool, ctx, message, `n${r}`);
        const bad = problem(run, ctx.hosts, (changed) => changed === 0);
        if (bad) figure.notes.push(`run ${r + 1}: ${bad.split('\n')[0]}`);
        this.record(figure, run, r === 0);
      }
      log(
        `n=${ctx.count} no-change #${r + 1}: verdandi ${seconds(figure.runs.verdandi.at(-1)!)} s` +
          (this.cli.ansible ? `, ansible ${seconds(figure.runs.ansible.at(-1)!)} s` : '') +
          `, raw ${seconds(figure.runs.raw.at(-1)!)} s`,
      );
    }
    return figure;
  }

  private async oneChange(ctx: Parameters<Bench['run']>[1], runs: number): Promise<Figure> {
    const figure = newFigure('one-change', ctx.count);
    // One file changes and its handler restarts nginx: 2 changes per host, for both tools.
    const expected = (changed: number) => changed === 2;
    for (let r = 0; r < runs; r++) {
      const order = r % 2 === 0 ? this.tools() : [...this.tools()].reverse();
      for (const tool of order) {
        const run = await this.run(tool, ctx, this.nextMessage(), `o${r}`);
        const bad = problem(run, ctx.hosts, expected);
        if (bad) {
          figure.notes.push(`run ${r + 1}: ${bad.split('\n')[0]}`);
          if (!allOk(run)) throw new Error(`one-change run failed: ${bad}`);
        }
        this.record(figure, run, r === 0);
      }
      log(
        `n=${ctx.count} one-change #${r + 1}: verdandi ${seconds(figure.runs.verdandi.at(-1)!)} s` +
          (this.cli.ansible ? `, ansible ${seconds(figure.runs.ansible.at(-1)!)} s` : ''),
      );
    }
    // Leave the hosts in the base state for the next host count's prime run to find little to do.
    return figure;
  }
}

/** Verdandi alone: one converge of the staging roles, then no-change runs. */
async function staging(host: BenchHost, runs: number, workDir: string): Promise<StagingResult> {
  const inventory = await writeVerdandiInventory(join(workDir, 'staging'), [host], STAGING_ROLES);
  const converge = await runVerdandiProvision(inventory, 1);
  const bad = problem(converge, [host]);
  if (bad) throw new Error(`staging converge failed: ${bad}`);
  log(`staging converge (${STAGING_ROLES.join(', ')}): ${seconds(converge.ms)} s`);
  const result: StagingResult = {
    host: host.name,
    roles: STAGING_ROLES,
    convergeMs: converge.ms,
    convergeRoundTrips: perHost(converge),
    noChange: [],
    noChangeCpu: [],
    noChangeInner: [],
    roundTrips: 0,
    notes: [],
  };
  await runVerdandiProvision(inventory, 1); // warm-up
  for (let r = 0; r < runs; r++) {
    const run = await runVerdandiProvision(inventory, 1);
    const wrong = problem(run, [host], (changed) => changed === 0);
    if (wrong) result.notes.push(`run ${r + 1}: ${wrong.split('\n')[0]}`);
    result.noChange.push(run.ms);
    if (run.cpuMs !== undefined) result.noChangeCpu.push(run.cpuMs);
    if (run.innerMs !== undefined) result.noChangeInner.push(run.innerMs);
    result.roundTrips = perHost(run);
  }
  log(`staging no-change: median ${seconds(median(result.noChange))} s, ${result.roundTrips} round trips`);
  return result;
}

function newFigure(scenario: Scenario, hosts: number): Figure {
  return {
    scenario,
    hosts,
    runs: { verdandi: [], ansible: [], raw: [], verdandiInner: [] },
    cpu: { verdandi: [], ansible: [], raw: [] },
    roundTrips: {},
    notes: [],
  };
}

async function main(): Promise<void> {
  const cli = parseCli();
  const started = Date.now();
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const results: Results = {
    command,
    startedAt: new Date().toISOString(),
    machine: await machineInfo(),
    help: { medianMs: Number.NaN, runs: 0 },
    figures: [],
    loadBefore: await loadAverage(),
    loadAfter: 0,
    totalSeconds: 0,
    notes: [],
  };
  log(`machine: ${results.machine.nproc} cores, ${results.machine.memory}, kernel ${results.machine.kernel}`);
  results.help = await measureHelp(cli.helpRuns);
  log(
    `verdandi --help: median ${results.help.medianMs.toFixed(1)} ms${results.help.hyperfine ? ` (${results.help.hyperfine})` : ''}`,
  );

  const workDir = await mkdtemp(join(tmpdir(), 'verdandi-bench-'));
  const booted: string[] = [];
  let stopping = false;
  const cleanUp = async () => {
    if (stopping) return;
    stopping = true;
    if (booted.length > 0 && !cli.keepHosts) await stopHosts(booted, log).catch((e) => log(`stopping: ${e}`));
    await rm(workDir, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping the test hosts`);
      void cleanUp().finally(() => process.exit(130));
    });
  }

  try {
    let hosts: BenchHost[];
    const resettable = !cli.inventory || cli.allowReset;
    const compares = cli.scenarios.some((s) => COMPARISONS.includes(s));
    if (cli.inventory) {
      if (cli.scenarios.includes('many-hosts'))
        throw new Error(
          "the many-hosts scenario needs the benchmark's own test hosts (it redirects ports inside their network namespaces): leave out --inventory or the scenario",
        );
      hosts = await hostsFromInventory(cli.inventory);
      const max = hostsNeeded(cli);
      if (hosts.length < max)
        throw new Error(`${cli.inventory} has ${hosts.length} hosts; the scenarios need ${max}`);
    } else {
      const names = benchHostNames(hostsNeeded(cli));
      if (cli.scenarios.includes('staging')) names.push('bench-staging');
      booted.push(...names);
      const bootStarted = Date.now();
      hosts = await bootHosts(names, cli.bootBatch, log);
      // The check scenario alone boots nothing.
      if (names.length > 0)
        results.notes.push(
          `booting ${names.length} test hosts took ${seconds(Date.now() - bootStarted)} s (not timed)`,
        );
    }
    await checkReachable(hosts);
    const stagingHost = hosts.find((h) => h.name === 'bench-staging');
    hosts = hosts.filter((h) => h !== stagingHost);
    if (resettable && compares) await seedHosts(hosts, log);
    const bench = new Bench(cli, workDir);
    if (stagingHost) {
      results.staging = await staging(stagingHost, cli.runs, workDir);
      await writeReport(cli.out, results, cli.label);
    }
    // Written after each part, so an interrupted run still leaves its figures.
    const checkpoint = async () => {
      results.loadAfter = await loadAverage();
      results.totalSeconds = (Date.now() - started) / 1000;
      await writeReport(cli.out, results, cli.label);
    };
    for (const count of compares ? cli.counts : []) {
      log(`--- ${count} host(s) ---`);
      await bench.runCount(hosts, count, results.figures, resettable);
      await checkpoint();
    }
    if (cli.scenarios.includes('copies')) {
      log(`--- copies: ${cli.copies} and ${cli.copiesBig} tasks on ${hosts[0].name} ---`);
      const copiesOptions = {
        tasks: cli.copies,
        bigTasks: cli.copiesBig,
        changeRuns: cli.bigRuns,
        noChangeRuns: cli.runs,
      };
      results.copies = await copiesScenario(hosts[0], copiesOptions, workDir, log);
      await checkpoint();
    }
    if (cli.scenarios.includes('check')) {
      log(`--- check: the example inventories, ${cli.runs} runs each ---`);
      results.check = await checkScenario(cli.runs, workDir, log);
      await checkpoint();
    }
    if (cli.scenarios.includes('check-scale')) {
      log(`--- check-scale: ${cli.checkHosts.join(', ')} generated hosts, ${cli.runs} runs each ---`);
      results.checkScale = await checkScaleScenario(cli.checkHosts, cli.runs, workDir, log);
      await checkpoint();
    }
    if (cli.scenarios.includes('many-hosts')) {
      const backends = hosts.slice(0, cli.simBackends);
      log(
        `--- many-hosts: ${cli.simCounts.join(', ')} simulated hosts on ${backends.length} test host(s) ---`,
      );
      const simOptions = {
        counts: cli.simCounts,
        forks: cli.simForks,
        firstPort: cli.simFirstPort,
        connectTimeout: cli.simConnectTimeout,
        runsFor: simRuns(cli),
      };
      results.simulated = await simulatedScenario(backends, simOptions, workDir, log);
      await checkpoint();
    }
  } finally {
    await cleanUp();
  }
  results.totalSeconds = (Date.now() - started) / 1000;
  await writeReport(cli.out, results, cli.label);
  await writeFile(
    join(dirname(cli.out), `results-${cli.label}.json`),
    `${JSON.stringify(results, null, 2)}\n`,
  );
  log(`done in ${seconds(Date.now() - started)} s: ${cli.out}`);
}

try {
  await main();
} catch (err) {
  log(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
}
