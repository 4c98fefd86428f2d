/**
 * The `check` scenario: `verdandi check <env>` of the repository's example inventories, no host
 * involved (what CI and a pre-commit hook run). Each case is run once untimed first, so its roles are
 * compiled (the bundles of compile-cache.ts, in a cache folder of the scenario's own), then `runs`
 * times, the cases alternating so a change in the machine's load hits them all:
 *
 *   staging, production   without the vault password (CI): the secrets file is read, not decrypted
 *   staging + password    with the examples' password: the secrets decrypted and every secrets.x found
 *
 * Target (issue 14): the example inventories check in well under a second once compiled.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { loadAverage, runTimed } from './proc.js';
import { repoRoot, verdandiBin } from './tools.js';

/** The password the example secrets are encrypted to (README, Inventories). */
const EXAMPLE_PASSWORD = 'verdandi-example';

export interface CheckFigure {
  env: string;
  password: boolean;
  hosts: number;
  tasks: number;
  /** Wall-clock ms of each timed run, from spawn to exit. */
  runs: number[];
  /** `durationMs` of each run's `--json`: the check itself, after Node started and the CLI loaded. */
  inner: number[];
  cpu: number[];
  notes: string[];
}

export interface CheckResult {
  figures: CheckFigure[];
  loadBefore: number;
  loadAfter: number;
}

const CASES: ReadonlyArray<{ env: string; password: boolean }> = [
  { env: 'staging', password: false },
  { env: 'production', password: false },
  { env: 'staging', password: true },
];

export async function checkScenario(
  runs: number,
  workDir: string,
  log: (line: string) => void,
): Promise<CheckResult> {
  const cache = await mkdtemp(join(workDir, 'ts-cache-'));
  const figures: CheckFigure[] = CASES.map((c) => ({
    ...c,
    hosts: 0,
    tasks: 0,
    runs: [],
    inner: [],
    cpu: [],
    notes: [],
  }));
  const once = async (f: CheckFigure, timed: boolean) => {
    const env: NodeJS.ProcessEnv = { ...process.env, VERDANDI_TS_CACHE: cache, VERDANDI_VAULT_PASSWORD: '' };
    if (f.password) env.VERDANDI_VAULT_PASSWORD = EXAMPLE_PASSWORD;
    const res = await runTimed(process.execPath, [verdandiBin, 'check', f.env, '--json'], {
      cwd: repoRoot,
      env,
      timeoutMs: 120_000,
      cpu: true,
    });
    let report: { ok?: boolean; hosts?: number; tasks?: number; durationMs?: number; notes?: string[] } = {};
    try {
      report = JSON.parse(res.stdout);
    } catch {
      // Said below: a run that printed no report is a failed run.
    }
    if (res.code !== 0 || report.ok !== true) {
      f.notes.push(`exit ${res.code}: ${(res.stdout + res.stderr).trim().split('\n').slice(-5).join(' | ')}`);
      return;
    }
    // With the password nothing is left unverified; without it, one note says what was not.
    const expectedNotes = f.password ? 0 : 1;
    if ((report.notes?.length ?? 0) !== expectedNotes)
      f.notes.push(
        `${report.notes?.length ?? 0} notes, expected ${expectedNotes}: ${report.notes?.join(' | ')}`,
      );
    f.hosts = report.hosts ?? 0;
    f.tasks = report.tasks ?? 0;
    if (!timed) return;
    f.runs.push(res.ms);
    f.inner.push(report.durationMs ?? Number.NaN);
    if (res.cpuMs !== undefined) f.cpu.push(res.cpuMs);
  };
  const loadBefore = await loadAverage();
  try {
    for (const f of figures) await once(f, false);
    for (let i = 0; i < runs; i++) for (const f of figures) await once(f, true);
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
  for (const f of figures)
    log(
      `check ${f.env}${f.password ? ' (password)' : ''}: ${f.runs.map((ms) => Math.round(ms)).join(' ')} ms`,
    );
  return { figures, loadBefore, loadAfter: await loadAverage() };
}
