/**
 * Validation of task options: the error a wrong option raises, and the zod pieces task types declare
 * their options with. Options are checked when the task is built (inside a role's or playbook's
 * `tasks()`), so a mistake fails before any host is touched, with a message naming the task, the
 * option, the value given and the line of the role that built the task.
 *
 * Every piece words its own message (`state must be present or absent, got "gone"`): the message of a
 * zod issue is what the user reads. A check that can also say what to do carries a hint (see `rule`).
 */
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { shownLocation, userFrame } from '../util/user-code.js';
import { isSymbolicMode } from './file-state.js';

/** A task option is wrong. Exit code 1; the message ends with `(at <file>:<line>)` of the calling code. */
export class TaskOptionError extends UserError {
  constructor(
    /** Task type (`service`, `copy`...). */
    readonly taskType: string,
    /** The option at fault (`state`, `healthcheck.interval`), when one is. */
    readonly option: string | undefined,
    message: string,
    hint?: string,
    /** `file:line` of the code that built the task, the end of the message (when it was found). */
    readonly location?: string,
  ) {
    super(message, 1, hint);
    this.name = 'TaskOptionError';
  }
}

/** `file:line` of the user's code that built the task (see util/user-code.ts). */
export function callerLocation(stack: string | undefined): string | undefined {
  const frame = userFrame(stack);
  return frame ? shownLocation(frame) : undefined;
}

/**
 * The error for a wrong option of a task: `<label>: <problem> (at <file>:<line>)`. Build it in the code
 * the user's task call runs (synchronously), so its stack passes through the user's line.
 */
export function taskOptionError(
  taskType: string,
  label: string,
  option: string | undefined,
  problem: string,
  hint?: string,
): TaskOptionError {
  const where = callerLocation(new Error().stack);
  const message = `${label}: ${problem}${where ? ` (at ${where})` : ''}`;
  return new TaskOptionError(taskType, option, message, hint, where);
}

// ---------------------------------------------------------------------------------------------------
// Pieces of option schemas

/** How a value given by the user shows in a message: as JSON (`"gone"`, `42`, `undefined`). */
export function shown(value: unknown): string {
  return String(JSON.stringify(value));
}

/** zod's `error` option: every issue of the schema gets `describe(<the value given>)` as its message. */
export function says(describe: (got: string) => string) {
  return { error: (issue: { input?: unknown }) => describe(shown(issue.input)) };
}

/** `a`, `a or b`, `a, b or c`. */
function alternatives(values: readonly string[]): string {
  return values.length === 1 ? values[0] : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
}

/**
 * A check zod's built-in ones cannot word: `check` returns the problem (and optionally what to do about
 * it) or undefined when the value is fine. Use with `.superRefine(rule(...))`.
 */
export function rule<T>(check: (value: T) => string | { problem: string; hint?: string } | undefined) {
  return (value: T, ctx: z.RefinementCtx) => {
    const found = check(value);
    if (found === undefined) return;
    const { problem, hint } = typeof found === 'string' ? { problem: found, hint: undefined } : found;
    ctx.addIssue({ code: 'custom', message: problem, input: value, params: hint ? { hint } : undefined });
  };
}

/** A string matching `pattern`: `<option> must be <expected>, got <value>` otherwise. */
export function text(option: string, pattern: RegExp, expected: string) {
  const message = says((got) => `${option} must be ${expected}, got ${got}`);
  return z.string(message).regex(pattern, message);
}

/** One of a few words: `<option> must be a, b or c, got <value>`. */
export function oneOf<const T extends readonly [string, ...string[]]>(option: string, values: T) {
  return z.enum(
    values,
    says((got) => `${option} must be ${alternatives(values)}, got ${got}`),
  );
}

/** `present` or `absent`. */
export const presence = oneOf('state', ['present', 'absent']);

/** A boolean: `<option> must be true or false, got <value>`. */
export function flag(option: string) {
  return z.boolean(says((got) => `${option} must be true or false, got ${got}`));
}

/** An integer of at least `min` (0: non-negative, 1: positive). */
export function integer(option: string, min: 0 | 1) {
  const message = says(
    (got) => `${option} must be a ${min === 0 ? 'non-negative' : 'positive'} integer, got ${got}`,
  );
  return z.number(message).int(message).min(min, message);
}

/** A non-empty string. */
export function nonEmpty(option: string) {
  const message = says((got) => `${option} must be a non-empty string, got ${got}`);
  return z.string(message).min(1, message);
}

