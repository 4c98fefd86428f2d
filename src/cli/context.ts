/**
 * The command-line options shared by the commands that touch hosts: how to connect, extra vars and
 * secrets, the options of a run (check, diff, tags, forks). Each is parsed here into the typed value
 * the commands take (a number, a list); a wrong one is a usage error (exit 1) naming the option,
 * before anything is loaded.
 */
import { type Command, Option } from 'commander';
import { CONNECTION_DEFAULTS } from '../connection/types.js';
import type { RunOptions } from '../engine/execute.js';
import { UserError } from '../util/errors.js';
import { DEFAULT_FORKS } from '../util/pool.js';

/** The options of `provision` and `run`, as the commands receive them from commander. */
export type CommonRunOptions = RunOptions;

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
