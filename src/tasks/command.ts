/**
 * command / shell: run something on the host.
 *
 * Without a guard (`creates`, `removes`, `unless`, `onlyIf`) the command runs on every run and is
 * reported changed (`alwaysRuns`: check mode says "would run"). With guards, the probe evaluates them and
 * the command runs only when they say so:
 *   - creates: a path; the command is skipped when it exists;
 *   - removes: a path; the command is skipped when it does not exist;
 *   - unless:  a shell command; the command is skipped when it exits 0;
 *   - onlyIf:  a shell command; the command runs only when it exits 0.
 * `unless`/`onlyIf` run inside the probe, so also in check mode: they must only read. They run as `user`,
 * in `cwd`, but without `env` (the probe is not the place for secrets); write full paths in them.
 * Relative `creates`/`removes` paths are taken from `cwd`.
 *
 * `env` values never appear on a command line (where `ps` on the host would show them): they travel on
 * the step's standard input, ahead of `stdin`, and are exported by a small reader loop before the
 * command starts (see `envFromStdin`).
 */
import type { Plan, ProbeResult, RunStep, Task, TaskOptions } from '../engine/types.js';
import { taskBase } from '../engine/types.js';
import { and, sh, words } from '../util/shell.js';
import { markedLines, taskOptionError } from './probes.js';

/** What command() and shell() share. */
export interface CommandGuards {
  /** Working directory of the command (and of the guards). */
  cwd?: string;
  /** Run as this user (through `runuser`, which also sets HOME, USER and LOGNAME). Default: root. */
  user?: string;
  /** Environment variables for the command (not for the guards). Passed through stdin, never in `ps`. */
  env?: Record<string, string>;
  /** Skip the command when this path exists. */
  creates?: string;
  /** Skip the command when this path does not exist. */
  removes?: string;
  /** Skip the command when this shell command exits 0. It runs in the probe: it must only read. */
  unless?: string;
  /** Run the command only when this shell command exits 0. It runs in the probe: it must only read. */
  onlyIf?: string;
  /** Text given to the command on its standard input (a password, a SQL script...). */
  stdin?: string;
}

export interface CommandOptions extends CommandGuards {
  /** The program and its arguments, each one word (quoted for the shell by Verdandi). */
  argv: string[];
}

export interface ShellOptions extends CommandGuards {
  /** A shell script, run with `sh -c`. */
  script: string;
}

/** Runs `argv` (a program and its arguments) as given, on every run unless a guard says otherwise. */
export function command(opts: CommandOptions & TaskOptions): Task {
  if (!Array.isArray(opts.argv) || opts.argv.length === 0 || opts.argv.some((a) => typeof a !== 'string')) {
    throw taskOptionError(
      'command',
      `argv must be a non-empty list of strings, got ${JSON.stringify(opts.argv)}`,
    );
  }
  return commandTask('command', `command ${words(...opts.argv)}`, words(...opts.argv), opts);
}

/** Runs a shell script with `sh -c`, on every run unless a guard says otherwise. */
export function shell(opts: ShellOptions & TaskOptions): Task {
  if (typeof opts.script !== 'string' || opts.script.trim() === '') {
    throw taskOptionError('shell', 'script must be a non-empty string');
  }
  const firstLine = opts.script.trim().split('\n')[0];
  return commandTask('shell', `shell ${firstLine}`, sh`sh -c ${opts.script}`, opts);
}

const MARKER = 'verdandi-guard';

