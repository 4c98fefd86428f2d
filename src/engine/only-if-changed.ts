/**
 * `onlyIfChanged`: a task runs only when one of the tasks it names changed the host earlier in the run
 * (or would, in check mode); otherwise it is reported skipped, with the reason.
 *
 * What a task names is resolved when the plan is made, per host, over the lists that run on that host
 * in one play (`provision`'s roles; a play's roles, then its own tasks), in the order they run: a
 * unit's tasks, then its handlers, then the next unit. A task may name
 * - a task object of its own list, listed before it (a role's `tasks()` keeps it in a const);
 * - `{ role, task }` or `{ play, task }`: a task by the name output shows, of a role or play that runs
 *   before it on that host (or of its own list, before it; a handler may name its own unit's tasks,
 *   which run before it).
 * Anything else (a later task, one of another host, a role that does not run there, a name two tasks
 * share) could never be decided: it is refused before any host is touched, with the task's file:line.
 *
 * At run time each host keeps one set of the tasks that changed it (runUnits), shared by its units and
 * their handlers: a later role sees what an earlier one changed.
 */
import { didYouMean, listNames } from '../inventory/suggest.js';
import { TaskOptionError } from '../tasks/options.js';
import type { Task, TaskNameRef, TaskRef } from './types.js';

/** What resolution needs of a unit evaluated for a host (plan.ts's PlannedUnit). */
export interface RefUnit {
  kind: 'role' | 'play';
  name: string;
  tasks: readonly Task[];
  handlers: Record<string, () => Task | Task[]>;
}

/** A task `onlyIfChanged` names, resolved for one host, and how the skip reason shows it. */
export interface ResolvedRef {
  task: Task;
  /** `"copy /etc/app.conf"`, with ` (role app)` when the task is of another list. */
  shown: string;
}

/** What each task of a host's units names, resolved (a task without `onlyIfChanged` has no entry). */
export type ResolvedRefs = ReadonlyMap<Task, readonly ResolvedRef[]>;

/** How a run shares what changed between the lists of one host (RunTasksOptions.onlyIfChanged). */
export interface ChangeTracking {
  refs: ResolvedRefs;
  /** The tasks that changed the host in this run so far (or would, in check mode). */
  changed: Set<Task>;
}

export function isTask(x: unknown): x is Task {
  return (
    !!x &&
    typeof x === 'object' &&
    typeof (x as Task).probe === 'string' &&
    typeof (x as Task).plan === 'function'
  );
}

function isNameRef(x: unknown): x is TaskNameRef {
  if (!x || typeof x !== 'object' || isTask(x)) return false;
  const keys = Object.keys(x).sort().join(',');
  const ref = x as Record<string, unknown>;
  return (
    (keys === 'role,task' || keys === 'play,task') &&
    typeof ref.task === 'string' &&
    typeof (ref.role ?? ref.play) === 'string'
  );
}

/** `role app` or `play setup`: how a unit is named by a TaskNameRef, and in messages. */
function unitKey(kind: RefUnit['kind'], name: string): string {
  return `${kind} ${name}`;
}

function refKey(ref: TaskNameRef): string {
  return 'role' in ref ? unitKey('role', ref.role) : unitKey('play', ref.play);
}

/**
 * Why a task with `onlyIfChanged` is skipped (none of its tasks changed the host in this run, or would
 * in check mode), or undefined when it runs. `refs`: what it names, resolved (resolveOnlyIfChanged);
 * without them, the task objects it names, in its own list.
 */
export function onlyIfChangedSkip(
  task: Task,
  changed: ReadonlySet<Task>,
  refs: readonly ResolvedRef[] = (task.onlyIfChanged ?? [])
    .filter(isTask)
    .map((t) => ({ task: t, shown: `"${t.name}"` })),
): string | undefined {
  if (refs.length === 0 || refs.some((ref) => changed.has(ref.task))) return undefined;
  const names = refs.map((ref) => ref.shown);
  return `onlyIfChanged: ${names.length === 1 ? names[0] : `none of ${names.join(', ')}`} changed`;
}

/** A refused `onlyIfChanged`, with the unit it was found in (for planError's role, file and host). */
export interface OnlyIfChangedProblem {
  unit: number;
  error: TaskOptionError;
}

const HINT =
  'onlyIfChanged names a task that runs before it on the host: a task object listed earlier in the same list, ' +
  "or { role: 'name', task: 'label' } / { play: 'name', task: 'label' } for a task of an earlier role or play of this play";

/**
 * Resolves what every task of one host's units names, in the order the units run (`units`: a host's
 * planned units of one provision or play). Returns the resolved refs, or the first problem.
 */
