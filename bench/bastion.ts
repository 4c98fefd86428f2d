/**
 * The bastion benchmark (`npm run bench:bastion`, issue 24): hosts reachable only through one bastion,
 * Verdandi (`jump:` in the inventory) against Ansible (OpenSSH's ProxyJump in ansible_ssh_common_args)
 * and plain `ssh -J host true` (the floor), on the same hosts in one run.
 *
 *   npm run bench:bastion                          20 hosts behind hl-bast, 3 runs of each scenario
 *   npm run bench:bastion -- --hosts 20 --backends 2 --runs 3 --label bastion
 *
 * Options: --hosts 20  --backends 2  --runs 3  --first-port 2201  --no-ansible  --keep-hosts
 *   --label bastion  --out bench/RESULTS.md
 *
 * The hosts: test host hl-bast is the bastion; hl-bk1.. are the backends, and each inventory host is a
 * port of one of them (as in simulated.ts: iptables REDIRECT to sshd in the backend's network
 * namespace), so 20 hosts cost 3 containers. Every backend refuses SSH from anything but the bastion
 * (an iptables reset in its namespace): the machine running the tools cannot reach them directly.
 * sshd's MaxStartups is raised on the backends and on the bastion: with OpenSSH's default (10:30:100)
 * the bastion drops at random part of Ansible's 20 simultaneous ProxyJump connections, which would make
 * Ansible slow or fail for a reason that is only this default.
 *
 * Scenarios (the contestants alternate in every round):
 *   first       each host's own file is absent (removed, untimed, before the run): one change per host
 *   no-change   everything in place
 * The work is sim-work.ts, and ansible/sim-work.yml for Ansible: a directory, the host's own file, the
 * ssh service. Verdandi runs with --forks = hosts, Ansible with forks = hosts, pipelining and
 * ControlPersist as in run.ts, a cold ControlPath per run. Host keys are not checked by either.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import yaml from 'js-yaml';
import { words } from '../src/util/shell.js';
import { type BenchHost, checkReachable, SSH_OPTIONS, sshOk } from './hosts.js';
import { withTestHosts } from './lifecycle.js';
import { machineLine, runMeta } from './machine.js';
import { loadAverage, median, runTimed, seconds } from './proc.js';
import { blockMarkers, writeBlock } from './report.js';
import { inNamespace, prepareBackends, raiseMaxStartups, simulatedHosts } from './simulated.js';
import { SIM_DIR } from './spec.js';
import {
  type AnsibleFiles,
  allOk,
  floorOutcome,
  type RunOutcome,
  repoRoot,
  runAnsible,
  verdandi,
  writeAnsibleFiles,
} from './tools.js';

const BASTION = 'hl-bast';
/**
 * Ansible's connection timeout, and the jump hop's: 20 hosts at once are 40 OpenSSH processes and 40
 * handshakes (each host's and its own one with the bastion) on this 2-core machine; with the default
 * 10 s, a first try under a load average of 20 to 30 left 8 of the 20 hosts unreachable.
 */
const CONNECT_TIMEOUT_S = 30;
const GROUP = 'behind';
const playbook = new URL('./sim-work.ts', import.meta.url).pathname;
const ansiblePlaybook = new URL('./ansible/sim-work.yml', import.meta.url).pathname;
const log = (line: string) => process.stderr.write(`[bastion] ${line}\n`);

type Contestant = 'floor' | 'verdandi' | 'ansible';
type Kind = 'first' | 'no-change';

interface Cell {
  contestant: Contestant;
  kind: Kind;
  runs: number[];
  cpu: number[];
  /** Hosts reached without failure, per run. */
  reached: number[];
  /** The tool's own round trips per host (first run): Verdandi's roundTrips, Ansible's ssh calls. */
  roundTrips?: number;
  notes: string[];
}

