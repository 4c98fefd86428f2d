/**
 * What a deploy runtime is: everything that differs between a python, node, docker and swarm site, in
 * one object per runtime (runtimes/<type>.ts). The runtime owns its options' schema (`runtime:` in a
 * site), the plan steps that build, stop for migrations and take a release live, its lines in the state
 * and status scripts, and what the `sites` role provisions for it. plan.ts, state.ts, status.ts,
 * site.ts and the role ask the site's runtime (`runtimeOf(site)` in index.ts); none branches on its type.
 */
import type { z } from 'zod';
import type { HostInfo } from '../../engine/types.js';
import type { InventoryHost } from '../../inventory/types.js';
import type { PlanStep } from '../plan-step.js';
import type { Color, SiteBase, SitePaths } from '../site-base.js';

/** A site whose `runtime` holds the options `R` of one runtime (with its `type`). */
export type RuntimeSite<R extends { type: string } = { type: string }> = SiteBase & { runtime: R };

/** What the plan gives a runtime to build its steps for one release. */
export interface ReleaseInput<S extends RuntimeSite = RuntimeSite> {
  site: S;
  paths: SitePaths;
  /** The release deployed, or the one a rollback goes back to. */
  release: string;
  /** The release serving now (`current`): what a failure goes back to. */
  current?: string;
  /** The color nginx sends the traffic to now (from its upstream file), for runtimes with colors. */
  upstream?: Color;
  /** The registry's password (from the secrets), sent on stdin only. */
  registryPassword?: string;
}

/** How a release goes live: after a deploy's build (published), or for a rollback (not). */
export interface GoLiveInput<S extends RuntimeSite = RuntimeSite> extends ReleaseInput<S> {
  /** The deploy ran `publishSteps` before (a rollback did not). */
  published: boolean;
  /** Title of the step that points `current` at the release. */
  currentTitle: string;
  /** Steps that run once the release serves, before the old processes stop (maintenance off). */
  onceLive: PlanStep[];
}

/** What `verdandi console` gives a runtime to enter the live release's environment on one host. */
export interface ConsoleInput<S extends RuntimeSite = RuntimeSite> {
  site: S;
  paths: SitePaths;
  /** The live release (`current`). */
  release: string;
  /** The color nginx sends the traffic to, for runtimes with colors. */
  live?: Color;
  /**
   * The command the console runs, as shell text (the user's, or the site's `console`): `exec`ed, so
   * its exit code is the console's. Undefined: a shell (the app user's, or the container's).
   */
  command?: string;
}

/** A supervisor program of a site: `<runScript> <args>`, logging to `<log dir>/<logName>.log`. */
export interface SupervisorProgram {
  program: string;
  args: string;
  logName: string;
}

/** A stack's services and their running tasks, as `verdandi status` shows them. */
export interface Stack {
  services: StackService[];
  tasks: StackTask[];
}

export interface StackService {
  name: string;
  /** `running/wanted` as Docker counts them. */
  replicas: string;
  image: string;
}

export interface StackTask {
  name: string;
  node: string;
  state: string;
  image: string;
}

/** What the `sites` role provisions for a site of this runtime. */
export interface SiteRoleNeeds {
  /** Debian packages the runtime needs on the host. */
  packages: string[];
  /** Supervisor runs the site (the web command of each color and the workers); none for containers. */
  supervisor?: {
    command: string;
    programs: SupervisorProgram[];
    /**
     * Shell run in the release before each program's command, after its `.env` and virtualenv: the
     * runtime's own tools on `PATH` (node's `node_modules/.bin`). Empty for none.
     */
    prelude: string;
  };
  /**
   * The nginx upstream include. `deploy`: created once (pointing at blue), then the deploy switches it;
   * `role`: written at each provision (the nodes of a swarm), and the vhost retries the next server.
   */
  upstream: { content: string; owner: 'deploy' | 'role' };
}

/** What `verdandi logs` asks of a site's logs (validated by the command before any host is contacted). */
export interface LogsQuery {
  /** Lines from the end of each log. */
  tail: number;
  /** Go on printing new lines until stopped. */
  follow: boolean;
  /** Only lines logged in the last this many seconds (runtimes whose logs carry times). */
  sinceSeconds?: number;
}

