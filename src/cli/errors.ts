/** Turns any error into one clear line on stderr and an exit code (the README's CLI reference lists them). */
import { UnreachableError } from '../connection/types.js';
import { InventoryError } from '../inventory/types.js';
import { UserError, UserErrors } from '../util/errors.js';
import { redact } from '../util/redact.js';

interface CommanderLikeError {
  code: string;
  exitCode: number;
}

function isCommanderError(err: unknown): err is CommanderLikeError & Error {
  return (
    !!err &&
    typeof err === 'object' &&
    typeof (err as CommanderLikeError).code === 'string' &&
    (err as CommanderLikeError).code.startsWith('commander.')
  );
}

export function handleError(err: unknown, verbose: boolean): number {
  if (isCommanderError(err)) {
    // commander already printed the message (or the help / version, which exit 0).
    return err.exitCode === 0 ? 0 : 1;
  }
  if (err instanceof UserErrors) {
    for (const one of err.errors) handleError(one, verbose);
    process.stderr.write(`${err.errors.length} errors; nothing was changed\n`);
    return 1;
  }
  if (err instanceof UserError) {
    process.stderr.write(`error: ${redact(err.message)}\n`);
    if (err.hint) process.stderr.write(`  → ${redact(err.hint)}\n`);
    if (verbose && err.stack) process.stderr.write(`${redact(err.stack)}\n`);
    return err.exitCode;
  }
  if (err instanceof InventoryError) {
    process.stderr.write(`error: ${redact(err.message)}\n`);
    if (verbose && err.stack) process.stderr.write(`${redact(err.stack)}\n`);
    return 1;
  }
  if (err instanceof UnreachableError) {
    process.stderr.write(`error: ${err.host} unreachable (${err.reason}): ${redact(err.message)}\n`);
    return 3;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  process.stderr.write(`internal error: ${redact(e.message)}\n`);
  process.stderr.write(
    verbose ? `${redact(e.stack ?? '')}\n` : '  (this is a bug in Verdandi; run again with -v for details)\n',
  );
  return 1;
}

/** One error as the `--json` document names it (`verdandi check --json` uses the same shape). */
interface ErrorEntry {
  message: string;
  hint?: string;
}

function errorEntries(err: unknown): ErrorEntry[] {
  if (err instanceof UserErrors) return err.errors.flatMap(errorEntries);
  if (err instanceof UserError)
    return [{ message: redact(err.message), ...(err.hint ? { hint: redact(err.hint) } : {}) }];
  if (err instanceof UnreachableError)
    return [{ message: `${err.host} unreachable (${err.reason}): ${redact(err.message)}` }];
  if (err instanceof Error) return [{ message: redact(err.message) }];
  return [{ message: redact(String(err)) }];
}

/**
 * The `--json` document of a command that stopped on an error before its run printed one (a role that
 * does not load, an unknown host...): `--json` always prints one document, so a script reading it
 * gets the exit code and the errors instead of nothing. No host was contacted: `hosts` and `events`
 * are empty.
 */
export function errorDocument(
  command: string,
  env: string | undefined,
  exitCode: number,
  err: unknown,
): Record<string, unknown> {
  return {
    command,
    ...(env === undefined ? {} : { env }),
    exitCode,
    errors: errorEntries(err),
    hosts: {},
    events: [],
  };
}
