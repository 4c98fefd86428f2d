/**
 * The engine's vocabulary. A task is pure data: a probe (a shell fragment that only reads state) and a
 * function from the probe's output to the steps that converge the host (none when it is converged).
 * The engine batches the probes of a whole role into one SSH round trip.
 */
import { z } from 'zod';

/** What a probe printed. `stdout` is the probe's standard output; `exitCode` its status. */
export interface ProbeResult {
  stdout: string;
  exitCode: number;
  /**
   * The state of each path the task asked for in `Task.files`, read in the same round trip as its
   * probe. A path missing from the map could not be read (the host's shell died part way).
   */
  files?: ReadonlyMap<string, FileState>;
}

export type FileType = 'file' | 'dir' | 'link' | 'other';

/** What is at a path on the host (the path itself: a symbolic link is not followed). */
export type FileState =
  | { type: 'absent' }
  | {
      type: FileType;
      uid: number;
      /** User name, or `UNKNOWN` when the uid has no passwd entry (what `stat %U` prints). */
      user: string;
      gid: number;
      /** Group name, or `UNKNOWN` when the gid has no group entry. */
      group: string;
      /** Permission bits including setuid/setgid/sticky, e.g. 0o644 or 0o2775. */
      mode: number;
      /** sha256 of a regular file's content, when the task asked for it. */
      sha256?: string;
      /** Where a symbolic link points (as stored in the link, not resolved). */
      linkTarget?: string;
    };

/**
 * A path whose state a task's plan needs. The engine reads the state of every path of a probe batch
 * at once (one `stat` and one `sha256sum` for all of them, whatever the number of tasks), which is
 * what keeps a no-change run of a thousand file tasks cheap on the host: a task asks for its paths
 * here rather than reading them in its own probe.
 */
export interface FileQuery {
  /** Absolute path. */
  path: string;
  /** Also the sha256 of the content when it is a regular file (reads the whole file). */
  checksum?: boolean;
}

/** Run a shell command on the host (through `sh -c`, with sudo when the host uses `become`). */
export interface RunStep {
  kind: 'run';
  command: string;
  /** Sent on standard input: the way to pass a password or file content without showing it in `ps`. */
  stdin?: string;
  /** What the command does, for output. Defaults to the command itself (redacted). */
  description?: string;
  /** Exit codes that count as success (default [0]). */
  okCodes?: number[];
  /** A secret read from another host of the inventory when the step runs, sent first on stdin. */
  stdinFrom?: PeerRead;
  /**
   * Stop the command with its whole process group after this many seconds; the step then fails
   * (default: the run's `--task-timeout`, else none).
   */
  timeoutSeconds?: number;
  /**
   * A file the controller fetches (once per run and URL, never in check mode; see downloads.ts): the
   * step's standard input is `<size> <sha256>\n` then its content, instead of `stdin`.
   */
  stdinDownload?: ControllerDownload;
  /**
   * How the engine judges what the command did, instead of "changed when it ran, failed unless its exit
   * code is in okCodes" (command and shell's changedWhen, failedWhen, retries, delay, until). See
   * verdict.ts.
   */
  verdict?: StepVerdict;
}

/**
 * What a run step's command did, as a task's changedWhen, failedWhen and until see it. `stdout` and
 * `stderr` are what is kept of them: the last 16 KB of each, led by a `[… N KB not shown]` line when the
 * command printed more (bounded-output.ts).
 */
export interface CommandResult {
  rc: number;
  stdout: string;
  stderr: string;
}

/** A run step's own verdict rules (see RunStep.verdict). The functions run on the controller. */
export interface StepVerdict {
  /** Whether the command changed the host (default: it did, since it ran). `false`: never. */
  changedWhen?: false | ((result: CommandResult) => boolean);
  /** Whether the command failed (default: its exit code is not one of the step's okCodes). */
  failedWhen?: (result: CommandResult) => boolean;
  /** Tries after the first: the command runs again while `until` is false (without `until`: while it fails). */
  retries?: number;
  /** Seconds between two tries. */
  delay?: number;
  /** The result a try must give to stop retrying; still false after the last try: the task fails. */
  until?: (result: CommandResult) => boolean;
}

