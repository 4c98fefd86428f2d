/**
 * The output of a run. `Reporter` is how the engine says what happens: each call is one typed event
 * (events.ts). `TerminalOutput` is the consumer that shows them: a line per task per host, a line per
 * deploy step, a spinner on a TTY (plain lines otherwise and in CI), a recap table. With --json it
 * prints only what must be seen (failures, warnings) on stderr; the document is json-output.ts's.
 * Every text of an event was redacted when it was emitted.
 */
import type { Ora } from 'ora';
import { type RunEvent, RunEvents, type TaskStatus } from './events.js';

export type { TaskStatus } from './events.js';

export interface HostStats {
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
  /** Failed tasks with `ignoreErrors` (not counted in `failed`), and their labels. */
  ignored: number;
  ignoredTasks: string[];
  unreachable: boolean;
  /** The run of this host was stopped by Ctrl-C / SIGTERM before it was done. */
  interrupted: boolean;
  roundTrips: number;
}

export function emptyStats(): HostStats {
  return {
    ok: 0,
    changed: 0,
    failed: 0,
    skipped: 0,
    ignored: 0,
    ignoredTasks: [],
    unreachable: false,
    interrupted: false,
    roundTrips: 0,
  };
}

/** The per-host counts of a run, from its events (the recap and `--json` both show them). */
export class HostTally {
  readonly stats = new Map<string, HostStats>();

  host(name: string): HostStats {
    let s = this.stats.get(name);
    if (!s) {
      s = emptyStats();
      this.stats.set(name, s);
    }
    return s;
  }

  count(e: RunEvent): void {
    switch (e.type) {
      case 'host-connected':
        this.host(e.host);
        break;
      case 'task':
        if (e.ignored) {
          // A failure `ignoreErrors` ignores: counted apart from `failed`, as Ansible's recap does.
          this.host(e.host).ignored++;
          this.host(e.host).ignoredTasks.push(e.label);
        } else this.host(e.host)[e.status]++;
        break;
      case 'host-failed':
        this.host(e.host).failed++;
        break;
      case 'lock':
        if (e.state === 'refused') this.host(e.host).failed++;
        break;
      case 'host-unreachable':
        this.host(e.host).unreachable = true;
        break;
      case 'host-interrupted':
        this.host(e.host).interrupted = true;
        break;
      case 'run-ended':
        for (const [name, n] of Object.entries(e.roundTrips)) this.host(name).roundTrips = n;
        break;
    }
  }
}

export interface ReporterOptions {
  json: boolean;
  verbose: boolean;
  check: boolean;
  /** Default: process.stdout. */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface TerminalOptions extends ReporterOptions {
  /** The table of counts per host at the end (provision, run). */
  recap?: boolean;
  /** Default: process.stderr. */
  err?: NodeJS.WritableStream;
  /** Warnings on stderr (deploy & co: their stdout is the steps); provision and run keep them in line. */
  warnsToStderr?: boolean;
}

/**
 * What the engine calls while a run works: each call emits one event. Without an event stream of its
 * own, it makes one shown on the terminal (the engine's unit tests give `out`).
 */
export class Reporter {
  readonly events: RunEvents;

  constructor(opts: ReporterOptions, events?: RunEvents) {
    this.events = events ?? new RunEvents().on(new TerminalOutput({ ...opts, recap: true }).handle);
  }

  /** What is happening now (spinner text on a TTY; nothing otherwise). */
  activity(text: string): void {
    this.events.emit({ type: 'message', level: 'activity', text });
  }

  info(text: string): void {
    this.events.emit({ type: 'message', level: 'info', text });
  }

  /** Always shown, even with --json (on stderr then). */
  warn(text: string): void {
    this.events.emit({ type: 'message', level: 'warn', text });
  }

  verbose(text: string): void {
    this.events.emit({ type: 'message', level: 'verbose', text });
  }

  /** A task ended; a failed one with `failure`: the command, exit code and output tail. */
  task(host: string, label: string, status: TaskStatus, detail?: string, failure?: string): void {
    this.events.emit({ type: 'task', host, label, status, detail, failure, roundTrips: 0 });
  }

