/**
 * The plan of a deploy (or rollback) of one site on one host: the ordered commands of steps 2-7 of a
 * deploy, each with what undoes it. Pure: built from the host's state and the release to ship, so
 * `--check` prints it and unit tests assert it without a host. `deploy.ts` runs it:
 *
 *   - a step that fails before the point of no return runs the `undo` of every step done so far, in
 *     reverse order (the half-made release is removed, the old color resumes, maintenance ends), so the
 *     previous release keeps serving;
 *   - the migration check decides whether the steps marked `only: 'pending-migrations'` run;
 *   - after the point of no return (nginx switched to the new release) nothing is undone: a failure is
 *     reported as such, with the new release live;
 *   - `bestEffort` steps (pruning, the record) only warn.
 */
import type { DeployLogEntry } from '../util/run-events.js';
import { words } from '../util/shell.js';
import { checkout, maintenanceOff, maintenanceOn, recordDeploy, writeEnvFile } from './commands.js';
import type { PlanStep } from './plan-step.js';
import { type ReleaseRecord, releasesToPrune } from './release.js';
import { releaseDir } from './release-files.js';
import { runtimeOf } from './runtimes/index.js';
import type { ReleaseInput } from './runtimes/runtime.js';
import type { Site } from './site.js';
import type { SitePaths } from './site-base.js';
import type { SiteState } from './state.js';

// runner.ts and its tests read the step's type here, with the plan's.
export type { Phase, PlanStep } from './plan-step.js';

export interface DeployPlanInput {
  site: Site;
  paths: SitePaths;
  state: SiteState;
  record: ReleaseRecord;
  /** Content of the release's environment file. */
  env: string;
  /** The site's registry password, when it has a registry (sent on stdin only). */
  registryPassword?: string;
}

export interface DeployPlan {
  release: string;
  /** Releases deleted after the deploy (beyond keepReleases). */
  prune: string[];
  steps: PlanStep[];
  /** What its last step writes into the site's deploy log once it worked. */
  logEntry: DeployLogEntry;
}

/** Deletes releases, and what goes with them for the site's runtime (images); null when none. */
export function removeReleases(site: Site, paths: SitePaths, releases: string[]): string | null {
  if (releases.length === 0) return null;
  const dirs = releases.map((r) => releaseDir(paths, r));
  const parts = [words('rm', '-rf', '--', ...dirs)];
  const artifacts = runtimeOf(site).removeArtifacts(site, releases);
  if (artifacts) parts.push(artifacts);
  return parts.join('; ');
}

/** The code: the release cut from the host's repository (removed again on failure), its environment. */
function codeSteps({ site, paths, record, env }: DeployPlanInput): PlanStep[] {
  return [
    {
      phase: 'code',
      title: `checkout ${record.release}`,
      command: checkout(paths, record),
      undo: [removeReleases(site, paths, [record.release])!],
    },
    { phase: 'code', title: 'environment file', command: writeEnvFile(paths, record.release), stdin: env },
  ];
}

/** The site's build commands and checks, run in the release (or its image). */
function buildAndCheckSteps(i: ReleaseInput<Site>): PlanStep[] {
  const { site, paths, release } = i;
  const runtime = runtimeOf(site);
  const run = (what: string, commands: string[]): PlanStep[] =>
    commands.map((cmd, n) => ({
      phase: 'build',
      title: `${what} ${n + 1}/${commands.length}`,
      command: runtime.inRelease(site, paths, release, cmd),
    }));
  return [...run('build', site.build), ...run('check', site.checks)];
}

/**
 * The migrations, under maintenance: the check decides (when the site has one), then maintenance on,
 * the runtime stops what runs (each undone on failure), and the migration runs in the new release.
 */
