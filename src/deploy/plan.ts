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
import {
  checkout,
  deployStack,
  healthCheck,
  inRelease,
  installDependencies,
  maintenanceOff,
  maintenanceOn,
  pauseColor,
  pruneVenvs,
  recordDeploy,
  releaseDir,
  removeReleases,
  restartWorkers,
  resumeColor,
  type SiteState,
  startColor,
  stopColor,
  stopWorkers,
  switchCurrent,
  switchUpstream,
  writeEnvFile,
} from './commands.js';
import { type ReleaseRecord, releasesToPrune } from './release.js';
import { type Color, otherColor, type Site, type SitePaths } from './site.js';

export type Phase = 'code' | 'build' | 'migrate' | 'start' | 'switch' | 'cleanup';

export interface PlanStep {
  phase: Phase;
  /** Short label for output ("health check green"). */
  title: string;
  command: string;
  /** Sent on stdin (the environment file): never printed. */
  stdin?: string;
  /** Commands that undo this step, run when a later step fails before the point of no return. */
  undo?: string[];
  /** Runs only when the migration check said migrations are pending. */
  only?: 'pending-migrations';
  /** This step's exit code decides: 0 = no migration pending, anything else = pending. */
  decides?: 'pending-migrations';
  /** The migrations ran: a later failure must say the database was changed. */
  migrates?: boolean;
  /** Once this step succeeded, the new release serves: failures after it are not rolled back. */
  pointOfNoReturn?: boolean;
  bestEffort?: boolean;
  timeoutMs?: number;
}

export interface DeployPlanInput {
  site: Site;
  paths: SitePaths;
  state: SiteState;
  record: ReleaseRecord;
  /** Content of the release's environment file. */
  env: string;
}

export interface DeployPlan {
  release: string;
  /** Color the new release starts in (undefined for swarm stacks). */
  next?: Color;
  /** Color serving now, stopped after the switch. */
  live?: Color;
  /** Releases deleted after the deploy (beyond keepReleases). */
  prune: string[];
  steps: PlanStep[];
}

/** The color serving now (from nginx's upstream); blue when nothing was ever deployed. */
export function liveColor(state: SiteState): Color {
  return state.live ?? 'blue';
}

function healthTimeoutMs(site: Site): number {
  return (site.health.timeout + 30) * 1000;
}

export function deployPlan({ site, paths, state, record, env }: DeployPlanInput): DeployPlan {
  const release = record.release;
  const swarm = site.runtime.type === 'swarm';
  const live = swarm ? undefined : liveColor(state);
  const next = live ? otherColor(live) : undefined;
  // A live release exists: it must be paused for migrations and resumed when they fail.
  const hasLive = !!state.current && !!live;
  const steps: PlanStep[] = [];

  steps.push({
    phase: 'code',
    title: `checkout ${release}`,
    command: checkout(paths, record),
    undo: [removeReleases(site, paths, [release])!],
  });
  steps.push({ phase: 'code', title: 'environment file', command: writeEnvFile(paths, release), stdin: env });

  const deps = installDependencies(site, paths, release);
  if (deps)
    steps.push({
      phase: 'build',
      title: swarm || site.runtime.type === 'docker' ? 'image build' : 'dependencies',
      command: deps,
    });
  site.build.forEach((cmd, i) => {
    steps.push({
      phase: 'build',
      title: `build ${i + 1}/${site.build.length}`,
      command: inRelease(site, paths, release, cmd),
    });
  });
  site.checks.forEach((cmd, i) => {
    steps.push({
      phase: 'build',
      title: `check ${i + 1}/${site.checks.length}`,
      command: inRelease(site, paths, release, cmd),
    });
  });

  if (site.migrate) {
    if (site.migrate.check) {
      steps.push({
        phase: 'migrate',
        title: 'pending migrations?',
        command: inRelease(site, paths, release, site.migrate.check),
        decides: 'pending-migrations',
      });
    }
    const only = site.migrate.check ? ('pending-migrations' as const) : undefined;
    steps.push({
      phase: 'migrate',
      title: 'maintenance on',
      command: maintenanceOn(paths),
      undo: [maintenanceOff(paths)],
      only,
    });
    const stop = stopWorkers(paths);
    const restart = restartWorkers(paths);
    if (stop && restart) {
      steps.push({ phase: 'migrate', title: 'stop workers', command: stop, undo: [restart], only });
    }
    if (hasLive && live) {
      steps.push({
        phase: 'migrate',
        title: `stop ${live} for migrations`,
        command: pauseColor(site, paths, live),
        undo: [resumeColor(site, paths, live), healthCheck(site, paths.port(live))],
        only,
      });
    }
    steps.push({
      phase: 'migrate',
      title: 'migrate',
      command: inRelease(site, paths, release, site.migrate.command),
      migrates: true,
      only,
    });
  }

  if (swarm) {
    steps.push({
      phase: 'start',
      title: 'stack deploy',
      command: deployStack(site, paths, release),
      pointOfNoReturn: true,
    });
    steps.push({
      phase: 'start',
      title: 'health check',
      command: healthCheck(site, site.process.port),
      timeoutMs: healthTimeoutMs(site),
    });
    steps.push({ phase: 'switch', title: 'current → new release', command: switchCurrent(paths, release) });
  } else if (next && live) {
    steps.push({
      phase: 'start',
      title: `start ${next}`,
      command: startColor(site, paths, next, release),
      undo: [stopColor(site, paths, next)],
    });
    steps.push({
      phase: 'start',
      title: `health check ${next}`,
      command: healthCheck(site, paths.port(next)),
      timeoutMs: healthTimeoutMs(site),
    });
    steps.push({
      phase: 'switch',
      title: `nginx → ${next}`,
      command: switchUpstream(paths, next),
      pointOfNoReturn: true,
      timeoutMs: 60_000,
    });
    steps.push({ phase: 'switch', title: 'current → new release', command: switchCurrent(paths, release) });
    const workers = restartWorkers(paths);
    if (workers) steps.push({ phase: 'switch', title: 'restart workers', command: workers });
  }
  if (site.migrate) {
    steps.push({
      phase: 'switch',
      title: 'maintenance off',
      command: maintenanceOff(paths),
      only: site.migrate.check ? 'pending-migrations' : undefined,
    });
  }
  if (live) {
    steps.push({
      phase: 'switch',
      title: `stop ${live}`,
      command: stopColor(site, paths, live),
      timeoutMs: (site.process.stopTimeout + 30) * 1000,
    });
  }

  const prune = releasesToPrune([...state.releases, release], site.keepReleases, [release, state.current]);
  const removal = removeReleases(site, paths, prune);
  if (removal)
    steps.push({
      phase: 'cleanup',
      title: `remove ${prune.length} old release(s)`,
      command: removal,
      bestEffort: true,
    });
  if (site.runtime.type === 'python' && site.runtime.virtualenv) {
    steps.push({
      phase: 'cleanup',
      title: 'unused virtualenvs',
      command: pruneVenvs(paths),
      bestEffort: true,
    });
  }
  steps.push({
    phase: 'cleanup',
    title: 'record',
    command: recordDeploy(paths, { ...record, action: 'deploy', outcome: 'deployed' }),
    bestEffort: true,
  });
  return { release, next, live, prune, steps };
}

