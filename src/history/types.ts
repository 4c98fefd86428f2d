/** What the run history keeps of one run. Every text in it went through `redact` before it got here. */

/** How a run ended: from its exit code (see the README's exit codes) and what it did. */
export type RunStatus = 'ok' | 'changed' | 'failed' | 'unreachable' | 'interrupted' | 'error' | 'crashed';

/** `ignored`: the task failed and `ignoreErrors` let the run go on (counted apart, as Ansible's recap does). */
export type TaskStatus = 'ok' | 'changed' | 'failed' | 'skipped' | 'ignored';

export type HostStatus = Exclude<TaskStatus, 'ignored'> | 'unreachable' | 'interrupted';

export interface TaskRecord {
  /** Order within the host's run, from 0. */
  seq: number;
  /** `nginx › template /etc/nginx/nginx.conf`, or `site › step` for a deploy. */
  label: string;
  status: TaskStatus;
  /** The changed reason or the error. */
  detail: string | null;
  /** Since the start of the run, and how long it took (since the host's previous task ended). */
  startedMs: number;
  durationMs: number;
  /** Commands sent to the host in that time (SSH round trips): a role's probe counts on its first task. */
  roundTrips: number;
  diff: string | null;
  /** The failing command, exit code, stderr and stdout tail. */
  failure: string | null;
}

export interface HostRecord {
  name: string;
  status: HostStatus;
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
  roundTrips: number;
  startedMs: number;
  durationMs: number;
  /** Why it was unreachable or where it was stopped. */
  detail: string | null;
  tasks: TaskRecord[];
}

/** A deploy or rollback of a site on a host, as written into the site's deploy log there. */
export interface SiteDeployRecord {
  host: string;
  site: string;
  action: 'deploy' | 'rollback';
  release: string;
  /** ISO time, as in the host's log (with the host and release, it identifies the entry). */
  time: string;
  by: string;
  outcome: string;
  commit: string | null;
  branch: string | null;
  step: string | null;
  from: string | null;
}

export interface RunRecord {
  /** Given by the store. */
  id?: number;
  /** `provision`, `run`, `deploy`, `rollback`, `backup`, `restore`. */
  command: string;
  env: string;
  /** The command line, secrets redacted. */
  argv: string;
  user: string;
  machine: string;
  gitCommit: string | null;
  gitDirty: boolean | null;
  /** ISO 8601, UTC. */
  startedAt: string;
  durationMs: number;
  status: RunStatus;
  exitCode: number;
  check: boolean;
  /** The error that ended the run, when one did. */
  error: string | null;
  verdandiVersion: string;
  hosts: HostRecord[];
  /** What a deploy or rollback wrote into the sites' deploy logs (none for other commands). */
  deploys: SiteDeployRecord[];
}

/** A run as lists show it: no tasks, counts instead. */
export type RunSummary = Omit<RunRecord, 'hosts' | 'deploys'> & {
  id: number;
  hostNames: string[];
  ok: number;
  changed: number;
  failed: number;
};

/** A site's deploy as the report lists it: the record and the run that made it. */
export interface RecordedDeploy extends SiteDeployRecord {
  runId: number;
  env: string;
}

export interface RunFilter {
  env?: string;
  host?: string;
  status?: string;
  command?: string;
  /** At most this many, newest first. */
  last?: number;
}
