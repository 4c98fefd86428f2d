/**
 * Errors a user can cause (bad input, bad config, wrong password...) are UserErrors: the CLI prints
 * their message in one line, without a stack trace (unless -v), and exits with their code.
 */
export class UserError extends Error {
  constructor(
    message: string,
    /** 1: bad usage/config/input; 2: a task failed; 3: a host unreachable (the exit codes of the README's CLI reference). */
    readonly exitCode: 1 | 2 | 3 = 1,
    /** What to do about it, printed after the message. */
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** Several user errors found together (the plan, `verdandi check`): the CLI prints each one. */
export class UserErrors extends UserError {
  constructor(readonly errors: UserError[]) {
    super(`${errors.length} errors`, 1);
    this.name = 'UserErrors';
  }
}

/**
 * The one exit-code rule of every command that runs on hosts (README, "Exit codes"): a host that could
 * not be reached wins (3: its state is unknown), else a failure on a reached host (2), else 0. User
 * errors found before any change are 1 (a UserError).
 */
export function runExitCode(outcome: { unreachable: boolean; failed: boolean }): 0 | 2 | 3 {
  if (outcome.unreachable) return 3;
  return outcome.failed ? 2 : 0;
}
