/**
 * defineTask: how a task type is declared. A task type is data and pure functions:
 *
 *   export const service = defineTask({
 *     type: 'service',
 *     options: z.strictObject({ unit: ..., state: ..., enabled: ... }),   // its own options, as zod
 *     subject: 'unit',                                                   // the option naming the resource
 *     label: (unit) => `service ${unit}`,                                // how output names the task
 *     probe,                                                             // (options) → shell that only reads
 *     files,                                                             // (options) → paths whose state plan needs
 *     plan,                                                              // (options, probe output) → steps
 *   });
 *
 * The function it returns is what roles call. It takes the type's options plus the common ones (`name`
 * for the label, `notify`, `tags`, `when`, `sensitive`, `ignoreErrors`, `becomeUser`, `onlyIfChanged`), checks them against the schema
 * and throws a TaskOptionError (`<label>: <problem> (at <role file>:<line>)`) right there, inside the
 * role's `tasks()`, before any host is touched. Unknown options are errors too (a typo would otherwise
 * be ignored silently).
 *
 * `prepare` is for what a schema cannot say: checks across options, or reading local files (a template
 * is rendered when the task is built). What it returns is what probe and plan receive.
 */
import type { z } from 'zod';
import type { FileQuery, Plan, ProbeResult, Step, Task, TaskOptions } from '../engine/types.js';
import { taskBase } from '../engine/types.js';
import { missingUserPlan, probeAsUser } from './become-user.js';
import { callerLocation, loginName, shown, taskOptionError } from './options.js';

/** The options every task type takes (see TaskOptions). */
const COMMON_OPTIONS = [
  'name',
  'notify',
  'tags',
  'when',
  'sensitive',
  'ignoreErrors',
  'becomeUser',
  'onlyIfChanged',
] as const;

/** Raises the error of a wrong option from inside `prepare`. */
export type Fail = (option: string | undefined, problem: string, hint?: string) => never;

/** What `prepare` gets besides the options. */
export interface PrepareContext {
  fail: Fail;
  /** The task's label as output shows it (the `name` option when given). */
  label: string;
}

export interface TaskTypeDefinition<
  S extends z.ZodObject,
  K extends keyof z.output<S> & string,
  Spec,
  Renamed extends boolean,
> {
  /** Task type, as reports and --json show it (`service`, `postgresDb`). */
  type: string;
  /** The type's own options. Every check words its message (see ./options.ts). */
  options: S;
  /** The option that names what the task manages (`unit`, `path`): the label is made from it. */
  subject: K;
  /**
   * True when `name` was the subject's spelling before `name` meant the label everywhere: a call with
   * `name` and without the subject still works, and warns once per run that the spelling is deprecated.
   */
  subjectWasName?: Renamed;
  /**
   * Options added after `name` became the label: a call with one of them is new code, whose `name` is
   * the label even without the subject (`service({ name: 'reload units', daemonReload: true })`).
   */
  newerThanRename?: string[];
  /** How output names the task (`service nginx`), and what prefixes its option errors. */
  label(subject: z.output<S>[K]): string;
  /**
   * The label shows what the task runs (a script's first line, a command line), where a secret may be
   * written: a `sensitive` task without `name` is then labelled by its type alone (`shell (sensitive)`)
   * in output, --json, the history and its option errors, as Ansible's no_log hides a task's arguments.
   */
  labelShowsContent?: boolean;
  /** A longer label for output, when the subject alone says too little (`link /a → /b`). */
  describe?(spec: Spec): string;
  /** Checks across options and local reads; returns what probe and plan receive. */
  prepare?(options: z.output<S>, context: PrepareContext): Spec;
  /** Shell fragment reading the state on the host. It never changes anything: check mode runs it. */
  probe(spec: Spec): string;
  /**
   * Paths whose state (and checksum) `plan` needs, found in `ProbeResult.files`: read by the engine for
   * every task of a probe batch at once, cheaper than the same read in each probe.
   */
  files?(spec: Spec): FileQuery[];
  /** Pure: from what the probe printed, the steps that converge the host. */
  plan(spec: Spec, result: ProbeResult): Plan;
  /** The task's output must never be shown (it carries a password), whatever `sensitive` says. */
  sensitive?(spec: Spec): boolean;
  /** The task runs on every run (a command without a guard): check mode says "would run". */
  alwaysRuns?(spec: Spec): boolean;
  /**
   * How the type takes the common `becomeUser` (not given: its probe and steps run as that user).
   * `refuse`: why only root can do what the type does; becomeUser is then an error when the task is
   * built. `sameAs`: the type's own option naming the user it runs as (command's `user`, git's
   * `owner`): both with different values is an error; with the same value the own option is dropped
   * before `prepare` (runuser, which it would run, is root's only).
   */
  becomeUser?: { refuse: string } | { sameAs: NoInfer<keyof z.output<S> & string> };
}

