/**
 * Runs one task list (a role, or a play's own tasks) on one host.
 *
 * 1. All probes go to the host in ONE round trip (plus the host's record of handlers that could not
 *    run last time).
 * 2. Tasks are walked in order. A converged task is "ok". The first one that is not is applied; its last
 *    step and a fresh probe of the next few tasks travel in the same round trip, so what an apply
 *    changed is seen by the tasks after it (no stale facts). A probe taken before a change is never
 *    used: the walk re-probes in growing windows (probe-windows.ts), so the cost stays linear.
 *    When the plans say a change is the last of the list, its last step carries the rest of the walk
 *    instead (continuation.ts): the host probes again what the tasks left and the notified handlers
 *    look at and compares it with what the controller planned from; unchanged, the same script runs
 *    the handler's one command (its record cleared with it) and probes the lists after this one
 *    (`next`), so a one-change run of several roles costs two round trips. The first probes include
 *    the handlers' tasks for that. Changed, the walk goes on from the new probes as above.
 * 3. Notified handlers run once at the end, and also when a later task failed: the change happened, so
 *    the restart must too. A notified handler is recorded on the host in the same script as the change,
 *    just before it (before the rename of a write, before a command), so a host that changed has the
 *    record; it is cleared with the handler's last step, once the handler succeeded. One that could not
 *    run (lost connection, Ctrl-C, killed controller) runs at the next run. When the command of a
 *    notifying task fails, its handlers still run: the record was made, and a command that failed part
 *    way may have changed the host.
 * 4. A stop request (Ctrl-C) starts nothing more, handlers included (they stay recorded on the host for
 *    the next run). A write in flight finishes (whole or nothing); a run step in flight is stopped with
 *    its whole process group: every run step runs supervised (remote-process.ts), under its timeout.
 *    A handler command riding in a continuation's script is asked not to start by a file the stop
 *    request leaves on the host; once started, it is stopped with its process group like any other.
 * 5. What a step prints is bounded (bounded-output.ts) and shown with its control characters escaped.
 * 6. Whether a step failed, changed the host or must run again is verdict.ts's decision (a command's
 *    changedWhen, failedWhen, retries and until); each try is a round trip of its own.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { OMITTED_PREFIX } from '../connection/bounded-output.js';
import { type Connection, type ExecOptions, UnreachableError } from '../connection/types.js';
import { didYouMean, listNames } from '../inventory/suggest.js';
import { UserError } from '../util/errors.js';
import { holdsSecret, redact } from '../util/redact.js';
import { quote } from '../util/shell.js';
import { printable } from '../util/terminal-text.js';
import { shownUrl } from '../util/url.js';
import {
  type Continuation,
  continuationPrefix,
  continuationScript,
  parseContinuation,
  stopContinuationScript,
} from './continuation.js';
import { ControllerDownloads } from './downloads.js';
import { type ChangeTracking, onlyIfChangedSkip, type ResolvedRefs } from './only-if-changed.js';
import {
  clearPendingScript,
  type HandlerOwner,
  type PendingLedger,
  parsePending,
  pendingHandlersOf,
  readPendingProbe,
  recordPath,
  recordPendingScript,
  unclearedRecord,
} from './pending.js';
import {
  type BatchProbe,
  buildProbeBatch,
  emptyProbeResults,
  newNonce,
  parseProbeBatch,
  predictBatchOutput,
} from './probe-batch.js';
import { ProbeWindows, RIDE_ALONG } from './probe-windows.js';
import { newProcessId, stopOnAbort, supervised, TASK_RUN_DIR, TIMED_OUT_EXIT } from './remote-process.js';
import type { Reporter } from './report.js';
import { backupsIn, type StepScript, stepScript } from './steps.js';
import type { HostInfo, PeerRead, Plan, ProbeResult, RunStep, Step, Task, TaskList } from './types.js';
import { judge, maxTries } from './verdict.js';

export type HandlerMap = Record<string, () => Task | Task[]>;

export interface RunTasksOptions {
  check: boolean;
  diff: boolean;
  reporter: Reporter;
  /** Only tasks carrying one of these tags (a role's name and tags count as its tasks' tags). */
  tags?: string[];
  /** Name shown before each task ("nginx"); with `source`, the key of pending handlers on the host. */
  unit?: string;
  /** What defines the unit (`role nginx`, `playbook site.ts`): its handlers' records name it. */
  source?: string;
  /** The pending-handler records this command can replay per host; the others are reported. */
  pending?: PendingLedger;
  unitTags?: string[];
  handlers?: HandlerMap;
  /** Shell run after the last step of the last changed task succeeded, in the same round trip. */
  afterLastStep?: string;
  /**
   * Asked before every command: once it says stop, no new command starts; `aborted` stops the run step
   * in flight (see interrupt.ts).
   */
  stop?: { readonly requested: boolean; readonly aborted?: AbortSignal };
  /** Seconds a run step may take when its task sets no `timeout` (`--task-timeout`; default none). */
  taskTimeout?: number;
  /** Reads a value a step needs from another host (RunStep.stdinFrom); see peer-read.ts. */
  readPeer?: (read: PeerRead) => Promise<string>;
  /** Fetches a file on the controller for a step (RunStep.stdinDownload); see downloads.ts. */
  downloads?: ControllerDownloads;
  /**
   * The results of this list's first probes (`firstProbes`), taken by an earlier round trip that
   * nothing has changed the host since (probeUnits): the list then starts without probing.
   */
  probed?: Map<string, ProbeResult>;
  /**
   * What `onlyIfChanged` names, resolved for this host, and the tasks that changed it so far, shared
   * by the lists of the host (only-if-changed.ts). Without it, a list sees only its own changes.
   */
  onlyIfChanged?: ChangeTracking;
  /**
   * The first probes of what comes after this list on the host (the roles after it): taken at the end
   * of a continuation (continuation.ts) and returned in `RunTasksResult.next`.
   */
  next?: BatchProbe[];
}