  /** A task failed and `ignoreErrors` ignores it: shown as failed, counted as `ignored` (as Ansible's recap). */
  ignoredFailure(host: string, label: string, detail: string, failure?: string): void {
    this.events.emit({
      type: 'task',
      host,
      label,
      status: 'failed',
      detail,
      failure,
      ignored: true,
      roundTrips: 0,
    });
  }

  /** The diff of a file on `host` (shown under the task that changes it). */
  diff(host: string, text: string): void {
    this.events.emit({ type: 'diff', host, text });
  }

  /** A handler an earlier run notified, found pending on the host. */
  pendingHandler(host: string, unit: string, name: string): void {
    this.events.emit({ type: 'handler', host, unit, name, state: 'pending' });
  }

  unreachable(host: string, reason: string, step = 'connect'): void {
    this.events.emit({ type: 'host-unreachable', host, reason, step });
  }

  /** The host's run was stopped (Ctrl-C / SIGTERM): `detail` says where. */
  interrupted(host: string, detail: string): void {
    this.events.emit({ type: 'host-interrupted', host, detail });
  }
}

const COLORS = { ok: 32, changed: 33, failed: 31, skipped: 90, unreachable: 35, stopped: 35 } as const;

/** The terminal: lines (and a spinner on a TTY), the recap at the end. A consumer of the events. */
export class TerminalOutput {
  readonly tally = new HostTally();
  private spinner?: Ora;
  private readonly out: NodeJS.WritableStream & { isTTY?: boolean };
  private readonly err: NodeJS.WritableStream;
  private color: boolean;
  private readonly stopped: string[] = [];

  constructor(
    readonly opts: TerminalOptions,
    /** ora's constructor, loaded only when a spinner will show (it costs ~40 ms to import). */
    makeSpinner?: (options: { stream: NodeJS.WritableStream }) => Ora,
  ) {
    this.out = opts.out ?? process.stdout;
    this.err = opts.err ?? process.stderr;
    this.color = TerminalOutput.onTerminal(this.out);
    if (this.color && !opts.json && makeSpinner) this.spinner = makeSpinner({ stream: process.stderr });
    if (process.env.NO_COLOR) this.color = false;
  }

  private static onTerminal(out: { isTTY?: boolean }): boolean {
    return !!out.isTTY && !process.env.CI;
  }

  /** A terminal output with a spinner when the output is a terminal (plain lines otherwise). */
  static async create(opts: TerminalOptions): Promise<TerminalOutput> {
    if (!TerminalOutput.onTerminal(opts.out ?? process.stdout) || opts.json) return new TerminalOutput(opts);
    const { default: ora } = await import('ora');
    return new TerminalOutput(opts, (o) => ora(o));
  }

  private paint(kind: keyof typeof COLORS, text: string): string {
    return this.color ? `\x1b[${COLORS[kind]}m${text}\x1b[0m` : text;
  }

  /** A line of the run: on stdout, or with --json on stderr when `always` (else not at all). */
  private line(text: string, always = false): void {
    if (this.opts.json) {
      if (always) this.err.write(`${text}\n`);
      return;
    }
    if (this.spinner?.isSpinning) {
      this.spinner.clear();
      this.out.write(`${text}\n`);
      this.spinner.render();
    } else {
      this.out.write(`${text}\n`);
    }
  }

  private indented(text: string, always = false): void {
    this.line(
      text
        .replace(/\s+$/, '')
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n'),
      always,
    );
  }

  private activity(text: string): void {
    if (!this.spinner) return;
    this.spinner.text = text;
    if (!this.spinner.isSpinning) this.spinner.start();
  }

