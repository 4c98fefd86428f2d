/**
 * A run that starts warm (`npm run bench:warm`, issue 25): a no-change `verdandi provision` right after
 * another, with and without `--persist`, over the benchmark's slow link (latency-proxy.ts) at several
 * added round trips. Without it, every run pays Node's start-up, the SSH handshake and one round trip;
 * with it, the connection keeper holds the connection from the run before: no handshake.
 *
 *   npm run bench:warm                                1 host, round trips of 0, 50, 150 ms, 5 runs each
 *   npm run bench:warm -- --rtt 0,50,150 --runs 5 --label warm
 *
 * Options: --rtt 0,50,150 (added round trip, ms)  --runs 5  --keep-hosts  --label warm
 *          --out bench/RESULTS.md
 *
 * For each added round trip, on one host (pc-warm1), the contestants alternating:
 *   floor     `ssh host true`: one plain OpenSSH handshake and command
 *   cold      `verdandi provision` of the twin roles, no change, no --persist: a handshake per run
 *   warm      the same with `--persist 600`, the keeper started by an untimed run before: no handshake;
 *             since the spare engine (src/cli/warm/), also no start of the engine (a spare, started by
 *             the run before, takes the command). The `warm` block of bench/RESULTS.md predates it.
 * The proxy counts each run's connections and round trips (a burst from the tool answered by a burst
 * from sshd); the keeper's connection, made before the timed runs, is no connection of theirs.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { type BenchHost, checkReachable, seedHosts, sshArgs } from './hosts.js';
import { LatencyProxy } from './latency-proxy.js';
import { withTestHosts } from './lifecycle.js';
import { machineLine, runMeta } from './machine.js';
import { loadAverage, median, runTimed, seconds } from './proc.js';
import { blockMarkers, writeBlock } from './report.js';
import {
  allOk,
  floorOutcome,
  type RunOutcome,
  repoRoot,
  runVerdandiProvision,
  verdandi,
  writeVerdandiInventory,
} from './tools.js';

const ROLES = ['twinpkg', 'twin', 'twinsvc'];
const MESSAGE = 'hello';
const rolesDir = new URL('./roles', import.meta.url).pathname;
const log = (line: string) => process.stderr.write(`[warm] ${line}\n`);

type Contestant = 'floor' | 'cold' | 'warm';
const CONTESTANTS: Contestant[] = ['floor', 'cold', 'warm'];
const NAMES: Record<Contestant, string> = {
  floor: '`ssh host true` (floor)',
  cold: 'Verdandi no-change, cold',
  warm: 'Verdandi no-change, warm (`--persist`)',
};

interface Cell {
  contestant: Contestant;
  rttMs: number;
  runs: number[];
  cpu: number[];
  linkRoundTrips: number[];
  connections: number[];
  /** Verdandi's own `roundTrips` per run. */
  toolRoundTrips: number[];
  notes: string[];
}

