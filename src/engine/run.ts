/**
 * Runs one task list (a role, or a play's own tasks) on one host.
 *
 * 1. All probes go to the host in ONE round trip (plus the host's record of handlers that could not
 *    run last time).
 * 2. Tasks are walked in order. A converged task is "ok". The first one that is not is applied; its last
 *    step and a fresh probe of every remaining task travel in the same round trip, so what an apply
 *    changed is seen by the tasks after it (no stale facts).
 * 3. Notified handlers run once at the end, and also when a later task failed: the change happened, so
 *    the restart must too. A notified handler is first recorded on the host, so one that could not run
 *    (lost connection) runs at the next run.
 */
import type { Connection } from '../connection/types.js';
import { UserError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { quote } from '../util/shell.js';
import { buildProbeBatch, newNonce, parseProbeBatch } from './probe-batch.js';
import type { Reporter } from './report.js';
import {
  clearPendingScript,
  parsePending,
  readPendingProbe,
  recordPendingScript,
  type StepScript,
  stepScript,
} from './steps.js';
import type { HostInfo, Plan, ProbeResult, Task, TaskList } from './types.js';

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

  for (const t of tasks) {
    for (const h of t.notify) {
      if (!(h in handlers)) {
        const known = Object.keys(handlers);
        throw new UserError(
          `${unit}: task "${t.name}" notifies handler "${h}", which ${unit} does not define`,
          1,
          known.length ? `known handlers: ${known.join(', ')}` : `${unit} defines no handlers`,
        );
      }
    }
  }

  const active = (from: number) =>
    tasks
      .map((t, i) => [t, i] as const)
      .filter(([t, i]) => i >= from && t.when)
      .map(([t, i]) => [String(i), t.probe] as [string, string]);

  const hasHandlers = Object.keys(handlers).length > 0;
  let nonce = newNonce();
  const first = buildProbeBatch(
    [...(hasHandlers ? [[PENDING_ID, readPendingProbe] as [string, string]] : []), ...active(0)],
    nonce,
  );
  reporter.activity(`${host.name}: probing ${unit}`);
  let probes = new Map<string, ProbeResult>();
  if (first.ids.length > 0) {
    const res = await conn.exec(first.script);
    probes = parseProbeBatch(res.stdout, nonce);
  }
  const notified = new Set<string>();
  for (const h of parsePending(probes.get(PENDING_ID)?.stdout ?? '', unit)) {
    if (h in handlers) {
      notified.add(h);
      reporter.verbose(`${host.name}: handler "${h}" was left pending by an earlier run`);
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
    const probe = probes.get(String(i));
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

    // Apply: each step is one exec; the last one also records notified handlers and re-probes.
    reporter.activity(`${host.name}: ${label(task)}`);
    let failure: string | undefined;
    const scripts = plan.steps.map(stepScript);
    for (let s = 0; s < scripts.length; s++) {
      const step = scripts[s];
      const last = s === scripts.length - 1;
      nonce = newNonce();
      const batch = last ? buildProbeBatch(active(i + 1), nonce) : undefined;
      const record = task.notify.length ? recordPendingScript(unit, task.notify) : '';
      const lastOfAll = last && i === tasks.length - 1 ? (opts.afterLastStep ?? '') : '';
      if (lastOfAll) afterLastStepSent = true;
      const after = [record, lastOfAll, batch?.script ?? ''].filter(Boolean).join('\n');
      const res = await conn.exec(combine(step, after, nonce), { stdin: step.stdin });
      const { stepOut, rest, code } = splitStepOutput(res.stdout, nonce);
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
      if (batch) probes = parseProbeBatch(rest, nonce);
    }
    if (failure !== undefined) {
      result.failed++;
      reporter.task(host.name, label(task), 'failed', `step failed`);
      reporter.failureBlock(redact(failure));
      if (task.ignoreErrors) {
        // The state is unknown after a failed step: probe the rest again.
        nonce = newNonce();
        const batch = buildProbeBatch(active(i + 1), nonce);
        if (batch.ids.length) probes = parseProbeBatch((await conn.exec(batch.script)).stdout, nonce);
        continue;
      }
      failedAt = i;
      break;
    }
    result.changed++;
    reporter.task(host.name, label(task), 'changed', reason);
    for (const h of task.notify) notified.add(h);
  }

  // The last task did not change anything: what had to ride along with its last step runs alone.
  if (opts.afterLastStep && !afterLastStepSent && failedAt === undefined && !opts.check) {
    await conn.exec(opts.afterLastStep);
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
    reporter.block(`--- ${diff.path}: diff hidden (sensitive content)`, hostName);
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
  reporter.block(redact(patch.split('\n').slice(1).join('\n')), hostName);
}
