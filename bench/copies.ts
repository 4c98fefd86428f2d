/**
 * The `copies` scenario: one big role on one host, Verdandi alone. The role (roles/copies) is nothing
 * but `copy` tasks, so the figures show what the engine's cost per task and per change is:
 *
 *   first        N files written into an empty directory
 *   all-changed  every one of the N files gets new content (a new `copies_round`)
 *   no-change    the same N files again: nothing to do, one probe round trip
 *   no-change    with `--copies-big` tasks (1,000): created once (untimed), then timed no-change runs
 *
 * Targets (issue 11, "linear cost"): all-changed within 1.5x the first run; no-change of 1,000 tasks in
 * one round trip and under 2 s.
 */
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type BenchHost, sshOk } from './hosts.js';
import { seconds } from './proc.js';
import { COPIES_DIR } from './spec.js';
import { type RunOutcome, runVerdandiProvision, writeVerdandiInventory } from './tools.js';

export type CopiesKind = 'first' | 'all-changed' | 'no-change';

export interface CopiesFigure {
  kind: CopiesKind;
  tasks: number;
  /** Wall-clock ms of each timed run. */
  runs: number[];
  /** Verdandi's own `durationMs` of each run. */
  inner: number[];
  cpu: number[];
  /** Round trips of the host, from `--json` (first timed run). */
  roundTrips?: number;
  /** Runs that did not do what the scenario expects (a failure, a wrong changed count). */
  notes: string[];
}

export interface CopiesResult {
  host: string;
  figures: CopiesFigure[];
  notes: string[];
}

export interface CopiesOptions {
  /** Tasks of the first / all-changed / no-change runs (300). */
  tasks: number;
  /** Tasks of the big no-change runs (1,000). */
  bigTasks: number;
  /** Repetitions of the first + all-changed pair (each starts from an empty directory). */
  changeRuns: number;
  /** Repetitions of each no-change figure. */
  noChangeRuns: number;
}

const ROLE = 'copies';
const rolesDir = new URL('./roles', import.meta.url).pathname;

/** Empties the role's directory on the host (untimed): the next run is a first run. */
async function emptyDirectory(host: BenchHost): Promise<void> {
  await sshOk(host, `rm -rf ${COPIES_DIR} && mkdir -p ${COPIES_DIR}`);
}

function newFigure(kind: CopiesKind, tasks: number): CopiesFigure {
  return { kind, tasks, runs: [], inner: [], cpu: [], notes: [] };
}

/** Why a run is not what was expected, or undefined. */
function problem(run: RunOutcome, host: BenchHost, changed: number): string | undefined {
  const h = run.hosts.get(host.name);
  if (!h || run.code !== 0 || h.failed > 0 || h.unreachable) {
    const tail = run.output.trim().split('\n').slice(-6).join(' | ');
    return `exit ${run.code}${h ? `, failed=${h.failed}${h.unreachable ? ', unreachable' : ''}` : ', no result for the host'}: ${tail.slice(0, 400)}`;
  }
  if (h.changed !== changed) return `changed=${h.changed}, expected ${changed}`;
  return undefined;
}

export async function copiesScenario(
  host: BenchHost,
  opts: CopiesOptions,
  workDir: string,
  log: (line: string) => void,
): Promise<CopiesResult> {
  const dir = join(workDir, 'copies');
  await mkdir(dir, { recursive: true });
  // The inventory's folder is the project: its roles/ is where `provision` finds the role.
  await symlink(rolesDir, join(dir, 'roles'));
  const inventory = await writeVerdandiInventory(dir, [host], [ROLE]);
  const result: CopiesResult = { host: host.name, figures: [], notes: [] };
  let roundCounter = 0;
  const nextRound = () => `r${++roundCounter}`;

  /** One timed run of `tasks` copy tasks at `round`; false when it failed (the figure says why). */
  const timed = async (figure: CopiesFigure, round: string, changed: number): Promise<boolean> => {
    const run = await runVerdandiProvision(inventory, 1, { copies_count: figure.tasks, copies_round: round });
    const bad = problem(run, host, changed);
    if (bad) {
      figure.notes.push(`run ${figure.runs.length + 1}: ${bad}`);
      log(`copies ${figure.kind} (${figure.tasks} tasks): ${bad}`);
      if (run.code !== 0) return false;
    }
    figure.runs.push(run.ms);
    if (run.innerMs !== undefined) figure.inner.push(run.innerMs);
    if (run.cpuMs !== undefined) figure.cpu.push(run.cpuMs);
    figure.roundTrips ??= run.hosts.get(host.name)?.roundTrips;
    log(`copies ${figure.kind} (${figure.tasks} tasks) #${figure.runs.length}: ${seconds(run.ms)} s`);
    return true;
  };

  // Untimed: the role's first load bundles it into the compile cache.
  await emptyDirectory(host);
  await runVerdandiProvision(inventory, 1, { copies_count: 1, copies_round: 'warm-up' });

  const first = newFigure('first', opts.tasks);
  const allChanged = newFigure('all-changed', opts.tasks);
  const noChange = newFigure('no-change', opts.tasks);
  result.figures.push(first, allChanged, noChange);
  let round = '';
  let converged = false;
  for (let r = 0; r < opts.changeRuns; r++) {
    await emptyDirectory(host);
    round = nextRound();
    if (!(await timed(first, round, opts.tasks))) break;
    round = nextRound();
    converged = await timed(allChanged, round, opts.tasks);
    if (!converged) break;
  }
  if (converged) {
    for (let r = 0; r < opts.noChangeRuns; r++) await timed(noChange, round, 0);
  } else noChange.notes.push('not run: the hosts could not be converged with this many tasks');

  const big = newFigure('no-change', opts.bigTasks);
  result.figures.push(big);
  await emptyDirectory(host);
  const bigRound = nextRound();
  const create = await runVerdandiProvision(inventory, 1, {
    copies_count: opts.bigTasks,
    copies_round: bigRound,
  });
  const createProblem = problem(create, host, opts.bigTasks);
  if (createProblem) {
    big.notes.push(`creating the ${opts.bigTasks} files failed, no-change not run: ${createProblem}`);
    log(`copies: creating ${opts.bigTasks} files: ${createProblem}`);
  } else {
    result.notes.push(`creating the ${opts.bigTasks} files (untimed) took ${seconds(create.ms)} s`);
    for (let r = 0; r < opts.noChangeRuns; r++) await timed(big, bigRound, 0);
  }
  await emptyDirectory(host);
  return result;
}
