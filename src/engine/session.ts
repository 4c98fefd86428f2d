/**
 * A run over an inventory: load and validate everything first (inventory, secrets, roles, every role's
 * vars for every host), so a user error changes nothing; then run hosts in parallel (`--forks`), in
 * `serial` batches, one SSH connection per host reused for the whole run.
 */
import type { CommonRunOptions } from '../cli/context.js';
import { parsePositiveInt } from '../cli/context.js';
import type { ConnectOptions } from '../connection/index.js';
import { openHost } from '../connection/open-host.js';
import { AbortedError, type Connection, UnreachableError } from '../connection/types.js';
import {
  interpolateVars,
  loadInventory,
  parseExtraVars,
  selectHosts,
  validateRoleVars,
  varsForRole,
} from '../inventory/index.js';
import { formatOrigin, type Inventory, type InventoryHost } from '../inventory/types.js';
import { loadSecrets } from '../secrets/index.js';
import { canPrompt, promptHidden } from '../secrets/tty.js';
import { UserError } from '../util/errors.js';
import { registerSecret } from '../util/redact.js';
import { gatherFacts } from './facts.js';
import { RunStop } from './interrupt.js';
import { loadPlaybook, loadRole } from './loader.js';
import { Reporter } from './report.js';
import { type HandlerMap, InterruptedError, runTasks } from './run.js';
import type { HostInfo, Play, Role, RoleRef, TaskList } from './types.js';

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

export async function loadRunContext(
  env: string,
  o: CommonRunOptions,
  cwd = process.cwd(),
): Promise<RunContext> {
  const extraVars = parseExtraVars(o.var ?? []);
  const inventory = await loadInventory(env, { cwd, extraVars });
  const hosts = o.limit ? selectHosts(inventory, o.limit) : [...inventory.hosts.values()];
  const secrets = await loadSecrets({
    projectDir: inventory.projectDir,
    env: inventory.env,
    vaultPasswordFile: o.vaultPasswordFile,
    interactive: !!process.stdin.isTTY && !process.env.CI,
  });
  const vars = new Map<string, Record<string, unknown>>();
  const sensitive = new Map<string, string[]>();
  for (const host of inventory.hosts.values()) {
    const res = interpolateVars(host, { secrets });
    vars.set(host.name, res.vars);
    sensitive.set(host.name, res.sensitive);
  }
  let becomePassword: string | undefined;
  if (o.askBecomePass) {
    if (!canPrompt()) throw new UserError('-K needs a terminal to ask for the sudo password', 1);
    becomePassword = await promptHidden('sudo password: ');
  }
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
    connectOptions: {
      projectDir: inventory.projectDir,
      hostKeyChecking: o.hostKeyChecking ?? 'accept-new',
      connectTimeoutMs: parsePositiveInt(o.connectTimeout, '--connect-timeout', 10) * 1000,
      keepaliveIntervalMs: parsePositiveInt(o.keepalive, '--keepalive', 5) * 1000,
      keepaliveCountMax: parsePositiveInt(o.keepaliveCount, '--keepalive-count', 2),
      becomePassword,
    },
  };
}

/** What runs on one host: a role with its validated vars, or a play's own tasks. */
export interface Unit {
  name: string;
  tags: string[];
  gatherFacts: boolean;
  tasks(host: HostInfo): TaskList | Promise<TaskList>;
  handlers(host: HostInfo): HandlerMap;
}

export function hostInfo(ctx: RunContext, host: InventoryHost): HostInfo {
  return {
    name: host.name,
    address: host.address,
    groups: ctx.inventory.groupsOf(host.name),
    vars: ctx.vars.get(host.name) ?? host.vars,
    secrets: ctx.secrets,
    env: ctx.env,
    inventory: {
      hosts: [...ctx.inventory.hosts.values()].map((h) => ({
        name: h.name,
        address: h.address,
        groups: ctx.inventory.groupsOf(h.name),
        vars: ctx.vars.get(h.name) ?? h.vars,
      })),
    },
  };
}