/** The run of this host was stopped by a stop request before `next` (nothing of it had started). */
export class InterruptedError extends Error {
  constructor(
    readonly next: string,
    message = `stopped before ${next}`,
  ) {
    super(message);
    this.name = 'InterruptedError';
  }
}

export interface RunTasksResult {
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
  /** A step was sent to the host (it may have changed it): probes taken before are stale. */
  applied: boolean;
  /** The results of `RunTasksOptions.next`, taken after the last step of this list. */
  next?: Map<string, ProbeResult>;
}

const PENDING_ID = 'pending';

export function flattenTasks(list: TaskList): Task[] {
  const out: Task[] = [];
  for (const item of list) {
    if (!item) continue;
    if (Array.isArray(item)) out.push(...flattenTasks(item));
    else out.push(item);
  }
  return out;
}

/** A task notifying a handler its unit does not define: a user error naming the known ones. */
export function unknownHandlerError(
  unit: string,
  tasks: Task[],
  handlers: HandlerMap,
): UserError | undefined {
  for (const t of tasks) {
    for (const h of t.notify) {
      if (!(h in handlers)) {
        const known = Object.keys(handlers);
        return new UserError(
          `${unit}: task "${t.name}" notifies handler "${h}", which ${unit} does not define`,
          1,
          known.length ? `known handlers: ${known.join(', ')}` : `${unit} defines no handlers`,
        );
      }
    }
  }
  return undefined;
}

/**
 * `--tags` naming a tag that no task of the run carries (a role's name and tags count, as in
 * selectedByTags) would run nothing and succeed: a typo must not pass for "nothing to do". Exit 1,
 * with the known tags and the closest one.
 */
export function unknownTagsError(
  tags: string[] | undefined,
  units: Iterable<{ name: string; tags: string[]; tasks: Task[] }>,
): UserError | undefined {
  if (!tags || tags.length === 0) return undefined;
  const known = new Set<string>();
  for (const unit of units) {
    if (unit.tasks.length === 0) continue;
    known.add(unit.name);
    for (const t of unit.tags) known.add(t);
    for (const task of unit.tasks) for (const t of task.tags) known.add(t);
  }
  // No task at all (every host unreachable when facts were gathered): that outcome is reported already.
  if (known.size === 0) return undefined;
  const unknown = tags.filter((t) => !known.has(t));
  if (unknown.length === 0) return undefined;
  const sorted = [...known].sort();
  const first = unknown[0];
  return new UserError(
    `--tags ${unknown.map((t) => JSON.stringify(t)).join(', ')}: no task of this run has ${unknown.length === 1 ? 'this tag' : 'these tags'}${didYouMean(first, sorted)}`,
    1,
    `known tags (roles count as tags of their tasks): ${listNames(sorted)}`,
  );
}

function selectedByTags(task: Task, opts: RunTasksOptions): boolean {
  if (!opts.tags || opts.tags.length === 0) return true;
  const own = new Set([...task.tags, ...(opts.unitTags ?? []), ...(opts.unit ? [opts.unit] : [])]);
  return opts.tags.some((t) => own.has(t));
}

/** The tasks of a list that this run walks: flattened and selected by --tags (their indexes are probe ids). */
function selectedTasks(list: TaskList, opts: RunTasksOptions): Task[] {
  return flattenTasks(list).filter((t) => selectedByTags(t, opts));
}

/**
 * What the first round trip of a list probes: the host's pending-handler records when the list has
 * handlers (or records of unknown units must be checked), then every task whose `when` holds.
 */
export function firstProbes(host: HostInfo, list: TaskList, opts: RunTasksOptions): BatchProbe[] {
  const readPending = Object.keys(opts.handlers ?? {}).length > 0 || !!opts.pending?.unchecked(host.name);
  return [
    ...(readPending ? [[PENDING_ID, readPendingProbe] as BatchProbe] : []),
    ...selectedTasks(list, opts).flatMap((t, i): BatchProbe[] =>
      t.when ? [[String(i), t.probe, t.files]] : [],
    ),
    // The handlers' probes too: a change can then run its handler in its own round trip (continuation.ts).
    ...(opts.check
      ? []
      : [...handlerTasksOf(opts.handlers ?? {})].flatMap(([, { k, tasks }]) =>
          tasks.flatMap((t, j): BatchProbe[] => (t.when ? [[handlerProbeId(k, j), t.probe, t.files]] : [])),
        )),
  ];
}

/** The probe id of task `j` of the `k`th handler: no dot (probeUnits splits ids at the first one). */
function handlerProbeId(k: number, j: number): string {
  return `h${k}_${j}`;
}

/**
 * Each handler's tasks, by name, with its place among the handlers (`k`). A handler whose function
 * throws is left out here: it throws again, as before, when it runs.
 */
function handlerTasksOf(handlers: HandlerMap): Map<string, { k: number; tasks: Task[] }> {
  const out = new Map<string, { k: number; tasks: Task[] }>();
  for (const [k, name] of Object.keys(handlers).entries()) {
    try {
      out.set(name, { k, tasks: flattenTasks([handlers[name]()]) });
    } catch {
      // Not probed: no continuation runs this handler.
    }
  }
  return out;
}

/**
 * The first probes of every list of a host (its roles, in order) in ONE round trip: a run where no
 * list changes anything costs one round trip per host, whatever the number of roles. A list may use
 * its results (`RunTasksOptions.probed`) only while no earlier list applied a step; after a change
 * each list probes again, as it would alone (no stale facts).
 */
