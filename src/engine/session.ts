/**
 * A run over an inventory: load and validate everything first (inventory, secrets, roles, every role's
 * vars for every host), gather facts for the roles that ask for them (read only), evaluate every unit
 * of every host (plan.ts), so a user error changes nothing; then run hosts in parallel, in `serial`
 * batches, at most `--forks` at a time, each on one SSH connection closed when its work is done.
 */
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { CommonRunOptions } from '../cli/context.js';
import { parsePositiveInt } from '../cli/context.js';
import type { ConnectOptions } from '../connection/index.js';
import { AbortedError, UnreachableError } from '../connection/types.js';
import { interpolateVars, loadInventory, parseExtraVars, selectHosts } from '../inventory/index.js';
import { formatOrigin, type Inventory, InventoryError, type InventoryHost } from '../inventory/types.js';
import { loadSecrets } from '../secrets/index.js';
import { runExitCode, UserError } from '../util/errors.js';
import { mapLimited } from '../util/pool.js';
import { registerSecret } from '../util/redact.js';
import { ConnectionPool } from './connection-pool.js';
import { gatherFacts } from './facts.js';
import { RunStop } from './interrupt.js';
import { loadPlaybook, loadRole } from './loader.js';
import { PeerReader } from './peer-read.js';
import {
  ErrorCollector,
  type HostPlan,
  type HostUnits,
  planHosts,
  playUnit,
  roleUnit,
  shown,
  type Unit,
} from './plan.js';
import { Reporter } from './report.js';
import { InterruptedError, runTasks } from './run.js';
import type { HostFacts, Play, Playbook, Role, RoleRef } from './types.js';

export { becomePasswordOf, ConnectionPool } from './connection-pool.js';

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

/**
 * Every host's vars with `{{ secrets.x }}` and `{{ other_var }}` rendered, and the names of those that
 * came from the secrets. An error throws, or, given a collector, is recorded and the host listed in
 * `failed`.
 */
export function interpolateHosts(
  inventory: Inventory,
  secrets: Record<string, unknown>,
  errors?: ErrorCollector,
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
      errors.errors.push(err);
      failed.add(host.name);
    }
  }
  return { vars, sensitive, failed };
}

/** What the plan needs of a run's context (`verdandi check` has no connection options). */
export type PlanContext = Omit<RunContext, 'connectOptions'>;

