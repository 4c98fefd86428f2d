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