/** A URL fetched on the controller for a step, at most `maxBytes` long. */
export interface ControllerDownload {
  url: string;
  maxBytes: number;
}

/**
 * A value one host's step needs from another host, known only once the run is under way (a swarm
 * worker needs the manager's join token, which exists once the manager's swarm does). The engine runs
 * `command` on `host` over a connection of its own, when the step is about to run (never in check
 * mode), registers the output as a secret (redacted everywhere) and sends it, then a newline, on the
 * step's standard input ahead of `stdin`: it never appears in a script or on a command line.
 */
export interface PeerRead {
  /** Inventory name of the host to read from. */
  host: string;
  /** Read-only shell run there; its standard output, trimmed, is the value (empty is an error). */
  command: string;
  /** What is read, for messages: "the swarm join token". */
  what: string;
}

/**
 * Write a file atomically: content goes to a temporary file in the same directory (created 0600),
 * owner/group/mode are set, the optional `validate` command runs on it (`%s` is the temporary path),
 * then it is renamed over `path`. An interrupted run never leaves a half-written file.
 */
export interface WriteStep {
  kind: 'write';
  path: string;
  content: string;
  mode?: string;
  owner?: string;
  group?: string;
  validate?: string;
  /**
   * Before the rename, copy the regular file at `path` (owner, mode and times kept) to
   * `<path>.<pid>.<YYYY-MM-DD@HH:MM:SS>~`, as Ansible's `backup: yes` names it; the step prints the
   * copy's path on a `verdandi-backup <path>` line, which the task's line in the output shows.
   */
  backup?: boolean;
}

export type Step = RunStep | WriteStep;

/** The result of planning a task from its probe output. */
export interface Plan {
  /** Commands that converge the task. Empty: the task is converged ("ok"). */
  steps: Step[];
  /** Why a change is needed, in a few words ("nginx is not installed", "content differs"). */
  reason?: string;
  /** For file-like tasks: the desired content, so `--diff` can show what would change. */
  diff?: { path: string; after: string };
  /** The task's own probe failed in a way that is a user error: fail with this message. */
  error?: string;
}

/** Common options every task accepts. */
export interface TaskOptions {
  /** Human label shown in output. Each task type has a sensible default. */
  name?: string;
  /** Handlers (by name) to run once at the end of the role when this task changed something. */
  notify?: string | string[];
  /** Tags for `--tags`. A role's own tags apply to all its tasks. */
  tags?: string[];
  /** Plain TypeScript condition: when false, the task is reported "skipped" and not probed. */
  when?: boolean;
  /** Content or diff of this task may hold secrets: never print them. */
  sensitive?: boolean;
  /** A failure of this task is reported but does not stop the role. */
  ignoreErrors?: boolean;
  /**
   * Run the task's probe and steps as this user (Ansible's `become_user`), through `runuser`, with the
   * user's HOME. Files it writes without an `owner` are the user's. Task types that only root can run
   * (apt, service, user...) refuse it when the task is built.
   */
  becomeUser?: string;
  /**
   * Run only when one of these earlier tasks changed the host in this run (decided at run time;
   * otherwise reported "skipped"): a task object of the same list, listed before this task, or
   * `{ role, task }` / `{ play, task }` naming a task of a role or play that runs before this task on
   * the same host in the same play (see TaskNameRef). Checked when the plan is made.
   */
  onlyIfChanged?: TaskRef | readonly TaskRef[];
}

/**
 * A task of an earlier list of the run on the same host, by its role's (or play's) name and the task's
 * name as output shows it (`{ role: 'app', task: 'copy /etc/app.conf' }`): the object itself is out of
 * reach of another role's code. A play's own tasks are `{ play: 'setup', task }` (`play 2` for a play
 * without a name).
 */
export type TaskNameRef =
  | { readonly role: string; readonly task: string }
  | { readonly play: string; readonly task: string };

/** What `onlyIfChanged` names: a task object, or a task of another list by name. */
export type TaskRef = Task | TaskNameRef;