/** Validates the role's vars for this host now (before anything runs) and returns the unit. */
export function roleUnit(
  ctx: RunContext,
  host: InventoryHost,
  role: Role,
  extra: { vars?: Record<string, unknown>; tags?: string[] } = {},
): Unit {
  const merged = varsForRole(host, role.name, {
    hostVars: ctx.vars.get(host.name),
    extraVars: ctx.extraVars,
  });
  // Vars given with the role in a playbook sit above the inventory's, below --var.
  const input = { ...merged.vars, ...(extra.vars ?? {}), ...ctx.extraVars };
  const vars = validateRoleVars(role.vars, input, {
    role: role.name,
    host: host.name,
    origins: merged.origins,
    sensitive: ctx.sensitive.get(host.name),
  });
  return {
    name: role.name,
    tags: [...(role.tags ?? []), ...(extra.tags ?? [])],
    gatherFacts: role.gatherFacts ?? false,
    tasks: (info) => role.tasks(vars, info),
    handlers: (info) => {
      const map: HandlerMap = {};
      for (const [name, fn] of Object.entries(role.handlers ?? {})) map[name] = () => fn(vars, info);
      return map;
    },
  };
}

async function resolveRoleRef(ref: RoleRef, projectDir: string, where: string) {
  if (typeof ref === 'string') return { role: await loadRole(ref, projectDir, where) };
  if ('kind' in ref && ref.kind === 'role') return { role: ref };
  const r = ref as { role: string | Role; vars?: Record<string, unknown>; tags?: string[] };
  const role = typeof r.role === 'string' ? await loadRole(r.role, projectDir, where) : r.role;
  return { role, vars: r.vars, tags: r.tags };
}

export interface ExecuteOptions {
  check: boolean;
  diff: boolean;
  tags?: string[];
  forks: number;
  serial?: number | string;
  maxFailPercentage?: number;
  reporter: Reporter;
  /** Ctrl-C / SIGTERM: once requested, no host starts and no new command starts on any host. */
  stop?: RunStop;
}

export interface HostPlan {
  host: InventoryHost;
  units: Unit[];
}

/** One connection per host for the whole session (several plays reuse it). */
export class ConnectionPool {
  private conns = new Map<string, Promise<Connection>>();
  readonly unreachable = new Set<string>();
  constructor(private readonly opts: ConnectOptions) {}
  get(host: InventoryHost, vars: Record<string, unknown> = host.vars): Promise<Connection> {
    let c = this.conns.get(host.name);
    if (!c) {
      c = openHost(host, this.opts, vars);
      this.conns.set(host.name, c);
    }
    return c;
  }
  /** Starts connecting to these hosts now; failures surface when the run asks for the connection. */
  warm(hosts: InventoryHost[], vars: Map<string, Record<string, unknown>>): void {
    for (const h of hosts) this.get(h, vars.get(h.name)).catch(() => {});
  }
  async roundTrips(name: string): Promise<number> {
    const c = this.conns.get(name);
    if (!c) return 0;
    try {
      return (await c).roundTrips;
    } catch {
      return 0;
    }
  }
  async closeAll(): Promise<void> {
    await Promise.all(
      [...this.conns.values()].map(async (c) => {
        try {
          await (await c).close();
        } catch {
          /* unreachable hosts have nothing to close */
        }
      }),
    );
  }
}

export function batchSizes(total: number, serial?: number | string): number[] {
  if (serial === undefined || total === 0) return [total];
  let size: number;
  if (typeof serial === 'string' && serial.trim().endsWith('%')) {
    const pct = Number.parseFloat(serial);
    if (!(pct > 0 && pct <= 100))
      throw new UserError(`serial must be a number or a percentage, got "${serial}"`, 1);
    size = Math.max(1, Math.floor((total * pct) / 100));
  } else {
    size = Number(serial);
    if (!Number.isInteger(size) || size < 1)
      throw new UserError(`serial must be a positive number, got "${serial}"`, 1);
  }
  const out: number[] = [];
  for (let left = total; left > 0; left -= size) out.push(Math.min(size, left));
  return out;
}

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await fn(item);
    }
  });
  await Promise.all(workers);
}

