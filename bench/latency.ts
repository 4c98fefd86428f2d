/**
 * The latency benchmark (`npm run bench:latency`, issue 25): Verdandi, Ansible and raw ssh over a slow
 * link. This kernel has no `netem`, so a TCP proxy of ours (latency-proxy.ts) sits between the tools and
 * each test host's sshd and holds every byte half the round trip in each direction.
 *
 *   npm run bench:latency                          1 host, round trips of 0, 50, 150 ms, 3 runs each
 *   npm run bench:latency -- --hosts 1,10 --rtt 0,50,150 --runs 3 --label latency
 *
 * Options: --hosts 1 (counts of hosts, the first N of hl-lat1..)  --rtt 0,50,150 (added round trip,
 * ms)  --runs 3  --no-ansible  --no-sites (leave out staging and deploy)  --keep-hosts
 * --label latency  --out bench/RESULTS.md
 *
 * For each added round trip, on the same hosts, in one run, the contestants alternating:
 *   floor       `ssh host true`, one plain OpenSSH call per host, all hosts at once
 *   Verdandi    `verdandi provision` of the roles twinpkg, twin, twinsvc (roles/): the benchmark's work
 *               as a team would split it; no-change, and one-change (one template var: one file
 *               written, its handler restarts nginx)
 *   Ansible     `ansible-playbook ansible/work.yml`, the same work, configured as run.ts does
 *               (pipelining, ControlPersist, forks = hosts, a cold ControlPath per run)
 * and, Verdandi alone on two more hosts (latency-site.ts; Ansible and raw ssh have no counterpart):
 *   staging     a no-change `verdandi provision` of the main benchmark's staging roles (hl-latstg)
 *   deploy      `verdandi deploy` of the sample site, a new commit each run (hl-latsite)
 *   deploy-unchanged  `verdandi deploy --if-changed` of the commit the host already runs
 * Round trips: what the proxy saw (a client burst answered by a server burst, handshakes included),
 * per host; and each tool's own count (Verdandi's `roundTrips`, Ansible's ssh invocations).
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { type BenchHost, checkReachable, seedHosts, sshArgs } from './hosts.js';
import { LatencyProxy, type LinkStats } from './latency-proxy.js';
import {
  convergeSiteHosts,
  newCommit,
  runDeploy,
  SITE_HOST,
  type SiteProject,
  STAGING_HOST,
  siteInventory,
  stagingInventory,
} from './latency-site.js';
import { withTestHosts } from './lifecycle.js';
import { machineLine, runMeta } from './machine.js';
import { loadAverage, median, runTimed, seconds } from './proc.js';
import { blockMarkers, writeBlock } from './report.js';
import { STAGING_ROLES } from './spec.js';
import {
  type AnsibleFiles,
  allOk,
  floorOutcome,
  type RunOutcome,
  repoRoot,
  runAnsible,
  runVerdandiProvision,
  writeAnsibleFiles,
  writeVerdandiInventory,
} from './tools.js';

const ROLES = ['twinpkg', 'twin', 'twinsvc'];
const BASE_MESSAGE = 'hello';
const rolesDir = new URL('./roles', import.meta.url).pathname;
const log = (line: string) => process.stderr.write(`[latency] ${line}\n`);

type Contestant = 'floor' | 'verdandi' | 'ansible';
/** The twin play's two scenarios, then Verdandi's alone (latency-site.ts). */
const KINDS = ['no-change', 'one-change', 'staging', 'deploy', 'deploy-unchanged'] as const;
type Kind = (typeof KINDS)[number];
const CONTESTANTS: readonly Contestant[] = ['floor', 'verdandi', 'ansible'];

/** One cell of the table: a contestant, a scenario, an added round trip, a host count. */
interface Cell {
  contestant: Contestant;
  kind: Kind;
  rttMs: number;
  hosts: number;
  runs: number[];
  cpu: number[];
  /** Per host, per run: round trips the proxy saw, connections it carried. */
  linkRoundTrips: number[];
  connections: number[];
  /** The tool's own count per host (first run): Verdandi's roundTrips, Ansible's ssh invocations. */
  toolRoundTrips?: number;
  notes: string[];
}