/** One desired state. Built by the task functions in `src/tasks/` (`apt(...)`, `template(...)`, ...). */
export interface Task {
  /** Task type (`apt`, `template`, ...). */
  type: string;
  /** Label for output: `apt nginx`, `template /etc/nginx/nginx.conf`. */
  name: string;
  /**
   * Shell fragment that reads the current state and prints it on stdout. It must never change
   * anything: check mode runs it. It runs in `sh` (dash on Debian) as part of a batch.
   */
  probe: string;
  /** Paths whose state `plan` finds in `ProbeResult.files` (read with the probe, batched across tasks). */
  files?: readonly FileQuery[];
  /** Pure: from what the probe saw, the steps that converge the host. */
  plan(probe: ProbeResult): Plan;
  notify: string[];
  tags: string[];
  when: boolean;
  sensitive: boolean;
  ignoreErrors: boolean;
  /**
   * The user the probe and steps run as (TaskOptions.becomeUser): the probe is already wrapped (see
   * tasks/become-user.ts); the engine wraps each step when it runs it (engine/steps.ts).
   */
  becomeUser?: string;
  /** Command-like tasks without a guard always run; check mode says "would run". */
  alwaysRuns?: boolean;
  /** Earlier tasks, one of which must have changed for this one to run (TaskOptions.onlyIfChanged). */
  onlyIfChanged?: readonly TaskRef[];
  /** `file:line` of the code that built the task, when it has `onlyIfChanged` (its plan-time errors). */
  definedAt?: string;
}

/** Turns TaskOptions into the common fields of a Task. */
export function taskBase(type: string, defaultName: string, opts: TaskOptions = {}) {
  return {
    type,
    name: opts.name ?? defaultName,
    notify: opts.notify === undefined ? [] : Array.isArray(opts.notify) ? opts.notify : [opts.notify],
    tags: opts.tags ?? [],
    when: opts.when ?? true,
    sensitive: opts.sensitive ?? false,
    ignoreErrors: opts.ignoreErrors ?? false,
    ...(opts.becomeUser === undefined ? {} : { becomeUser: opts.becomeUser }),
    ...(opts.onlyIfChanged === undefined ? {} : { onlyIfChanged: [opts.onlyIfChanged].flat() as TaskRef[] }),
  };
}

/** What a fact's shell printed. */
export interface FactOutput {
  stdout: string;
  exitCode: number;
}

/** One read-only fact. Built by `stat`, `getent`, `installedPackages` or `commandFact` (declared-facts.ts). */
export interface Fact<T> {
  readonly kind: 'fact';
  /** How messages name it: `stat /etc/nginx/nginx.conf`, `command nginx -v`. */
  readonly label: string;
  /** Shell that only reads (run in `sh`, stdin /dev/null, stderr dropped unless the fact keeps it). */
  readonly probe: string;
  /** Pure: the value from what the probe printed. A throw is a user error naming the unit and fact. */
  parse(output: FactOutput): T;
  /** For command facts: the words of the command, checked for secrets before it is sent. */
  readonly argv?: readonly string[];
}

/** What a unit declares: a name per fact. */
export type FactsSpec = Record<string, Fact<unknown>>;

/** The values `tasks()` receives for a declaration: each fact's parsed type under its name. */
export type FactValues<F> = { readonly [K in keyof F]: F[K] extends Fact<infer T> ? T : never };

/** What is known of the host when a role builds its task list. */
export interface HostFacts {
  os: { id: string; versionId: string; codename: string; prettyName: string };
  arch: string;
  kernel: string;
  hostname: string;
  memoryMb: number;
  cpus: number;
  packageCount: number;
  services: string[];
}

export interface HostInfo {
  /** Inventory name of the host. */
  name: string;
  address: string;
  /** Groups the host belongs to (all ancestors included). */
  groups: string[];
  /** Every var of the host after merging (role defaults not included). */
  vars: Record<string, unknown>;
  /** Decrypted secrets of the environment (`{}` when the env has none). Never print them. */
  secrets: Record<string, unknown>;
  /** The environment name (`staging`, `local`, or the inventory file's base name). */
  env: string;
  /** Every host of the inventory with its vars: for roles that span hosts (swarm join, pg_hba). */
  inventory: {
    hosts: Array<{ name: string; address: string; groups: string[]; vars: Record<string, unknown> }>;
  };
  /** Present when the role asked for facts (`gatherFacts: true`). */
  facts?: HostFacts;
}

export type TaskList = Array<Task | Task[] | false | null | undefined>;