function commandTask(
  type: string,
  defaultName: string,
  commandLine: string,
  opts: CommandGuards & TaskOptions,
): Task {
  const label = opts.name ?? defaultName;
  checkGuards(label, opts);
  const { cwd, user, creates, removes, unless, onlyIf } = opts;
  const hasGuard = [creates, removes, unless, onlyIf].some((g) => g !== undefined);

  // Guards run in a subshell each, in cwd and as the user, so they see what the command would see.
  const probeLines: string[] = [];
  const pathTest = (kind: string, path: string) =>
    `if ( ${and(cwd !== undefined && sh`cd ${cwd}`, sh`test -e ${path}`)} ) 2>/dev/null; then echo '${MARKER} ${kind} yes'; else echo '${MARKER} ${kind} no'; fi`;
  const commandTest = (kind: string, guard: string) =>
    `( ${and(cwd !== undefined && sh`cd ${cwd}`, runAs(user, sh`sh -c ${guard}`))} ) </dev/null >/dev/null 2>&1; echo "${MARKER} ${kind} $?"`;
  if (creates !== undefined) probeLines.push(pathTest('creates', creates));
  if (removes !== undefined) probeLines.push(pathTest('removes', removes));
  if (unless !== undefined) probeLines.push(commandTest('unless', unless));
  if (onlyIf !== undefined) probeLines.push(commandTest('onlyIf', onlyIf));

  const env = envFromStdin(opts.env ?? {});
  const step: RunStep = {
    kind: 'run',
    command: and(env.prelude, cwd !== undefined && sh`cd ${cwd}`, runAs(user, commandLine)),
    description: label,
  };
  const stdin = env.stdin + (opts.stdin ?? '');
  if (stdin !== '') step.stdin = stdin;

  function plan(probe: ProbeResult): Plan {
    if (!hasGuard) return { steps: [step], reason: 'no creates/removes/unless/onlyIf guard: always runs' };
    const seen = new Map(markedLines(probe.stdout, MARKER).map(([kind, value]) => [kind, value]));
    const missing = ['creates', 'removes', 'unless', 'onlyIf'].filter(
      (kind) => opts[kind as keyof CommandGuards] !== undefined && !seen.has(kind),
    );
    if (missing.length > 0) {
      return {
        steps: [],
        error: `the probe did not report the ${missing.join(', ')} guard (exit code ${probe.exitCode})`,
      };
    }
    // Each guard that is set can skip the command; the first one that does gives the reason.
    if (creates !== undefined && seen.get('creates') === 'yes')
      return { steps: [], reason: `${creates} exists` };
    if (removes !== undefined && seen.get('removes') === 'no')
      return { steps: [], reason: `${removes} does not exist` };
    if (unless !== undefined && seen.get('unless') === '0')
      return { steps: [], reason: `unless guard exited 0` };
    if (onlyIf !== undefined && seen.get('onlyIf') !== '0') {
      return { steps: [], reason: `onlyIf guard exited ${seen.get('onlyIf')}` };
    }
    const reasons: string[] = [];
    if (creates !== undefined) reasons.push(`${creates} does not exist`);
    if (removes !== undefined) reasons.push(`${removes} exists`);
    if (unless !== undefined) reasons.push(`unless guard exited ${seen.get('unless')}`);
    if (onlyIf !== undefined) reasons.push('onlyIf guard exited 0');
    return { steps: [step], reason: reasons.join(', ') };
  }

  return {
    ...taskBase(type, defaultName, opts),
    probe: probeLines.join('\n'),
    plan,
    ...(hasGuard ? {} : { alwaysRuns: true }),
  };
}

function checkGuards(label: string, opts: CommandGuards): void {
  for (const key of ['cwd', 'user', 'creates', 'removes', 'unless', 'onlyIf', 'stdin'] as const) {
    const value = opts[key];
    if (value !== undefined && (typeof value !== 'string' || value === '')) {
      throw taskOptionError(label, `${key} must be a non-empty string, got ${JSON.stringify(value)}`);
    }
  }
  if (opts.user !== undefined) checkUserName(label, opts.user);
  checkEnvNames(label, opts.env);
}

// ---------------------------------------------------------------------------------------------------
// Helpers shared with other system tasks (git, docker)

/** Checks a login name before it is handed to `runuser -u`. */
export function checkUserName(label: string, user: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(user)) {
    throw taskOptionError(label, `user must be a user name, got ${JSON.stringify(user)}`);
  }
}

/** Checks that env names are valid shell variable names and values are strings. */
export function checkEnvNames(label: string, env: Record<string, string> | undefined): void {
  if (env === undefined) return;
  if (typeof env !== 'object' || env === null || Array.isArray(env)) {
    throw taskOptionError(label, 'env must be an object of NAME: value strings');
  }
  for (const [name, value] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw taskOptionError(
        label,
        `env name ${JSON.stringify(name)} is not a valid variable name (letters, digits, _)`,
      );
    }
    if (typeof value !== 'string') {
      throw taskOptionError(
        label,
        `env ${name} must be a string, got ${typeof value}`,
        `write it as a string: ${name}: '${String(value)}'`,
      );
    }
  }
}

/**
 * `command` run as `user` through `runuser -u user --` (no login shell: system users often have
 * `nologin`). runuser sets HOME, USER and LOGNAME to the user's and keeps the rest of the environment and
 * the working directory. Without a user, the command is returned as is (it runs as root).
 */
export function runAs(user: string | undefined, command: string): string {
  return user === undefined ? command : `${words('runuser', '-u', user, '--')} ${command}`;
}

/**
 * Environment variables that must not show on a command line. The step's stdin starts with one line per
 * variable, `NAME=<base64 of the value>`, then an empty line; `prelude` reads exactly those lines (the
 * shell's `read` takes one byte at a time from a pipe, so what follows stays for the command) and
 * exports them. Base64 keeps newlines in values intact; the trailing `x` keeps trailing newlines, which
 * `$(...)` would strip.
 */
export function envFromStdin(env: Record<string, string>): { prelude: string | undefined; stdin: string } {
  const entries = Object.entries(env);
  if (entries.length === 0) return { prelude: undefined, stdin: '' };
  const stdin = `${entries.map(([name, value]) => `${name}=${Buffer.from(value, 'utf8').toString('base64')}`).join('\n')}\n\n`;
  const prelude = [
    'while IFS= read -r verdandi_env && [ -n "$verdandi_env" ]; do',
    `verdandi_value=$(printf '%s' "\${verdandi_env#*=}" | base64 -d; echo x);`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a JS template
    'export "${verdandi_env%%=*}=${verdandi_value%x}";',
    'done',
  ].join(' ');
  return { prelude, stdin };
}
