/**
 * Records one command's run into the history. It is a consumer of the run's typed events
 * (engine/events.ts): tasks and deploy steps with their round trips, unreachable hosts, refused locks,
 * interrupted hosts, what deploys wrote into the sites' logs. It keeps them in memory, and at the end leaves it in the spool for the importer (spool.ts): recording
 * costs a run no round trip, no write while it runs and no database work at its end. A store that
 * cannot be written is a warning; the run's outcome and exit code are never changed by it.
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import { promisify } from 'node:util';
import type { RunEvent } from '../engine/events.js';
import { redact } from '../util/redact.js';
import type { DeployLogEntry } from '../util/run-events.js';
import { spoolRun, spoolTrouble } from './spool.js';
import type {
  HostRecord,
  HostStatus,
  RunRecord,
  RunStatus,
  SiteDeployRecord,
  TaskRecord,
  TaskStatus,
} from './types.js';

const run = promisify(execFile);

export interface RecorderStart {
  command: string;
  env: string;
  /** The command line's arguments after `verdandi` (redacted when recorded). */
  args: string[];
  projectDir: string;
  verdandiVersion: string;
}

export interface RunEnd {
  exitCode: number;
  /** The error that ended the command, if one did. */
  error?: { message: string; internal: boolean };
}

interface HostState {
  record: HostRecord;
  /** When the host's last task ended (ms since the run started): the next one starts there. */
  lastAt: number;
  /** A diff shown before the task line it belongs to. */
  pendingDiff?: string;
  /** Commands sent to the host so far (the sum of its tasks' and steps' round trips). */
  sent: number;
  /** The host's round trips as the run's end gives them. */
  engineRoundTrips?: number;
}

export class Recorder {
  private readonly started = Date.now();
  private readonly startedAt = new Date(this.started).toISOString();
  private readonly hosts = new Map<string, HostState>();
  private readonly deploys: SiteDeployRecord[] = [];
  private check = false;
  /** Read while the run works (git costs a few milliseconds we do not wait for). */
  private readonly git: Promise<{ commit: string | null; dirty: boolean | null }>;

  constructor(private readonly start: RecorderStart) {
    this.git = gitState(start.projectDir);
  }

  private now(): number {
    return Date.now() - this.started;
  }

  /** Takes one event of the run. */
  readonly handle = (e: RunEvent): void => {
    switch (e.type) {
      case 'host-connected':
        this.host(e.host);
        break;
      case 'task':
        this.task(e.host, e.label, e.ignored ? 'ignored' : e.status, e.detail, e.roundTrips, e.failure);
        break;
      case 'step': {
        if (e.status === 'started') break;
        const status: TaskStatus =
          e.status === 'failed' || e.status === 'interrupted'
            ? 'failed'
            : e.status === 'skipped'
              ? 'skipped'
              : 'ok';
        this.task(e.host, `${e.site} › ${e.step}`, status, e.detail, e.roundTrips, e.output);
        break;
      }
      case 'diff':
        // The diff is shown before its task's line: it belongs to the host's next task.
        this.host(e.host).pendingDiff = redact(e.text);
        break;
      case 'deploy-logged':
        this.deployLogged(e.host, e.entry);
        break;
      case 'host-unreachable':
        this.hostEnded(e.host, 'unreachable', e.reason);
        break;
      case 'host-interrupted':
        this.hostEnded(e.host, 'interrupted', e.detail);
        break;
      case 'host-failed':
        this.task(e.host, 'error', 'failed', e.message, 0);
        break;
      case 'lock':
        // A refused lock is the host's failure: a task of its own, with who holds the lock.
        if (e.state === 'refused') this.task(e.host, 'deploy lock', 'failed', e.message, 0);
        // `verdandi lock release`: what it removed, and whose.
        if (e.state === 'released') this.task(e.host, 'deploy lock', 'changed', e.message, 0);
        break;
      case 'run-ended':
        this.check = e.check;
        for (const [name, n] of Object.entries(e.roundTrips)) this.host(name).engineRoundTrips = n;
        break;
    }
  };

  private host(name: string): HostState {
    let h = this.hosts.get(name);
    if (!h) {
      const at = this.now();
      h = {
        lastAt: at,
        sent: 0,
        record: {
          name,
          status: 'ok',
          ok: 0,
          changed: 0,
          failed: 0,
          skipped: 0,
          roundTrips: 0,
          startedMs: at,
          durationMs: 0,
          detail: null,
          tasks: [],
        },
      };
      this.hosts.set(name, h);
    }
    return h;
  }

