/**
 * Runs a plan (plan.ts) on one host over its connection: step by step, undoing what was done when a
 * step fails before the point of no return. Knows nothing of git, inventories or webhooks.
 */
import type { Connection } from '../connection/types.js';
import { redact } from '../util/redact.js';
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
    const out = this.output.trim() ? `\noutput (last lines):\n${tail(this.output)}` : '';
    return redact(`command: ${oneLine(this.command)}\nexit code: ${this.code}${out}`);
  }
}

export interface Where {
  host: string;
  site: string;
}

/** Runs one command; a non-zero exit throws a StepFailure. */
export async function runStep(
  conn: Connection,
  step: Pick<PlanStep, 'title' | 'command' | 'stdin' | 'timeoutMs'>,
): Promise<{ stdout: string; stderr: string; code: number }> {
  let res: { stdout: string; stderr: string; code: number };
  try {
    res = await conn.exec(step.command, { stdin: step.stdin, timeoutMs: step.timeoutMs });
  } catch (err) {
    throw new StepFailure(step.title, step.command, -1, err instanceof Error ? err.message : String(err));
  }
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
  warnings: string[];
}

export async function runPlan(
  conn: Connection,
  plan: DeployPlan,
  where: Where,
  out: DeployOutput,
): Promise<PlanResult> {
  const result: PlanResult = {
    ok: false,
    migrated: false,
    migrationFailed: false,
    live: false,
    undoFailures: [],
    warnings: [],
  };
  const done: PlanStep[] = [];
  let pending: boolean | undefined;

  for (const step of plan.steps) {
    if (step.only === 'pending-migrations' && pending === false) continue;
    const started = Date.now();
    if (step.decides === 'pending-migrations') {
      const res = await conn.exec(step.command, { timeoutMs: step.timeoutMs });
      pending = res.code !== 0;
      result.pendingMigrations = pending;
      out.step(
        where.host,
        where.site,
        step.title,
        pending ? 'yes: maintenance during the migration' : 'none: no downtime',
      );
      out.verbose(tail(res.stdout + res.stderr, 5));
      continue;
    }
    try {
      await runStep(conn, step);
      out.step(where.host, where.site, step.title, `ok (${seconds(Date.now() - started)})`);
      done.push(step);
      if (step.migrates) result.migrated = true;
      if (step.pointOfNoReturn) result.live = true;
    } catch (err) {
      const failure =
        err instanceof StepFailure ? err : new StepFailure(step.title, step.command, -1, String(err));
      if (step.bestEffort) {
        result.warnings.push(`${step.title}: ${failure.message}`);
        out.step(where.host, where.site, step.title, `warning: ${failure.message}`);
        continue;
      }
      out.step(where.host, where.site, step.title, 'FAILED');
      out.block(failure.report());
      result.failure = failure;
      if (step.migrates) result.migrationFailed = true;
      if (!result.live) await undo(conn, done, where, out, result);
      return result;
    }
  }
  result.ok = true;
  return result;
}

/** Undoes the steps done so far, newest first. Every undo command is tried, even after one fails. */
async function undo(conn: Connection, done: PlanStep[], where: Where, out: DeployOutput, result: PlanResult) {
  for (const step of [...done].reverse()) {
    if (!step.undo?.length) continue;
    let ok = true;
    for (const command of step.undo) {
      try {
        await runStep(conn, { title: `undo ${step.title}`, command, timeoutMs: 120_000 });
      } catch (err) {
        const f =
          err instanceof StepFailure ? err : new StepFailure(`undo ${step.title}`, command, -1, String(err));
        result.undoFailures.push(f);
        out.step(where.host, where.site, `undo ${step.title}`, 'FAILED');
        out.block(f.report());
        ok = false;
      }
    }
    if (ok) out.step(where.host, where.site, `undo ${step.title}`, 'done');
  }
}
