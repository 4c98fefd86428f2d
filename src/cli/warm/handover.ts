/**
 * The end of a command served by a spare (spare.ts): the command line (program.ts) says when its
 * command is done, and the spare tells the user's process its exit code then, before the work that
 * follows it (starting the next spare, the process's own exit).
 */
let announce: ((code: number) => void) | undefined;

/** Set by a spare that runs a user's command. */
export function whenCommandEnds(hook: (code: number) => void): void {
  announce = hook;
}

/** The command is done with `code`: its output is all written. */
export function commandEnded(code: number): void {
  const hook = announce;
  announce = undefined;
  hook?.(code);
}