/**
 * An absolute path, normalised before any check sees it: repeated slashes, `.` segments and trailing
 * slashes go (`/etc//nginx/./` → `/etc/nginx`, `/.` → `/`), so a guard such as absent's "refusing to
 * remove /" cannot be walked around. A `..` segment is refused: what it leads to depends on the links
 * on the host (`/srv/app/..` is not `/srv` when `app` is a link), so the path must be written out.
 */
export function absolutePath(option = 'path') {
  return z
    .string(says((got) => `${option} must be an absolute path, got ${got}`))
    .superRefine(
      rule((path: string) => {
        if (!path.startsWith('/')) return `${option} must be an absolute path, got ${shown(path)}`;
        if (path.includes('\0')) return `${option} contains a NUL character`;
        if (path.split('/').includes('..')) {
          return {
            problem: `${option} must not contain .. segments, got ${shown(path)}`,
            hint: 'write the absolute path it leads to',
          };
        }
        return undefined;
      }),
    )
    .transform(normalPath);
}

/** `/etc//nginx/./` → `/etc/nginx`; `/.` → `/` (no `..` here: absolutePath refuses it first). */
export function normalPath(path: string): string {
  return `/${path
    .split('/')
    .filter((segment) => segment !== '' && segment !== '.')
    .join('/')}`;
}

/** '644', '0644', '2775' → 4 digits ('0644'). A number (0o644) says how to write it. */
export const fileMode = z
  .custom<string>()
  .superRefine(
    rule((mode: unknown) => {
      if (typeof mode === 'string' && /^[0-7]{3,4}$/.test(mode)) return undefined;
      return {
        problem: `mode must be an octal string like '0644' or '644', got ${typeof mode === 'string' ? `'${mode}'` : String(mode)}`,
        hint:
          typeof mode === 'number'
            ? `write it as a string: mode: '${mode.toString(8).padStart(4, '0')}'`
            : undefined,
      };
    }),
  )
  .transform((mode) => mode.padStart(4, '0'));

/**
 * An octal mode as `fileMode` takes it, or a symbolic one as chmod reads it (`u+rwx,g-w`, `a=r`, `g=u`),
 * kept as written: the task computes it against the mode it probed.
 */
export const fileModeOrSymbolic = z
  .custom<string>()
  .superRefine(
    rule((mode: unknown) => {
      if (typeof mode === 'string' && (/^[0-7]{3,4}$/.test(mode) || isSymbolicMode(mode))) return undefined;
      return {
        problem: `mode must be an octal string like '0644' or a symbolic mode like 'u+rwx,g-w' or 'a=r', got ${typeof mode === 'string' ? `'${mode}'` : String(mode)}`,
        hint:
          typeof mode === 'number'
            ? `write it as a string: mode: '${mode.toString(8).padStart(4, '0')}'`
            : 'every clause of a symbolic mode names whom it is for (u, g, o or a): a+x, not +x',
      };
    }),
  )
  .transform((mode) => (/^[0-7]{3,4}$/.test(mode) ? mode.padStart(4, '0') : mode));

/** A user or group name, or a numeric id: safe to pass to chown, getent, useradd -g. */
export function account(option: string, what = 'a user/group name or a numeric id') {
  return text(option, /^(\d+|[A-Za-z_][A-Za-z0-9_.-]*\$?)$/, what);
}

/** A user or group name as useradd/groupadd accept it (not numeric: getent would take it for an id). */
export function accountName(option: string, kind: 'user' | 'group') {
  const message = says(
    (got) =>
      `${option} must be a ${kind} name (letters, digits, _ . -, not starting with a digit or -, at most 32 characters), got ${got}`,
  );
  return z
    .string(message)
    .regex(/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/, message)
    .max(32, message);
}

/** Owner, group and mode of a file-like task. */
export const attributes = {
  owner: account('owner').optional(),
  group: account('group').optional(),
  mode: fileMode.optional(),
};

/** Shell variables for a command: valid names, string values (never on a command line). */
export function environment(option: string) {
  return z
    .record(
      z.string(),
      z.unknown(),
      says(() => `${option} must be an object of NAME: value strings`),
    )
    .superRefine(
      rule((env: Record<string, unknown>) => {
        for (const [name, value] of Object.entries(env)) {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
            return `${option} name ${shown(name)} is not a valid variable name (letters, digits, _)`;
          }
          if (typeof value !== 'string') {
            return {
              problem: `${option} ${name} must be a string, got ${typeof value}`,
              hint: `write it as a string: ${name}: '${String(value)}'`,
            };
          }
        }
        return undefined;
      }),
    )
    .transform((env) => env as Record<string, string>);
}

/** A login name, as `runuser -u` takes it. */
export function loginName(option: string) {
  const message = says((got) => `${option} must be a user name, got ${got}`);
  return z.string(message).regex(/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/, message);
}