  private task(
    host: string,
    label: string,
    status: TaskStatus,
    detail: string | undefined,
    roundTrips: number,
    failure?: string,
  ): void {
    const h = this.host(host);
    const at = this.now();
    const task: TaskRecord = {
      seq: h.record.tasks.length,
      label: redact(label),
      status,
      detail: detail === undefined ? null : redact(detail),
      startedMs: h.lastAt,
      durationMs: at - h.lastAt,
      roundTrips,
      diff: h.pendingDiff ?? null,
      failure: failure === undefined ? null : redact(failure),
    };
    h.pendingDiff = undefined;
    h.lastAt = at;
    h.sent += roundTrips;
    // An ignored failure is in the task list only: it neither fails the host nor counts as ok.
    if (status !== 'ignored') h.record[status]++;
    h.record.tasks.push(task);
  }

  private deployLogged(host: string, e: DeployLogEntry): void {
    // As on the host (the report matches the two by host, site, action, release and time).
    const text = (v: string | undefined) => (v === undefined ? null : redact(v));
    this.deploys.push({
      host,
      site: e.site,
      action: e.action,
      release: e.release,
      time: e.time,
      by: redact(e.by),
      outcome: e.outcome,
      commit: text(e.commit),
      branch: text(e.branch),
      step: text(e.step),
      from: text(e.from),
    });
  }

  private hostEnded(host: string, status: 'unreachable' | 'interrupted', detail: string): void {
    const h = this.host(host);
    if (h.record.status === 'unreachable') return;
    h.record.status = status;
    h.record.detail = redact(detail);
  }

  /** The run as it will be stored. */
  async toRecord(end: RunEnd): Promise<RunRecord> {
    const git = await this.git;
    const hosts = [...this.hosts.values()].map(({ record, lastAt, sent, engineRoundTrips }) => {
      record.durationMs = lastAt - record.startedMs;
      record.roundTrips = engineRoundTrips ?? sent;
      record.status = hostStatus(record);
      return record;
    });
    return {
      command: this.start.command,
      env: this.start.env,
      argv: redact(['verdandi', ...this.start.args].map(shellWord).join(' ')),
      user: userName(),
      machine: os.hostname(),
      gitCommit: git.commit,
      gitDirty: git.dirty,
      startedAt: this.startedAt,
      durationMs: this.now(),
      status: runStatus(end, hosts),
      exitCode: end.exitCode,
      check: this.check || this.start.args.includes('--check'),
      error: end.error ? redact(end.error.message) : null,
      verdandiVersion: this.start.verdandiVersion,
      hosts,
      deploys: this.deploys,
    };
  }

  /**
   * Leaves the run for the importer (spool.ts): a millisecond, whatever the store. Problems are one
   * warning line on stderr; the run's outcome and exit code never change. Returns the spooled file.
   */
  async finish(end: RunEnd): Promise<string | undefined> {
    const warn = (text: string) => process.stderr.write(`warning: ${redact(text)}\n`);
    const trouble = spoolTrouble(this.start.projectDir);
    if (trouble) {
      warn(
        `the run history cannot be written (${trouble.error}); ${trouble.waiting} run(s) wait in ` +
          '.verdandi/history-spool and are written once it works (`verdandi history import`)',
      );
    }
    try {
      return spoolRun(this.start.projectDir, await this.toRecord(end));
    } catch (err) {
      warn(
        `this run was not recorded in the history (${(err as Error).message}); the run itself is unaffected`,
      );
      return undefined;
    }
  }
}

function hostStatus(h: HostRecord): HostStatus {
  if (h.status === 'unreachable' || h.status === 'interrupted') return h.status;
  if (h.failed > 0) return 'failed';
  if (h.changed > 0) return 'changed';
  if (h.ok === 0 && h.skipped > 0) return 'skipped';
  return 'ok';
}

function runStatus(end: RunEnd, hosts: HostRecord[]): RunStatus {
  if (end.exitCode === 130 || end.exitCode === 143) return 'interrupted';
  if (end.error?.internal) return 'crashed';
  if (end.exitCode === 3) return 'unreachable';
  if (end.exitCode === 2) return 'failed';
  if (end.exitCode !== 0) return 'error';
  return hosts.some((h) => h.changed > 0) ? 'changed' : 'ok';
}

function userName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

/** An argument as a shell would need it, so the recorded command line can be run again. */
function shellWord(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * The project's commit and whether tracked files differ from it: one `git status` (its porcelain v2
 * header names the commit), where `git rev-parse HEAD` and `git status` were two processes to start.
 */
export async function gitState(dir: string): Promise<{ commit: string | null; dirty: boolean | null }> {
  try {
    const { stdout } = await run(
      'git',
      ['-C', dir, 'status', '--porcelain=v2', '--branch', '--untracked-files=no'],
      { timeout: 10_000 },
    );
    const lines = stdout.split('\n').filter((line) => line !== '');
    const commit = lines.find((line) => line.startsWith('# branch.oid '))?.slice('# branch.oid '.length);
    // A repository without a commit yet: nothing to name, as when it is not one.
    if (commit === undefined || commit === '(initial)') return { commit: null, dirty: null };
    return { commit, dirty: lines.some((line) => !line.startsWith('# ')) };
  } catch {
    return { commit: null, dirty: null }; // not a git repository, or no git
  }
}