/** Runs the units of every host; returns the names of the hosts that failed. */
export async function execute(
  ctx: RunContext,
  plans: HostPlan[],
  conns: ConnectionPool,
  opts: ExecuteOptions,
): Promise<{ failed: Set<string> }> {
  const { reporter } = opts;
  const failed = new Set<string>();
  const live = plans.filter((p) => !conns.unreachable.has(p.host.name));
  let offset = 0;
  for (const size of batchSizes(live.length, opts.serial)) {
    const batch = live.slice(offset, offset + size);
    offset += size;
    await pool(batch, opts.forks, async ({ host, units }) => {
      reporter.host(host.name);
      if (opts.stop?.requested) {
        reporter.interrupted(host.name, 'not started');
        return;
      }
      let conn: Connection;
      try {
        conn = await conns.get(host, ctx.vars.get(host.name));
      } catch (err) {
        if (!(err instanceof UnreachableError)) throw err;
        conns.unreachable.add(host.name);
        reporter.unreachable(host.name, `${err.reason}: ${err.message}`);
        return;
      }
      const info = hostInfo(ctx, host);
      try {
        if (units.some((u) => u.gatherFacts)) {
          if (opts.stop?.requested) throw new InterruptedError('gathering facts');
          info.facts = await gatherFacts(conn);
        }
        for (const unit of units) {
          if (opts.stop?.requested) throw new InterruptedError(unit.name);
          const list = await unit.tasks(info);
          const res = await runTasks(conn, info, list, {
            check: opts.check,
            diff: opts.diff,
            reporter,
            tags: opts.tags,
            unit: unit.name,
            unitTags: unit.tags,
            handlers: unit.handlers(info),
            stop: opts.stop,
          });
          if (res.failed > 0) {
            failed.add(host.name);
            break;
          }
        }
      } catch (err) {
        if (err instanceof InterruptedError) {
          reporter.interrupted(host.name, err.message);
        } else if (err instanceof AbortedError) {
          reporter.interrupted(host.name, 'aborted: the commands in flight were cut off');
        } else if (err instanceof UnreachableError) {
          conns.unreachable.add(host.name);
          reporter.unreachable(host.name, `${err.reason}: ${err.message}`);
        } else if (err instanceof UserError) {
          failed.add(host.name);
          reporter.task(host.name, 'error', 'failed', err.message);
        } else throw err;
      } finally {
        reporter.host(host.name).roundTrips = await conns.roundTrips(host.name);
      }
    });
    const bad = batch.filter((p) => failed.has(p.host.name) || conns.unreachable.has(p.host.name)).length;
    const pct = batch.length ? (bad * 100) / batch.length : 0;
    if (opts.stop?.requested) break;
    if (bad > 0 && pct > (opts.maxFailPercentage ?? 0) && offset < live.length) {
      reporter.warn(
        `stopping: ${bad} of ${batch.length} hosts of this batch failed (max ${opts.maxFailPercentage ?? 0}%); ` +
          `${live.length - offset} hosts not started`,
      );
      break;
    }
  }
  return { failed };
}

export interface RunCommandOptions extends CommonRunOptions {
  verbose?: boolean;
}

function makeReporter(o: RunCommandOptions): Promise<Reporter> {
  return Reporter.create({ json: !!o.json, verbose: !!o.verbose, check: !!o.check });
}

function exitCode(reporter: Reporter, failed: Set<string>, stop: RunStop): number {
  // The user asked to stop: that is the outcome, whatever else happened.
  if (stop.exitCode !== undefined) return stop.exitCode;
  const unreachable = [...reporter.stats.values()].some((s) => s.unreachable);
  if (unreachable) return 3;
  return failed.size > 0 ? 2 : 0;
}

/** Stops the run on SIGINT/SIGTERM (see interrupt.ts); the second signal closes every connection. */
function stopOnSignals(reporter: Reporter, conns: ConnectionPool): RunStop {
  return new RunStop().listen(
    (signal) =>
      reporter.warn(
        `${signal}: stopping: the steps in flight finish, no new step starts (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again aborts them)`,
      ),
    (signal) => {
      reporter.warn(`${signal} again: aborting the steps in flight (no file is installed half-written)`);
      void conns.closeAll();
    },
  );
}

