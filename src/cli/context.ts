/**
 * The command-line options shared by the commands that touch hosts: how to connect, extra vars and
 * secrets, the options of a run (check, diff, tags, forks). Each is parsed here into the typed value
 * the commands take (a number, a list); a wrong one is a usage error (exit 1) naming the option,
 * before anything is loaded.
 */
import { type Command, Option } from 'commander';
import { CONNECTION_DEFAULTS } from '../connection/types.js';
import type { ContextOptions } from '../engine/context.js';
import type { RunOptions } from '../engine/run-plan.js';
import type { HostWalkOptions } from '../engine/walker.js';
import { UserError } from '../util/errors.js';
import { DEFAULT_FORKS } from '../util/pool.js';

/** The options of `provision` and `run`, as the commands receive them from commander. */
export type CommonRunOptions = RunOptions;

/** What `varsOptions` gives commander: `--var` as written, -K as a flag. */
export interface VarsCliOptions {
  var?: string[];
  askBecomePass?: boolean;
}

/**
 * The typed context options of `varsOptions`: `--var` parsed (a wrong one is a usage error), and with
 * -K the sudo password asked for on the terminal, before anything is loaded.
 */
export async function contextOptions<O extends VarsCliOptions>(
  o: O,
): Promise<Omit<O, 'var' | 'askBecomePass'> & Pick<ContextOptions, 'extraVars' | 'becomePassword'>> {
  const { var: vars, askBecomePass, ...rest } = o;
  // Loaded here, not with the command line: `--help` stays quick.
  const [{ parseExtraVars }, { canPrompt, promptHidden }] = await Promise.all([
    import('../inventory/extra-vars.js'),
    import('../secrets/tty.js'),
  ]);
  const extraVars = parseExtraVars(vars ?? []);
  let becomePassword: string | undefined;
  if (askBecomePass) {
    if (!canPrompt()) throw new UserError('-K needs a terminal to ask for the sudo password', 1);
    becomePassword = await promptHidden('sudo password: ');
  }
  return { ...rest, extraVars, becomePassword };
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Parses a positive whole number given to `name` (a usage error otherwise). */
export function positiveInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) {
      throw new UserError(`${name} must be a positive whole number, got "${value}"`, 1);
    }
    return n;
  };
}

/** The longest `--persist`: a day (and below what a Node timer can wait). */
export const MAX_PERSIST_SECONDS = 86_400;

/** Parses `--persist` (or $VERDANDI_PERSIST, named `name`): whole seconds, 0 for off. */
export function persistSeconds(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n > MAX_PERSIST_SECONDS) {
      throw new UserError(
        `${name} must be a whole number of seconds from 0 (off) to ${MAX_PERSIST_SECONDS}, got "${value}"`,
        1,
      );
    }
    return n;
  };
}

/** `$VERDANDI_PERSIST`: `--persist` for every command of a shell session; undefined when unset. */
export function persistFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const value = env.VERDANDI_PERSIST;
  return value === undefined || value === '' ? undefined : persistSeconds('$VERDANDI_PERSIST')(value);
}

/** `a, b,c` → ['a', 'b', 'c']; nothing given (or only commas) → undefined. */
function commaList(value: string): string[] | undefined {
  const list = value
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  return list.length ? list : undefined;
}

/** `--forks`: how many hosts are worked on at once. */
export function forksOption(cmd: Command, description: string): Command {
  return cmd.option('--forks <n>', description, positiveInt('--forks'), DEFAULT_FORKS);
}

/** `--host-key-checking accept-new|off`, for every command that connects. */
export function hostKeyCheckingOption(): Option {
  return new Option(
    '--host-key-checking <mode>',
    'accept-new: record unknown host keys, refuse changed ones; off: never check',
  )
    .choices(['accept-new', 'off'])
    .default('accept-new');
}

