/**
 * Running the plan: hosts in parallel, in `serial` batches, at most `--forks` at a time, each on one
 * SSH connection closed when its work is done (or kept for the next play); facts gathered first for
 * the units that need them; Ctrl-C and SIGTERM stop the run (interrupt.ts); one exit-code rule.
 */
import { AbortedError, UnreachableError } from '../connection/types.js';
import { runExitCode, UserError } from '../util/errors.js';
import { mapLimited } from '../util/pool.js';
import type { ConnectionPool } from './connection-pool.js';
import type { ContextOptions, RunContext } from './context.js';
import { ControllerDownloads } from './downloads.js';
import { gatherFacts } from './facts.js';
import { RunStop } from './interrupt.js';
import type { PeerReader } from './peer-read.js';
import type { PendingLedger } from './pending.js';
import { type ErrorCollector, type HostPlan, type HostUnits, planHosts } from './plan.js';
import { Reporter } from './report.js';
import { InterruptedError, runTasks } from './run.js';
import type { HostFacts } from './types.js';

/** What a run of tasks is given (`provision`, `run`): typed by the command line. */
export interface RunOptions extends ContextOptions {
  /** Probe only: show what would change, change nothing. */
  check?: boolean;
  diff?: boolean;
  /** Only tasks and roles with one of these tags. */
  tags?: string[];
  /** Hosts worked on at once (default DEFAULT_FORKS). */
  forks?: number;
  json?: boolean;
  verbose?: boolean;
  /** Seconds a command may run when its task sets no `timeout` (`--task-timeout`). */
  taskTimeout?: number;
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
  /** Seconds a run step may take when its task sets no `timeout`. */
  taskTimeout?: number;
  /** The pending-handler records the command can replay (pending.ts); the others are reported. */
  pending?: PendingLedger;
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
  const failed = new Set<string>();
  const live = plans.filter((p) => !conns.unreachable.has(p.host.name));
  // Files fetched on the controller for the steps of this run, each once, removed when it ends.
  const downloads = new ControllerDownloads();
  try {
    return await executeBatches(live, conns, opts, failed, downloads);
  } finally {
    downloads.close();
  }
}

async function executeBatches(
  live: HostPlan[],
  conns: ConnectionPool,
  opts: ExecuteOptions,
  failed: Set<string>,
  downloads: ControllerDownloads,
): Promise<{ failed: Set<string> }> {
  const { reporter } = opts;
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
            source: unit.definedBy,
            pending: opts.pending,
            unitTags: unit.tags,
            handlers: unit.handlers,
            stop: opts.stop,
            taskTimeout: opts.taskTimeout,
            readPeer: opts.peers?.read.bind(opts.peers),
            downloads,
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

/**
 * Everything before the first command on a host: facts for the roles that need them (read only),
 * then every unit of every host evaluated. Throws every user error found at once (exit 1).
 */
export async function planRun(
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

/** The exit code of a run: see runExitCode (one rule for every command). */
function exitCodeOf(reporter: Reporter, failed: Set<string>, stop: RunStop): number {
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
        `${signal}: stopping: the commands running on the hosts are stopped, files in flight finish, no new step starts (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again aborts them)`,
      ),
    (signal) => {
      reporter.warn(`${signal} again: aborting the steps in flight (no file is installed half-written)`);
      void conns.closeAll();
      void peers.closeAll();
    },
  );
}

/**
 * The frame of a run of tasks: its reporter and its stop on signals around `work`, which returns the
 * hosts that failed; then the summary and the exit code. Every connection is closed at the end.
 */
export async function reportedRun(
  conns: ConnectionPool,
  peers: PeerReader,
  o: Pick<RunOptions, 'json' | 'verbose' | 'check'>,
  work: (reporter: Reporter, stop: RunStop) => Promise<Set<string>>,
): Promise<number> {
  const reporter = await Reporter.create({ json: !!o.json, verbose: !!o.verbose, check: !!o.check });
  const stop = stopOnSignals(reporter, conns, peers);
  try {
    const failed = await work(reporter, stop);
    reporter.finish(stop.signal);
    return exitCodeOf(reporter, failed, stop);
  } finally {
    stop.dispose();
    reporter.stop();
    await conns.closeAll();
  }
}