function splitTags(tags?: string): string[] | undefined {
  const list = tags
    ?.split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  return list?.length ? list : undefined;
}

/** `verdandi provision <env>`: every host gets the roles of its groups. Returns the exit code. */
export async function provision(env: string, o: RunCommandOptions): Promise<number> {
  const ctx = await loadRunContext(env, o);
  const conns = new ConnectionPool(ctx.connectOptions);
  // SSH handshakes overlap the loading of the roles (connecting changes nothing on a host).
  conns.warm(ctx.hosts, ctx.vars);
  const plans: HostPlan[] = [];
  for (const host of ctx.hosts) {
    const units: Unit[] = [];
    for (const entry of host.roleEntries ?? host.roles.map((role) => ({ role, origin: host.origin }))) {
      const name = entry.role;
      const role = await loadRole(name, ctx.projectDir, formatOrigin(entry.origin));
      units.push(roleUnit(ctx, host, role));
    }
    plans.push({ host, units });
  }
  const reporter = await makeReporter(o);
  const stop = stopOnSignals(reporter, conns);
  try {
    const { failed } = await execute(ctx, plans, conns, {
      check: !!o.check,
      diff: !!o.diff,
      tags: splitTags(o.tags),
      forks: parsePositiveInt(o.forks, '--forks', 20),
      reporter,
      stop,
    });
    reporter.finish(stop.signal);
    return exitCode(reporter, failed, stop);
  } finally {
    stop.dispose();
    reporter.stop();
    await conns.closeAll();
  }
}

function playUnit(play: Play, index: number): Unit {
  const name = play.name ?? `play ${index + 1}`;
  return {
    name,
    tags: [],
    gatherFacts: play.gatherFacts ?? false,
    tasks: (info) => (play.tasks ? play.tasks(info) : []),
    handlers: (info) => {
      const map: HandlerMap = {};
      for (const [h, fn] of Object.entries(play.handlers ?? {})) map[h] = () => fn(info);
      return map;
    },
  };
}

/** `verdandi run <env> <playbook.ts>`. Returns the exit code. */
export async function runPlaybook(env: string, file: string, o: RunCommandOptions): Promise<number> {
  const ctx = await loadRunContext(env, o);
  const conns = new ConnectionPool(ctx.connectOptions);
  conns.warm(ctx.hosts, ctx.vars);
  const playbook = await loadPlaybook(file);
  const limited = new Set(ctx.hosts.map((h) => h.name));
  // Validate every play first: roles exist, vars are right, patterns match.
  const plays: Array<{ play: Play; plans: HostPlan[] }> = [];
  for (const [i, play] of playbook.plays.entries()) {
    const hosts = selectHosts(ctx.inventory, play.hosts).filter((h) => limited.has(h.name));
    const refs = await Promise.all(
      (play.roles ?? []).map((r) => resolveRoleRef(r, ctx.projectDir, `${file} play ${i + 1}`)),
    );
    const plans = hosts.map((host) => ({
      host,
      units: [
        ...refs.map((r) => roleUnit(ctx, host, r.role, { vars: r.vars, tags: r.tags })),
        ...(play.tasks || play.handlers ? [playUnit(play, i)] : []),
      ],
    }));
    plays.push({ play, plans });
  }
  const reporter = await makeReporter(o);
  const stop = stopOnSignals(reporter, conns);
  const failed = new Set<string>();
  try {
    for (const { play, plans } of plays) {
      if (stop.requested) break;
      const remaining = plans.filter((p) => !failed.has(p.host.name));
      const res = await execute(ctx, remaining, conns, {
        check: !!o.check,
        diff: !!o.diff,
        tags: splitTags(o.tags),
        forks: parsePositiveInt(o.forks, '--forks', 20),
        serial: play.serial,
        maxFailPercentage: play.maxFailPercentage,
        reporter,
        stop,
      });
      for (const h of res.failed) failed.add(h);
    }
    reporter.finish(stop.signal);
    return exitCode(reporter, failed, stop);
  } finally {
    stop.dispose();
    reporter.stop();
    await conns.closeAll();
  }
}
