/**
 * Runtimes as strategies: what differs between a python, node, docker and swarm site, each in one
 * object implementing `DeployRuntime`. The deploy plan, the state and status scripts ask the site's
 * runtime; none of them branches on the runtime's type. Adding a runtime is one new file here plus its
 * line in RUNTIMES (and its schema in site.ts).
 */
import type { PlanStep } from '../plan.js';
import type { Color, Site, SitePaths } from '../site.js';
import { docker } from './docker.js';
import { node } from './node.js';
import { python } from './python.js';
import { swarm } from './swarm.js';

/** What a runtime without colors needs to roll a release out. */
export interface RolloutInput {
  site: Site;
  paths: SitePaths;
  release: string;
  /** The release serving now: what a failure before the new one converged goes back to. */
  previous?: string;
  /** The registry's password (from the secrets), sent on stdin only. */
  registryPassword?: string;
  /** The deploy ran `publish` before (a rollback did not: its image is in the registry already). */
  published: boolean;
}

export interface DeployRuntime {
  /**
   * The runtime runs the two colors (blue, green) side by side on two ports and nginx switches between
   * them; false for a runtime that rolls itself out (a swarm stack's rolling update).
   */
  readonly colors: boolean;
  /** Title of the dependencies step ("dependencies", "image build"). */
  readonly dependenciesTitle: string;
  /** Shell printing `slot_<color>=<release>`: the release a color runs (nothing when none). */
  slotState(site: Site, paths: SitePaths, color: Color): string;
  /** Shell printing `proc_<color>=<state>` for `verdandi status`; null when colors do not apply. */
  processState(site: Site, paths: SitePaths, color: Color): string | null;
  /** The release's environment file from its values. */
  renderEnv(values: Record<string, string>): string;
  /** Installs the dependencies in the release (or builds its image); null when there are none. */
  dependencies(site: Site, paths: SitePaths, release: string): string | null;
  /** Runs a site command (build, check, migration) for a release. */
  inRelease(site: Site, paths: SitePaths, release: string, command: string): string;
  /** Starts `release` as `color` beside the live color. */
  start(site: Site, paths: SitePaths, color: Color, release: string): string;
  /** Stops a color for a migration, keeping what `resume` needs to start the same release again. */
  pause(site: Site, paths: SitePaths, color: Color): string;
  resume(site: Site, paths: SitePaths, color: Color): string;
  /** Stops a color gracefully and frees it. */
  stop(site: Site, paths: SitePaths, color: Color): string;
  /** What goes with deleted releases besides their directories (images); null when nothing. */
  removeArtifacts(site: Site, releases: string[]): string | null;
  /** Best-effort cleanup after a deploy (unused virtualenvs). */
  cleanup(site: Site, paths: SitePaths): Array<{ title: string; command: string }>;
  /** Runtimes without colors: steps that ship the built release where the nodes get it (a registry). */
  publish?(input: RolloutInput): PlanStep[];
  /** Runtimes without colors: the steps that take a release live (deploy and rollback). */
  rollout?(input: RolloutInput): PlanStep[];
  /** Runtimes without colors: the steps that stop the site's processes while migrations run. */
  stopForMigrations?(input: RolloutInput): PlanStep[];
  /** Read-only shell adding runtime-specific `key=value` lines to `verdandi status`. */
  statusScript?(site: Site): string;
}

const RUNTIMES: Record<Site['runtime']['type'], DeployRuntime> = { python, node, docker, swarm };

export function runtimeOf(site: Site): DeployRuntime {
  return RUNTIMES[site.runtime.type];
}
