/**
 * Runs one task list (a role, or a play's own tasks) on one host.
 *
 * 1. All probes go to the host in ONE round trip (plus the host's record of handlers that could not
 *    run last time).
 * 2. Tasks are walked in order. A converged task is "ok". The first one that is not is applied; its last
 *    step and a fresh probe of the next few tasks travel in the same round trip, so what an apply
 *    changed is seen by the tasks after it (no stale facts). A probe taken before a change is never
 *    used: the walk re-probes in growing windows (probe-windows.ts), so the cost stays linear.
 * 3. Notified handlers run once at the end, and also when a later task failed: the change happened, so
 *    the restart must too. A notified handler is recorded on the host in the same script as the change,
 *    just before it (before the rename of a write, before a command), so a host that changed has the
 *    record; it is cleared with the handler's last step, once the handler succeeded. One that could not
 *    run (lost connection, Ctrl-C, killed controller) runs at the next run. When the command of a
 *    notifying task fails, its handlers still run: the record was made, and a command that failed part
 *    way may have changed the host.
 * 4. A stop request (Ctrl-C) lets the step in flight finish and starts nothing more, handlers included
 *    (they stay recorded on the host for the next run).
 */
import { type Connection, type ExecOptions, UnreachableError } from '../connection/types.js';
import { UserError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { quote } from '../util/shell.js';
import { type BatchProbe, buildProbeBatch, newNonce, parseProbeBatch } from './probe-batch.js';
import { ProbeWindows } from './probe-windows.js';
import type { Reporter } from './report.js';
import {
  clearPendingScript,
  parsePending,
  readPendingProbe,
  recordPendingScript,
  type StepScript,
  stepScript,
} from './steps.js';
import type { HostInfo, PeerRead, Plan, ProbeResult, RunStep, Step, Task, TaskList } from './types.js';

export type HandlerMap = Record<string, () => Task | Task[]>;

export interface RunTasksOptions {
  check: boolean;
  diff: boolean;
  reporter: Reporter;
  /** Only tasks carrying one of these tags (a role's name and tags count as its tasks' tags). */
  tags?: string[];
  /** Name shown before each task ("nginx"), also the key of pending handlers on the host. */
  unit?: string;
  unitTags?: string[];
  handlers?: HandlerMap;
  /** Shell run after the last step of the last changed task succeeded, in the same round trip. */
  afterLastStep?: string;
  /** Asked before every command: once it says stop, no new command starts (see interrupt.ts). */
  stop?: { readonly requested: boolean };
  /** Reads a value a step needs from another host (RunStep.stdinFrom); see peer-read.ts. */
  readPeer?: (read: PeerRead) => Promise<string>;
}

/** The run of this host was stopped by a stop request before `next` (nothing of it had started). */
export class InterruptedError extends Error {
  constructor(readonly next: string) {
    super(`stopped before ${next}`);
    this.name = 'InterruptedError';
  }
}

export interface RunTasksResult {
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
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

function selectedByTags(task: Task, opts: RunTasksOptions): boolean {
  if (!opts.tags || opts.tags.length === 0) return true;
  const own = new Set([...task.tags, ...(opts.unitTags ?? []), ...(opts.unit ? [opts.unit] : [])]);
  return opts.tags.some((t) => own.has(t));
}

function tail(text: string, lines = 15): string {
  const all = text.replace(/\s+$/, '').split('\n');
  return all.slice(-lines).join('\n');
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
  const tasks = flattenTasks(list).filter((t) => selectedByTags(t, opts));
  const result: RunTasksResult = { ok: 0, changed: 0, failed: 0, skipped: 0 };
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

  const windows = new ProbeWindows(tasks.flatMap((t, i) => (t.when ? [i] : [])));
  const probesOf = (ids: number[]) => ids.map((i): BatchProbe => [String(i), tasks[i].probe, tasks[i].files]);

  const hasHandlers = Object.keys(handlers).length > 0;
  let nonce = newNonce();
  const first = buildProbeBatch(
    [...(hasHandlers ? [[PENDING_ID, readPendingProbe] as BatchProbe] : []), ...probesOf(windows.all())],
    nonce,
  );
  reporter.activity(`${host.name}: probing ${unit}`);
  let firstResults = new Map<string, ProbeResult>();
  if (first.ids.length > 0) {
    const res = await exec(`probing ${unit}`, first.script);
    firstResults = parseProbeBatch(res.stdout, first);
    windows.record(firstResults, windows.all());
  }
  const notified = new Set<string>();
  for (const h of parsePending(firstResults.get(PENDING_ID)?.stdout ?? '', unit)) {
    if (h in handlers) {
      notified.add(h);
      reporter.pendingHandler(host.name, unit, h);
    }
  }

  let failedAt: number | undefined;
  let afterLastStepSent = false;
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i];
    if (!task.when) {
      result.skipped++;
      reporter.task(host.name, label(task), 'skipped', 'condition is false');
      continue;
    }
    let probe = windows.fresh(i);
    if (!probe && windows.stale(i)) {
      // A change happened since this task was probed: probe it again, with the window after it.
      const ids = windows.nextWindow(i);
      nonce = newNonce();
      reporter.activity(`${host.name}: probing ${unit}`);
      const batch = buildProbeBatch(probesOf(ids), nonce);
      const res = await exec(`probing ${unit}`, batch.script);
      windows.record(parseProbeBatch(res.stdout, batch), ids);
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
      reporter.task(host.name, label(task), 'changed', `after earlier changes; now: ${plan.error}`);
      continue;
    }
    if (plan.error) {
      result.failed++;
      reporter.task(host.name, label(task), 'failed', plan.error);
      if (task.ignoreErrors) continue;
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
      reporter.task(host.name, label(task), 'changed', reason);
      for (const h of task.notify) notified.add(h);
      continue;
    }

    // Apply: each step is one exec; the last one also re-probes the remaining tasks. A notifying task
    // records its handlers on the host inside one step's own script, just before the change.
    reporter.activity(`${host.name}: ${label(task)}`);
    let failure: string | undefined;
    let recorded = false;
    const recordAt = task.notify.length ? recordingStep(plan.steps) : -1;
    for (let s = 0; s < plan.steps.length; s++) {
      const last = s === plan.steps.length - 1;
      nonce = newNonce();
      const recordedMarker = `@@vd-${nonce}-recorded`;
      const record =
        s === recordAt
          ? `${recordPendingScript(unit, task.notify)} && printf '\\n%s\\n' '${recordedMarker}'`
          : '';
      const step = stepScript(plan.steps[s], record);
      const rideAlong = last ? windows.rideAlong(i + 1) : [];
      const batch = rideAlong.length ? buildProbeBatch(probesOf(rideAlong), nonce) : undefined;
      const lastOfAll = last && i === tasks.length - 1 ? (opts.afterLastStep ?? '') : '';
      if (lastOfAll) afterLastStepSent = true;
      const after = [lastOfAll, batch?.script ?? ''].filter(Boolean).join('\n');
      const from = plan.steps[s].kind === 'run' ? (plan.steps[s] as RunStep).stdinFrom : undefined;
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
      const res = await exec(label(task), combine(step, after, nonce), { stdin });
      windows.stepApplied();
      const split = splitStepOutput(res.stdout, nonce);
      const { rest, code } = split;
      let { stepOut } = split;
      if (record && stepOut.includes(recordedMarker)) {
        recorded = true;
        stepOut = stepOut.replace(`\n${recordedMarker}\n`, '');
      }
      const exit = code ?? res.code;
      if (!step.okCodes.includes(exit)) {
        const shown = task.sensitive ? '(command hidden: sensitive task)' : step.display;
        failure =
          `command: ${shown}\nexit code: ${exit}` +
          (res.stderr.trim() ? `\nstderr:\n${tail(res.stderr)}` : '') +
          (stepOut.trim() && !task.sensitive ? `\nstdout:\n${tail(stepOut)}` : '');
        break;
      }
      reporter.verbose(`${host.name}: ran ${task.sensitive ? '(sensitive step)' : step.display}`);
      if (batch) windows.record(parseProbeBatch(rest, batch), rideAlong);
    }
    if (failure !== undefined) {
      result.failed++;
      reporter.task(host.name, label(task), 'failed', `step failed`, redact(failure));
      if (recorded) {
        // The change may have happened part way: the handlers recorded on the host run.
        for (const h of task.notify) notified.add(h);
      }
      // The state is unknown after a failed step: the next task is probed again (its probe is stale).
      if (task.ignoreErrors) continue;
      failedAt = i;
      break;
    }
    result.changed++;
    reporter.task(host.name, label(task), 'changed', reason);
    for (const h of task.notify) notified.add(h);
  }

  // The last task did not change anything: what had to ride along with its last step runs alone.
  if (opts.afterLastStep && !afterLastStepSent && failedAt === undefined && !opts.check) {
    await exec(unit, opts.afterLastStep);
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
      // The record is cleared in the same round trip as the handler's last step.
      afterLastStep: clearPendingScript(unit, name),
    });
    result.ok += sub.ok;
    result.changed += sub.changed;
    result.skipped += sub.skipped;
    result.failed += sub.failed;
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
  const patch = createTwoFilesPatch(
    `${diff.path} (host)`,
    `${diff.path} (wanted)`,
    before,
    diff.after,
    '',
    '',
    {
      context: 3,
    },
  );
  reporter.diff(hostName, redact(patch.split('\n').slice(1).join('\n')));
}