function parseCli() {
  const { values } = parseArgs({
    options: {
      hosts: { type: 'string', default: '1' },
      rtt: { type: 'string', default: '0,50,150' },
      runs: { type: 'string', default: '3' },
      'no-ansible': { type: 'boolean', default: false },
      'no-sites': { type: 'boolean', default: false },
      'keep-hosts': { type: 'boolean', default: false },
      label: { type: 'string', default: 'latency' },
      out: { type: 'string', default: join(repoRoot, 'bench', 'RESULTS.md') },
    },
    allowPositionals: false,
  });
  const list = (name: string, v: string, min: number) =>
    v.split(',').map((x) => {
      const n = Number(x.trim());
      if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: ${x} is not a whole number ≥ ${min}`);
      return n;
    });
  const runs = list('runs', values.runs, 1)[0];
  return {
    counts: list('hosts', values.hosts, 1).sort((a, b) => a - b),
    rtts: list('rtt', values.rtt, 0),
    runs,
    ansible: !values['no-ansible'],
    sites: !values['no-sites'],
    keepHosts: values['keep-hosts'],
    label: values.label,
    out: values.out,
  };
}

/** The hosts as the tools see them through the proxies: 127.0.0.1, each its own port. */
const throughProxies = (hosts: BenchHost[], ports: number[]): BenchHost[] =>
  hosts.map((h, i) => ({ ...h, address: '127.0.0.1', port: ports[i] }));

/** `ssh host true` on every host at once: the floor, one handshake and one command per host. */
async function floor(hosts: BenchHost[]): Promise<RunOutcome> {
  const started = process.hrtime.bigint();
  const results = await Promise.all(
    hosts.map((h) => runTimed('ssh', sshArgs(h, 'true'), { timeoutMs: 120_000, cpu: true })),
  );
  return floorOutcome(hosts, results, started);
}

/** Why a run is not what its scenario expects (every host reached, the right changed count), or undefined. */
function problem(run: RunOutcome, hosts: number, kind: Kind): string | undefined {
  if (run.hosts.size !== hosts || !allOk(run) || run.code !== 0)
    return `${run.tool} failed (exit ${run.code}): ${run.output.trim().split('\n').slice(-8).join(' | ')}`;
  // One-change: the site file and the handler's restart, for both tools. A deploy changes what it
  // changes (a release); every other scenario changes nothing.
  if (kind === 'deploy') return undefined;
  const want = kind === 'one-change' ? 2 : 0;
  const odd = [...run.hosts.entries()].find(([, h]) => run.tool !== 'raw' && h.changed !== want);
  return odd ? `${run.tool}: changed=${odd[1].changed} on ${odd[0]}, expected ${want}` : undefined;
}

interface Setup {
  hosts: BenchHost[];
  inventory: string;
  ansible: AnsibleFiles;
  proxies: LatencyProxy[];
}

/** The staging and site hosts through their proxies (latency-site.ts). */
interface SiteSetup {
  staging: string;
  site: string;
  repo: string;
  /** Each host's own proxy: a run's link figures are those of the host it ran on. */
  stagingProxy: LatencyProxy;
  siteProxy: LatencyProxy;
}

class LatencyBench {
  readonly cells: Cell[] = [];
  private messages = 0;
  /** The message every host's site has now: no-change runs pass it, one-change runs a new one. */
  private current = BASE_MESSAGE;

  constructor(private readonly cli: ReturnType<typeof parseCli>) {}

  private cell(contestant: Contestant, kind: Kind, rttMs: number, hosts: number): Cell {
    let c = this.cells.find(
      (x) => x.contestant === contestant && x.kind === kind && x.rttMs === rttMs && x.hosts === hosts,
    );
    if (!c) {
      c = {
        contestant,
        kind,
        rttMs,
        hosts,
        runs: [],
        cpu: [],
        linkRoundTrips: [],
        connections: [],
        notes: [],
      };
      this.cells.push(c);
    }
    return c;
  }

  /** One run of a contestant of the twin play's scenarios. */
  private async measure(s: Setup, contestant: Contestant, kind: Kind, rttMs: number): Promise<void> {
    const message = kind === 'one-change' ? `bench change ${++this.messages}` : this.current;
    const run = await this.record(s.proxies, contestant, kind, rttMs, s.hosts.length, () =>
      contestant === 'floor'
        ? floor(s.hosts)
        : contestant === 'verdandi'
          ? runVerdandiProvision(s.inventory, s.hosts.length, { twin_message: message })
          : runAnsible(s.ansible, s.hosts, message, `r${this.messages}-${Date.now()}`),
    );
    if (allOk(run) && kind === 'one-change') this.current = message;
  }

  /** Runs `go` into its cell, with what the proxies saw during it. */
  private async record(
    proxies: LatencyProxy[],
    contestant: Contestant,
    kind: Kind,
    rttMs: number,
    hosts: number,
    go: () => Promise<RunOutcome>,
  ): Promise<RunOutcome> {
    for (const p of proxies) p.takeStats();
    const run = await go();
    const link = proxies.map((p) => p.takeStats());
    const cell = this.cell(contestant, kind, rttMs, hosts);
    const bad = problem(run, hosts, kind);
    if (bad) {
      cell.notes.push(`run ${cell.runs.length + 1}: ${bad}`.slice(0, 400));
      log(`warning: ${bad}`);
    }
    cell.runs.push(run.ms);
    if (run.cpuMs !== undefined) cell.cpu.push(run.cpuMs);
    cell.linkRoundTrips.push(perHost(link, (l) => l.roundTrips));
    cell.connections.push(perHost(link, (l) => l.connections));
    if (contestant !== 'floor')
      cell.toolRoundTrips ??= median([...run.hosts.values()].map((h) => h.roundTrips));
    log(
      `rtt ${rttMs} ms, ${hosts} host(s), ${contestant} ${kind}: ${seconds(run.ms)} s, ` +
        `${cell.linkRoundTrips.at(-1)} link round trips per host` +
        (contestant === 'floor'
          ? ''
          : `, ${median([...run.hosts.values()].map((h) => h.roundTrips))} by its count`),
    );
    return run;
  }

  /** Drops a cell's last run: an untimed warm-up, logged by record but not a figure. */
  private forget(contestant: Contestant, kind: Kind, rttMs: number, hosts: number, notesBefore: number) {
    const cell = this.cell(contestant, kind, rttMs, hosts);
    for (const key of ['runs', 'cpu', 'linkRoundTrips', 'connections'] as const) cell[key].pop();
    cell.toolRoundTrips = undefined;
    cell.notes.splice(notesBefore);
  }

  private notesOf = (contestant: Contestant, kind: Kind, rttMs: number, hosts: number) =>
    this.cell(contestant, kind, rttMs, hosts).notes.length;

  private releases = 0;

  /**
   * Verdandi alone, `runs` rounds: a no-change provision of the staging roles, a deploy of a new
   * commit of the sample site, and `deploy --if-changed` of that same commit.
   */
  async sites(s: SiteSetup, rttMs: number): Promise<void> {
    const staging = () => runVerdandiProvision(s.staging, 1);
    const unchanged = () => runDeploy(s.site, true);
    // Untimed: the path through the new proxies, the compile cache.
    for (const [kind, go] of [
      ['staging', staging],
      ['deploy-unchanged', unchanged],
    ] as const) {
      const before = this.notesOf('verdandi', kind, rttMs, 1);
      await this.record([kind === 'staging' ? s.stagingProxy : s.siteProxy], 'verdandi', kind, rttMs, 1, go);
      this.forget('verdandi', kind, rttMs, 1, before);
    }
    for (let r = 0; r < this.cli.runs; r++) {
      await this.record([s.stagingProxy], 'verdandi', 'staging', rttMs, 1, staging);
      await newCommit(s.repo, ++this.releases);
      await this.record([s.siteProxy], 'verdandi', 'deploy', rttMs, 1, () => runDeploy(s.site, false));
      await this.record([s.siteProxy], 'verdandi', 'deploy-unchanged', rttMs, 1, unchanged);
    }
  }

  /** Every contestant, `runs` rounds, their order turning each round. */
  async rtt(s: Setup, rttMs: number): Promise<void> {
    const tools: Contestant[] = this.cli.ansible ? ['verdandi', 'ansible'] : ['verdandi'];
    const noChange: Contestant[] = ['floor', ...tools];
    // Untimed: Verdandi's compile cache, Python's bytecode, the path through the new proxies. It also
    // brings hosts a smaller count left out up to the current message (their changes are expected).
    for (const c of noChange) {
      const before = this.notesOf(c, 'no-change', rttMs, s.hosts.length);
      await this.measure(s, c, 'no-change', rttMs);
      this.forget(c, 'no-change', rttMs, s.hosts.length, before);
    }
    for (let r = 0; r < this.cli.runs; r++) {
      const shift = r % noChange.length;
      for (const c of [...noChange.slice(shift), ...noChange.slice(0, shift)])
        await this.measure(s, c, 'no-change', rttMs);
      for (const c of r % 2 === 0 ? tools : [...tools].reverse())
        await this.measure(s, c, 'one-change', rttMs);
    }
  }
}

/** The median over hosts of one link figure. */
const perHost = (link: LinkStats[], pick: (l: LinkStats) => number) => median(link.map(pick));

function render(
  cells: Cell[],
  cli: ReturnType<typeof parseCli>,
  meta: { command: string; startedAt: string; machine: Record<string, string>; load: [number, number] },
  totalS: number,
): string {
  const [b, e] = blockMarkers(cli.label, 'bench/latency.ts');
  const names: Record<Contestant, string> = {
    floor: '`ssh host true` (floor)',
    verdandi: 'Verdandi',
    ansible: 'ansible-playbook',
  };
  const scenarioNames: Record<Kind, string> = {
    'no-change': 'no-change',
    'one-change': 'one-change',
    staging: 'staging roles, no-change',
    deploy: 'deploy, new commit',
    'deploy-unchanged': 'deploy --if-changed, unchanged',
  };
  const lines = [
    b,
    '',
    `Produced by \`${meta.command}\` (started ${meta.startedAt}, ${totalS.toFixed(0)} s in all).`,
    '',
    `Machine: ${machineLine(meta.machine)}`,
    `Load average (1 min) at the start: ${meta.load[0].toFixed(2)}, at the end: ${meta.load[1].toFixed(2)}.`,
    '',
    'Wall-clock seconds of the whole command (median of the runs; all hosts at once). Link round trips:',
    'per host, counted by the proxy (a burst from the tool answered by a burst from sshd, handshakes',
    'included). Added: the median wall time minus the same figure at 0 ms; expected: link round trips ×',
    "the added round trip, what the link alone should add (hosts run in parallel, so per host). Tool's",
    "own: Verdandi's `roundTrips` (commands sent), Ansible's ssh invocations. Staging (a no-change",
    `provision of ${STAGING_ROLES.join(', ')} on ${STAGING_HOST}) and the deploys (the sample site on ${SITE_HOST}: a new`,
    'commit each run, and `--if-changed` of the commit it runs) are Verdandi alone: Ansible and raw ssh',
    'have no counterpart of that work.',
    '',
    "| added RTT | hosts | contestant | scenario | runs | wall s | added s | expected s | link round trips / host | connections / host | tool's own round trips | CPU s |",
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const base = (c: Cell) =>
    cells.find(
      (x) => x.contestant === c.contestant && x.kind === c.kind && x.hosts === c.hosts && x.rttMs === 0,
    );
  const twin = (c: Cell) => c.kind === 'no-change' || c.kind === 'one-change';
  // The twin play's rows by host count, then Verdandi's alone (its own hosts) by scenario.
  const sorted = [...cells].sort(
    (x, y) =>
      Number(!twin(x)) - Number(!twin(y)) ||
      (twin(x) ? x.hosts - y.hosts : KINDS.indexOf(x.kind) - KINDS.indexOf(y.kind)) ||
      x.rttMs - y.rttMs ||
      CONTESTANTS.indexOf(x.contestant) - CONTESTANTS.indexOf(y.contestant) ||
      KINDS.indexOf(x.kind) - KINDS.indexOf(y.kind),
  );
  for (const c of sorted) {
    const trips = median(c.linkRoundTrips);
    const zero = base(c);
    const added = zero ? (median(c.runs) - median(zero.runs)) / 1000 : Number.NaN;
    const expected = (trips * c.rttMs) / 1000;
    const cellS = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');
    lines.push(
      `| ${c.rttMs} ms | ${c.hosts} | ${names[c.contestant]} | ${c.contestant === 'floor' ? '–' : scenarioNames[c.kind]} | ${c.runs.length} | ${seconds(median(c.runs))} | ${cellS(added)} | ${cellS(expected)} | ${trips} | ${median(c.connections)} | ${c.toolRoundTrips ?? '–'} | ${seconds(median(c.cpu))} |`,
    );
  }
  const notes = sorted.flatMap((c) =>
    c.notes.map((n) => `- ${c.rttMs} ms, ${c.hosts} host(s), ${c.contestant} ${c.kind}: ${n}`),
  );
  if (notes.length > 0) lines.push('', '### Notes', '', ...notes);
  lines.push('', '<details><summary>Every run (seconds)</summary>', '');
  for (const c of sorted)
    lines.push(
      `- ${c.rttMs} ms, ${c.hosts} host(s), ${c.contestant} ${c.kind}: ${c.runs.map((ms) => seconds(ms)).join(' ')} (link round trips ${c.linkRoundTrips.join(' ')})`,
    );
  lines.push('', '</details>', '', e);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const cli = parseCli();
  const started = Date.now();
  const meta = await runMeta('bench:latency');
  const max = cli.counts.at(-1)!;
  const twinNames = Array.from({ length: max }, (_, i) => `hl-lat${i + 1}`);
  const names = [...twinNames, ...(cli.sites ? [STAGING_HOST, SITE_HOST] : [])];
  const workDir = await mkdtemp(join(tmpdir(), 'verdandi-latency-'));
  const proxies: LatencyProxy[] = [];
  const bench = new LatencyBench(cli);
  const checkpoint = async () => {
    meta.load[1] = await loadAverage();
    await writeBlock(
      cli.out,
      cli.label,
      render(bench.cells, cli, meta, (Date.now() - started) / 1000),
      'bench/latency.ts',
    );
  };
  await withTestHosts(
    names,
    {
      keep: cli.keepHosts,
      log,
      cleanUp: async () => {
        await Promise.all(proxies.map((p) => p.close()));
        await rm(workDir, { recursive: true, force: true });
      },
    },
    async (booted) => {
      await checkReachable(booted);
      const all = booted.filter((h) => twinNames.includes(h.name));
      const stagingHost = booted.find((h) => h.name === STAGING_HOST);
      const siteHost = booted.find((h) => h.name === SITE_HOST);
      await seedHosts(all, log);
      // The project: its roles/ is where `provision` finds the twin roles.
      const project = join(workDir, 'project');
      await mkdir(project, { recursive: true });
      await symlink(rolesDir, join(project, 'roles'));
      const sites: SiteProject | undefined = siteHost && {
        project,
        repo: join(workDir, 'sample-site'),
        site: siteHost,
      };
      // Untimed, straight to the hosts: converged once, so every timed run starts converged.
      const direct = await writeVerdandiInventory(project, all, ROLES, 'direct.yml');
      const [converge] = await Promise.all([
        runVerdandiProvision(direct, all.length, { twin_message: BASE_MESSAGE }),
        sites && stagingHost && convergeSiteHosts(sites, stagingHost, log),
      ]);
      if (!allOk(converge)) throw new Error(`the converge run failed: ${converge.output.slice(-2000)}`);
      log(`converged ${all.length} host(s) in ${seconds(converge.ms)} s`);
      // Staging and deploy first: the longest runs, and the ones most likely to fail, show early.
      for (const rttMs of cli.rtts) {
        if (!sites || !stagingHost) break; // --no-sites
        const pair = [stagingHost, sites.site];
        const mine = pair.map(
          (h) => new LatencyProxy({ targetHost: h.address, targetPort: h.port, oneWayMs: rttMs / 2 }),
        );
        proxies.push(...mine);
        const [stagingVia, siteVia] = throughProxies(pair, await Promise.all(mine.map((p) => p.listen())));
        log(`--- staging and deploy, added round trip ${rttMs} ms ---`);
        await bench.sites(
          {
            staging: await stagingInventory(project, stagingVia, `staging-rtt${rttMs}.yml`),
            site: await siteInventory(sites, siteVia, `site-rtt${rttMs}.yml`),
            repo: sites.repo,
            stagingProxy: mine[0],
            siteProxy: mine[1],
          },
          rttMs,
        );
        await Promise.all(mine.map((p) => p.close()));
        await checkpoint();
      }
      for (const count of cli.counts) {
        for (const rttMs of cli.rtts) {
          const hosts = all.slice(0, count);
          const mine = hosts.map(
            (h) => new LatencyProxy({ targetHost: h.address, targetPort: h.port, oneWayMs: rttMs / 2 }),
          );
          proxies.push(...mine);
          const ports = await Promise.all(mine.map((p) => p.listen()));
          const proxied = throughProxies(hosts, ports);
          const dir = join(workDir, `n${count}-rtt${rttMs}`);
          const setup: Setup = {
            hosts: proxied,
            inventory: await writeVerdandiInventory(project, proxied, ROLES, `n${count}-rtt${rttMs}.yml`),
            ansible: await writeAnsibleFiles(dir, proxied, count),
            proxies: mine,
          };
          log(`--- ${count} host(s), added round trip ${rttMs} ms ---`);
          await bench.rtt(setup, rttMs);
          await Promise.all(mine.map((p) => p.close()));
          await checkpoint();
        }
      }
    },
  );
  await checkpoint();
  await writeFile(
    join(dirname(cli.out), `results-${cli.label}.json`),
    `${JSON.stringify({ ...meta, cells: bench.cells }, null, 2)}\n`,
  );
  log(`done in ${seconds(Date.now() - started)} s: ${cli.out}`);
}

try {
  await main();
} catch (err) {
  log(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
}