export async function probeUnits(
  conn: Connection,
  host: HostInfo,
  lists: Array<{ list: TaskList; opts: RunTasksOptions }>,
  reporter: Reporter,
  stop?: RunTasksOptions['stop'],
): Promise<Map<string, ProbeResult>[]> {
  const probes = unitsProbes(host, lists);
  const perList = lists.map(() => new Map<string, ProbeResult>());
  if (probes.length === 0) return perList;
  if (stop?.requested) throw new InterruptedError(lists[0]?.opts.unit ?? 'probing');
  reporter.activity(`${host.name}: probing`);
  const batch = buildProbeBatch(probes);
  let results = emptyProbeResults(batch);
  if (!batch.empty) {
    try {
      results = parseProbeBatch((await conn.exec(batch.script)).stdout, batch);
    } catch (err) {
      if (err instanceof UnreachableError) {
        throw new UnreachableError(err.host, err.reason, `${err.message} (during probing)`);
      }
      throw err;
    }
  }
  return splitUnitsResults(results, lists.length);
}

/** The first probes of each list, in one batch: ids `<list>.<id>`. */
export function unitsProbes(
  host: HostInfo,
  lists: Array<{ list: TaskList; opts: RunTasksOptions }>,
): BatchProbe[] {
  return lists.flatMap(({ list, opts }, u) =>
    firstProbes(host, list, opts).map(([id, probe, files]): BatchProbe => [`${u}.${id}`, probe, files]),
  );
}

/** The results of unitsProbes' batch, per list. */
export function splitUnitsResults(
  results: ReadonlyMap<string, ProbeResult>,
  count: number,
): Map<string, ProbeResult>[] {
  const perList = Array.from({ length: count }, () => new Map<string, ProbeResult>());
  for (const [id, result] of results) {
    const dot = id.indexOf('.');
    perList[Number(id.slice(0, dot))]?.set(id.slice(dot + 1), result);
  }
  return perList;
}

/** A notified handler as a continuation runs it: its tasks and their plans (undefined: `when` false). */
interface HandlerWalk {
  name: string;
  tasks: Task[];
  plans: (Plan | undefined)[];
}

/** What a continuation runs besides the probes: see planContinuation. */
interface ContinuationWork {
  continuation: Continuation;
  handlers: HandlerWalk[];
  /** The one handler task with a step, the last of the last handler: its step as it runs. */
  step?: {
    handler: string;
    task: Task;
    planned: RunStep;
    display: string;
    processId: string;
    timeout?: number;
  };
}

/** A handler step a continuation can run in its script: a plain command, judged by its exit code alone. */
function continuable(step: Step): step is RunStep {
  return (
    step.kind === 'run' &&
    step.stdin === undefined &&
    !step.stdinFrom &&
    !step.stdinDownload &&
    step.verdict === undefined
  );
}

/**
 * The continuation of a change (continuation.ts), or undefined when the walk must go on as before:
 *
 * - every task left in the list has a probe result that plans nothing to do (it is converged as far as
 *   the controller knows; the host checks that its probe still prints that);
 * - every task of the handlers notified so far (`notified`, this change's included) has a probe result
 *   and a plan without error; at most one of them has a step, a plain command, and it is the last task
 *   of the last of them (a task after a handler's step would need a fresh probe);
 * - what those probes print can be predicted (predictBatchOutput).
 */
function planContinuation(a: {
  tasks: Task[];
  /** The changed task. */
  at: number;
  changed: ReadonlySet<Task>;
  /** What each task's `onlyIfChanged` names, resolved across the host's lists (only-if-changed.ts). */
  refs?: ResolvedRefs;
  latest: (i: number) => ProbeResult | undefined;
  handlers: HandlerMap;
  handlerTasks: Map<string, { k: number; tasks: Task[] }>;
  handlerResults: ReadonlyMap<string, ProbeResult>;
  notified: ReadonlySet<string>;
  owner: HandlerOwner;
  nonce: string;
  next?: BatchProbe[];
  taskTimeout?: number;
}): ContinuationWork | undefined {
  const verify: BatchProbe[] = [];
  const known = new Map<string, ProbeResult>();
  for (let j = a.at + 1; j < a.tasks.length; j++) {
    const task = a.tasks[j];
    if (!task.when || onlyIfChangedSkip(task, a.changed, a.refs?.get(task))) continue;
    const result = a.latest(j);
    if (!result) return undefined;
    const plan = safePlan(task, result);
    if (plan.error || plan.steps.length > 0) return undefined;
    verify.push([String(j), task.probe, task.files]);
    known.set(String(j), result);
  }
  const handlers: HandlerWalk[] = [];
  let step: ContinuationWork['step'];
  const names = Object.keys(a.handlers).filter((name) => a.notified.has(name));
  for (const [n, name] of names.entries()) {
    const own = a.handlerTasks.get(name);
    if (!own) return undefined;
    const walk: HandlerWalk = { name, tasks: own.tasks, plans: [] };
    let last = own.tasks.length - 1;
    while (last >= 0 && !own.tasks[last].when) last--;
    for (const [j, task] of own.tasks.entries()) {
      if (!task.when) {
        walk.plans.push(undefined);
        continue;
      }
      if (task.onlyIfChanged?.length || task.notify.length || task.ignoreErrors) return undefined;
      const id = handlerProbeId(own.k, j);
      const result = a.handlerResults.get(id);
      if (!result) return undefined;
      const plan = safePlan(task, result);
      if (plan.error) return undefined;
      if (plan.steps.length > 0) {
        const [planned] = plan.steps;
        const lastOfAll = n === names.length - 1 && j === last;
        if (!lastOfAll || plan.steps.length > 1 || !continuable(planned)) return undefined;
        const script = stepScript(planned, '', task.becomeUser);
        step = {
          handler: name,
          task,
          planned,
          display: script.display,
          processId: newProcessId(),
          timeout: planned.timeoutSeconds ?? a.taskTimeout,
        };
      }
      walk.plans.push(plan);
      verify.push([id, task.probe, task.files]);
      known.set(id, result);
    }
    handlers.push(walk);
  }
  const batch = buildProbeBatch(verify, a.nonce);
  const predicted = predictBatchOutput(batch, known);
  if (predicted === undefined) return undefined;
  const clear = (list: string[]) => list.map((name) => clearPendingScript(a.owner, name)).join('\n');
  const stepScriptText = step
    ? supervised(
        stepScript(step.planned, '', step.task.becomeUser).script,
        step.processId,
        TASK_RUN_DIR,
        step.timeout,
      )
    : undefined;
  return {
    continuation: {
      nonce: a.nonce,
      verify: batch,
      predicted,
      before: clear(step ? names.filter((name) => name !== step.handler) : names),
      step: stepScriptText ? { script: stepScriptText, okCodes: step?.planned.okCodes ?? [0] } : undefined,
      after: step ? clear([step.handler]) : '',
      next: a.next?.length ? buildProbeBatch(a.next) : undefined,
    },
    handlers,
    step,
  };
}

