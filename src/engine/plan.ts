/**
 * The plan: before the first command runs on any host, every selected host's units are evaluated —
 * each role's vars validated, its `tasks()` called (templates render there), every handler's task list
 * built, every `notify` matched to a handler. A failure there is a user error (exit 1, nothing changed)
 * that names the role or playbook `.ts` file and line, the host, and what went wrong; all of them are
 * collected and reported together. The run then uses these task lists: `tasks()` is called once.
 *
 * A line in the user's TypeScript comes from the error's stack: roles and playbooks load from bundles
 * that carry their source maps (compile-cache.ts), so frames name the `.ts` file, not the bundle.
 */
import { relative, sep } from 'node:path';
import { validateRoleVars, varsForRole } from '../inventory/index.js';
import { InventoryError, type InventoryHost } from '../inventory/types.js';
import { TaskOptionError } from '../tasks/options.js';
import { UserError, UserErrors } from '../util/errors.js';
import { shownLocation, shownPath, userFrame } from '../util/user-code.js';
import type { RunContext } from './context.js';
import { isTask, type ResolvedRefs, resolveOnlyIfChanged } from './only-if-changed.js';
import { flattenTasks, type HandlerMap, unknownHandlerError } from './run.js';
import type { FactsSpec, HostFacts, HostInfo, Play, Role, Task, TaskList } from './types.js';

/** What runs on one host, before evaluation: a role with its validated vars, or a play's own tasks. */
export interface Unit {
  /** A role, or a play's own tasks: `onlyIfChanged` names another unit's task by both. */
  kind: 'role' | 'play';
  name: string;
  /** How messages name it: `role nginx`, `playbook site.ts, play 2`. */
  label: string;
  /** The .ts file that defines it (a location when no stack frame points into the user's code). */
  source?: string;
  /**
   * What defines it, as its pending-handler records on the hosts name it: `role nginx`, `playbook
   * playbooks/site.ts` (relative to the project, so the same on every controller).
   */
  definedBy: string;
  tags: string[];
  gatherFacts: boolean;
  /** The read-only facts its tasks need (declared-facts.ts), gathered with `gatherFacts` before the plan. */
  declaredFacts?: FactsSpec;
  tasks(host: HostInfo, facts: Record<string, unknown>): TaskList | Promise<TaskList>;
  /** Its handlers, built with the same declared facts' values as its tasks. */
  handlers(host: HostInfo, facts: Record<string, unknown>): HandlerMap;
}

/** A unit evaluated for one host: the tasks and handler task lists the run uses. */
export interface PlannedUnit {
  kind: Unit['kind'];
  name: string;
  definedBy: string;
  tags: string[];
  tasks: Task[];
  /** Each handler's tasks, already built (the functions only hand them out). */
  handlers: HandlerMap;
}

/** The units of one host, before evaluation. */
export interface HostUnits {
  host: InventoryHost;
  units: Unit[];
}

/** What the run does on one host: its units evaluated. */
export interface HostPlan {
  host: InventoryHost;
  info: HostInfo;
  units: PlannedUnit[];
  /** What the `onlyIfChanged` of its tasks names, resolved (only-if-changed.ts). */
  onlyIfChanged?: ResolvedRefs;
}

/**
 * Every host of the inventory as roles see it (`host.inventory`), built once per plan and shared by
 * every host's HostInfo: built per host, it made planning quadratic in hosts (10,000 hosts: 10^8
 * entries). Frozen, since one host's role changing it would change what the other hosts' roles see.
 */
export function inventoryView(ctx: Pick<RunContext, 'inventory' | 'vars'>): HostInfo['inventory'] {
  const hosts = [...ctx.inventory.hosts.values()].map((h) =>
    Object.freeze({
      name: h.name,
      address: h.address,
      groups: Object.freeze(ctx.inventory.groupsOf(h.name)) as string[],
      vars: ctx.vars.get(h.name) ?? h.vars,
    }),
  );
  return Object.freeze({ hosts: Object.freeze(hosts) as HostInfo['inventory']['hosts'] });
}

/** What a role's `tasks()` sees of the host (`inventory`: the shared view of inventoryView). */
export function hostInfo(
  ctx: Pick<RunContext, 'inventory' | 'vars' | 'secrets' | 'env'>,
  host: InventoryHost,
  inventory: HostInfo['inventory'] = inventoryView(ctx),
): HostInfo {
  return {
    name: host.name,
    address: host.address,
    groups: ctx.inventory.groupsOf(host.name),
    vars: ctx.vars.get(host.name) ?? host.vars,
    secrets: ctx.secrets,
    env: ctx.env,
    inventory,
  };
}

