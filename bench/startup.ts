/**
 * Start-up cost (`npm run bench:startup`, issue 25): how long Verdandi takes before its first byte,
 * against Node's own start and the raw-ssh limit, and against another build of Verdandi.
 *
 *   npm run bench:startup                                   node -e 0 against verdandi --help
 *   npm run bench:startup -- --runs 31 --baseline <dir>     ... and another checkout's verdandi --help
 *   npm run bench:startup -- --inventory inv.yml --runs 15  ... and a no-change run of the twin play
 *                                                            (bench/work.ts) against raw-check.sh
 *   npm run bench:startup -- --inventory inv.yml --hosts 10 ... the same on the first 10 hosts at once
 *   npm run bench:startup -- --inventory inv.yml --persist  ... and the same run with `--persist 600`:
 *                                                            kept connections only ($VERDANDI_WARM=off),
 *                                                            then with the spare engine too
 *
 * --baseline names the root of another built checkout of Verdandi (its bin/verdandi.js is run): an A/B
 * of two builds on the same machine at the same time. --inventory names converged hosts (the first is
 * used, or the first --hosts of them); the run is `verdandi run <inventory> bench/work.ts --json`, as
 * `npm run bench` runs it, and raw-check.sh runs over one ssh per host, all at once.
 *
 * Each build has a compile cache of its own (VERDANDI_TS_CACHE): the cache keeps one bundle per
 * playbook, made for one engine build, so two builds sharing one cache would each rebuild the playbook
 * (esbuild) on every run, and the series would time that instead of a run that starts warm.
 *
 * With --persist (this build only), each persistent contestant is run once untimed first: the keeper
 * holds the connections from then on, and a spare is waiting for the next run of the second one. A
 * spare loads after the run that starts it, in the background (about 0.4 s of CPU that no contestant's
 * figure counts: the user's process does not wait for it); --gap-ms leaves that much idle time after
 * every contestant, so that what one leaves running (that load, the run history's import) does not
 * weigh on the next one's figure.
 *
 * Every round runs each contestant once, in the same order, so that whatever else the machine does
 * weighs on all of them alike. Reported: the median wall time and the mean and median CPU time (user +
 * system, GNU time, of the process and the children it waited for). CPU time is the steadier figure on
 * a shared machine; GNU time counts it in steps of 10 ms, so the mean of many runs is the finer one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { hostsFromInventory } from './hosts.js';
import { type Finished, loadAverage, median, runTimed } from './proc.js';
import { DEFAULT_MESSAGE } from './spec.js';
import { repoRoot, runRaw, verdandiPlaybook } from './tools.js';

interface Contestant {
  name: string;
  run: () => Promise<Finished>;
}

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '21' },
    baseline: { type: 'string' },
    inventory: { type: 'string' },
    hosts: { type: 'string', default: '1' },
    persist: { type: 'boolean', default: false },
    'gap-ms': { type: 'string', default: '0' },
  },
});
const gapMs = Number(values['gap-ms']);
if (!Number.isInteger(gapMs) || gapMs < 0)
  throw new Error(`--gap-ms must be whole milliseconds, got ${values['gap-ms']}`);
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1)
  throw new Error(`--runs must be a positive whole number, got ${values.runs}`);
const hostCount = Number(values.hosts);
if (!Number.isInteger(hostCount) || hostCount < 1)
  throw new Error(`--hosts must be a positive whole number, got ${values.hosts}`);

/** Fails the benchmark when a contestant did not do what it is timed for. */
function ok(name: string, res: Finished): Finished {
  if (res.code !== 0) throw new Error(`${name} exited ${res.code}:\n${res.stdout}\n${res.stderr}`);
  return res;
}

function cli(root: string) {
  return join(root, 'bin', 'verdandi.js');
}

/** The compile caches made for the runs, removed at the end. */
const caches: string[] = [];
/** The keeper's and spares' directory of --persist, when asked for. */
let runtimeDir: string | undefined;
const builds: Array<[label: string, root: string]> = [['this build', repoRoot]];
if (values.baseline) builds.push(['baseline', values.baseline]);

const contestants: Contestant[] = [
  {
    name: 'node -e 0',
    run: async () => ok('node -e 0', await runTimed(process.execPath, ['-e', '0'], { cpu: true })),
  },
];
for (const [label, root] of builds) {
  contestants.push({
    name: `verdandi --help (${label})`,
    run: async () => ok(label, await runTimed(process.execPath, [cli(root), '--help'], { cpu: true })),
  });
}

