/**
 * The context of a run, loaded before any host is contacted: the inventory, the hosts `--limit`
 * selects, the secrets, every host's vars with the secrets rendered in, and how to connect (the sudo
 * password asked for with -K included). A user error here changes nothing.
 *
 * The options come typed: the command line (src/cli) has parsed and checked them already, `--var` parsed
 * and the sudo password of -K asked for (the engine prompts for nothing).
 */
import type { ConnectOptions } from '../connection/index.js';
import { JumpCycleError, SshRouting } from '../connection/route.js';
import { loadSshConfig } from '../connection/ssh-config.js';
import { interpolateVars, loadInventory, selectHosts } from '../inventory/index.js';
import type { Inventory, InventoryHost } from '../inventory/types.js';
import { loadSecrets } from '../secrets/index.js';
import { UserError, UserErrors } from '../util/errors.js';
import { registerSecret } from '../util/redact.js';

/** How to reach the hosts; what is not given takes the connection's defaults (CONNECTION_DEFAULTS). */
export interface ConnectionSettings {
  hostKeyChecking?: 'accept-new' | 'off';
  /** Seconds to wait for a host to answer. */
  connectTimeout?: number;
  /** Seconds of silence before a keepalive probes the host... */
  keepalive?: number;
  /** ...and how many unanswered keepalives declare it lost. */
  keepaliveCount?: number;
  /** `--ssh-config`: the OpenSSH client configuration to follow instead of ~/.ssh/config. */
  sshConfig?: string;
  /** `--persist`: seconds the connection keeper keeps each host's connection after the run. */
  persist?: number;
}

/** What a command that reads the inventory, its vars and the secrets is given. */
export interface ContextOptions extends ConnectionSettings {
  /** Host pattern: only these hosts. */
  limit?: string;
  /** `--var key=value` parsed: above every other var. */
  extraVars?: Record<string, unknown>;
  vaultPasswordFile?: string;
  /** The sudo password of become hosts, asked for on the terminal (-K). */
  becomePassword?: string;
}

export interface RunContext {
  env: string;
  projectDir: string;
  inventory: Inventory;
  /** Hosts selected by --limit (all when no limit). */
  hosts: InventoryHost[];
  secrets: Record<string, unknown>;
  connectOptions: ConnectOptions;
  /** Per host: vars after `{{ secrets.x }}` interpolation. */
  vars: Map<string, Record<string, unknown>>;
  /** Per host: names of the vars whose values came from the secrets. */
  sensitive: Map<string, string[]>;
  /** `--var` values: above everything, role vars included. */
  extraVars: Record<string, unknown>;
}

/** What the plan needs of a run's context (`verdandi check` has no connection options). */
export type PlanContext = Omit<RunContext, 'connectOptions'>;

/** The connection's options for the hosts of a project. */
export function connectOptionsOf(
  projectDir: string,
  s: ConnectionSettings,
  becomePassword?: string,
  routing?: SshRouting,
): ConnectOptions {
  const ms = (seconds: number | undefined) => (seconds === undefined ? undefined : seconds * 1000);
  return {
    projectDir,
    routing,
    hostKeyChecking: s.hostKeyChecking ?? 'accept-new',
    connectTimeoutMs: ms(s.connectTimeout),
    keepaliveIntervalMs: ms(s.keepalive),
    keepaliveCountMax: s.keepaliveCount,
    becomePassword,
    persistSeconds: s.persist,
  };
}

/**
 * How the selected hosts are reached (ssh config, jump hosts), checked before anything runs: an unknown
 * jump host, a cycle, a chain too long or a bad ssh config value is a user error (exit 1) naming its
 * file and line, every one found. What the ssh config asks that Verdandi does not do (`Match exec`) is
 * a warning on stderr.
 */
export function sshRoutingOf(
  inventory: Inventory,
  hosts: InventoryHost[],
  s: ConnectionSettings,
): SshRouting {
  const routing = new SshRouting(loadSshConfig(s.sshConfig), inventory.hosts);
  const errors = routeErrors(routing, hosts);
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new UserErrors(errors);
  for (const warning of routing.config.warnings) process.stderr.write(`warning: ${warning}\n`);
  return routing;
}

/**
 * Resolves the route of every host reached over SSH; the user errors, each once (a jump host written
 * wrong in a group is the error of every host of the group).
 */
export function routeErrors(routing: SshRouting, hosts: InventoryHost[]): UserError[] {
  const errors = new Map<string, UserError>();
  for (const host of hosts) {
    if (host.connection === 'local') continue;
    try {
      routing.endpointOf(host);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      // A cycle is found from each of its hosts (and those behind it): once is enough.
      const key = err instanceof JumpCycleError ? `cycle ${[...err.members].sort().join(' ')}` : err.message;
      if (!errors.has(key)) errors.set(key, err);
    }
  }
  return [...errors.values()];
}

/**
 * Every host's vars with `{{ secrets.x }}` and `{{ other_var }}` rendered, and the names of those that
 * came from the secrets. An error throws, or, given a collector (plan.ts's ErrorCollector, named by
 * its shape: plan.ts imports this module), is recorded and the host listed in `failed`.
 */
export function interpolateHosts(
  inventory: Inventory,
  secrets: Record<string, unknown>,
  errors?: { add(error: UserError): void },
): { vars: Map<string, Record<string, unknown>>; sensitive: Map<string, string[]>; failed: Set<string> } {
  const vars = new Map<string, Record<string, unknown>>();
  const sensitive = new Map<string, string[]>();
  const failed = new Set<string>();
  for (const host of inventory.hosts.values()) {
    try {
      const res = interpolateVars(host, { secrets });
      vars.set(host.name, res.vars);
      sensitive.set(host.name, res.sensitive);
    } catch (err) {
      if (!errors || !(err instanceof UserError)) throw err;
      errors.add(err);
      failed.add(host.name);
    }
  }
  return { vars, sensitive, failed };
}

export async function loadRunContext(
  env: string,
  o: ContextOptions,
  cwd = process.cwd(),
): Promise<RunContext> {
  const extraVars = o.extraVars ?? {};
  const inventory = await loadInventory(env, { cwd, extraVars });
  const hosts = o.limit ? selectHosts(inventory, o.limit) : [...inventory.hosts.values()];
  const routing = sshRoutingOf(inventory, hosts, o);
  const secrets = await loadSecrets({
    projectDir: inventory.projectDir,
    env: inventory.env,
    vaultPasswordFile: o.vaultPasswordFile,
    interactive: !!process.stdin.isTTY && !process.env.CI,
  });
  const { vars, sensitive } = interpolateHosts(inventory, secrets);
  const { becomePassword } = o;
  if (becomePassword) registerSecret(becomePassword);
  return {
    env: inventory.env,
    projectDir: inventory.projectDir,
    inventory,
    hosts,
    secrets,
    vars,
    sensitive,
    extraVars,
    connectOptions: connectOptionsOf(inventory.projectDir, o, becomePassword, routing),
  };
}