/** Validates the role's vars for this host now (before anything runs) and returns the unit. */
export function roleUnit(
  ctx: Pick<RunContext, 'vars' | 'extraVars' | 'sensitive'>,
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
  let declaredFacts: FactsSpec | undefined;
  try {
    declaredFacts = typeof role.facts === 'function' ? role.facts(vars) : role.facts;
  } catch (err) {
    throw planError(
      err,
      { label: `role ${role.name}`, source: role.dir && `${role.dir}${sep}index.ts` },
      host.name,
      'facts()',
    );
  }
  return {
    kind: 'role',
    name: role.name,
    label: `role ${role.name}`,
    source: role.dir ? `${role.dir}${sep}index.ts` : undefined,
    definedBy: `role ${role.name}`,
    tags: [...(role.tags ?? []), ...(extra.tags ?? [])],
    gatherFacts: role.gatherFacts ?? false,
    declaredFacts,
    tasks: (info, facts) => role.tasks(vars, info, facts),
    handlers: (info, facts) => {
      const map: HandlerMap = {};
      for (const [name, fn] of Object.entries(role.handlers ?? {})) map[name] = () => fn(vars, info, facts);
      return map;
    },
  };
}

/** A play's own tasks and handlers, as one unit after the play's roles. */
export function playUnit(play: Play, index: number, file: string, projectDir: string): Unit {
  const name = play.name ?? `play ${index + 1}`;
  return {
    kind: 'play',
    name,
    label: `playbook ${shown(file)}, ${play.name ? `play "${play.name}"` : `play ${index + 1}`}`,
    source: file,
    definedBy: `playbook ${relative(projectDir, file).split(sep).join('/')}`,
    tags: [],
    gatherFacts: play.gatherFacts ?? false,
    declaredFacts: play.facts,
    tasks: (info, facts) => (play.tasks ? play.tasks(info, facts) : []),
    handlers: (info, facts) => {
      const map: HandlerMap = {};
      for (const [h, fn] of Object.entries(play.handlers ?? {})) map[h] = () => fn(info, facts);
      return map;
    },
  };
}

/** A path as messages show it: relative to the working directory when inside it. */
export const shown = shownPath;

/**
 * Where the error comes from: the line of the user's code on its stack, else the unit's file. None for
 * a wrong task option that names its line already (a location is given once).
 */
function locationOf(err: unknown, unit: Pick<Unit, 'source'>): string | undefined {
  if (err instanceof TaskOptionError && err.location) return undefined;
  const frame = userFrame(err instanceof Error ? err.stack : undefined);
  if (frame) return shownLocation(frame, { column: true });
  return unit.source ? shown(unit.source) : undefined;
}

/** Turns what a role's or playbook's code threw into a user error naming where and for which host. */
export function planError(err: unknown, unit: Pick<Unit, 'label' | 'source'>, host: string, what: string) {
  const where = locationOf(err, unit);
  const head = `${unit.label}${where ? ` (${where})` : ''}, host ${host}`;
  if (err instanceof UserError) return new UserError(`${head}: ${err.message}`, 1, err.hint);
  const message = err instanceof Error ? err.message : String(err);
  return new UserError(`${head}: ${what} threw: ${message}`, 1, 'fix the code there and run again');
}

/** The list a role or play returned, checked: an array of tasks (and false/null/undefined to skip). */
function taskList(value: unknown, what: string): Task[] {
  if (!Array.isArray(value))
    throw new UserError(`${what} must return an array of tasks, got ${typeof value}`);
  const tasks = flattenTasks(value as TaskList);
  const bad = tasks.findIndex((t) => !isTask(t));
  if (bad >= 0) throw new UserError(`${what} returned something that is not a task at position ${bad + 1}`);
  return tasks;
}

/** Evaluates one unit for one host. Throws a UserError naming the file, line and host. */
export async function planUnit(
  unit: Unit,
  info: HostInfo,
  facts: Record<string, unknown> = {},
): Promise<PlannedUnit> {
  let tasks: Task[];
  try {
    tasks = taskList(await unit.tasks(info, facts), 'tasks()');
  } catch (err) {
    throw planError(err, unit, info.name, 'tasks()');
  }
  let defined: HandlerMap;
  try {
    defined = unit.handlers(info, facts);
  } catch (err) {
    throw planError(err, unit, info.name, 'handlers');
  }
  const handlers: HandlerMap = {};
  for (const [name, fn] of Object.entries(defined)) {
    try {
      const list = taskList([fn()], `handler "${name}"`);
      handlers[name] = () => list;
    } catch (err) {
      throw planError(err, unit, info.name, `handler "${name}"`);
    }
  }
  const unknown = unknownHandlerError(unit.name, tasks, handlers);
  if (unknown) throw planError(unknown, unit, info.name, 'notify');
  return { kind: unit.kind, name: unit.name, definedBy: unit.definedBy, tags: unit.tags, tasks, handlers };
}

