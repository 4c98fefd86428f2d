/**
 * The verdict of one try of a run step: did it fail, did it change the host, must it run again. The
 * engine's rule was "a step that ran changed the host, and failed unless its exit code is one of its
 * okCodes"; command and shell may replace it with functions of the command's result (changedWhen,
 * failedWhen) and ask for more tries (retries, delay, until). This is the one place that decides.
 *
 * The functions run on the controller: they are TypeScript, the host only has a shell. So a retry is
 * the engine sending the step again (run.ts), each try one supervised round trip under its own timeout,
 * never a loop inside one remote script: a loop there would hide the tries from `-v`, put every try
 * under one timeout, and keep a Ctrl-C waiting on a `sleep` the controller cannot see.
 *
 * A function that throws fails the task with its message; the message of a sensitive task's function
 * is not shown (it may quote the output the task hides).
 */
import type { CommandResult, StepVerdict } from './types.js';

/** Seconds between two tries when the task gives no `delay` (Ansible's default). */
export const DEFAULT_DELAY = 5;
/** Tries after the first when the task gives `until` without `retries` (Ansible's default). */
export const DEFAULT_UNTIL_RETRIES = 3;

export type Judgement =
  /** Try again (after `delaySeconds`); `why` says what the last try gave, for `-v`. */
  | { next: 'retry'; why: string; delaySeconds: number }
  /** The last try decides: `failed` says why the task failed; otherwise `changed` holds. */
  | { next: 'done'; changed: boolean; failed?: string };

/** How many tries a step may make in all (1 without retries). */
export function maxTries(verdict: StepVerdict | undefined): number {
  if (!verdict) return 1;
  const retries = verdict.retries ?? (verdict.until ? DEFAULT_UNTIL_RETRIES : 0);
  return 1 + retries;
}

/** A user's function threw: what the task's failure says. */
class Threw extends Error {}

function call(
  name: string,
  fn: (result: CommandResult) => boolean,
  result: CommandResult,
  sensitive: boolean,
): boolean {
  try {
    return fn(result) === true;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Threw(
      sensitive
        ? `${name} threw an error (its message is hidden: sensitive task)`
        : `${name} threw: ${message}`,
    );
  }
}

/**
 * Judges try number `tryNumber` (from 1) of a step. `okCodes` is the step's default rule of success.
 * A function that throws ends the tries: the task fails with the error.
 */
export function judge(
  result: CommandResult,
  okCodes: readonly number[],
  verdict: StepVerdict | undefined,
  tryNumber: number,
  sensitive: boolean,
): Judgement {
  const code = `exit code: ${result.rc}`;
  try {
    const failed = verdict?.failedWhen
      ? call('failedWhen', verdict.failedWhen, result, sensitive)
      : !okCodes.includes(result.rc);
    const tries = maxTries(verdict);
    const until = verdict?.until;
    // Without `until`, retries run while the command fails (Ansible's `until: result is not failed`).
    const reached = until ? call('until', until, result, sensitive) : !failed;
    if (!reached && tryNumber < tries) {
      return {
        next: 'retry',
        why: until
          ? `${code}, until is false`
          : failed && verdict?.failedWhen
            ? `${code}, failedWhen is true`
            : code,
        delaySeconds: verdict?.delay ?? DEFAULT_DELAY,
      };
    }
    if (until && !reached) {
      return {
        next: 'done',
        changed: false,
        failed: `until was still false after ${tries} ${tries === 1 ? 'try' : 'tries'} (${code})`,
      };
    }
    if (failed) {
      const after = tryNumber > 1 ? `, after ${tryNumber} tries` : '';
      return {
        next: 'done',
        changed: false,
        failed: verdict?.failedWhen ? `failedWhen is true (${code}${after})` : `${code}${after}`,
      };
    }
    const changedWhen = verdict?.changedWhen;
    const changed =
      changedWhen === undefined
        ? true
        : changedWhen === false
          ? false
          : call('changedWhen', changedWhen, result, sensitive);
    return { next: 'done', changed };
  } catch (err) {
    if (err instanceof Threw) return { next: 'done', changed: false, failed: `${err.message} (${code})` };
    throw err;
  }
}