  readonly handle = (e: RunEvent): void => {
    this.tally.count(e);
    switch (e.type) {
      case 'task': {
        const word = e.status === 'changed' && this.opts.check ? 'would change' : e.status;
        const tail = e.ignored ? ` (${e.detail}; ignored: ignoreErrors)` : e.detail ? ` (${e.detail})` : '';
        this.line(
          `${this.paint(e.status, word.padEnd(8))} ${e.host}  ${e.label}${tail}`,
          e.status === 'failed',
        );
        if (e.failure !== undefined) {
          if (this.opts.json) this.err.write(`${e.failure}\n`);
          else this.indented(e.failure);
        }
        break;
      }
      case 'diff':
        this.indented(e.text);
        break;
      case 'handler':
        if (this.opts.verbose)
          this.line(
            this.paint('skipped', `${e.host}: handler "${e.name}" was left pending by an earlier run`),
          );
        break;
      case 'host-failed':
        this.line(`${this.paint('failed', 'failed'.padEnd(8))} ${e.host}  error (${e.message})`, true);
        break;
      case 'host-unreachable':
        this.line(`${this.paint('unreachable', 'unreachable'.padEnd(8))} ${e.host}  ${e.reason}`, true);
        break;
      case 'host-interrupted':
        this.stopped.push(e.host);
        this.line(`${this.paint('stopped', 'stopped'.padEnd(8))} ${e.host}  ${e.detail}`, true);
        break;
      case 'lock':
        this.line(`${e.host}  ${e.message}`, true);
        break;
      case 'step':
        if (e.status === 'started') {
          this.activity(`${e.host}  ${e.site}: ${e.step}`);
          break;
        }
        this.line(`${e.host}  ${e.site}  ${e.step.padEnd(22)} ${e.detail}`, true);
        if (e.output !== undefined) this.indented(e.output, true);
        break;
      case 'batch-stopped':
        this.line(
          `stopping: ${e.bad} of ${e.of} hosts of this batch failed (max ${e.maxFailPercentage}%); ${e.notStarted} hosts not started`,
          true,
        );
        break;
      case 'message':
        if (e.level === 'activity') this.activity(e.text);
        else if (e.level === 'warn' && this.opts.warnsToStderr) this.err.write(`${e.text}\n`);
        else if (e.level === 'warn') this.line(e.text, true);
        else if (e.level === 'info') this.line(e.text, true);
        else if (this.opts.verbose) this.line(this.paint('skipped', e.text), true);
        break;
      case 'run-ended':
        this.spinner?.stop();
        if (this.opts.recap && !this.opts.json) this.recap(e.durationMs, e.interruptedBy);
        break;
    }
  };

  stop(): void {
    this.spinner?.stop();
  }

  /** The recap table; `interruptedBy`: the signal that stopped the run. */
  private recap(durationMs: number, interruptedBy?: string): void {
    const stats = this.tally.stats;
    if (stats.size === 0) return;
    const width = Math.max(4, ...[...stats.keys()].map((h) => h.length));
    const head = `${'host'.padEnd(width)}  ${['ok', 'changed', 'failed', 'ignored', 'skipped', 'unreachable', 'round trips'].join('  ')}`;
    this.out.write(`\n${head}\n`);
    for (const [name, s] of stats) {
      const cells = [
        String(s.ok).padStart(2),
        String(s.changed).padStart(7),
        String(s.failed).padStart(6),
        String(s.ignored).padStart(7),
        String(s.skipped).padStart(7),
        (s.unreachable ? 'yes' : 'no').padStart(11),
        String(s.roundTrips).padStart(11),
      ];
      this.out.write(`${name.padEnd(width)}  ${cells.join('  ')}\n`);
    }
    for (const [name, s] of stats) {
      if (s.ignored) this.out.write(`${name}: ignored failures: ${s.ignoredTasks.join(', ')}\n`);
    }
    if (interruptedBy) {
      this.out.write(
        `interrupted by ${interruptedBy}: ${this.stopped.length ? `stopped early: ${this.stopped.join(', ')}` : 'every host had finished'}; ` +
          'notified handlers that did not run are recorded on the hosts and run at the next run\n',
      );
    }
    const label = this.opts.check ? 'check mode: nothing was changed; ' : '';
    this.out.write(`${label}done in ${(durationMs / 1000).toFixed(1)} s\n`);
  }
}