/** The schema of a site's `runtime:` options, with `type` a literal: the runtime's name. */
export type RuntimeOptionsSchema = z.ZodObject<{ type: z.ZodLiteral<string> } & z.ZodRawShape>;

/**
 * One runtime, for the sites `S` of its type, its options parsed by `Schema`. Methods (not arrow
 * properties) so that a runtime written for its own site type is one `DeployRuntime` of the registry.
 */
export interface DeployRuntime<
  S extends RuntimeSite = RuntimeSite,
  Schema extends RuntimeOptionsSchema = RuntimeOptionsSchema,
> {
  readonly schema: Schema;
  /** Ports the site takes on its host (a color each), checked for clashes between the host's sites. */
  hostPorts(site: S): number[];
  /** The key in the secrets holding the registry's password, when the site has a registry. */
  registryPasswordSecret(site: S): string | undefined;
  /** Shell lines adding to the state script: `slot_<color>=<release>` for the colors' releases. */
  stateLines(site: S, paths: SitePaths): string[];
  /** Read-only shell lines adding to `verdandi status`: `proc_<color>=...`, a stack's services. */
  statusLines(site: S, paths: SitePaths): string[];
  /** The stack (services, tasks) in the status script's output; undefined for a runtime without one. */
  parseStack(stdout: string): Stack | undefined;
  /** The release's environment file from its values (a shell's syntax or docker's). */
  renderEnv(values: Record<string, string>): string;
  /** Installs the release's dependencies (or builds its image): the steps after its environment file. */
  buildSteps(i: ReleaseInput<S>): PlanStep[];
  /**
   * Shell printing the site's logs on stdout, each line `<source> | <line>` (the color, the worker, the
   * replica); with `follow`, it runs until stopped. `{ refused }` says why when the query cannot be met
   * (`--since` on logs without times).
   */
  logsScript(site: S, paths: SitePaths, q: LogsQuery): string | { refused: string };
  /** Runs a site command (build, check, migration) for a release: in its directory, or in its image. */
  inRelease(site: S, paths: SitePaths, release: string, command: string): string;
  /** After the checks, before any migration: ship the built release where the nodes get it. */
  publishSteps(i: ReleaseInput<S>): PlanStep[];
  /**
   * The script (run as root on the host, with or without a terminal) that replaces itself with
   * `command` in the live release's environment: as the app user in the release directory with its
   * `.env` loaded, or inside the running container. The `.env` is read on the host, never sent.
   */
  consoleScript(i: ConsoleInput<S>): string;
  /**
   * For a runtime whose processes run on other hosts than the site's (swarm: the tasks on their nodes),
   * where the console opens: `script` runs on the site's host, `pick` reads its output and names the
   * inventory host `consoleScript` then runs on (`wanted`: the one --host asks for). Without it, the
   * console opens on the site's host.
   */
  consoleHost?: {
    script(site: S): string;
    /** The host, with a note when another could have been chosen; a UserError when there is none. */
    pick(
      site: S,
      stdout: string,
      inventory: Pick<InventoryHost, 'name' | 'address' | 'vars'>[],
      wanted?: string,
    ): { host: string; note?: string };
  };
  /** Stop what runs while the migrations run, each step with its undo (under maintenance). */
  migrationStops(i: ReleaseInput<S>): PlanStep[];
  /** Take the release live: start it, wait for it to be healthy, send it the traffic, stop the old. */
  goLiveSteps(i: GoLiveInput<S>): PlanStep[];
  /** What goes with deleted releases besides their directories (images); null when nothing. */
  removeArtifacts(site: S, releases: string[]): string | null;
  /** Best-effort steps after a deploy (unused virtualenvs). */
  cleanupSteps(site: S, paths: SitePaths): PlanStep[];
  /** What a failed step means beyond the usual (Swarm rolled the update back); undefined when nothing. */
  failureHeadline(step: string, code: number): string | undefined;
  /** What the `sites` role provisions for the site; a UserError when the site cannot run so. */
  roleNeeds(site: S, paths: SitePaths, host: HostInfo): SiteRoleNeeds;
}
