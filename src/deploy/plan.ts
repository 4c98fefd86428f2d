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
import {
  checkout,
  healthCheck,
  inRelease,
  installDependencies,
  maintenanceOff,
  maintenanceOn,
  pauseColor,
  recordDeploy,
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
import { releaseDir } from './release-files.js';
import { type RolloutInput, runtimeOf } from './runtimes/index.js';
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
  /** The last line the command printed is what the step says (a stack's convergence). */
  showsOutput?: boolean;
}

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
  /** Color the new release starts in (undefined for swarm stacks). */
  next?: Color;
  /** Color serving now, stopped after the switch. */
  live?: Color;
  /** Releases deleted after the deploy (beyond keepReleases). */
  prune: string[];
  steps: PlanStep[];
  /** What its last step writes into the site's deploy log once it worked. */
  logEntry: DeployLogEntry;
}

/** The color serving now (from nginx's upstream); blue when nothing was ever deployed. */
export function liveColor(state: SiteState): Color {
  return state.live ?? 'blue';
}

function healthTimeoutMs(site: Site): number {
  return (site.health.timeout + 30) * 1000;
}

export function deployPlan({
  site,
  paths,
  state,
  record,
  env,
  registryPassword,
}: DeployPlanInput): DeployPlan {
  const release = record.release;
  const runtime = runtimeOf(site);
  const live = runtime.colors ? liveColor(state) : undefined;
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
      title: runtime.dependenciesTitle,
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

  const input = { site, paths, release, previous: state.current, registryPassword, published: true };
  if (!runtime.colors && runtime.publish) steps.push(...runtime.publish(input));

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
    if (!runtime.colors && runtime.stopForMigrations) {
      for (const step of runtime.stopForMigrations(input)) steps.push({ ...step, only });
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

  // Maintenance ends once the new release serves, before the old color stops.
  const maintenanceEnd: PlanStep[] = site.migrate
    ? [
        {
          phase: 'switch',
          title: 'maintenance off',
          command: maintenanceOff(paths),
          only: site.migrate.check ? 'pending-migrations' : undefined,
        },
      ]
    : [];
  steps.push(
    ...(live
      ? blueGreenSwitch(site, paths, live, release, 'current → new release', maintenanceEnd)
      : [
          ...rollout(input),
          {
            phase: 'switch' as const,
            title: 'current → new release',
            command: switchCurrent(paths, release),
          },
          ...maintenanceEnd,
        ]),
  );

  const prune = releasesToPrune([...state.releases, release], site.keepReleases, [release, state.current]);
  const removal = removeReleases(site, paths, prune);
  if (removal)
    steps.push({
      phase: 'cleanup',
      title: `remove ${prune.length} old release(s)`,
      command: removal,
      bestEffort: true,
    });
  for (const { title, command } of runtime.cleanup(site, paths))
    steps.push({ phase: 'cleanup', title, command, bestEffort: true });
  const logEntry: DeployLogEntry = { ...record, action: 'deploy', outcome: 'deployed' };
  steps.push({ phase: 'cleanup', title: 'record', command: recordDeploy(paths, logEntry), bestEffort: true });
  return { release, next, live, prune, steps, logEntry };
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

/** Rollback: the target release starts in the idle color, passes the health check, takes the traffic. */
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
  const record: PlanStep = {
    phase: 'cleanup',
    title: 'record',
    command: recordDeploy(paths, entry),
    bestEffort: true,
  };
  if (!runtimeOf(site).colors) {
    return {
      release: target,
      prune: [],
      steps: [
        ...rollout({
          site,
          paths,
          release: target,
          previous: state.current,
          registryPassword,
          published: false,
        }),
        { phase: 'switch', title: `current → ${target}`, command: switchCurrent(paths, target) },
        record,
      ],
      logEntry: entry,
    };
  }
  const live = liveColor(state);
  return {
    release: target,
    next: otherColor(live),
    live,
    prune: [],
    steps: [...blueGreenSwitch(site, paths, live, target, `current → ${target}`, []), record],
    logEntry: entry,
  };
}

/**
 * The blue/green switch, for deploys and rollbacks alike: `release` starts in the idle color beside the
 * live one and must pass its health check (until then, stopping it undoes everything); nginx then sends
 * the traffic to it (the point of no return), `current` follows, the workers restart on it, `beforeStop`
 * runs, and the old color stops gracefully.
 */
export function blueGreenSwitch(
  site: Site,
  paths: SitePaths,
  live: Color,
  release: string,
  currentTitle: string,
  beforeStop: PlanStep[],
): PlanStep[] {
  const next = otherColor(live);
  const steps: PlanStep[] = [
    {
      phase: 'start',
      title: `start ${next}`,
      command: startColor(site, paths, next, release),
      undo: [stopColor(site, paths, next)],
    },
    {
      phase: 'start',
      title: `health check ${next}`,
      command: healthCheck(site, paths.port(next)),
      timeoutMs: healthTimeoutMs(site),
    },
    {
      phase: 'switch',
      title: `nginx → ${next}`,
      command: switchUpstream(paths, next),
      pointOfNoReturn: true,
      timeoutMs: 60_000,
    },
    { phase: 'switch', title: currentTitle, command: switchCurrent(paths, release) },
  ];
  const workers = restartWorkers(paths);
  if (workers) steps.push({ phase: 'switch', title: 'restart workers', command: workers });
  steps.push(...beforeStop, {
    phase: 'switch',
    title: `stop ${live}`,
    command: stopColor(site, paths, live),
    timeoutMs: (site.process.stopTimeout + 30) * 1000,
  });
  return steps;
}

/** A runtime without colors (a swarm stack) rolls itself out; `current` follows once it converged. */
function rollout(input: RolloutInput): PlanStep[] {
  const runtime = runtimeOf(input.site);
  if (!runtime.rollout)
    throw new Error(`the ${input.site.runtime.type} runtime has neither colors nor a rollout`);
  return runtime.rollout(input);
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
