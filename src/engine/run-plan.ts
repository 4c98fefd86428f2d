/**
 * A run of tasks (`provision`, `run`) on the walker (walker.ts): facts for the units that need them
 * (a read-only walk), the plan of every host, then each host's planned units.
 */
import { UserError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import type { ContextOptions, RunContext } from './context.js';
import { factsSpecProblem } from './declared-facts.js';
import type { ControllerDownloads } from './downloads.js';
import { gatherAll } from './facts.js';
import type { PeerReader } from './peer-read.js';
import type { PendingLedger } from './pending.js';
import {
  declaresFacts,
  type ErrorCollector,
  type HostPlan,
  type HostUnits,
  planError,
  planHosts,
  type Unit,
} from './plan.js';
import { Reporter } from './report.js';
import {
  InterruptedError,
  probeUnits,
  type RunTasksOptions,
  runTasks,
  splitUnitsResults,
  unitsProbes,
  unknownTagsError,
} from './run.js';
import type { HostFacts, ProbeResult, Task } from './types.js';
import type { HostWork, Walker, WorkResult } from './walker.js';

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

/**
 * Everything before the first command on a host: facts for the roles that need them (read only; a
 * host unreachable there is left out of the run), then every unit of every host evaluated. Throws
 * every user error found at once (exit 1).
 */
export async function planRun(
  ctx: RunContext,
  units: HostUnits[][],
  errors: ErrorCollector,
  walker: Walker,
  /** `tags`: the run's --tags, refused when no task of the plan carries one (unknownTagsError). */
  opts: { keepOpen: boolean; tags?: string[] },
): Promise<HostPlan[][]> {
  // Facts cost a connection: not worth one when the run is refused anyway.
  // A host needs facts when a unit of any play wants them (once per host): its system facts and every
  // declared fact of its units of every play go in one round trip.
  const needFacts = new Map<string, { host: HostUnits['host']; system: boolean; declared: Unit[] }>();
  for (const h of units.flat()) {
    const declared = h.units.filter(declaresFacts);
    for (const unit of declared) {
      const problem = factsSpecProblem(unit.declaredFacts);
      if (problem)
        await errors.attempt(() => {
          throw planError(new UserError(problem), unit, h.host.name, 'facts');
        });
    }
    if (!declared.length && !h.units.some((u) => u.gatherFacts)) continue;
    const need = needFacts.get(h.host.name) ?? { host: h.host, system: false, declared: [] };
    need.system ||= h.units.some((u) => u.gatherFacts);
    need.declared.push(...declared);
    needFacts.set(h.host.name, need);
  }
  const facts = new Map<string, HostFacts>();
  const gathered = new Map<Unit, Map<string, ProbeResult>>();
  if (errors.errors.length === 0 && needFacts.size > 0) {
    await walker.walk(
      [...needFacts.values()],
      { maxFailPercentage: 100, keepOpen: () => opts.keepOpen },
      async (need, { conn, events }) => {
        events.emit({ type: 'message', level: 'activity', text: `${need.host.name}: gathering facts` });
        const answer = await gatherAll(conn, {
          system: need.system,
          declared: need.declared.map((unit) => ({ unit, facts: unit.declaredFacts ?? {} })),
        });
        if (answer.system) facts.set(need.host.name, answer.system);
        for (const [unit, results] of answer.declared) gathered.set(unit, results);
        return { ok: true, result: undefined };
      },
    );
  }
  const declared = new Map<Unit, Record<string, unknown>>();
  for (const need of needFacts.values()) {
    if (walker.failed.has(need.host.name)) continue;
    for (const unit of need.declared) {
      const values = await errors.attempt(() => parseDeclared(unit, need.host.name, gathered.get(unit)));
      if (values) declared.set(unit, values);
    }
  }
  const plans: HostPlan[][] = [];
  for (const hosts of units) {
    const planned = await planHosts(ctx, hosts, errors, {
      facts,
      declared,
      skip: (host) => walker.failed.has(host),
    });
    plans.push(planned);
  }
  errors.throwIfAny();
  const badTags = unknownTagsError(
    opts.tags,
    plans.flat().flatMap((p) => p.units),
  );
  if (badTags) throw badTags;
  return plans;
}

/**
 * The values of a unit's declared facts from what their probes printed. A parser that throws, or a
 * probe that did not complete, is a user error naming the unit, the host and the fact.
 */
export function parseDeclared(
  unit: Unit,
  host: string,
  results: Map<string, ProbeResult> | undefined,
): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [name, fact] of Object.entries(unit.declaredFacts ?? {})) {
    const result = results?.get(name);
    try {
      if (!result) throw new Error('its probe did not complete (connection lost or shell died)');
      values[name] = fact.parse(result);
    } catch (err) {
      const message = redact(err instanceof Error ? err.message : String(err));
      const error = new UserError(
        `fact ${name} (${fact.label}): ${message}`,
        1,
        'fix the fact (its command or parser) or the host, and run again',
      );
      // The stack of what the parser threw: planError names the line of the role's parser from it.
      if (err instanceof Error) error.stack = err.stack;
      throw planError(error, unit, host, `fact ${name}`);
    }
  }
  return values;
}