function parseCli() {
  const { values } = parseArgs({
    options: {
      rtt: { type: 'string', default: '0,50,150' },
      runs: { type: 'string', default: '5' },
      'keep-hosts': { type: 'boolean', default: false },
      label: { type: 'string', default: 'warm' },
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
  return {
    rtts: list('rtt', values.rtt, 0),
    runs: list('runs', values.runs, 1)[0],
    keepHosts: values['keep-hosts'],
    label: values.label,
    out: values.out,
  };
}

async function run(c: Contestant, host: BenchHost, inventory: string): Promise<RunOutcome> {
  if (c === 'floor') {
    const started = process.hrtime.bigint();
    const result = await runTimed('ssh', sshArgs(host, 'true'), { timeoutMs: 120_000, cpu: true });
    return floorOutcome([host], [result], started);
  }
  const persist = c === 'warm' ? ['--persist', '600'] : [];
  return verdandi(['provision', inventory, ...persist, '--var', `twin_message=${MESSAGE}`]);
}

function render(
  cells: Cell[],
  cli: ReturnType<typeof parseCli>,
  meta: { command: string; startedAt: string; machine: Record<string, string>; load: [number, number] },
  totalS: number,
): string {
  const [b, e] = blockMarkers(cli.label, 'bench/warm.ts');
  const lines = [
    b,
    '',
    `Produced by \`${meta.command}\` (started ${meta.startedAt}, ${totalS.toFixed(0)} s in all).`,
    '',
    `Machine: ${machineLine(meta.machine)}`,
    `Load average (1 min) at the start: ${meta.load[0].toFixed(2)}, at the end: ${meta.load[1].toFixed(2)}.`,
    '',
    'Wall-clock seconds of the whole command, median of the runs, on 1 host. Link round trips and',
    'connections: per run, counted by the proxy (handshakes included). Added: the median minus the same',
    "contestant's at 0 ms; expected: link round trips × the added round trip.",
    '',
    "| added RTT | contestant | runs | wall s | added s | expected s | link round trips | connections | Verdandi's roundTrips | CPU s |",
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  const sorted = [...cells].sort(
    (x, y) => x.rttMs - y.rttMs || CONTESTANTS.indexOf(x.contestant) - CONTESTANTS.indexOf(y.contestant),
  );
  const cellS = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');
  for (const c of sorted) {
    const zero = cells.find((x) => x.contestant === c.contestant && x.rttMs === 0);
    const added = zero ? (median(c.runs) - median(zero.runs)) / 1000 : Number.NaN;
    const trips = median(c.linkRoundTrips);
    lines.push(
      `| ${c.rttMs} ms | ${NAMES[c.contestant]} | ${c.runs.length} | ${seconds(median(c.runs))} | ${cellS(added)} | ${cellS((trips * c.rttMs) / 1000)} | ${trips} | ${median(c.connections)} | ${c.toolRoundTrips.length ? median(c.toolRoundTrips) : '–'} | ${seconds(median(c.cpu))} |`,
    );
  }
  const notes = sorted.flatMap((c) => c.notes.map((n) => `- ${c.rttMs} ms, ${c.contestant}: ${n}`));
  if (notes.length > 0) lines.push('', '### Notes', '', ...notes);
  lines.push('', '<details><summary>Every run (seconds)</summary>', '');
  for (const c of sorted)
    lines.push(
      `- ${c.rttMs} ms, ${c.contestant}: ${c.runs.map((ms) => seconds(ms)).join(' ')} (connections ${c.connections.join(' ')})`,
    );
  lines.push('', '</details>', '', e);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const cli = parseCli();
  const started = Date.now();
  const meta = await runMeta('bench:warm');
  const workDir = await mkdtemp(join(tmpdir(), 'verdandi-warm-'));
  // The benchmark's own keeper: its socket directory is one of the work directory.
  const runtime = join(workDir, 'run');
  await mkdir(runtime, { mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = runtime;
  const proxies: LatencyProxy[] = [];
  const cells: Cell[] = [];
  const disconnect = () => runTimed(process.execPath, [join(repoRoot, 'bin', 'verdandi.js'), 'disconnect']);
  await withTestHosts(
    ['pc-warm1'],
    {
      keep: cli.keepHosts,
      log,
      cleanUp: async () => {
        await disconnect();
        await Promise.all(proxies.map((p) => p.close()));
        await rm(workDir, { recursive: true, force: true });
      },
    },
    async (all) => {
      await checkReachable(all);
      await seedHosts(all, log);
      const project = join(workDir, 'project');
      await mkdir(project, { recursive: true });
      await symlink(rolesDir, join(project, 'roles'));
      const direct = await writeVerdandiInventory(project, all, ROLES, 'direct.yml');
      const converge = await runVerdandiProvision(direct, 1, { twin_message: MESSAGE });
      if (!allOk(converge)) throw new Error(`the converge run failed: ${converge.output.slice(-2000)}`);
      for (const rttMs of cli.rtts) {
        const proxy = new LatencyProxy({
          targetHost: all[0].address,
          targetPort: all[0].port,
          oneWayMs: rttMs / 2,
        });
        proxies.push(proxy);
        const port = await proxy.listen();
        const host: BenchHost = { ...all[0], address: '127.0.0.1', port };
        const inventory = await writeVerdandiInventory(project, [host], ROLES, `rtt${rttMs}.yml`);
        // Untimed: the compile cache, the path through the proxy, and the keeper's connection.
        for (const c of CONTESTANTS) await run(c, host, inventory);
        for (let r = 0; r < cli.runs; r++) {
          const shift = r % CONTESTANTS.length;
          for (const c of [...CONTESTANTS.slice(shift), ...CONTESTANTS.slice(0, shift)]) {
            proxy.takeStats();
            const res = await run(c, host, inventory);
            const link = proxy.takeStats();
            let cell = cells.find((x) => x.contestant === c && x.rttMs === rttMs);
            if (!cell) {
              cell = {
                contestant: c,
                rttMs,
                runs: [],
                cpu: [],
                linkRoundTrips: [],
                connections: [],
                toolRoundTrips: [],
                notes: [],
              };
              cells.push(cell);
            }
            const changed = [...res.hosts.values()].some((h) => h.changed > 0);
            if (!allOk(res) || (c !== 'floor' && changed)) {
              const why = `run ${r + 1}: exit ${res.code}${changed ? ', something changed' : ''}: ${res.output.trim().split('\n').slice(-4).join(' | ')}`;
              cell.notes.push(why.slice(0, 400));
              log(`warning: ${why}`);
            }
            cell.runs.push(res.ms);
            if (res.cpuMs !== undefined) cell.cpu.push(res.cpuMs);
            cell.linkRoundTrips.push(link.roundTrips);
            cell.connections.push(link.connections);
            if (c !== 'floor') cell.toolRoundTrips.push(...[...res.hosts.values()].map((h) => h.roundTrips));
            log(
              `rtt ${rttMs} ms, ${c}: ${seconds(res.ms)} s, ${link.roundTrips} link round trips, ${link.connections} connections`,
            );
          }
        }
        // The next round trip's warm runs start with a connection through their own proxy.
        await disconnect();
        await proxy.close();
      }
    },
  );
  meta.load[1] = await loadAverage();
  await writeBlock(
    cli.out,
    cli.label,
    render(cells, cli, meta, (Date.now() - started) / 1000),
    'bench/warm.ts',
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