/**
 * Until the returned function is called: when `signal` aborts, the continuation `nonce` is asked not to
 * start its handler step, and the step is stopped with its process group if it started.
 */
function stopContinuationOnAbort(
  conn: Connection,
  nonce: string,
  processId: string,
  signal: AbortSignal | undefined,
): () => void {
  if (!signal) return () => undefined;
  const ask = () => {
    conn.exec(stopContinuationScript(nonce)).catch(() => undefined);
  };
  if (signal.aborted) ask();
  else signal.addEventListener('abort', ask, { once: true });
  const release = stopOnAbort(conn, processId, signal, TASK_RUN_DIR);
  return () => {
    signal.removeEventListener('abort', ask);
    release();
  };
}

/** The last lines of a step's output, as the terminal may show them (the omission line kept). */
function tail(text: string, lines = 15): string {
  const all = text.replace(/\s+$/, '').split('\n');
  const omitted = all.length > lines && all[0].startsWith(OMITTED_PREFIX) ? [all[0]] : [];
  return printable([...omitted, ...all.slice(-lines)].join('\n'));
}

/** Runs the plan function, turning a thrown error into a failed plan. */
function safePlan(task: Task, probe: ProbeResult): Plan {
  try {
    return task.plan(probe);
  } catch (err) {
    return { steps: [], error: err instanceof Error ? err.message : String(err) };
  }
}

/** One exec: a step, then (when it succeeded) more shell: pending-handler records and fresh probes. */
function combine(step: StepScript, after: string, nonce: string): string {
  const ok = step.okCodes.join('|');
  return [
    `( ${step.script}\n)`,
    'vd_rc=$?',
    `printf '\\n%s %s\\n' '@@vd-${nonce}-step' "$vd_rc"`,
    `case "$vd_rc" in ${ok}) ;; *) exit "$vd_rc" ;; esac`,
    after,
  ].join('\n');
}

/** The step that carries a notifying task's handler record: its first write, or its first step. */
function recordingStep(steps: Step[]): number {
  const write = steps.findIndex((step) => step.kind === 'write');
  return write >= 0 ? write : 0;
}

function splitStepOutput(stdout: string, nonce: string): { stepOut: string; rest: string; code?: number } {
  const marker = `\n@@vd-${nonce}-step `;
  const i = stdout.indexOf(marker);
  if (i < 0) return { stepOut: stdout, rest: '' };
  const eol = stdout.indexOf('\n', i + marker.length);
  const code = Number.parseInt(stdout.slice(i + marker.length, eol < 0 ? undefined : eol), 10);
  return { stepOut: stdout.slice(0, i), rest: eol < 0 ? '' : stdout.slice(eol + 1), code };
}