if (values.inventory) {
  const inventory = values.inventory;
  const hosts = (await hostsFromInventory(inventory)).slice(0, hostCount);
  if (hosts.length < hostCount) throw new Error(`${inventory} has ${hosts.length} hosts, not ${hostCount}`);
  const onHosts = `${hostCount} host${hostCount === 1 ? '' : 's'}`;
  const noChangeRun = (
    name: string,
    root: string,
    env: NodeJS.ProcessEnv,
    extra: string[] = [],
  ): Contestant => ({
    name,
    run: async () => {
      const args = [cli(root), 'run', inventory, verdandiPlaybook, '--json', '--host-key-checking', 'off'];
      args.push('--var', `bench_message=${DEFAULT_MESSAGE}`, '--limit', hosts.map((h) => h.name).join(','));
      const res = ok(
        name,
        await runTimed(process.execPath, [...args, ...extra], { cwd: repoRoot, env, cpu: true }),
      );
      const report = JSON.parse(res.stdout) as { hosts: Record<string, { changed: number }> };
      for (const host of hosts) {
        const changed = report.hosts[host.name]?.changed;
        if (changed !== 0) throw new Error(`${name}: ${changed} changes on ${host.name}: not converged`);
      }
      return res;
    },
  });
  const cacheFor = () => {
    const cache = mkdtempSync(join(tmpdir(), 'verdandi-startup-cache-'));
    caches.push(cache);
    return cache;
  };
  for (const [label, root] of builds) {
    const env = { ...process.env, VERDANDI_TS_CACHE: cacheFor() };
    contestants.push(noChangeRun(`no-change run, ${onHosts} (${label})`, root, env));
  }
  if (values.persist) {
    // A keeper and spares of the benchmark's own, stopped at the end (`verdandi disconnect`).
    runtimeDir = mkdtempSync(join(tmpdir(), 'verdandi-startup-rt-'));
    const env = { ...process.env, VERDANDI_TS_CACHE: cacheFor(), XDG_RUNTIME_DIR: runtimeDir };
    const persist = ['--persist', '600'];
    contestants.push(
      noChangeRun(
        `no-change run, ${onHosts}, --persist: kept connections only`,
        repoRoot,
        {
          ...env,
          VERDANDI_WARM: 'off',
        },
        persist,
      ),
      noChangeRun(
        `no-change run, ${onHosts}, --persist: kept connections and the spare engine`,
        repoRoot,
        env,
        persist,
      ),
    );
  }
  contestants.push({
    name: `raw ssh (raw-check.sh), ${onHosts}`,
    run: async () => {
      const res = await runRaw(hosts, DEFAULT_MESSAGE);
      if (res.code !== 0) throw new Error(`raw-check.sh failed: ${res.output}`);
      return { code: 0, stdout: '', stderr: '', ms: res.ms, cpuMs: res.cpuMs };
    },
  });
}

const loadBefore = await loadAverage();
const results = new Map<string, Finished[]>(contestants.map((c) => [c.name, []]));
const gap = () => new Promise((resolve) => setTimeout(resolve, gapMs));
// One untimed round: file caches and the compile cache of the playbook are warm for every contestant.
for (const c of contestants) {
  await c.run();
  await gap();
}
for (let round = 0; round < runs; round++) {
  for (const c of contestants) {
    results.get(c.name)?.push(await c.run());
    await gap();
  }
  process.stderr.write(`[startup] round ${round + 1}/${runs}\n`);
}
const loadAfter = await loadAverage();
for (const cache of caches) rmSync(cache, { recursive: true, force: true });
if (runtimeDir) {
  const env = { ...process.env, XDG_RUNTIME_DIR: runtimeDir };
  await runTimed(process.execPath, [cli(repoRoot), 'disconnect'], { cwd: repoRoot, env });
  rmSync(runtimeDir, { recursive: true, force: true });
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const base = results.get('node -e 0') ?? [];
const baseCpu = mean(base.map((r) => r.cpuMs ?? Number.NaN));
const rows = contestants.map((c) => {
  const rs = results.get(c.name) ?? [];
  const cpu = rs.map((r) => r.cpuMs ?? Number.NaN);
  return `| ${c.name} | ${median(rs.map((r) => r.ms)).toFixed(0)} | ${mean(cpu).toFixed(0)} | ${median(cpu).toFixed(0)} | ${(mean(cpu) / baseCpu).toFixed(2)}× |`;
});
process.stdout.write(
  [
    `${runs} rounds, load average ${loadBefore} at the start, ${loadAfter} at the end.`,
    '',
    '| contestant | wall ms (median) | CPU ms (mean) | CPU ms (median) | CPU / node -e 0 |',
    '| ---------- | ---------------- | ------------- | --------------- | --------------- |',
    ...rows,
    '',
  ].join('\n'),
);
