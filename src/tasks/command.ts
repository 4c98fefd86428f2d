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
 * command starts (see `envFromStdin`). A `shell` script and the `unless`/`onlyIf` guards are not
 * arguments of `sh -c` either: they travel inside the step's own script (itself sent on stdin) and reach
 * their shell through a here-document (see `shellOf`). `argv` is the program's own command line: it
 * shows in `ps` like any program's, so a secret goes in `env` or `stdin`, never in `argv`.
 *
 * The default label shows the command line (`command ...`) or the script's first line (`shell ...`); a
 * `sensitive` task without `name` is labelled by its type alone (`shell (sensitive)`): a secret written
 * into the script or argv is never shown (define.ts, `labelShowsContent`).
 *
 * `timeout` (seconds): the command is stopped with its whole process group when the time is up, and
 * the task fails (the engine runs every run step under a supervisor, see engine/remote-process.ts).
 * With retries, the timeout is each try's.
 *
 * `changedWhen`, `failedWhen` and `until` are functions of the command's result `{ rc, stdout, stderr }`
 * (Ansible's changed_when, failed_when, until), `retries` and `delay` space the tries: the step carries
 * them as its verdict (RunStep.verdict) and the engine judges each try on the controller (see
 * engine/verdict.ts). In check mode the command does not run, so nothing of them is known: a command
 * that would run is reported "would run", whatever changedWhen would say.
 */

import { z } from 'zod';
import type { CommandResult, Plan, ProbeResult, RunStep, StepVerdict } from '../engine/types.js';
import { and, hereDocument, sh, words } from '../util/shell.js';
import { defineTask, type Fail, type PrepareContext } from './define.js';
import { environment, integer, loginName, nonEmpty, says, shown } from './options.js';
import { markedLines } from './probe-output.js';

/** A function of the command's result (`{ rc, stdout, stderr }`) returning a boolean; `orFalse`: or `false`. */
function resultCheck<const OrFalse extends boolean = false>(option: string, orFalse?: OrFalse) {
  type Check = (result: CommandResult) => boolean;
  const expected = `${option} must be a function of the result ({ rc, stdout, stderr }) returning true or false${orFalse ? ', or false' : ''}`;
  return z.custom<OrFalse extends true ? Check | false : Check>(
    (value) => typeof value === 'function' || (orFalse === true && value === false),
    { error: (issue: { input?: unknown }) => `${expected}, got ${shown(issue.input)}` },
  );
}

/** What command() and shell() share. */
const guards = {
  /** Working directory of the command (and of the guards). */
  cwd: nonEmpty('cwd').optional(),
  /** Run as this user (through `runuser`, which also sets HOME, USER and LOGNAME). Default: root. */
  user: nonEmpty('user').pipe(loginName('user')).optional(),
  /** Environment variables for the command (not for the guards). Passed through stdin, never in `ps`. */
  env: environment('env').default({}),
  /** Skip the command when this path exists. */
  creates: nonEmpty('creates').optional(),
  /** Skip the command when this path does not exist. */
  removes: nonEmpty('removes').optional(),
  /** Skip the command when this shell command exits 0. It runs in the probe: it must only read. */
  unless: nonEmpty('unless').optional(),
  /** Run the command only when this shell command exits 0. It runs in the probe: it must only read. */
  onlyIf: nonEmpty('onlyIf').optional(),
  /** Text given to the command on its standard input (a password, a SQL script...). */
  stdin: nonEmpty('stdin').optional(),
  /** Stop the command (with everything it started) after this many seconds; the task then fails. */
  timeout: integer('timeout', 1).optional(),
  /** Whether the command changed the host, from its result (default: it did). `false`: never. */
  changedWhen: resultCheck('changedWhen', true).optional(),
  /** Whether the command failed, from its result (default: its exit code is not 0). */
  failedWhen: resultCheck('failedWhen').optional(),
  /** Run the command again, up to this many more times, while `until` is false (or while it fails). */
  retries: integer('retries', 1).optional(),
  /** Seconds between two tries (default 5). */
  delay: z
    .number(says((got) => `delay must be a number of seconds (0 or more), got ${got}`))
    .min(
      0,
      says((got) => `delay must be a number of seconds (0 or more), got ${got}`),
    )
    .optional(),
  /** The result that ends the retries; still false after the last try: the task fails. */
  until: resultCheck('until').optional(),
};

const argvMessage = says((got) => `argv must be a non-empty list of strings, got ${got}`);

const commandOptions = z.strictObject({
  /** The program and its arguments, each one word (quoted for the shell by Verdandi). */
  argv: z.array(z.string(argvMessage), argvMessage).min(1, argvMessage),
  ...guards,
});

const shellOptions = z.strictObject({
  /** A shell script, run by `sh` (it travels on stdin: never on a command line). */
  script: z
    .string({ error: 'script must be a non-empty string' })
    .refine((script) => script.trim() !== '', { error: 'script must be a non-empty string' }),
  ...guards,
});

export type CommandOptions = z.input<typeof commandOptions>;
export type ShellOptions = z.input<typeof shellOptions>;
type Guards = z.output<z.ZodObject<typeof guards>>;

/** What runs, how, and the guards that may skip it. */
interface Run extends Guards {
  /** The shell command line that runs it (before cwd, user and env are applied). */
  commandLine: string;
  /** Shown as the step's description. */
  label: string;
}

const MARKER = 'verdandi-guard';
const GUARDS = ['creates', 'removes', 'unless', 'onlyIf'] as const;

const hasGuard = (run: Guards) => GUARDS.some((guard) => run[guard] !== undefined);

/** Guards run in a subshell each, in cwd and as the user, so they see what the command would see. */
function probe({ cwd, user, creates, removes, unless, onlyIf }: Run): string {
  const pathTest = (kind: string, path: string) =>
    `if ( ${and(cwd !== undefined && sh`cd ${cwd}`, sh`test -e ${path}`)} ) 2>/dev/null; then echo '${MARKER} ${kind} yes'; else echo '${MARKER} ${kind} no'; fi`;
  const commandTest = (kind: string, guard: string) =>
    `( ${and(cwd !== undefined && sh`cd ${cwd}`, runAs(user, shellOf(guard)))}\n) </dev/null >/dev/null 2>&1; echo "${MARKER} ${kind} $?"`;
  const lines: string[] = [];
  if (creates !== undefined) lines.push(pathTest('creates', creates));
  if (removes !== undefined) lines.push(pathTest('removes', removes));
  if (unless !== undefined) lines.push(commandTest('unless', unless));
  if (onlyIf !== undefined) lines.push(commandTest('onlyIf', onlyIf));
  return lines.join('\n');
}

/** The step running the command: env on stdin ahead of the command's own stdin. */
function runStep(run: Run): RunStep {
  const env = envFromStdin(run.env);
  const step: RunStep = {
    kind: 'run',
    command: and(env.prelude, run.cwd !== undefined && sh`cd ${run.cwd}`, runAs(run.user, run.commandLine)),
    description: run.label,
  };
  const stdin = env.stdin + (run.stdin ?? '');
  if (stdin !== '') step.stdin = stdin;
  if (run.timeout !== undefined) step.timeoutSeconds = run.timeout;
  const { changedWhen, failedWhen, retries, delay, until } = run;
  const verdict: StepVerdict = { changedWhen, failedWhen, retries, delay, until };
  for (const key of Object.keys(verdict) as Array<keyof StepVerdict>)
    if (verdict[key] === undefined) delete verdict[key];
  if (Object.keys(verdict).length > 0) step.verdict = verdict;
  return step;
}

function plan(run: Run, probe: ProbeResult): Plan {
  const { creates, removes, unless, onlyIf } = run;
  if (!hasGuard(run))
    return { steps: [runStep(run)], reason: 'no creates/removes/unless/onlyIf guard: always runs' };
  const seen = new Map(markedLines(probe.stdout, MARKER).map(([kind, value]) => [kind, value]));
  const missing = GUARDS.filter((kind) => run[kind] !== undefined && !seen.has(kind));
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
  return { steps: [runStep(run)], reason: reasons.join(', ') };
}

/** `delay` alone would be ignored without a word: it spaces tries, which `retries` or `until` ask for. */
function checkRetries<T extends Guards>(options: T, fail: Fail): T {
  if (options.delay !== undefined && options.retries === undefined && options.until === undefined) {
    fail('delay', 'delay is the wait between two tries: it needs retries or until', 'add retries: <n>');
  }
  return options;
}

/** Runs `argv` (a program and its arguments) as given, on every run unless a guard says otherwise. */
export const command = defineTask({
  type: 'command',
  becomeUser: { sameAs: 'user' },
  options: commandOptions,
  subject: 'argv',
  label: (argv) => `command ${words(...argv)}`,
  labelShowsContent: true,
  prepare: ({ argv, ...rest }, { label, fail }: PrepareContext): Run => ({
    ...checkRetries(rest, fail),
    commandLine: words(...argv),
    label,
  }),
  probe,
  plan,
  alwaysRuns: (run) => !hasGuard(run),
});

/** Runs a shell script with `sh`, on every run unless a guard says otherwise. */
export const shell = defineTask({
  type: 'shell',
  becomeUser: { sameAs: 'user' },
  options: shellOptions,
  subject: 'script',
  label: (script) => `shell ${script.trim().split('\n')[0]}`,
  labelShowsContent: true,
  prepare: ({ script, ...rest }, { label, fail }: PrepareContext): Run => ({
    ...checkRetries(rest, fail),
    commandLine: shellOf(script),
    label,
  }),
  probe,
  plan,
  alwaysRuns: (run) => !hasGuard(run),
});

// ---------------------------------------------------------------------------------------------------
// Helpers shared with other system tasks (git, docker)

/**
 * A command that runs `script` in a shell of its own (`sh -c script` would put the script, secrets and
 * all, on the host's process list). The script is a here-document on fd 3: its text is part of the
 * step's script, which travels on stdin; the new shell reads it from fd 3 and evals it, so its command
 * line is the fixed `sh -c 'vd_s=$(cat <&3) ...'`. Its stdin stays the step's (the command's `stdin`).
 * It works through `runuser` too: the open fd is inherited, no file permission to grant. The
 * here-document ends the command's line: anything after it starts on a new line.
 */
export function shellOf(script: string): string {
  return `${words('sh', '-c', 'vd_s=$(cat <&3); exec 3<&-; eval "$vd_s"')} ${hereDocument(3, script)}`;
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