export async function runTasks(
  conn: Connection,
  host: HostInfo,
  list: TaskList,
  opts: RunTasksOptions,
): Promise<RunTasksResult> {
  const { reporter } = opts;
  const unit = opts.unit ?? 'tasks';
  const handlers = opts.handlers ?? {};
  const tasks = selectedTasks(list, opts);
  const result: RunTasksResult = { ok: 0, changed: 0, failed: 0, skipped: 0, applied: false };
  const label = (t: Task) => `${unit} › ${t.name}`;

  const unknownHandler = unknownHandlerError(unit, tasks, handlers);
  if (unknownHandler) throw unknownHandler;
  /** Every command of the run goes through here: a stop request starts nothing, a lost host names the step. */
  const exec = async (during: string, script: string, execOpts?: ExecOptions) => {
    if (opts.stop?.requested) throw new InterruptedError(during);
    try {
      return await conn.exec(script, execOpts);
    } catch (err) {
      if (err instanceof UnreachableError) {
        throw new UnreachableError(err.host, err.reason, `${err.message} (during ${during})`);
      }
      throw err;
    }
  };

  /** The wait between two tries of a command: a stop request ends it, and starts no further try. */
  const pause = async (seconds: number, during: string) => {
    if (opts.stop?.requested) throw new InterruptedError(during);
    try {
      await sleep(seconds * 1000, undefined, { signal: opts.stop?.aborted });
    } catch {
      throw new InterruptedError(during, `stopped during ${during}: between two tries of its command`);
    }
  };

  /** A handler ran but its record stays (clearPendingScript said so): it runs again next time. */
  const warnUncleared = (output: string) => {
    const record = unclearedRecord(output);
    if (record) {
      reporter.warn(
        `warning: ${host.name}: ${unit} ran, but its pending record ${record} could not be removed: it runs again at the next run`,
      );
    }
  };

  /**
   * Reports what a continuation found and did after task `at` changed the host: the tasks left are ok
   * (or skipped), the handlers ran (their tasks ok, the one step as the host judged it), and the next
   * lists' probes are kept for them. A stop request that reached the host first left the handler
   * recorded, not run.
   */
  const finishContinuation = (
    at: number,
    outcome: Extract<ReturnType<typeof parseContinuation>, { kind: 'same' }>,
    work: ContinuationWork,
  ) => {
    const changed = new Set(changedTasks);
    for (let j = at + 1; j < tasks.length; j++) {
      const task = tasks[j];
      const skip = !task.when
        ? 'condition is false'
        : onlyIfChangedSkip(task, changed, opts.onlyIfChanged?.refs.get(task));
      if (skip) {
        result.skipped++;
        reporter.task(host.name, label(task), 'skipped', skip);
      } else {
        result.ok++;
        reporter.task(host.name, label(task), 'ok');
      }
    }
    // Records that stayed, by path: each is said after its handler's lines, as a handler run says it.
    const uncleared = new Set(outcome.cleared.split('\n').flatMap((line) => unclearedRecord(line) ?? []));
    for (const walk of work.handlers) {
      const handlerLabel = (t: Task) => `${unit} › handler: ${walk.name} › ${t.name}`;
      for (const [j, task] of walk.tasks.entries()) {
        const plan = walk.plans[j];
        if (!plan) {
          result.skipped++;
          reporter.task(host.name, handlerLabel(task), 'skipped', 'condition is false');
          continue;
        }
        if (plan.steps.length === 0 || !work.step) {
          result.ok++;
          reporter.task(host.name, handlerLabel(task), 'ok');
          continue;
        }
        const { planned, display, timeout } = work.step;
        if (outcome.stopped) throw new InterruptedError(handlerLabel(task));
        const ran = outcome.ran;
        if (!ran) {
          result.failed++;
          reporter.task(host.name, handlerLabel(task), 'failed', 'the step did not report back (shell died)');
          continue;
        }
        const okCodes = planned.okCodes ?? [0];
        if (!okCodes.includes(ran.code) && opts.stop?.aborted?.aborted) {
          throw new InterruptedError(
            handlerLabel(task),
            `stopped during ${handlerLabel(task)}: its command was stopped on the host with its process group`,
          );
        }
        const shown = task.sensitive ? '(command hidden: sensitive task)' : display;
        const failed = (why: string) =>
          `command: ${shown}\n${why}` +
          (task.sensitive
            ? ran.stderr.trim() || ran.stdout.trim()
              ? '\n(its output is hidden: sensitive task)'
              : ''
            : (ran.stderr.trim() ? `\nstderr:\n${tail(ran.stderr)}` : '') +
              (ran.stdout.trim() ? `\nstdout:\n${tail(ran.stdout)}` : ''));
        // A plain command (continuable): its exit code alone says whether it failed, as judge() would.
        const why =
          timeout !== undefined && (ran.code === TIMED_OUT_EXIT || ran.code === 137)
            ? `timed out after ${timeout} s: stopped with its whole process group (exit code ${ran.code})`
            : okCodes.includes(ran.code)
              ? undefined
              : `exit code: ${ran.code}`;
        if (why !== undefined) {
          result.failed++;
          reporter.task(host.name, handlerLabel(task), 'failed', 'step failed', redact(failed(why)));
          continue;
        }
        reporter.verbose(`${host.name}: ran ${task.sensitive ? '(sensitive step)' : display}`);
        result.changed++;
        const reason = task.alwaysRuns ? 'ran' : plan.reason;
        reporter.task(host.name, handlerLabel(task), 'changed', reason);
      }
      const record = recordPath({ ...owner, handler: walk.name });
      if (uncleared.has(record)) {
        reporter.warn(
          `warning: ${host.name}: ${unit} › handler: ${walk.name} ran, but its pending record ${record} could not be removed: it runs again at the next run`,
        );
      }
    }
    if (outcome.next) result.next = outcome.next;
  };

  const windows = new ProbeWindows(tasks.flatMap((t, i) => (t.when ? [i] : [])));
  const probesOf = (ids: number[]) => ids.map((i): BatchProbe => [String(i), tasks[i].probe, tasks[i].files]);

  const owner: HandlerOwner = { source: opts.source ?? unit, unit };
  let nonce = newNonce();
  let firstResults = opts.probed ?? new Map<string, ProbeResult>();
  if (!opts.probed) {
    const first = buildProbeBatch(firstProbes(host, list, opts), nonce);
    if (first.empty) firstResults = emptyProbeResults(first);
    else {
      reporter.activity(`${host.name}: probing ${unit}`);
      const res = await exec(`probing ${unit}`, first.script);
      firstResults = parseProbeBatch(res.stdout, first);
    }
  }
  windows.record(firstResults, windows.all());
  // The handlers' tasks and their last probes, for a continuation (none in check mode or in a handler).
  const handlerTasks = opts.check || opts.afterLastStep !== undefined ? new Map() : handlerTasksOf(handlers);
  const handlerResults = new Map<string, ProbeResult>();
  for (const [id, probe] of firstResults) if (/^h\d+_\d+$/.test(id)) handlerResults.set(id, probe);
  // The probes continuations re-run add up to at most the list's tasks and the handlers', plus what
  // each change's ride-along would have cost (RIDE_ALONG): linear in tasks and changes, like the windows.
  let continuationBudget =
    tasks.length + [...handlerTasks.values()].reduce((n: number, h) => n + h.tasks.length, 0);
  const notified = new Set<string>();
  const pending = parsePending(firstResults.get(PENDING_ID)?.stdout ?? '');
  if (firstResults.has(PENDING_ID)) {
    for (const warning of opts.pending?.unreplayable(host.name, pending) ?? [])
      reporter.warn(`warning: ${warning}`);
  }
  for (const h of pendingHandlersOf(pending, owner)) {
    if (h in handlers) {
      notified.add(h);
      reporter.pendingHandler(host.name, unit, h);
    }
  }

  let failedAt: number | undefined;
  let afterLastStepSent = false;
  /** The tasks that changed the host (or would, in check mode), this list's and earlier ones': for `onlyIfChanged`. */
  const changedTasks = opts.onlyIfChanged?.changed ?? new Set<Task>();
  /** A continuation ran the rest of the list and its handlers (continuation.ts): nothing is left. */
  let continuedToEnd = false;
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i];
    if (!task.when) {
      result.skipped++;
      reporter.task(host.name, label(task), 'skipped', 'condition is false');
      continue;
    }
    const unchanged = onlyIfChangedSkip(task, changedTasks, opts.onlyIfChanged?.refs.get(task));
    if (unchanged) {
      result.skipped++;
      reporter.task(host.name, label(task), 'skipped', unchanged);
      continue;
    }
    let probe = windows.fresh(i);
    if (!probe && windows.stale(i)) {
      // A change happened since this task was probed: probe it again, with the window after it.
      const ids = windows.nextWindow(i);
      nonce = newNonce();
      reporter.activity(`${host.name}: probing ${unit}`);
      const batch = buildProbeBatch(probesOf(ids), nonce);
      if (batch.empty) windows.record(emptyProbeResults(batch), ids);
      else windows.record(parseProbeBatch((await exec(`probing ${unit}`, batch.script)).stdout, batch), ids);
      probe = windows.fresh(i);
    }
    if (!probe) {
      result.failed++;
      reporter.task(
        host.name,
        label(task),
        'failed',
        'the probe did not complete (connection lost or shell died)',
      );
      failedAt = i;
      break;
    }
    const plan = safePlan(task, probe);
    if (plan.error && opts.check && result.changed > 0) {
      // In check mode nothing was applied: a task may not be probeable before an earlier change
      // (a service whose package is not installed yet). That is a change to come, not a failure.
      result.changed++;
      changedTasks.add(task);
      reporter.task(host.name, label(task), 'changed', `after earlier changes; now: ${plan.error}`);
      continue;
    }
    if (plan.error) {
      if (task.ignoreErrors) {
        reporter.ignoredFailure(host.name, label(task), plan.error);
        continue;
      }
      result.failed++;
      reporter.task(host.name, label(task), 'failed', plan.error);
      failedAt = i;
      break;
    }
    if (plan.steps.length === 0) {
      result.ok++;
      reporter.task(host.name, label(task), 'ok');
      continue;
    }
    const reason = task.alwaysRuns ? (opts.check ? 'would run' : 'ran') : plan.reason;
    if (opts.diff && plan.diff) await showDiff(conn, host.name, task, plan.diff, reporter);
    if (opts.check) {
      result.changed++;
      changedTasks.add(task);
      reporter.task(host.name, label(task), 'changed', reason);
      for (const h of task.notify) notified.add(h);
      continue;
    }

    // Apply: each step is one exec; the last one also re-probes the remaining tasks. A notifying task
    // records its handlers on the host inside one step's own script, just before the change.
    reporter.activity(`${host.name}: ${label(task)}`);
    let failure: string | undefined;
    let recorded = false;
    /** Copies of old files that write steps made (`backup`): the task's line names them. */
    const backups: string[] = [];
    const recordAt = task.notify.length ? recordingStep(plan.steps) : -1;
    /** The continuation of this change found nothing moved: it ran the rest (reported below). */
    let finished:
      | { outcome: Extract<ReturnType<typeof parseContinuation>, { kind: 'same' }>; work: ContinuationWork }
      | undefined;
    /** Whether a step changed the host: a run step's changedWhen may say it did not. */
    let changed = false;
    for (let s = 0; s < plan.steps.length; s++) {
      const last = s === plan.steps.length - 1;
      const planned = plan.steps[s];
      const verdict = planned.kind === 'run' ? planned.verdict : undefined;
      const tries = maxTries(verdict);
      // The host treats a step as a success by its exit code alone (combine). When the controller may
      // judge otherwise (failedWhen, until, retries), what must follow only a success (a handler's record
      // cleared) does not ride along: it runs after the task, once the verdict is known.
      const judgedHere = verdict?.failedWhen !== undefined || tries > 1;
      // Each try is one round trip of its own (see verdict.ts): supervised, under its own timeout, and a
      // stop request starts no further try.
      for (let attempt = 1; ; attempt++) {
        nonce = newNonce();
        const recordedMarker = `@@vd-${nonce}-recorded`;
        const record =
          s === recordAt
            ? `${recordPendingScript(owner, task.notify)} && printf '\\n%s\\n' '${recordedMarker}'`
            : '';
        let step = stepScript(planned, record, task.becomeUser);
        // A run step runs supervised: a stop request or its timeout ends its whole process group.
        const processId = planned.kind === 'run' ? newProcessId() : undefined;
        const timeout = planned.kind === 'run' ? (planned.timeoutSeconds ?? opts.taskTimeout) : undefined;
        if (processId) step = { ...step, script: supervised(step.script, processId, TASK_RUN_DIR, timeout) };
        // The last step of a change may carry the rest of the walk (continuation.ts); if not, the fresh
        // probes of the next tasks ride along.
        if (last) continuationBudget += RIDE_ALONG;
        const work =
          last &&
          !judgedHere &&
          continuationBudget > 0 &&
          !opts.stop?.requested &&
          opts.afterLastStep === undefined &&
          plan.steps.every((st) => st.kind === 'write' || st.verdict === undefined)
            ? planContinuation({
                tasks,
                at: i,
                changed: new Set([...changedTasks, task]),
                refs: opts.onlyIfChanged?.refs,
                latest: (j) => windows.latest(j),
                handlers,
                handlerTasks,
                handlerResults,
                notified: new Set([...notified, ...task.notify]),
                owner,
                nonce,
                next: opts.next,
                taskTimeout: opts.taskTimeout,
              })
            : undefined;
        const continuation =
          work && work.continuation.verify.ids.length <= continuationBudget ? work.continuation : undefined;
        if (continuation) continuationBudget -= continuation.verify.ids.length;
        const rideAlong = last && !continuation ? windows.rideAlong(i + 1) : [];
        const batch = rideAlong.length ? buildProbeBatch(probesOf(rideAlong), nonce) : undefined;
        const lastOfAll = last && i === tasks.length - 1 && !judgedHere ? (opts.afterLastStep ?? '') : '';
        if (lastOfAll) afterLastStepSent = true;
        const after = [lastOfAll, batch?.script ?? '', continuation ? continuationScript(continuation) : '']
          .filter(Boolean)
          .join('\n');
        const from = planned.kind === 'run' ? planned.stdinFrom : undefined;
        let stdin = step.stdin;
        if (from) {
          if (opts.stop?.requested) throw new InterruptedError(label(task));
          reporter.activity(`${host.name}: reading ${from.what} from ${from.host}`);
          try {
            if (!opts.readPeer) throw new Error('this run reads nothing from other hosts');
            stdin = `${await opts.readPeer(from)}\n${stdin ?? ''}`;
          } catch (err) {
            failure = redact(
              `could not read ${from.what} from ${from.host}: ${err instanceof Error ? err.message : String(err)}`,
            );
            break;
          }
        }
        const download = planned.kind === 'run' ? planned.stdinDownload : undefined;
        let payload: ExecOptions['stdin'] = stdin;
        if (download) {
          if (opts.stop?.requested) throw new InterruptedError(label(task));
          reporter.activity(`${host.name}: fetching ${shownUrl(download.url)} on the controller`);
          try {
            if (!opts.downloads) throw new Error('this run fetches nothing on the controller');
            payload = ControllerDownloads.stdin(await opts.downloads.fetch(download));
          } catch (err) {
            failure = redact(err instanceof Error ? err.message : String(err));
            break;
          }
        }
        const stoppers = [
          processId ? stopOnAbort(conn, processId, opts.stop?.aborted, TASK_RUN_DIR) : undefined,
          continuation && work?.step
            ? stopContinuationOnAbort(conn, continuation.nonce, work.step.processId, opts.stop?.aborted)
            : undefined,
        ];
        const stopping = () => {
          for (const release of stoppers) release?.();
        };
        const started = Date.now();
        const script = combine(step, after, nonce);
        const res = await exec(
          label(task),
          continuation ? `${continuationPrefix(nonce)}\n${script}` : script,
          {
            stdin: payload,
            // A command may print without end: only the tail of its output is kept (the fresh probes after
            // its marker are Verdandi's own, kept whole).
            bound: { until: `\n@@vd-${nonce}-step ` },
          },
        ).finally(stopping);
        windows.stepApplied();
        result.applied = true;
        const split = splitStepOutput(res.stdout, nonce);
        const { rest, code } = split;
        let { stepOut } = split;
        if (record && stepOut.includes(recordedMarker)) {
          recorded = true;
          stepOut = stepOut.replace(`\n${recordedMarker}\n`, '');
        }
        const exit = code ?? res.code;
        if (!step.okCodes.includes(exit) && processId && opts.stop?.aborted?.aborted) {
          throw new InterruptedError(
            label(task),
            `stopped during ${label(task)}: its command was stopped on the host with its process group`,
          );
        }
        const shown = task.sensitive ? '(command hidden: sensitive task)' : step.display;
        const failed = (why: string) =>
          `command: ${shown}\n${why}` +
          (task.sensitive
            ? res.stderr.trim() || stepOut.trim()
              ? '\n(its output is hidden: sensitive task)'
              : ''
            : (res.stderr.trim() ? `\nstderr:\n${tail(res.stderr)}` : '') +
              (stepOut.trim() ? `\nstdout:\n${tail(stepOut)}` : ''));
        // A command its timeout stopped failed, whatever failedWhen would say of what it printed.
        const timedOut =
          timeout !== undefined &&
          (exit === TIMED_OUT_EXIT || exit === 137) &&
          Date.now() - started >= timeout * 1000;
        if (timedOut) {
          failure = failed(
            `timed out after ${timeout} s: stopped with its whole process group (exit code ${exit})`,
          );
          break;
        }
        const judgement = judge(
          { rc: exit, stdout: stepOut, stderr: res.stderr },
          step.okCodes,
          verdict,
          attempt,
          task.sensitive,
        );
        const ofTries = tries > 1 ? ` (try ${attempt} of ${tries})` : '';
        if (judgement.next === 'retry') {
          reporter.verbose(
            `${host.name}: ${label(task)}: try ${attempt} of ${tries}: ${judgement.why}; next try in ${judgement.delaySeconds} s`,
          );
          await pause(judgement.delaySeconds, label(task));
          continue;
        }
        if (judgement.failed !== undefined) {
          failure = failed(judgement.failed);
          break;
        }
        changed ||= judgement.changed;
        if (planned.kind === 'write' && planned.backup) backups.push(...backupsIn(stepOut));
        reporter.verbose(
          `${host.name}: ran ${task.sensitive ? '(sensitive step)' : step.display}${ofTries}${judgement.changed ? '' : ': changedWhen says no change'}`,
        );
        if (lastOfAll) warnUncleared(rest);
        if (batch) windows.record(parseProbeBatch(rest, batch), rideAlong);
        if (continuation && work) {
          const outcome = parseContinuation(rest, continuation);
          if (outcome.kind === 'moved') {
            // What moved is known: the walk goes on from these probes, as from a ride-along.
            const ids = continuation.verify.ids.filter((id) => /^\d+$/.test(id)).map(Number);
            windows.record(outcome.results, ids);
            for (const [id, probe] of outcome.results) if (!/^\d+$/.test(id)) handlerResults.set(id, probe);
          } else if (outcome.kind === 'same') finished = { outcome, work };
        }
        break;
      }
      if (failure !== undefined) break;
    }
    if (failure !== undefined) {
      // An ignored failure does not fail the host (as in Ansible): the recap counts it as `ignored`.
      if (task.ignoreErrors) reporter.ignoredFailure(host.name, label(task), 'step failed', redact(failure));
      else {
        result.failed++;
        reporter.task(host.name, label(task), 'failed', `step failed`, redact(failure));
      }
      if (recorded) {
        // The change may have happened part way: the handlers recorded on the host run.
        for (const h of task.notify) notified.add(h);
      }
      // The state is unknown after a failed step: the next task is probed again (its probe is stale).
      if (task.ignoreErrors) continue;
      failedAt = i;
      break;
    }
    if (!changed) {
      // changedWhen said the command changed nothing: the task is ok and notifies no handler. Its
      // handlers' records, made on the host before the command ran, go unless an earlier change or
      // run left them for a handler that must run anyway.
      result.ok++;
      reporter.task(host.name, label(task), 'ok', 'ran; changedWhen says no change');
      const unneeded = recorded ? task.notify.filter((h) => !notified.has(h)) : [];
      if (unneeded.length > 0) {
        warnUncleared(
          (await exec(label(task), unneeded.map((h) => clearPendingScript(owner, h)).join('\n'))).stdout,
        );
      }
      continue;
    }
    result.changed++;
    changedTasks.add(task);
    const backedUp = backups.map((path) => `backup ${path}`);
    reporter.task(
      host.name,
      label(task),
      'changed',
      [reason, ...backedUp].filter(Boolean).join(', ') || undefined,
    );
    for (const h of task.notify) notified.add(h);
    if (finished) {
      finishContinuation(i, finished.outcome, finished.work);
      continuedToEnd = true;
      break;
    }
  }
  if (continuedToEnd) return result;

  // The last task did not change anything: what had to ride along with its last step runs alone.
  if (opts.afterLastStep && !afterLastStepSent && failedAt === undefined && !opts.check) {
    warnUncleared((await exec(unit, opts.afterLastStep)).stdout);
    result.applied = true;
  }

  // Handlers run in the order they are defined, once, even after a failure (the change happened).
  for (const name of Object.keys(handlers)) {
    if (!notified.has(name)) continue;
    const handlerTasks = flattenTasks([handlers[name]()]);
    if (opts.check) {
      reporter.task(host.name, `${unit} › handler: ${name}`, 'changed', 'would run');
      result.changed++;
      continue;
    }
    const sub = await runTasks(conn, host, handlerTasks, {
      ...opts,
      tags: undefined,
      unit: `${unit} › handler: ${name}`,
      handlers: {},
      // The handler's tasks probe for themselves: the unit's probes are not theirs.
      probed: undefined,
      next: undefined,
      // The record is cleared in the same round trip as the handler's last step.
      afterLastStep: clearPendingScript(owner, name),
    });
    result.ok += sub.ok;
    result.changed += sub.changed;
    result.skipped += sub.skipped;
    result.failed += sub.failed;
    result.applied ||= sub.applied;
  }

  if (failedAt !== undefined && result.failed === 0) result.failed = 1;
  return result;
}