export function resolveOnlyIfChanged(
  units: readonly RefUnit[],
  host: string,
): { refs: Map<Task, ResolvedRef[]> } | { problem: OnlyIfChangedProblem } {
  const refs = new Map<Task, ResolvedRef[]>();
  // Every task of the units before the current one (their main lists; handler tasks are not named).
  const before = new Set<Task>();
  // Where each main-list task is, to say why a task object is refused.
  const unitOf = new Map<Task, number>();
  for (const [u, unit] of units.entries()) for (const t of unit.tasks) unitOf.set(t, u);

  const resolveList = (u: number, list: readonly Task[], listName: string, seen: Set<Task>) => {
    const unit = units[u];
    for (const task of list) {
      const resolved: ResolvedRef[] = [];
      for (const ref of task.onlyIfChanged ?? []) {
        const found = resolveOne(units, u, ref, seen, list, unitOf, host);
        if (typeof found === 'string') {
          const message = `${listName}: task "${task.name}" has onlyIfChanged ${shownRef(ref)}, ${found}${task.definedAt ? ` (at ${task.definedAt})` : ''}`;
          return new TaskOptionError(task.type, 'onlyIfChanged', message, HINT, task.definedAt);
        }
        // A handler's own tasks are in no unit's main list: they are of its unit.
        const owner = units[unitOf.get(found) ?? u];
        const shown =
          owner === unit ? `"${found.name}"` : `"${found.name}" (${unitKey(owner.kind, owner.name)})`;
        resolved.push({ task: found, shown });
      }
      if (resolved.length > 0) refs.set(task, resolved);
      seen.add(task);
    }
    return undefined;
  };

  for (const [u, unit] of units.entries()) {
    const own = resolveList(u, unit.tasks, unit.name, new Set(before));
    if (own) return { problem: { unit: u, error: own } };
    // A handler runs after its unit's tasks: it may name them, and tasks of its own list before it.
    for (const [name, handler] of Object.entries(unit.handlers)) {
      const error = resolveList(
        u,
        [handler()].flat(),
        `${unit.name} › handler: ${name}`,
        new Set([...before, ...unit.tasks]),
      );
      if (error) return { problem: { unit: u, error } };
    }
    for (const t of unit.tasks) before.add(t);
  }
  return { refs };
}

function shownRef(ref: unknown): string {
  if (isTask(ref)) return `"${ref.name}"`;
  if (isNameRef(ref))
    return `{ ${'role' in ref ? 'role' : 'play'}: ${JSON.stringify('role' in ref ? ref.role : ref.play)}, task: ${JSON.stringify(ref.task)} }`;
  return `${JSON.stringify(ref) ?? String(ref)} (not a task, nor { role, task } or { play, task })`;
}

/** The task a ref names, or why it cannot be (the end of the message). */
function resolveOne(
  units: readonly RefUnit[],
  u: number,
  ref: TaskRef,
  seen: ReadonlySet<Task>,
  list: readonly Task[],
  unitOf: ReadonlyMap<Task, number>,
  host: string,
): Task | string {
  if (isTask(ref)) {
    if (seen.has(ref)) return ref;
    if (list.includes(ref)) return 'which comes after it';
    const at = unitOf.get(ref);
    if (at !== undefined && at > u)
      return `which is in ${unitKey(units[at].kind, units[at].name)}, which runs after it`;
    return `which is not a task of its list nor of a role or play run before it on host ${host} (name a task of another list by { role, task } or { play, task })`;
  }
  if (!isNameRef(ref)) return 'which is not a task';
  const key = refKey(ref);
  // The nearest one: a role may run twice in a play (with other vars).
  let at = u;
  while (at >= 0 && unitKey(units[at].kind, units[at].name) !== key) at--;
  if (at < 0) {
    const later = units.findIndex((unit) => unitKey(unit.kind, unit.name) === key);
    if (later > u) return `but ${key} runs after it on host ${host}`;
    const run = units.slice(0, u + 1).map((unit) => unitKey(unit.kind, unit.name));
    return `but ${key} does not run before it on host ${host}${didYouMean(key, run)} (before it: ${listNames(run)})`;
  }
  const named = units[at].tasks.filter((t) => t.name === ref.task);
  if (named.length === 0) {
    const names = units[at].tasks.map((t) => t.name);
    return `but ${key} has no task named "${ref.task}"${didYouMean(ref.task, names)} (its tasks on host ${host}: ${listNames(names.map((n) => `"${n}"`))})`;
  }
  if (named.length > 1)
    return `but ${named.length} tasks of ${key} are named "${ref.task}": give the one to follow its own \`name\``;
  const found = named[0];
  if (!seen.has(found)) return `which comes after it`;
  return found;
}