/** What a task function takes: its options and the common ones; with a renamed subject, the old form too. */
export type TaskInput<S extends z.ZodObject, K extends string, Renamed extends boolean> =
  | (z.input<S> & TaskOptions)
  | (Renamed extends true ? Omit<z.input<S>, K> & Omit<TaskOptions, 'name'> & { name: string } : never);

/** Deprecated spellings already reported in this run (one warning per task type and process). */
const warnedRenames = new Set<string>();

function warnRenamed(type: string, subject: string, where: string | undefined): void {
  if (warnedRenames.has(type)) return;
  warnedRenames.add(type);
  process.emitWarning(
    `${type}({ name }) naming the ${subject} is deprecated: write ${type}({ ${subject} })${where ? ` (at ${where})` : ''}. ` +
      `\`name\` is the task's label in every task type; the old spelling stops working in the next release.`,
    { type: 'DeprecationWarning', code: 'VERDANDI_TASK_NAME' },
  );
}

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
  params?: { hint?: string };
}

/** The option, the problem and the hint of zod's first issue. */
function describeIssue(issue: Issue, known: string[]): { option?: string; problem: string; hint?: string } {
  const option = issue.path.length > 0 ? issue.path.map(String).join('.') : undefined;
  if (issue.code === 'unrecognized_keys' && issue.keys) {
    const keys = issue.keys;
    return {
      option: keys[0],
      problem: `unknown option${keys.length > 1 ? 's' : ''} ${keys.join(', ')}`,
      hint: `the options are ${[...known, ...COMMON_OPTIONS].join(', ')}`,
    };
  }
  // Every piece of ./options.ts words its message; zod's own ("Invalid input...") needs the option named.
  const generic = /^(Invalid|Too (big|small))/.test(issue.message);
  return {
    option,
    problem: generic && option ? `${option}: ${issue.message}` : issue.message,
    hint: issue.params?.hint,
  };
}

/** A subject given as text (or a list of texts), to show in the label of its own error. */
function givenText(given: unknown): string[] {
  const texts = Array.isArray(given) ? given : [given];
  if (!texts.every((text) => typeof text === 'string')) return [];
  const shown = texts.join(', ').trim();
  return shown === '' ? [] : [shown];
}

/** Checks `becomeUser` against the type (see TaskTypeDefinition.becomeUser); drops a same own user. */
function becomeUserOf(
  type: string,
  how: { refuse: string } | { sameAs: string } | undefined,
  user: unknown,
  options: Record<string, unknown>,
  fail: Fail,
): void {
  const name = loginName('becomeUser').safeParse(user);
  if (!name.success) fail('becomeUser', name.error.issues[0].message);
  if (how === undefined) return;
  if ('refuse' in how) {
    fail(
      'becomeUser',
      `${type} cannot run as another user: ${how.refuse}`,
      'remove becomeUser (the task runs as root)',
    );
  }
  const own = options[how.sameAs];
  if (own === undefined) return;
  if (own !== user) {
    fail(
      'becomeUser',
      `becomeUser ${shown(user)} and ${how.sameAs} ${shown(own)} name different users`,
      `give one of them: becomeUser runs the whole task (probe included) as that user`,
    );
  }
  options[how.sameAs] = undefined;
}

