/**
 * The one event stream of a run. Every command that walks hosts (provision, run, deploy, rollback,
 * status, backup, restore) says what happens as typed events, and everything that shows or keeps a
 * run is a consumer of them and of nothing else: the terminal output (report.ts), `--json`
 * (json-output.ts), the run history (history/recorder.ts) and the webhook notices (deploy/webhook.ts).
 * No consumer reads printed text. `verdandi schema --events` prints the JSON Schema of these events
 * (events-schema.ts).
 *
 * Every text in an event is redacted when it is emitted: a consumer can show or keep it as it is.
 */
import { redact } from '../util/redact.js';
import { type DeployLogEntry, observeRuns } from '../util/run-events.js';
import type { StopSignal } from './interrupt.js';

export type TaskStatus = 'ok' | 'changed' | 'failed' | 'skipped';

/** A deploy step: started, ended ok, failed (with the command's output tail), or other outcomes. */
export type StepStatus = 'started' | 'ok' | 'failed' | 'interrupted' | 'warning' | 'skipped';

export type LockState = 'taken' | 'waiting' | 'broken' | 'taken-over' | 'refused' | 'released';

export type RunEventBody =
  /** The walk starts: the command, its environment and its hosts. */
  | { type: 'run-started'; command: string; env: string; hosts: string[]; check: boolean }
  /** The host's connection is open (its work starts). */
  | { type: 'host-connected'; host: string }
  /** The host could not be reached, or its connection was lost (`step`: where). */
  | { type: 'host-unreachable'; host: string; reason: string; step: string }
  /** Ctrl-C / SIGTERM stopped the host's run (`detail`: where). */
  | { type: 'host-interrupted'; host: string; detail: string }
  /** The host failed outside a task or step (a user error on the host, an internal error). */
  | { type: 'host-failed'; host: string; message: string }
  /**
   * The host's deploy lock: taken, waited for, broken, taken over from a dead holder, refused, or
   * released by `verdandi lock release`.
   */
  | { type: 'lock'; host: string; state: LockState; message: string; holder?: string }
  /** A task of a role or play ended (`roundTrips`: commands sent to the host since its previous task). */
  | {
      type: 'task';
      host: string;
      label: string;
      status: TaskStatus;
      detail?: string;
      /** A failed task: the command, exit code and output tail. */
      failure?: string;
      /** A failure that `ignoreErrors` ignores: the run goes on, the host's recap counts it as ignored. */
      ignored?: boolean;
      roundTrips: number;
    }
  /** The unified diff of a file a task changes (shown before that task). */
  | { type: 'diff'; host: string; text: string }
  /** A handler notified by an earlier run was found pending on the host (it runs after its role). */
  | { type: 'handler'; host: string; unit: string; name: string; state: 'pending' }
  /**
   * A step of a deploy, rollback, backup or restore (`site`: the site or the database it is about);
   * a failed step carries the command's output tail.
   */
  | {
      type: 'step';
      host: string;
      site: string;
      step: string;
      status: StepStatus;
      detail: string;
      output?: string;
      roundTrips: number;
    }
  /** What a deploy or rollback wrote into the site's deploy log on the host. */
  | { type: 'deploy-logged'; host: string; entry: DeployLogEntry }
  /** A site's deploy or rollback is over: what its webhook is told. */
  | {
      type: 'site-done';
      host: string;
      site: string;
      action: 'deploy' | 'rollback';
      ok: boolean;
      /** Branch/tag/sha asked for (deploy) or the release gone back to (rollback). */
      ref: string;
      commit?: string;
      release?: string;
      failedStep?: string;
      detail?: string;
      migrated?: boolean;
      durationMs: number;
    }
  /** Later batches were not started: too many hosts of a batch failed. */
  | { type: 'batch-stopped'; bad: number; of: number; maxFailPercentage: number; notStarted: number }
  /** Command-specific results for `--json`: merged into `hosts.<host>` (with a host) or the document. */
  | { type: 'result'; host?: string; data: Record<string, unknown> }
  /** A line for the user: info, warn (always shown), verbose (-v), activity (spinner text). */
  | { type: 'message'; level: 'info' | 'warn' | 'verbose' | 'activity'; text: string; host?: string }
  /** The walk is over: its exit code and, per host, the SSH round trips it cost. */
  | {
      type: 'run-ended';
      exitCode: number;
      durationMs: number;
      check: boolean;
      roundTrips: Record<string, number>;
      interruptedBy?: StopSignal;
    };

