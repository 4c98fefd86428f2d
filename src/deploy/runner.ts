/**
 * Runs a plan (plan.ts) on one host over its connection: step by step, undoing what was done when a
 * step fails before the point of no return. Knows nothing of git, inventories or webhooks.
 */
import { type Connection, type ExecOptions, UnreachableError } from '../connection/types.js';
import { execStoppable } from '../engine/remote-process.js';
import { redact } from '../util/redact.js';
import { printable } from '../util/terminal-text.js';
import { type DeployOutput, oneLine, seconds, tail } from './output.js';
import type { DeployPlan, PlanStep } from './plan.js';

/** A step that failed: what ran, how it ended, what it printed (tail, redacted when shown). */
export class StepFailure extends Error {
  constructor(
    readonly step: string,
    readonly command: string,
    readonly code: number,
    readonly output: string,
  ) {
    super(`${step} failed (exit code ${code})`);
    this.name = 'StepFailure';
  }

  /** The block shown under the failure line. */
  report(): string {
    const out = this.output.trim() ? `\noutput (last lines):\n${printable(tail(this.output))}` : '';
    return redact(`command: ${oneLine(this.command)}\nexit code: ${this.code}${out}`);
  }
}

export interface Where {
  host: string;
  site: string;
}

/** The step did not run, or was stopped, because the run was interrupted (Ctrl-C, SIGTERM). */
export class Interrupted extends StepFailure {
  constructor(step: string, command: string, signal: AbortSignal) {
    super(step, command, -1, `interrupted (${String(signal.reason ?? 'signal')})`);
    this.name = 'Interrupted';
    this.message = `${step} interrupted`;
  }
}

export interface RunStepOptions {
  /**
   * Aborted on Ctrl-C: the step does not start, or its command is stopped with its whole process
   * group on the host (it runs `supervised`), and the step throws Interrupted.
   */
  signal?: AbortSignal;
  /** Keep only the end of what the command prints (a plan step's own output, which may have no end). */
  bounded?: boolean;
}

/**
 * Runs one command; a non-zero exit throws a StepFailure. A lost connection stays an UnreachableError
 * (the host driver reports the host unreachable), its message naming the step.
 */
export async function runStep(
  conn: Connection,
  step: Pick<PlanStep, 'title' | 'command' | 'timeoutMs'> & { stdin?: ExecOptions['stdin'] },
  { signal, bounded }: RunStepOptions = {},
): Promise<{ stdout: string; stderr: string; code: number }> {
  let res: { stdout: string; stderr: string; code: number };
  if (signal?.aborted) throw new Interrupted(step.title, step.command, signal);
  try {
    res = await execStoppable(
      conn,
      step.command,
      { stdin: step.stdin, timeoutMs: step.timeoutMs, bound: bounded ? {} : undefined },
      signal,
    );
  } catch (err) {
    if (err instanceof UnreachableError)
      throw new UnreachableError(err.host, err.reason, `${err.message} (during "${step.title}")`);
    throw new StepFailure(step.title, step.command, -1, err instanceof Error ? err.message : String(err));
  }
  if (signal?.aborted && res.code !== 0) throw new Interrupted(step.title, step.command, signal);
  if (res.code !== 0) {
    throw new StepFailure(
      step.title,
      step.command,
      res.code,
      [res.stderr, res.stdout].filter((s) => s.trim()).join('\n'),
    );
  }
  return res;
}

export interface PlanResult {
  ok: boolean;
  failure?: StepFailure;
  /** The migrations ran (whatever happened after). */
  migrated: boolean;
  /** The migration command itself failed. */
  migrationFailed: boolean;
  /** The new release took the traffic (point of no return passed). */
  live: boolean;
  /** The migration check said migrations were pending (undefined when there is no check). */
  pendingMigrations?: boolean;
  /** Undo commands that failed: the host may need a look. */
  undoFailures: StepFailure[];
  /** Stopped by Ctrl-C / SIGTERM (and undone when before the point of no return). */
  interrupted: boolean;
  warnings: string[];
}

