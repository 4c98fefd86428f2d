/**
 * One step of a deploy's plan: what plan.ts and the runtimes (runtimes/*.ts) build and runner.ts runs.
 * Its own module so the runtimes, which plan.ts imports, can build steps without importing plan.ts.
 */
export type Phase = 'code' | 'build' | 'migrate' | 'start' | 'switch' | 'cleanup';

export interface PlanStep {
  phase: Phase;
  /** Short label for output ("health check green"). */
  title: string;
  command: string;
  /** Sent on stdin (the environment file): never printed. */
  stdin?: string;
  /** Commands that undo this step, run when a later step fails before the point of no return. */
  undo?: string[];
  /** Runs only when the migration check said migrations are pending. */
  only?: 'pending-migrations';
  /** This step's exit code decides: 0 = no migration pending, anything else = pending. */
  decides?: 'pending-migrations';
  /** The migrations ran: a later failure must say the database was changed. */
  migrates?: boolean;
  /** Once this step succeeded, the new release serves: failures after it are not rolled back. */
  pointOfNoReturn?: boolean;
  bestEffort?: boolean;
  timeoutMs?: number;
  /** The last line the command printed is what the step says (a stack's convergence). */
  showsOutput?: boolean;
}