/**
 * A plan run as a becomeUser: the owner and group its writes keep from the file they replace (a plan
 * writes them out to keep them) are dropped when the task's options do not set them. The write then
 * keeps them only when the user may give them, else the file is the user's, as with Ansible's
 * become_user (engine/steps.ts); an owner the task sets is still required.
 */
function ownedByUser(plan: Plan, owner: unknown, group: unknown): Plan {
  if (owner !== undefined && group !== undefined) return plan;
  const steps = plan.steps.map((step): Step => {
    if (step.kind !== 'write') return step;
    const mine = { ...step };
    if (owner === undefined) delete mine.owner;
    if (group === undefined) delete mine.group;
    return mine;
  });
  return { ...plan, steps };
}

export function defineTask<
  S extends z.ZodObject,
  K extends keyof z.output<S> & string,
  Spec = z.output<S>,
  Renamed extends boolean = false,
>(def: TaskTypeDefinition<S, K, Spec, Renamed>): (options: TaskInput<S, K, Renamed>) => Task {
  const known = Object.keys(def.options.shape);

  const build = (input: TaskInput<S, K, Renamed>): Task => {
    const given: Record<string, unknown> = { ...(input as object) };
    const newCode = def.newerThanRename?.some((option) => given[option] !== undefined) ?? false;
    if (def.subjectWasName && !newCode && given[def.subject] === undefined && given.name !== undefined) {
      given[def.subject] = given.name;
      delete given.name;
      warnRenamed(def.type, def.subject, callerLocation(new Error().stack));
    }
    const common: TaskOptions = {};
    const own: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(given)) {
      if ((COMMON_OPTIONS as readonly string[]).includes(key))
        (common as Record<string, unknown>)[key] = value;
      else own[key] = value;
    }

    // A sensitive task whose label would show its content is named by its type alone (labelShowsContent).
    const hiddenLabel = def.labelShowsContent && common.sensitive ? `${def.type} (sensitive)` : undefined;
    const parsed = def.options.safeParse(own);
    if (!parsed.success) {
      const issue = parsed.error.issues[0] as unknown as Issue;
      const { option, problem, hint } = describeIssue(issue, known);
      // The label names the subject once it is valid; a wrong subject is shown as given when it is text.
      const subject = def.options.shape[def.subject].safeParse(own[def.subject]);
      const label =
        hiddenLabel ??
        (option !== def.subject && subject.success
          ? def.label(subject.data)
          : [def.type, ...givenText(own[def.subject])].join(' '));
      throw taskOptionError(def.type, label, option, problem, hint);
    }
    const options = parsed.data as z.output<S>;
    const label = hiddenLabel ?? def.label(options[def.subject]);
    const fail: Fail = (option, problem, hint) => {
      throw taskOptionError(def.type, label, option, problem, hint);
    };
    if (common.becomeUser !== undefined)
      becomeUserOf(def.type, def.becomeUser, common.becomeUser, options, fail);
    const spec = def.prepare
      ? def.prepare(options, { fail, label: common.name ?? label })
      : (options as unknown as Spec);

    const task: Task = {
      ...taskBase(def.type, def.describe ? def.describe(spec) : label, common),
      probe: def.probe(spec),
      plan: (result: ProbeResult) => def.plan(spec, result),
    };
    if (task.becomeUser !== undefined) {
      const user = task.becomeUser;
      task.probe = probeAsUser(user, task.probe);
      const own = options as Record<string, unknown>;
      task.plan = (result: ProbeResult) =>
        missingUserPlan(user, result) ?? ownedByUser(def.plan(spec, result), own.owner, own.group);
    }
    // Where the task was built: an onlyIfChanged that names no earlier task is found at plan time,
    // after tasks() returned, when the user's line is no longer on the stack.
    if (task.onlyIfChanged) task.definedAt = callerLocation(new Error().stack);
    if (def.files) task.files = def.files(spec);
    if (def.sensitive?.(spec)) task.sensitive = true;
    if (def.alwaysRuns?.(spec)) task.alwaysRuns = true;
    return task;
  };
  Object.defineProperty(build, 'name', { value: def.type });
  return build;
}