/** Collects user errors so that all of them are reported at once. */
export class ErrorCollector {
  readonly errors: UserError[] = [];
  /**
   * The errors already recorded, by message and hint: a role that does not load fails the same way on
   * every host that has it, and 10,000 hosts must not print it 10,000 times.
   */
  private readonly seen = new Set<string>();

  /** Runs `fn`; a user error is recorded (and undefined returned), anything else goes on up. */
  async attempt<T>(fn: () => T | Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof UserErrors) for (const e of err.errors) this.add(e);
      else if (err instanceof UserError) this.add(err);
      else if (err instanceof InventoryError) this.add(new UserError(err.message, 1));
      else throw err;
      return undefined;
    }
  }

  /** Records an error, once. */
  add(error: UserError): void {
    const key = `${error.message}\n${error.hint ?? ''}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.errors.push(error);
  }

  /** Throws every collected error at once (exit 1) when there is any. */
  throwIfAny(): void {
    if (this.errors.length === 1) throw this.errors[0];
    if (this.errors.length > 1) throw new UserErrors(this.errors);
  }
}

export interface PlanHostsOptions {
  /** Facts gathered before the plan, for the units that set `gatherFacts`. */
  facts: Map<string, HostFacts>;
  /** The values of each unit's declared facts (parsed), for the units that declare any. */
  declared?: Map<Unit, Record<string, unknown>>;
  /** Hosts left out (unreachable when facts were gathered). */
  skip?: (host: string) => boolean;
  /**
   * A unit needs facts the host has none of. Without this, the unit is left out (the run is refused
   * or the host unreachable anyway); with it, the unit is evaluated without facts, and a failure is
   * handed here instead of being an error (`verdandi check`).
   */
  withoutFacts?: (unit: Unit, host: string, error?: UserError) => void;
}

/** The unit declares read-only facts its tasks need (declared-facts.ts). */
export function declaresFacts(unit: Pick<Unit, 'declaredFacts'>): boolean {
  return !!unit.declaredFacts && Object.keys(unit.declaredFacts).length > 0;
}

/** Evaluates every unit of every host; user errors go to `errors`, the plans of the rest come back. */
export async function planHosts(
  ctx: Pick<RunContext, 'inventory' | 'vars' | 'secrets' | 'env'>,
  hosts: HostUnits[],
  errors: ErrorCollector,
  opts: PlanHostsOptions,
): Promise<HostPlan[]> {
  const plans: HostPlan[] = [];
  const inventory = inventoryView(ctx);
  for (const { host, units } of hosts) {
    if (opts.skip?.(host.name)) continue;
    const info = hostInfo(ctx, host, inventory);
    const facts = opts.facts.get(host.name);
    if (facts) info.facts = facts;
    const planned: PlannedUnit[] = [];
    for (const unit of units) {
      const declared = opts.declared?.get(unit);
      if ((unit.gatherFacts && !facts) || (declaresFacts(unit) && !declared)) {
        const { withoutFacts } = opts;
        if (!withoutFacts) continue;
        try {
          planned.push(await planUnit(unit, info));
          withoutFacts(unit, host.name);
        } catch (err) {
          if (!(err instanceof UserError)) throw err;
          withoutFacts(unit, host.name, err);
        }
        continue;
      }
      const one = await errors.attempt(() => planUnit(unit, info, declared));
      if (one) planned.push(one);
    }
    // What onlyIfChanged names is resolved over the units in the order they run on this host; a unit
    // that failed to plan is reported already (its tasks would only be reported missing).
    const plan: HostPlan = { host, info, units: planned };
    if (planned.length === units.length) {
      const resolved = resolveOnlyIfChanged(planned, host.name);
      if ('problem' in resolved) {
        const { unit, error } = resolved.problem;
        await errors.attempt(() => {
          throw planError(error, units[unit], host.name, 'onlyIfChanged');
        });
      } else plan.onlyIfChanged = resolved.refs;
    }
    plans.push(plan);
  }
  return plans;
}