export interface RollbackPlanInput {
  site: Site;
  paths: SitePaths;
  state: SiteState;
  /** Release to go back to (must exist on the host). */
  target: string;
  by: string;
  now: Date;
}

/** Rollback: the target release starts in the idle color, passes the health check, takes the traffic. */
export function rollbackPlan({ site, paths, state, target, by, now }: RollbackPlanInput): DeployPlan {
  const entry = {
    action: 'rollback',
    release: target,
    from: state.current,
    time: now.toISOString(),
    by,
    outcome: 'rolled back',
  };
  const steps: PlanStep[] = [];
  if (site.runtime.type === 'swarm') {
    steps.push({
      phase: 'start',
      title: 'stack deploy',
      command: deployStack(site, paths, target),
      pointOfNoReturn: true,
    });
    steps.push({
      phase: 'start',
      title: 'health check',
      command: healthCheck(site, site.process.port),
      timeoutMs: healthTimeoutMs(site),
    });
    steps.push({ phase: 'switch', title: `current → ${target}`, command: switchCurrent(paths, target) });
    steps.push({ phase: 'cleanup', title: 'record', command: recordDeploy(paths, entry), bestEffort: true });
    return { release: target, prune: [], steps };
  }
  const live = liveColor(state);
  const next = otherColor(live);
  steps.push({
    phase: 'start',
    title: `start ${next}`,
    command: startColor(site, paths, next, target),
    undo: [stopColor(site, paths, next)],
  });
  steps.push({
    phase: 'start',
    title: `health check ${next}`,
    command: healthCheck(site, paths.port(next)),
    timeoutMs: healthTimeoutMs(site),
  });
  steps.push({
    phase: 'switch',
    title: `nginx → ${next}`,
    command: switchUpstream(paths, next),
    pointOfNoReturn: true,
    timeoutMs: 60_000,
  });
  steps.push({ phase: 'switch', title: `current → ${target}`, command: switchCurrent(paths, target) });
  const workers = restartWorkers(paths);
  if (workers) steps.push({ phase: 'switch', title: 'restart workers', command: workers });
  steps.push({
    phase: 'switch',
    title: `stop ${live}`,
    command: stopColor(site, paths, live),
    timeoutMs: (site.process.stopTimeout + 30) * 1000,
  });
  steps.push({ phase: 'cleanup', title: 'record', command: recordDeploy(paths, entry), bestEffort: true });
  return { release: target, next, live, prune: [], steps };
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

export { releaseDir };