async function showDiff(
  conn: Connection,
  hostName: string,
  task: Task,
  diff: { path: string; after: string },
  reporter: Reporter,
) {
  if (task.sensitive) {
    reporter.diff(hostName, `--- ${diff.path}: diff hidden (sensitive content)`);
    return;
  }
  const { createTwoFilesPatch } = await import('diff');
  const res = await conn.exec(`if [ -f ${quote(diff.path)} ]; then cat ${quote(diff.path)}; fi`);
  const before = res.code === 0 ? res.stdout : '';
  const secret = holdsSecret(diff.after);
  const patch = createTwoFilesPatch(
    secret ? `${diff.path} (host; its lines hidden: the file holds secrets)` : `${diff.path} (host)`,
    `${diff.path} (wanted)`,
    before,
    diff.after,
    '',
    '',
    {
      context: 3,
    },
  );
  const lines = patch.split('\n').slice(1);
  reporter.diff(hostName, redact((secret ? hideHostSide(lines) : lines).join('\n')));
}

/**
 * The diff of content that holds a secret, without the host's side: the host's file may hold a value
 * the secrets no longer have (rotated since), which is not registered, so `redact` would not hide it.
 * Removed lines show as `-[hidden]` (the `---` and `+++` header lines stay); the wanted side and the
 * unchanged lines (the same in the wanted content) are shown redacted as usual.
 */
export function hideHostSide(patchLines: string[]): string[] {
  return patchLines.map((line, i) => (i > 1 && line.startsWith('-') ? '-[hidden]' : line));
}