/** The work of one host of a run of tasks: its planned units in order, until one fails. */
export function runUnits(
  opts: Pick<RunOptions, 'check' | 'diff' | 'tags' | 'taskTimeout'> & {
    peers?: PeerReader;
    /** The pending-handler records the command can replay (pending.ts); the others are reported. */
    pending?: PendingLedger;
    /** Files fetched on the controller for the steps of this run, each once (downloads.ts). */
    downloads?: ControllerDownloads;
  },
): (plan: HostPlan, host: HostWork) => Promise<WorkResult<undefined>> {
  return async ({ info, units, onlyIfChanged }, { conn, stop, events }) => {
    const reporter = new Reporter({ json: false, verbose: false, check: !!opts.check }, events);
    // One record of what changed this host, for every unit: a later role's onlyIfChanged sees an
    // earlier role's changes.
    const changes = { refs: onlyIfChanged ?? new Map(), changed: new Set<Task>() };
    const lists = units.map((unit) => ({
      list: unit.tasks,
      opts: {
        check: !!opts.check,
        diff: !!opts.diff,
        reporter,
        tags: opts.tags,
        unit: unit.name,
        source: unit.definedBy,
        pending: opts.pending,
        unitTags: unit.tags,
        handlers: unit.handlers,
        stop,
        taskTimeout: opts.taskTimeout,
        readPeer: opts.peers?.read.bind(opts.peers),
        downloads: opts.downloads,
        onlyIfChanged: changes,
      } satisfies RunTasksOptions,
    }));
    // Every unit's first probes in one round trip. A unit uses its results only while no unit changed
    // the host since they were taken: after a unit that applied a step, the units left are probed
    // again, together, in one round trip.
    const probeFrom = async (from: number) => {
      const rest = await probeUnits(conn, info, lists.slice(from), reporter, stop);
      return [...new Array<undefined>(from), ...rest];
    };
    let probed: Array<Map<string, ProbeResult> | undefined> =
      units.length > 1 ? await probeFrom(0) : [undefined];
    for (const [u, unit] of units.entries()) {
      if (stop.requested) throw new InterruptedError(unit.name);
      // The units after this one: a change's continuation probes them last, in its own round trip.
      const next = units.length - u > 1 ? unitsProbes(info, lists.slice(u + 1)) : undefined;
      const res = await runTasks(conn, info, unit.tasks, { ...lists[u].opts, probed: probed[u], next });
      if (res.failed > 0) return { ok: false, result: undefined };
      if (res.next) {
        // Taken after the last step of this unit: the units after it start from them.
        probed = [...new Array<undefined>(u + 1), ...splitUnitsResults(res.next, units.length - u - 1)];
      } else if (res.applied) {
        // One unit left: it probes for itself at the same cost.
        probed = units.length - u > 2 ? await probeFrom(u + 1) : [];
      }
    }
    return { ok: true, result: undefined };
  };
}