/** An event as consumers get it: `at` is the time since the run started, in ms. */
export type RunEvent = RunEventBody & { at: number };

export type RunEventType = RunEvent['type'];

export type RunListener = (event: RunEvent) => void;

/** Listeners of every run of this process (the run history, registered by the command line). */
const everyRun = new Set<RunListener>();

/** Registers a listener of the events of every run until the returned function is called. */
export function listenToRuns(listener: RunListener): () => void {
  everyRun.add(listener);
  return () => everyRun.delete(listener);
}

function call(listener: RunListener, event: RunEvent): void {
  try {
    listener(event);
  } catch {
    /* a consumer must never break a run (the history reports its own problems at its end) */
  }
}

/**
 * The emitter of one run. It stamps each event with its time, redacts its texts, counts the commands
 * sent to each host (a connection reports each one) and gives each task and step its round trips.
 */
export class RunEvents {
  private readonly started = Date.now();
  private readonly listeners: RunListener[] = [];
  private readonly closers: Array<() => void> = [];
  private readonly sent = new Map<string, number>();
  private readonly sentAtLast = new Map<string, number>();
  private readonly stopCounting: () => void;
  /**
   * Handshakes retried before any host's work met its connection (connections warmed while the roles
   * load) are said when the first one does, or is found unreachable: a run that stops before (a role
   * that does not load) ends with its error alone.
   */
  private runStarted = false;
  private readonly heldRetries: RunEventBody[] = [];

  constructor() {
    this.stopCounting = observeRuns({
      roundTrip: (host) => this.sent.set(host, (this.sent.get(host) ?? 0) + 1),
      // Said in the output, so a run that ends with every host reached still shows a struggling server.
      handshakeRetry: (host, message) => {
        const warning: RunEventBody = { type: 'message', level: 'warn', host, text: `${host}  ${message}` };
        if (this.runStarted) this.emit(warning);
        else this.heldRetries.push(warning);
      },
    });
  }

  /** Adds a consumer of this run's events (terminal, --json, webhooks); `close`: at the run's end. */
  on(listener: RunListener, close?: () => void): this {
    this.listeners.push(listener);
    if (close) this.closers.push(close);
    return this;
  }

  /** The run is over, however it ended (a spinner stops). */
  close(): void {
    this.stopCounting();
    for (const c of this.closers.splice(0)) c();
  }

  emit(body: RunEventBody): void {
    let event = { ...redactDeep(body), at: Date.now() - this.started } as RunEvent;
    if (event.type === 'task' || (event.type === 'step' && event.status !== 'started')) {
      const sent = this.sent.get(event.host) ?? 0;
      event = { ...event, roundTrips: sent - (this.sentAtLast.get(event.host) ?? 0) };
      this.sentAtLast.set(event.host, sent);
    }
    for (const l of this.listeners) call(l, event);
    for (const l of everyRun) call(l, event);
    if (!this.runStarted && (event.type === 'host-connected' || event.type === 'host-unreachable')) {
      this.runStarted = true;
      for (const held of this.heldRetries.splice(0)) this.emit(held);
    }
    if (event.type === 'run-ended') this.stopCounting();
  }

  /** Milliseconds since the run started. */
  elapsed(): number {
    return Date.now() - this.started;
  }
}

/** Every string in `value` redacted (events are plain data: strings, numbers, arrays, objects). */
function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map(redactDeep) as T;
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v)])) as T;
  return value;
}