export async function runPlan(
  conn: Connection,
  plan: DeployPlan,
  where: Where,
  out: DeployOutput,
  signal?: AbortSignal,
): Promise<PlanResult> {
  const result: PlanResult = {
    ok: false,
    migrated: false,
    migrationFailed: false,
    live: false,
    undoFailures: [],
    warnings: [],
    interrupted: false,
  };
  const done: PlanStep[] = [];
  let pending: boolean | undefined;

  for (const step of plan.steps) {
    if (step.only === 'pending-migrations' && pending === false) continue;
    const started = Date.now();
    out.started(where.host, where.site, step.title);
    if (step.decides === 'pending-migrations') {
      let res: { stdout: string; stderr: string; code: number };
      try {
        res = await runStep(conn, step, { signal, bounded: true });
      } catch (err) {
        if (err instanceof StepFailure && !(err instanceof Interrupted))
          res = { stdout: err.output, stderr: '', code: err.code };
        else return fail(err, step);
      }
      pending = res.code !== 0;
      result.pendingMigrations = pending;
      out.step(
        where.host,
        where.site,
        step.title,
        pending ? 'yes: maintenance during the migration' : 'none: no downtime',
      );
      out.verbose(printable(tail(res.stdout + res.stderr, 5)));
      continue;
    }
    try {
      // Once the new release serves, the run goes to its end: the rest is quick bookkeeping.
      const res = await runStep(conn, step, { signal: result.live ? undefined : signal, bounded: true });
      const said = step.showsOutput ? printable(res.stdout.trim().split('\n').at(-1) ?? '') : undefined;
      out.step(
        where.host,
        where.site,
        step.title,
        `${said ? `${said} ` : 'ok '}(${seconds(Date.now() - started)})`,
      );
      done.push(step);
      if (step.migrates) result.migrated = true;
      if (step.pointOfNoReturn) result.live = true;
    } catch (err) {
      if (step.bestEffort && err instanceof StepFailure && !(err instanceof Interrupted)) {
        result.warnings.push(`${step.title}: ${err.message}`);
        out.step(where.host, where.site, step.title, `warning: ${err.message}`, 'warning');
        continue;
      }
      return fail(err, step);
    }
  }
  result.ok = true;
  return result;

  async function fail(err: unknown, step: PlanStep): Promise<PlanResult> {
    // A lost connection ends the host's run: nothing can be undone over it.
    if (err instanceof UnreachableError) throw err;
    const failure =
      err instanceof StepFailure ? err : new StepFailure(step.title, step.command, -1, String(err));
    result.interrupted = failure instanceof Interrupted;
    if (result.interrupted) out.step(where.host, where.site, step.title, 'INTERRUPTED', 'interrupted');
    else out.failed(where.host, where.site, step.title, failure.report());
    result.failure = failure;
    if (step.migrates) result.migrationFailed = true;
    // The failed step's own undo too: it may have done part of its work (a half-extracted release).
    if (!result.live) await undo(conn, [...done, step], where, out, result);
    return result;
  }
}

/** Undoes the steps done so far, newest first. Every undo command is tried, even after one fails. */
async function undo(conn: Connection, done: PlanStep[], where: Where, out: DeployOutput, result: PlanResult) {
  for (const step of [...done].reverse()) {
    if (!step.undo?.length) continue;
    let ok = true;
    for (const command of step.undo) {
      try {
        await runStep(conn, { title: `undo ${step.title}`, command, timeoutMs: step.timeoutMs ?? 120_000 });
      } catch (err) {
        if (err instanceof UnreachableError) throw err;
        const f =
          err instanceof StepFailure ? err : new StepFailure(`undo ${step.title}`, command, -1, String(err));
        result.undoFailures.push(f);
        out.failed(where.host, where.site, `undo ${step.title}`, f.report());
        ok = false;
      }
    }
    if (ok) out.step(where.host, where.site, `undo ${step.title}`, 'done');
  }
}