function parseCli() {
  const { values } = parseArgs({
    options: {
      hosts: { type: 'string', default: '20' },
      backends: { type: 'string', default: '2' },
      runs: { type: 'string', default: '3' },
      'first-port': { type: 'string', default: '2201' },
      'no-ansible': { type: 'boolean', default: false },
      'keep-hosts': { type: 'boolean', default: false },
      label: { type: 'string', default: 'bastion' },
      out: { type: 'string', default: join(repoRoot, 'bench', 'RESULTS.md') },
    },
    allowPositionals: false,
  });
  const num = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number, got ${v}`);
    return n;
  };
  return {
    hosts: num('hosts', values.hosts),
    backends: num('backends', values.backends),
    runs: num('runs', values.runs),
    firstPort: num('first-port', values['first-port']),
    ansible: !values['no-ansible'],
    keepHosts: values['keep-hosts'],
    label: values.label,
    out: values.out,
  };
}

/**
 * An OpenSSH client configuration naming the bastion, given to Ansible's ssh and the floor with `-F`:
 * OpenSSH hands `-F` on to the ssh it starts for ProxyJump, so the jump hop gets the same key and
 * options (a `-o` on the command line would not reach it).
 */
async function writeSshConfig(dir: string, bastion: BenchHost): Promise<string> {
  const file = join(dir, 'ssh_config');
  await writeFile(
    file,
    [
      `Host ${BASTION}`,
      `  HostName ${bastion.address}`,
      `  Port ${bastion.port}`,
      `  User ${bastion.user}`,
      ...(bastion.key ? [`  IdentityFile ${bastion.key}`, '  IdentitiesOnly yes'] : []),
      'Host *',
      '  StrictHostKeyChecking no',
      '  UserKnownHostsFile /dev/null',
      '  BatchMode yes',
      '  LogLevel ERROR',
      `  ConnectTimeout ${CONNECT_TIMEOUT_S}`,
      '',
    ].join('\n'),
  );
  return file;
}

/** A script on a backend, through the bastion (the driver's own, untimed work). */
function sshThrough(config: string, host: BenchHost, script: string) {
  return runTimed(
    'ssh',
    [
      '-F',
      config,
      '-J',
      BASTION,
      ...(host.key ? ['-i', host.key] : []),
      '-p',
      String(host.port),
      `${host.user}@${host.address}`,
      words('sh', '-c', script),
    ],
    { timeoutMs: 120_000 },
  );
}

/** `ssh -J bastion host true` on every host at once: one handshake with each hop, one command. */
async function floor(config: string, hosts: BenchHost[]): Promise<RunOutcome> {
  const started = process.hrtime.bigint();
  const results = await Promise.all(
    hosts.map((h) =>
      runTimed(
        'ssh',
        [
          '-F',
          config,
          '-J',
          BASTION,
          ...(h.key ? ['-i', h.key] : []),
          '-p',
          String(h.port),
          `${h.user}@${h.address}`,
          'true',
        ],
        { timeoutMs: 120_000, cpu: true },
      ),
    ),
  );
  return floorOutcome(hosts, results, started);
}

const reached = (run: RunOutcome) =>
  [...run.hosts.values()].filter((h) => !h.unreachable && h.failed === 0).length;

/** The first lines saying why a host was not reached or failed, else the end of the output. */
function why(run: RunOutcome): string {
  const lines = run.output.trim().split('\n');
  const told = lines.filter(
    (l) => /UNREACHABLE|FAILED|unreachable|failed:|error/i.test(l) && !/ok=\d/.test(l),
  );
  return (told.length > 0 ? told.slice(0, 3) : lines.slice(-4)).join(' | ');
}

/** Why a run is not what its scenario expects, or undefined. */
function problem(run: RunOutcome, hosts: number, kind: Kind): string | undefined {
  if (run.hosts.size !== hosts || !allOk(run))
    return `${run.tool}: exit ${run.code}, ${reached(run)}/${hosts} reached: ${why(run)}`;
  if (run.tool === 'raw') return undefined;
  const want = kind === 'first' ? 1 : 0;
  const odd = [...run.hosts.entries()].find(([, h]) => h.changed !== want);
  return odd ? `${run.tool}: changed=${odd[1].changed} on ${odd[0]}, expected ${want}` : undefined;
}

interface Setup {
  hosts: BenchHost[];
  backends: BenchHost[];
  config: string;
  inventory: string;
  ansible: AnsibleFiles;
}

async function runOne(s: Setup, contestant: Contestant, id: string): Promise<RunOutcome> {
  if (contestant === 'floor') return floor(s.config, s.hosts);
  if (contestant === 'verdandi')
    return verdandi(['run', s.inventory, playbook, '--forks', String(s.hosts.length), '--limit', GROUP]);
  return runAnsible(s.ansible, s.hosts, 'unused', id, ansiblePlaybook);
}

/** Removes every host's own file (untimed): the next run is a first run. */
async function removeFiles(s: Setup): Promise<void> {
  await Promise.all(
    s.backends.map(async (b) => {
      const res = await sshThrough(s.config, b, `rm -f ${SIM_DIR}/*.conf`);
      if (res.code !== 0) throw new Error(`${b.name}: removing the hosts' files: ${res.stderr}`);
    }),
  );
}

async function measure(
  s: Setup,
  cells: Cell[],
  contestant: Contestant,
  kind: Kind,
  id: string,
): Promise<void> {
  if (kind === 'first') await removeFiles(s);
  const run = await runOne(s, contestant, id);
  let cell = cells.find((c) => c.contestant === contestant && c.kind === kind);
  if (!cell) {
    cell = { contestant, kind, runs: [], cpu: [], reached: [], notes: [] };
    cells.push(cell);
  }
  const bad = problem(run, s.hosts.length, kind);
  if (bad) {
    cell.notes.push(`run ${cell.runs.length + 1}: ${bad}`.slice(0, 400));
    log(`warning: ${bad}`);
  }
  cell.runs.push(run.ms);
  if (run.cpuMs !== undefined) cell.cpu.push(run.cpuMs);
  cell.reached.push(reached(run));
  if (contestant !== 'floor') cell.roundTrips ??= median([...run.hosts.values()].map((h) => h.roundTrips));
  log(`${contestant} ${kind}: ${seconds(run.ms)} s, ${reached(run)}/${s.hosts.length} reached`);
}

function render(
  cells: Cell[],
  warmUpNotes: string[],
  cli: ReturnType<typeof parseCli>,
  meta: { command: string; startedAt: string; machine: Record<string, string>; load: [number, number] },
  totalS: number,
): string {
  const [b, e] = blockMarkers(cli.label, 'bench/bastion.ts');
  const names: Record<Contestant, string> = {
    floor: '`ssh -J bastion host true` (floor)',
    verdandi: 'Verdandi (`jump:`)',
    ansible: 'ansible-playbook (ProxyJump)',
  };
  const order: Contestant[] = ['floor', 'verdandi', 'ansible'];
  const sorted = [...cells].sort(
    (x, y) => x.kind.localeCompare(y.kind) || order.indexOf(x.contestant) - order.indexOf(y.contestant),
  );
  const lines = [
    b,
    '',
    `Produced by \`${meta.command}\` (started ${meta.startedAt}, ${totalS.toFixed(0)} s in all).`,
    '',
    `Machine: ${machineLine(meta.machine)}`,
    `Load average (1 min) at the start: ${meta.load[0].toFixed(2)}, at the end: ${meta.load[1].toFixed(2)}.`,
    '',
    `${cli.hosts} hosts (ports of ${cli.backends} test hosts) reachable only through ${BASTION}; wall-clock seconds of`,
    "the whole command, medians. Round trips: per host, the tool's own count (Verdandi's `roundTrips`,",
    "Ansible's ssh invocations).",
    '',
    '| scenario | contestant | runs | wall s | reached (worst run) | round trips / host | CPU s |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const c of sorted)
    lines.push(
      `| ${c.contestant === 'floor' ? '–' : c.kind} | ${names[c.contestant]} | ${c.runs.length} | ${seconds(median(c.runs))} | ${Math.min(...c.reached)} / ${cli.hosts} | ${c.roundTrips ?? '–'} | ${seconds(median(c.cpu))} |`,
    );
  const notes = [
    ...warmUpNotes.map((n) => `- ${n}`),
    ...sorted.flatMap((c) => c.notes.map((n) => `- ${c.contestant} ${c.kind}: ${n}`)),
  ];
  if (notes.length > 0) lines.push('', '### Notes', '', ...notes);
  lines.push('', '<details><summary>Every run (seconds)</summary>', '');
  for (const c of sorted)
    lines.push(`- ${c.contestant} ${c.kind}: ${c.runs.map((ms) => seconds(ms)).join(' ')}`);
  lines.push('', '</details>', '', e);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const cli = parseCli();
  const started = Date.now();
  const meta = await runMeta('bench:bastion');
  const backendNames = Array.from({ length: cli.backends }, (_, i) => `hl-bk${i + 1}`);
  const workDir = await mkdtemp(join(tmpdir(), 'verdandi-bastion-'));
  const cells: Cell[] = [];
  const warmUpNotes: string[] = [];
  await withTestHosts(
    [BASTION, ...backendNames],
    { keep: cli.keepHosts, log, cleanUp: () => rm(workDir, { recursive: true, force: true }) },
    async (booted) => {
      await checkReachable(booted);
      const bastion = booted.find((h) => h.name === BASTION)!;
      const backends = booted.filter((h) => h !== bastion);
      // Before the firewall, straight to the backends: the redirected ports, sshd's limits, the shared
      // directory (the hosts' files are what the runs create).
      await prepareBackends(backends, cli.firstPort, cli.hosts);
      await raiseMaxStartups(bastion, cli.hosts + 100);
      await Promise.all(backends.map((b) => sshOk(b, `rm -rf ${SIM_DIR} && mkdir -m 0755 ${SIM_DIR}`)));
      // From now on the backends take SSH from the bastion only (the rule goes with the namespace).
      for (const b of backends)
        await inNamespace(b, [
          'iptables',
          '-w',
          '-I',
          'INPUT',
          '-p',
          'tcp',
          '--dport',
          '22',
          '!',
          '-s',
          bastion.address,
          '-j',
          'REJECT',
          '--reject-with',
          'tcp-reset',
        ]);
      const direct = await runTimed(
        'ssh',
        ['-i', backends[0].key ?? '', ...SSH_OPTIONS, `root@${backends[0].address}`, 'true'],
        {
          timeoutMs: 30_000,
        },
      );
      if (direct.code === 0)
        throw new Error(`${backends[0].name} is still reachable directly: the firewall failed`);

      const dir = join(workDir, 'project');
      await mkdir(dir, { recursive: true });
      const config = await writeSshConfig(dir, bastion);
      const sims = simulatedHosts(backends, cli.hosts, cli.firstPort);
      const hosts: BenchHost[] = sims.map((h) => ({ name: h.name, ...h.entry }));
      const inventory = join(dir, 'inventory.yml');
      const doc = {
        hosts: {
          [BASTION]: { address: bastion.address, port: bastion.port, user: bastion.user, key: bastion.key },
          ...Object.fromEntries(sims.map((h) => [h.name, { ...h.entry, jump: BASTION }])),
        },
        groups: { [GROUP]: { hosts: sims.map((h) => h.name) } },
      };
      await writeFile(inventory, `# Written by the benchmark driver.\n${yaml.dump(doc, { lineWidth: -1 })}`);
      const ansible = await writeAnsibleFiles(
        join(dir, 'ansible'),
        hosts,
        cli.hosts,
        `-F ${config} -o ProxyJump=${BASTION}`,
        CONNECT_TIMEOUT_S,
      );
      const setup: Setup = { hosts, backends, config, inventory, ansible };
      const tools: Contestant[] = cli.ansible ? ['verdandi', 'ansible'] : ['verdandi'];

      // Untimed: every file written once (by Verdandi), the cross-check that Ansible then finds nothing
      // to change, the floor's path warmed.
      const warm = await runOne(setup, 'verdandi', 'warm');
      if (!allOk(warm)) throw new Error(`the first Verdandi run failed: ${warm.output.slice(-2000)}`);
      for (const c of ['floor', ...tools] as Contestant[]) {
        const run = await runOne(setup, c, 'warm');
        const bad = problem(run, hosts.length, 'no-change');
        if (bad) {
          warmUpNotes.push(`warm-up: ${bad}`.slice(0, 600));
          log(`warning: warm-up: ${bad}`);
        }
      }
      const checkpoint = async () => {
        meta.load[1] = await loadAverage();
        await writeBlock(
          cli.out,
          cli.label,
          render(cells, warmUpNotes, cli, meta, (Date.now() - started) / 1000),
          'bench/bastion.ts',
        );
      };
      const noChange: Contestant[] = ['floor', ...tools];
      for (let r = 0; r < cli.runs; r++) {
        const shift = r % noChange.length;
        for (const c of [...noChange.slice(shift), ...noChange.slice(0, shift)])
          await measure(setup, cells, c, 'no-change', `n${r}`);
        for (const c of r % 2 === 0 ? tools : [...tools].reverse())
          await measure(setup, cells, c, 'first', `f${r}`);
        await checkpoint();
      }
    },
  );
  meta.load[1] = await loadAverage();
  await writeBlock(
    cli.out,
    cli.label,
    render(cells, warmUpNotes, cli, meta, (Date.now() - started) / 1000),
    'bench/bastion.ts',
  );
  await writeFile(
    join(dirname(cli.out), `results-${cli.label}.json`),
    `${JSON.stringify({ ...meta, cells }, null, 2)}\n`,
  );
  log(`done in ${seconds(Date.now() - started)} s: ${cli.out}`);
}

try {
  await main();
} catch (err) {
  log(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
}