/** How to reach the hosts: the options of every command that connects (ping, facts, backup...). */
export function connectionOptions(cmd: Command): Command {
  // No commander defaults for the timeouts: a value not given here may come from the ssh config
  // (ConnectTimeout, ServerAliveInterval, ServerAliveCountMax), then CONNECTION_DEFAULTS.
  return cmd
    .option('--limit <pattern>', 'only these hosts: a host, group, glob, comma list, !exclusion')
    .option('--json', 'print one JSON document on stdout instead of lines')
    .addOption(hostKeyCheckingOption())
    .option(
      '--connect-timeout <seconds>',
      `SSH connect timeout (default: the ssh config's ConnectTimeout, else ${CONNECTION_DEFAULTS.connectTimeout})`,
      positiveInt('--connect-timeout'),
    )
    .option(
      '--keepalive <seconds>',
      `SSH keepalive interval: a silent host is probed this often (default: ServerAliveInterval, else ${CONNECTION_DEFAULTS.keepalive})`,
      positiveInt('--keepalive'),
    )
    .option(
      '--keepalive-count <n>',
      `unanswered keepalives before a host is declared lost, after about interval × (n + 1) (default: ServerAliveCountMax, else ${CONNECTION_DEFAULTS.keepaliveCount})`,
      positiveInt('--keepalive-count'),
    );
}

/** Plus what a command that reads vars and secrets needs (deploy, rollback, status, backup...). */
export function varsOptions(cmd: Command): Command {
  return connectionOptions(cmd)
    .option('--var <key=value>', 'extra var, highest precedence (repeatable)', collect, [])
    .option('--vault-password-file <file>', 'file holding the secrets password')
    .option('-K, --ask-become-pass', 'prompt for the sudo password of become hosts');
}

/** Plus what a run of tasks needs (provision, run). */
export function commonRunOptions(cmd: Command): Command {
  cmd.option('--check', 'probe only: show what would change, change nothing');
  cmd.option('--diff', 'show unified diffs of the files that change (secrets print as [secret])');
  cmd.option(
    '--task-timeout <seconds>',
    "stop a task's command (with everything it started) after this long unless the task sets its own timeout",
    positiveInt('--task-timeout'),
  );
  return forksOption(
    varsOptions(cmd).option(
      '--tags <tags>',
      'only tasks and roles with one of these tags (comma separated)',
      commaList,
    ),
    'hosts run in parallel',
  );
}

/** `--serial`, `--lock-wait`, `--break-lock` as commander gives them (deploy, rollback, status, restore). */
export interface HostWalkCliOptions {
  serial?: string;
  lockWait?: string;
  breakLock?: boolean;
}

/** Parses and checks `--serial`, `--lock-wait`, `--break-lock` (a usage error, exit 1, before anything). */
export async function hostWalkOptions<O extends object>(
  o: O,
): Promise<Omit<O, keyof HostWalkCliOptions> & HostWalkOptions> {
  const { serial: serialText, lockWait, breakLock, ...rest } = o as O & HostWalkCliOptions;
  const { batchSizes, DEFAULT_LOCK_WAIT_SECONDS } = await import('../engine/walker.js');
  let lockWaitSeconds = DEFAULT_LOCK_WAIT_SECONDS;
  if (lockWait !== undefined) {
    lockWaitSeconds = lockWait.trim() === '' ? Number.NaN : Number(lockWait);
    if (!Number.isFinite(lockWaitSeconds) || lockWaitSeconds < 0)
      throw new UserError(`--lock-wait must be a number of seconds, got "${lockWait}"`, 1);
  }
  let serial: number | string | undefined;
  if (serialText !== undefined) {
    serial = serialText.trim().endsWith('%') ? serialText.trim() : Number(serialText);
    try {
      batchSizes(1, serial);
    } catch {
      throw new UserError(`--serial must be a positive number or a percentage, got "${serialText}"`, 1);
    }
  }
  return { ...rest, serial, lockWaitSeconds, breakLock: !!breakLock };
}
