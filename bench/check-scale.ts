/**
 * The `check-scale` scenario: `verdandi check` of generated inventories of thousands of hosts, no host
 * involved. Each inventory puts every host in one group with one role of one `copy` task (the shape an
 * inventory of many similar servers has): what grows is inventory resolution, var layering and the
 * plan, which must be linear in hosts. Each size is run once untimed (its role compiled into the
 * scenario's own cache), then `runs` times; the sizes alternate.
 *
 * Target: 10,000 hosts check in under 10 s and 600 MB (peak RSS of the whole command).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadAverage, runTimed } from './proc.js';
import { verdandiBin } from './tools.js';

export interface CheckScaleFigure {
  hosts: number;
  /** Wall-clock ms of each timed run, from spawn to exit. */
  runs: number[];
  /** `durationMs` of each run's `--json`: the check itself, after Node started and the CLI loaded. */
  inner: number[];
  cpu: number[];
  maxRssKb: number[];
  notes: string[];
}

export interface CheckScaleResult {
  figures: CheckScaleFigure[];
  loadBefore: number;
  loadAfter: number;
}

const ROLE = `import { copy, defineRole, z } from 'verdandi';

export default defineRole({
  name: 'one',
  vars: z.object({ one_content: z.string().default('x') }),
  tasks: (vars) => [copy({ path: '/etc/one', content: vars.one_content })],
});
`;

/** A project of `hosts` hosts in one group with the one-copy role; returns its directory. */
async function writeProject(workDir: string, hosts: number): Promise<string> {
  const dir = join(workDir, `check-scale-${hosts}`);
  await mkdir(join(dir, 'roles', 'one'), { recursive: true });
  await mkdir(join(dir, 'inventories'), { recursive: true });
  await writeFile(join(dir, 'roles', 'one', 'index.ts'), ROLE);
  const names = Array.from({ length: hosts }, (_, i) => `h${i + 1}`);
  const lines = ['hosts:'];
  for (const [i, name] of names.entries()) lines.push(`  ${name}: { address: 10.9.${i >> 8}.${i & 255} }`);
  lines.push('groups:', '  fleet:', `    hosts: [${names.join(', ')}]`, '    roles: [one]', '');
  await writeFile(join(dir, 'inventories', 'big.yml'), lines.join('\n'));
  return dir;
}

export async function checkScaleScenario(
  counts: number[],
  runs: number,
  workDir: string,
  log: (line: string) => void,
): Promise<CheckScaleResult> {
  const cache = await mkdtemp(join(workDir, 'ts-cache-'));
  const figures: CheckScaleFigure[] = counts.map((hosts) => ({
    hosts,
    runs: [],
    inner: [],
    cpu: [],
    maxRssKb: [],
    notes: [],
  }));
  const dirs = new Map<number, string>();
  for (const f of figures) dirs.set(f.hosts, await writeProject(workDir, f.hosts));
  const once = async (f: CheckScaleFigure, timed: boolean) => {
    const res = await runTimed(process.execPath, [verdandiBin, 'check', 'big', '--json'], {
      cwd: dirs.get(f.hosts),
      env: { ...process.env, VERDANDI_TS_CACHE: cache },
      timeoutMs: 300_000,
      cpu: true,
    });
    let report: { ok?: boolean; hosts?: number; tasks?: number; durationMs?: number } = {};
    try {
      report = JSON.parse(res.stdout);
    } catch {
      // Said below: a run that printed no report is a failed run.
    }
    if (res.code !== 0 || report.ok !== true || report.tasks !== f.hosts) {
      f.notes.push(`exit ${res.code}: ${(res.stdout + res.stderr).trim().split('\n').slice(-5).join(' | ')}`);
      return;
    }
    if (!timed) return;
    f.runs.push(res.ms);
    f.inner.push(report.durationMs ?? Number.NaN);
    if (res.cpuMs !== undefined) f.cpu.push(res.cpuMs);
    if (res.maxRssKb !== undefined) f.maxRssKb.push(res.maxRssKb);
  };
  const loadBefore = await loadAverage();
  try {
    for (const f of figures) await once(f, false);
    for (let i = 0; i < runs; i++) for (const f of figures) await once(f, true);
  } finally {
    await rm(cache, { recursive: true, force: true });
    for (const dir of dirs.values()) await rm(dir, { recursive: true, force: true });
  }
  for (const f of figures)
    log(`check-scale ${f.hosts} hosts: ${f.runs.map((ms) => Math.round(ms)).join(' ')} ms`);
  return { figures, loadBefore, loadAfter: await loadAverage() };
}