// A zod object schema of any shape.
export type VarsSchema = z.ZodObject<any>;

/**
 * `tasks()`'s facts argument: required by a role that declares facts, optional for one that declares
 * none and for a role whose facts are not known to the type (`Role`), which callers may leave out.
 */
type FactsArg<F extends FactsSpec> = keyof F extends never
  ? [facts?: FactValues<F>]
  : string extends keyof F
    ? [facts?: FactValues<F>]
    : [facts: FactValues<F>];

export interface RoleDefinition<S extends VarsSchema = VarsSchema, F extends FactsSpec = FactsSpec> {
  name: string;
  description?: string;
  /**
   * The role's variables: a zod object whose `.default()`s are the role's defaults. Optional: a role
   * without vars has an empty schema (and a var named with its prefix is an unknown key).
   */
  vars?: S;
  /** Gather `host.facts` before `tasks` (one more round trip per host and run; off by default). */
  gatherFacts?: boolean;
  /**
   * Read-only facts `tasks()` needs (stat, getent, installedPackages, commandFact: declared-facts.ts),
   * by name, or a function of the vars returning them. Gathered before the plan, with `gatherFacts`,
   * in one round trip per host (also in `--check`).
   */
  facts?: F | ((vars: z.infer<S>) => F);
  /** The role's tasks, in order, given the declared facts' values. Conditions and loops are plain TypeScript. */
  tasks(vars: z.infer<S>, host: HostInfo, ...facts: FactsArg<F>): TaskList | Promise<TaskList>;
  /**
   * Handlers by name: run once after the role's tasks when notified (and after a failure). Each gets
   * the declared facts' values as `tasks()` does (gathered once, before the plan).
   */
  handlers?: Record<string, (vars: z.infer<S>, host: HostInfo, ...facts: FactsArg<F>) => Task | Task[]>;
  tags?: string[];
}

export interface Role<S extends VarsSchema = VarsSchema, F extends FactsSpec = FactsSpec>
  extends RoleDefinition<S, F> {
  readonly kind: 'role';
  vars: S;
  /** Folder the role was loaded from (templates are read relative to it). */
  dir?: string;
}

/** The schema of a role defined without `vars`: no var. */
type NoVars = z.ZodObject<Record<never, never>>;

/** The facts of a role or play that declares none. */
type NoFacts = Record<never, never>;

export function defineRole<S extends VarsSchema = NoVars, F extends FactsSpec = NoFacts>(
  def: RoleDefinition<S, F>,
): Role<S, F> {
  return { ...def, vars: def.vars ?? (z.object({}) as VarsSchema as S), kind: 'role' };
}

/** A role reference in a play: a built-in or project role name, a Role object, or one with extra vars. */
export type RoleRef =
  | string
  | Role
  | { role: string | Role; vars?: Record<string, unknown>; tags?: string[] };

export interface Play<F extends FactsSpec = FactsSpec> {
  name?: string;
  /** Host pattern, same syntax as `--limit` (`web`, `db*`, `web,!web2`, `all`). */
  hosts: string;
  roles?: RoleRef[];
  /** Read-only facts the play's `tasks` needs, as a role's `facts` (typed with `definePlay`). */
  facts?: F;
  /** Extra tasks after the roles, built per host like a role's, given the declared facts' values. */
  tasks?(host: HostInfo, facts: FactValues<F>): TaskList | Promise<TaskList>;
  /** Handlers by name, given the declared facts' values as `tasks` is. */
  handlers?: Record<string, (host: HostInfo, facts: FactValues<F>) => Task | Task[]>;
  /** Batch size: a number of hosts or a percentage (`"30%"`). Default: all hosts at once. */
  serial?: number | string;
  /** Stop the next batches when more than this percentage of a batch failed (default 0: any failure). */
  maxFailPercentage?: number;
  gatherFacts?: boolean;
}

export interface Playbook {
  readonly kind: 'playbook';
  plays: Play[];
}

/** A play whose `tasks` receive its declared `facts` typed (a play written inline gets them untyped). */
export function definePlay<F extends FactsSpec = NoFacts>(play: Play<F>): Play<F> {
  return play;
}

export function definePlaybook(def: { plays: Play[] }): Playbook {
  return { ...def, kind: 'playbook' };
}
