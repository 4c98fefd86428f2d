/**
 * What the runtimes with colors (python, node, docker) share: the site runs two colors, blue on
 * `process.port` and green on `port + 1`; a release starts in the idle color beside the live one, must
 * pass its health check, then nginx sends it the traffic (its upstream include rewritten) and the old
 * color stops. Each runtime says how it starts, pauses, resumes and stops one color (`ColorOps`).
 */
import { healthCheck, switchCurrent, switchUpstream, upstreamContent } from '../commands.js';
import type { PlanStep } from '../plan-step.js';
import { COLORS, type Color, otherColor, type SitePaths } from '../site-base.js';
import type { DeployRuntime, GoLiveInput, ReleaseInput, RuntimeSite } from './runtime.js';

/** How a runtime runs one color. */
export interface ColorOps<S extends RuntimeSite> {
  /** Shell printing `slot_<color>=<release>`: the release a color runs (nothing when none). */
  slotState(site: S, paths: SitePaths, color: Color): string;
  /** Shell printing `proc_<color>=<state>` for `verdandi status`. */
  processState(site: S, paths: SitePaths, color: Color): string;
  /** Starts `release` as `color` beside the live color. */
  start(site: S, paths: SitePaths, color: Color, release: string): string;
  /** Stops a color for a migration, keeping what `resume` needs to start the same release again. */
  pause(site: S, paths: SitePaths, color: Color): string;
  resume(site: S, paths: SitePaths, color: Color): string;
  /** Stops a color gracefully and frees it. */
  stop(site: S, paths: SitePaths, color: Color): string;
  /** The site's workers (background processes on `current`): stopped for migrations, restarted live. */
  workers?: { stop(paths: SitePaths): string | null; restart(paths: SitePaths): string | null };
}

/** The color serving now (from nginx's upstream); blue when nothing was ever deployed. */
export function liveColor(upstream: Color | undefined): Color {
  return upstream ?? 'blue';
}

function healthTimeoutMs(site: RuntimeSite): number {
  return (site.health.timeout + 30) * 1000;
}

/**
 * The blue/green switch, for deploys and rollbacks alike: the release starts in the idle color beside
 * the live one and must pass its health check (until then, stopping it undoes everything); nginx then
 * sends the traffic to it (the point of no return), `current` follows, the workers restart on it,
 * `onceLive` runs, and the old color stops gracefully.
 */
export function blueGreenSwitch<S extends RuntimeSite>(ops: ColorOps<S>, i: GoLiveInput<S>): PlanStep[] {
  const { site, paths, release } = i;
  const live = liveColor(i.upstream);
  const next = otherColor(live);
  const steps: PlanStep[] = [
    {
      phase: 'start',
      title: `start ${next}`,
      command: ops.start(site, paths, next, release),
      undo: [ops.stop(site, paths, next)],
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
    { phase: 'switch', title: i.currentTitle, command: switchCurrent(paths, release) },
  ];
  const workers = ops.workers?.restart(paths);
  if (workers) steps.push({ phase: 'switch', title: 'restart workers', command: workers });
  steps.push(...i.onceLive, {
    phase: 'switch',
    title: `stop ${live}`,
    command: ops.stop(site, paths, live),
    timeoutMs: (site.process.stopTimeout + 30) * 1000,
  });
  return steps;
}

/** Before migrations: the workers stop, then the live color (when a release serves), each undone. */
function migrationStops<S extends RuntimeSite>(ops: ColorOps<S>, i: ReleaseInput<S>): PlanStep[] {
  const { site, paths } = i;
  const steps: PlanStep[] = [];
  const stop = ops.workers?.stop(paths);
  const restart = ops.workers?.restart(paths);
  if (stop && restart)
    steps.push({ phase: 'migrate', title: 'stop workers', command: stop, undo: [restart] });
  if (i.current) {
    const live = liveColor(i.upstream);
    steps.push({
      phase: 'migrate',
      title: `stop ${live} for migrations`,
      command: ops.pause(site, paths, live),
      undo: [ops.resume(site, paths, live), healthCheck(site, paths.port(live))],
    });
  }
  return steps;
}

/** The part of a `DeployRuntime` that running two colors makes, from how the runtime runs one. */
export function withColors<S extends RuntimeSite>(
  ops: ColorOps<S>,
): Pick<
  DeployRuntime<S>,
  | 'hostPorts'
  | 'stateLines'
  | 'statusLines'
  | 'parseStack'
  | 'publishSteps'
  | 'migrationStops'
  | 'goLiveSteps'
  | 'failureHeadline'
> {
  return {
    hostPorts: (site) => [site.process.port, site.process.port + 1],
    stateLines: (site, paths) => COLORS.map((color) => ops.slotState(site, paths, color)),
    statusLines: (site, paths) => COLORS.map((color) => ops.processState(site, paths, color)),
    parseStack: () => undefined,
    publishSteps: () => [],
    migrationStops: (i) => migrationStops(ops, i),
    goLiveSteps: (i) => blueGreenSwitch(ops, i),
    failureHeadline: () => undefined,
  };
}

/** The upstream include the `sites` role creates once: blue; the deploy switches it afterwards. */
export function initialUpstream(paths: SitePaths): { content: string; owner: 'deploy' } {
  return { content: upstreamContent(paths, 'blue'), owner: 'deploy' };
}