function migrationSteps(i: ReleaseInput<Site>): PlanStep[] {
  const { site, paths, release } = i;
  if (!site.migrate) return [];
  const runtime = runtimeOf(site);
  const steps: PlanStep[] = [];
  if (site.migrate.check) {
    steps.push({
      phase: 'migrate',
      title: 'pending migrations?',
      command: runtime.inRelease(site, paths, release, site.migrate.check),
      decides: 'pending-migrations',
    });
  }
  steps.push(
    {
      phase: 'migrate',
      title: 'maintenance on',
      command: maintenanceOn(paths),
      undo: [maintenanceOff(paths)],
    },
    ...runtime.migrationStops(i),
    {
      phase: 'migrate',
      title: 'migrate',
      command: runtime.inRelease(site, paths, release, site.migrate.command),
      migrates: true,
    },
  );
  const only = site.migrate.check ? ('pending-migrations' as const) : undefined;
  return steps.map((step) => (step.decides || !only ? step : { ...step, only }));
}

/** Maintenance ends once the new release serves, before the old processes stop. */
function maintenanceEnd(site: Site, paths: SitePaths): PlanStep[] {
  if (!site.migrate) return [];
  return [
    {
      phase: 'switch',
      title: 'maintenance off',
      command: maintenanceOff(paths),
      only: site.migrate.check ? 'pending-migrations' : undefined,
    },
  ];
}

export function deployPlan(input: DeployPlanInput): DeployPlan {
  const { site, paths, state, record } = input;
  const release = record.release;
  const runtime = runtimeOf(site);
  const i: ReleaseInput<Site> = {
    site,
    paths,
    release,
    current: state.current,
    upstream: state.live,
    registryPassword: input.registryPassword,
  };
  const steps: PlanStep[] = [
    ...codeSteps(input),
    ...runtime.buildSteps(i),
    ...buildAndCheckSteps(i),
    ...runtime.publishSteps(i),
    ...migrationSteps(i),
    ...runtime.goLiveSteps({
      ...i,
      published: true,
      currentTitle: 'current → new release',
      onceLive: maintenanceEnd(site, paths),
    }),
  ];

  const prune = releasesToPrune([...state.releases, release], site.keepReleases, [release, state.current]);
  const removal = removeReleases(site, paths, prune);
  if (removal)
    steps.push({
      phase: 'cleanup',
      title: `remove ${prune.length} old release(s)`,
      command: removal,
      bestEffort: true,
    });
  for (const step of runtime.cleanupSteps(site, paths)) steps.push({ ...step, bestEffort: true });
  const logEntry: DeployLogEntry = { ...record, action: 'deploy', outcome: 'deployed' };
  steps.push({ phase: 'cleanup', title: 'record', command: recordDeploy(paths, logEntry), bestEffort: true });
  return { release, prune, steps, logEntry };
}

export interface RollbackPlanInput {
  site: Site;
  paths: SitePaths;
  state: SiteState;
  /** Release to go back to (must exist on the host). */
  target: string;
  by: string;
  now: Date;
  registryPassword?: string;
}

/** Rollback: the target release goes live as a deploy's would (health gate included), then the record. */
export function rollbackPlan({
  site,
  paths,
  state,
  target,
  by,
  now,
  registryPassword,
}: RollbackPlanInput): DeployPlan {
  const entry: DeployLogEntry = {
    action: 'rollback',
    site: site.name,
    release: target,
    from: state.current,
    time: now.toISOString(),
    by,
    outcome: 'rolled back',
  };
  const steps = runtimeOf(site).goLiveSteps({
    site,
    paths,
    release: target,
    current: state.current,
    upstream: state.live,
    registryPassword,
    published: false,
    currentTitle: `current → ${target}`,
    onceLive: [],
  });
  steps.push({ phase: 'cleanup', title: 'record', command: recordDeploy(paths, entry), bestEffort: true });
  return { release: target, prune: [], steps, logEntry: entry };
}

/** Human description of a plan, for --check. */
export function describePlan(plan: DeployPlan, verbose: boolean): string[] {
  const lines: string[] = [];
  for (const s of plan.steps) {
    const cond = s.only === 'pending-migrations' ? ' (only if migrations are pending)' : '';
    lines.push(`${s.phase.padEnd(8)} ${s.title}${cond}`);
    if (verbose) lines.push(`           $ ${s.command.split('\n').join('\n             ')}`);
  }
  return lines;
}