/** Reads one line from the TTY without echo (sudo password). */
async function promptHidden(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw new UserError('-K needs a terminal to ask for the sudo password', 1);
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  process.stderr.write(question);
  const mutable = rl as unknown as { _writeToOutput: (s: string) => void };
  mutable._writeToOutput = () => {};
  const answer = await new Promise<string>((resolve) => rl.question('', resolve));
  rl.close();
  process.stderr.write('\n');
  return answer;
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
  const { vars, sensitive } = interpolateHosts(inventory, secrets);
  let becomePassword: string | undefined;
  if (o.askBecomePass) becomePassword = await promptHidden('sudo password: ');
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
  /** Keep the host's connection open when its run ends (more work on it follows); default: close it. */
  keepOpen?: (host: string) => boolean;
  /** Ctrl-C / SIGTERM: once requested, no host starts and no new command starts on any host. */
  stop?: RunStop;
  /** Reads what a step needs from another host (RunStep.stdinFrom); without it such a step fails. */
  peers?: PeerReader;
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

/**
 * The read-only pass before the plan: facts of the hosts that have a unit with `gatherFacts` (their
 * `tasks()` need `host.facts`). One command per host, nothing changed; a host unreachable here is
 * reported and left out of the run.
 */
export async function gatherFactsFirst(
  ctx: RunContext,
  hosts: HostUnits[],
  conns: ConnectionPool,
  opts: { forks: number; reporter: Reporter; keepOpen: boolean },
): Promise<Map<string, HostFacts>> {
  const facts = new Map<string, HostFacts>();
  const need = hosts.filter((h) => h.units.some((u) => u.gatherFacts) && !conns.unreachable.has(h.host.name));
  await mapLimited(need, opts.forks, async ({ host }) => {
    try {
      opts.reporter.activity(`${host.name}: gathering facts`);
      facts.set(host.name, await gatherFacts(await conns.acquire(host, ctx.vars.get(host.name))));
    } catch (err) {
      if (!(err instanceof UnreachableError)) throw err;
      conns.unreachable.add(host.name);
      opts.reporter.unreachable(host.name, `${err.reason}: ${err.message}`);
    } finally {
      await conns.release(host.name, opts.keepOpen);
    }
  });
  return facts;
}

/** Runs the planned units of every host; returns the names of the hosts that failed. */
export async function execute(
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
    await mapLimited(batch, opts.forks, async ({ host, info, units }) => {
      reporter.host(host.name);
      if (opts.stop?.requested) {
        reporter.interrupted(host.name, 'not started');
        return;
      }
      try {
        const conn = await conns.acquire(host, info.vars);
        for (const unit of units) {
          if (opts.stop?.requested) throw new InterruptedError(unit.name);
          const res = await runTasks(conn, info, unit.tasks, {
            check: opts.check,
            diff: opts.diff,
            reporter,
            tags: opts.tags,
            unit: unit.name,
            unitTags: unit.tags,
            handlers: unit.handlers,
            stop: opts.stop,
            readPeer: opts.peers?.read.bind(opts.peers),
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
        const keep =
          !failed.has(host.name) && !conns.unreachable.has(host.name) && !!opts.keepOpen?.(host.name);
        await conns.release(host.name, keep);
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

/** The exit code of a run: see runExitCode (one rule for every command). */
function exitCode(reporter: Reporter, failed: Set<string>, stop: RunStop): number {
  // The user asked to stop: that is the outcome, whatever else happened.
  if (stop.exitCode !== undefined) return stop.exitCode;
  const unreachable = [...reporter.stats.values()].some((s) => s.unreachable);
  return runExitCode({ unreachable, failed: failed.size > 0 });
}

/** Stops the run on SIGINT/SIGTERM (see interrupt.ts); the second signal closes every connection. */
function stopOnSignals(reporter: Reporter, conns: ConnectionPool, peers: PeerReader): RunStop {
  return new RunStop().listen(
    (signal) =>
      reporter.warn(
        `${signal}: stopping: the steps in flight finish, no new step starts (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again aborts them)`,
      ),
    (signal) => {
      reporter.warn(`${signal} again: aborting the steps in flight (no file is installed half-written)`);
      void conns.closeAll();
      void peers.closeAll();
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

/** The units of each host's roles (provision): roles loaded, vars validated; errors collected. */
export async function provisionUnits(ctx: PlanContext, errors: ErrorCollector): Promise<HostUnits[]> {
  const out: HostUnits[] = [];
  for (const host of ctx.hosts) {
    const units: Unit[] = [];
    for (const entry of host.roleEntries ?? host.roles.map((role) => ({ role, origin: host.origin }))) {
      await errors.attempt(async () => {
        const role = await loadRole(entry.role, ctx.projectDir, formatOrigin(entry.origin));
        units.push(roleUnit(ctx, host, role));
      });
    }
    out.push({ host, units });
  }
  return out;
}

/**
 * Everything before the first command on a host: facts for the roles that need them (read only),
 * then every unit of every host evaluated. Throws every user error found at once (exit 1).
 */
async function planRun(
  ctx: RunContext,
  units: HostUnits[][],
  errors: ErrorCollector,
  conns: ConnectionPool,
  opts: { forks: number; reporter: Reporter; keepOpen: boolean },
): Promise<HostPlan[][]> {
  // Facts cost a connection: not worth one when the run is refused anyway.
  // A host needs facts when a unit of any play wants them (once per host).
  const needFacts = new Map<string, HostUnits>();
  for (const h of units.flat()) if (h.units.some((u) => u.gatherFacts)) needFacts.set(h.host.name, h);
  const facts =
    errors.errors.length === 0
      ? await gatherFactsFirst(ctx, [...needFacts.values()], conns, opts)
      : new Map<string, HostFacts>();
  const plans: HostPlan[][] = [];
  for (const hosts of units) {
    const planned = await planHosts(ctx, hosts, errors, {
      facts,
      skip: (host) => conns.unreachable.has(host),
    });
    plans.push(planned);
  }
  errors.throwIfAny();
  return plans;
}

/** `verdandi provision <env>`: every host gets the roles of its groups. Returns the exit code. */
export async function provision(env: string, o: RunCommandOptions): Promise<number> {
  const ctx = await loadRunContext(env, o);
  const forks = parsePositiveInt(o.forks, '--forks', 20);
  const conns = new ConnectionPool(ctx.connectOptions, forks);
  // SSH handshakes overlap the loading of the roles (connecting changes nothing on a host).
  conns.warm(ctx.hosts, ctx.vars);
  const reporter = await makeReporter(o);
  const peers = new PeerReader(ctx.inventory.hosts, ctx.vars, ctx.connectOptions);
  const stop = stopOnSignals(reporter, conns, peers);
  try {
    const errors = new ErrorCollector();
    const units = await provisionUnits(ctx, errors);
    const [plans] = await planRun(ctx, [units], errors, conns, {
      forks,
      reporter,
      keepOpen: ctx.hosts.length <= forks,
    });
    const { failed } = await execute(plans, conns, {
      check: !!o.check,
      diff: !!o.diff,
      tags: splitTags(o.tags),
      forks,
      reporter,
      stop,
      peers,
    });
    reporter.finish(stop.signal);
    return exitCode(reporter, failed, stop);
  } finally {
    stop.dispose();
    reporter.stop();
    await conns.closeAll();
  }
}

/** The units of every play of a playbook, per play: roles loaded, vars validated; errors collected. */
export async function playbookUnits(
  ctx: PlanContext,
  playbook: Playbook,
  file: string,
  errors: ErrorCollector,
): Promise<Array<{ play: Play; hosts: HostUnits[] }>> {
  const limited = new Set(ctx.hosts.map((h) => h.name));
  const out: Array<{ play: Play; hosts: HostUnits[] }> = [];
  for (const [i, play] of playbook.plays.entries()) {
    const where = `${shown(file)} play ${i + 1}`;
    const selected = await errors.attempt(() =>
      selectHosts(ctx.inventory, play.hosts).filter((h) => limited.has(h.name)),
    );
    const refs: Array<Awaited<ReturnType<typeof resolveRoleRef>>> = [];
    for (const r of play.roles ?? []) {
      const ref = await errors.attempt(() => resolveRoleRef(r, ctx.projectDir, where));
      if (ref) refs.push(ref);
    }
    // A bad `serial` would only show when the play starts, after the plays before it changed hosts.
    await errors.attempt(() => {
      try {
        batchSizes(Math.max(1, selected?.length ?? 0), play.serial);
      } catch (err) {
        throw err instanceof UserError ? new UserError(`${where}: ${err.message}`, 1) : err;
      }
    });
    const hosts: HostUnits[] = [];
    for (const host of selected ?? []) {
      const units: Unit[] = [];
      for (const r of refs) {
        await errors.attempt(() => {
          units.push(roleUnit(ctx, host, r.role, { vars: r.vars, tags: r.tags }));
        });
      }
      if (play.tasks || play.handlers) units.push(playUnit(play, i, resolve(file)));
      hosts.push({ host, units });
    }
    out.push({ play, hosts });
  }
  return out;
}

/** The hosts of a play's first `serial` batch (after --limit); none when its pattern or serial is wrong. */
function firstBatch(ctx: RunContext, play: Play | undefined): InventoryHost[] {
  if (!play) return [];
  try {
    const limited = new Set(ctx.hosts.map((h) => h.name));
    const hosts = selectHosts(ctx.inventory, play.hosts).filter((h) => limited.has(h.name));
    return hosts.slice(0, batchSizes(hosts.length, play.serial)[0]);
  } catch (err) {
    if (err instanceof UserError || err instanceof InventoryError) return [];
    throw err;
  }
}

/**
 * `verdandi run <env> <playbook.ts>`. Returns the exit code. A host's connection stays open between
 * plays when every host of the run fits in `--forks`; otherwise it is closed after each play that
 * ran on it and opened again by the next one, so `--forks` bounds the connections.
 */
export async function runPlaybook(env: string, file: string, o: RunCommandOptions): Promise<number> {
  const ctx = await loadRunContext(env, o);
  const forks = parsePositiveInt(o.forks, '--forks', 20);
  const conns = new ConnectionPool(ctx.connectOptions, forks);
  const reporter = await makeReporter(o);
  const peers = new PeerReader(ctx.inventory.hosts, ctx.vars, ctx.connectOptions);
  const stop = stopOnSignals(reporter, conns, peers);
  const failed = new Set<string>();
  try {
    const playbook = await loadPlaybook(file);
    // The first play's first batch connects while its roles load; a pattern or serial that is wrong
    // warms nothing (the plan reports it).
    conns.warm(firstBatch(ctx, playbook.plays[0]), ctx.vars);
    const errors = new ErrorCollector();
    const plays = await playbookUnits(ctx, playbook, file, errors);
    const fitsInForks = new Set(plays.flatMap((p) => p.hosts.map((h) => h.host.name))).size <= forks;
    const plans = await planRun(
      ctx,
      plays.map((p) => p.hosts),
      errors,
      conns,
      { forks, reporter, keepOpen: fitsInForks },
    );
    for (const [i, { play }] of plays.entries()) {
      if (stop.requested) break;
      const later = new Set(plays.slice(i + 1).flatMap((p) => p.hosts.map((h) => h.host.name)));
      const res = await execute(
        plans[i].filter((p) => !failed.has(p.host.name)),
        conns,
        {
          check: !!o.check,
          diff: !!o.diff,
          tags: splitTags(o.tags),
          forks,
          serial: play.serial,
          maxFailPercentage: play.maxFailPercentage,
          reporter,
          keepOpen: (host) => fitsInForks && later.has(host),
          stop,
          peers,
        },
      );
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
