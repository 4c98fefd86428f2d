/**
 * Output of a run: a line per task per host, a spinner on a TTY (plain lines otherwise and in CI),
 * a recap table, or one JSON document with --json. Everything printed goes through `redact`.
 */
import type { Ora } from 'ora';
import { redact } from '../util/redact.js';
import { notifyObservers } from '../util/run-events.js';

export type TaskStatus = 'ok' | 'changed' | 'failed' | 'skipped';

export interface TaskVerdict {
  task: string;
  status: TaskStatus | 'ignored';
}

export interface HostStats {
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
  /** Failed tasks with `ignoreErrors` (not counted in `failed`), and their labels. */
  ignored: number;
  ignoredTasks: string[];
  /** Every task this host ran, in order, with its verdict (`ignored`: failed with `ignoreErrors`). */
  tasks: TaskVerdict[];
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
    tasks: [],
    unreachable: false,
    interrupted: false,
    roundTrips: 0,
  };
}

export interface ReporterOptions {
  json: boolean;
  verbose: boolean;
  check: boolean;
  /** Default: process.stdout. */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
}

const COLORS = { ok: 32, changed: 33, failed: 31, skipped: 90, unreachable: 35, stopped: 35 } as const;

export class Reporter {
  readonly stats = new Map<string, HostStats>();
  private spinner?: Ora;
  private readonly out: NodeJS.WritableStream & { isTTY?: boolean };
  private readonly color: boolean;
  private readonly started = Date.now();

  constructor(
    readonly opts: ReporterOptions,
    /** ora's constructor, loaded only when a spinner will show (it costs ~40 ms to import). */
    makeSpinner?: (options: { stream: NodeJS.WritableStream }) => Ora,
  ) {
    this.out = opts.out ?? process.stdout;
    this.color = Reporter.onTerminal(this.out);
    if (this.color && !opts.json && makeSpinner) this.spinner = makeSpinner({ stream: process.stderr });
    if (process.env.NO_COLOR) this.color = false;
  }

  private static onTerminal(out: { isTTY?: boolean }): boolean {
    return !!out.isTTY && !process.env.CI;
  }

  /** A reporter with a spinner when the output is a terminal (plain lines otherwise). */
  static async create(opts: ReporterOptions): Promise<Reporter> {
    if (!Reporter.onTerminal(opts.out ?? process.stdout) || opts.json) return new Reporter(opts);
    const { default: ora } = await import('ora');
    return new Reporter(opts, (o) => ora(o));
  }

  host(name: string): HostStats {
    let s = this.stats.get(name);
    if (!s) {
      s = emptyStats();
      this.stats.set(name, s);
      notifyObservers((o) => o.hostStarted?.(name));
    }
    return s;
  }

  private paint(kind: keyof typeof COLORS, text: string): string {
    return this.color ? `\x1b[${COLORS[kind]}m${text}\x1b[0m` : text;
  }

  private line(text: string): void {
    if (this.opts.json) return;
    const clean = redact(text);
    if (this.spinner?.isSpinning) {
      this.spinner.clear();
      this.out.write(`${clean}\n`);
      this.spinner.render();
    } else {
      this.out.write(`${clean}\n`);
    }
  }

  /** What is happening now (spinner text on a TTY; nothing otherwise). */
  activity(text: string): void {
    if (!this.spinner) return;
    this.spinner.text = redact(text);
    if (!this.spinner.isSpinning) this.spinner.start();
  }

  info(text: string): void {
    this.line(text);
  }

  /** Always shown, even with --json (on stderr then). */
  warn(text: string): void {
    if (this.opts.json) process.stderr.write(`${redact(text)}\n`);
    else this.line(text);
  }

  task(host: string, label: string, status: TaskStatus, detail?: string): void {
    const stats = this.host(host);
    stats[status]++;
    stats.tasks.push({ task: redact(label), status });
    notifyObservers((o) => o.task?.(host, label, status, detail === undefined ? undefined : redact(detail)));
    const word = status === 'changed' && this.opts.check ? 'would change' : status;
    const tail = detail ? ` (${detail})` : '';
    const text = `${this.paint(status, word.padEnd(8))} ${host}  ${label}${tail}`;
    if (status === 'failed' && this.opts.json) process.stderr.write(`${redact(text)}\n`);
    this.line(text);
  }

  /** A task failed and `ignoreErrors` ignores it: shown as failed, counted as `ignored` (as Ansible's recap). */
  ignoredFailure(host: string, label: string, detail: string): void {
    const stats = this.host(host);
    stats.ignored++;
    stats.ignoredTasks.push(redact(label));
    stats.tasks.push({ task: redact(label), status: 'ignored' });
    notifyObservers((o) => o.task?.(host, label, 'failed', redact(`${detail}; ignored`)));
    const text = `${this.paint('failed', 'failed'.padEnd(8))} ${host}  ${label} (${detail}; ignored: ignoreErrors)`;
    if (this.opts.json) process.stderr.write(`${redact(text)}\n`);
    this.line(text);
  }

  /** Indented block under a task line: a failure's output, a diff (`diffOf`: the host whose file it is). */
  block(text: string, diffOf?: string): void {
    if (diffOf !== undefined) notifyObservers((o) => o.diff?.(diffOf, redact(text)));
    const indented = text
      .replace(/\n$/, '')
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n');
    if (this.opts.json) return;
    this.line(indented);
  }

  failureBlock(text: string): void {
    notifyObservers((o) => o.failure?.(redact(text)));
    if (this.opts.json) {
      process.stderr.write(`${redact(text)}\n`);
      return;
    }
    this.block(text);
  }

  unreachable(host: string, reason: string): void {
    this.host(host).unreachable = true;
    notifyObservers((o) => o.unreachable?.(host, redact(reason)));
    const text = `${this.paint('unreachable', 'unreachable'.padEnd(8))} ${host}  ${reason}`;
    if (this.opts.json) process.stderr.write(`${redact(text)}\n`);
    this.line(text);
  }

  /** The host's run was stopped (Ctrl-C / SIGTERM): `detail` says where. */
  interrupted(host: string, detail: string): void {
    this.host(host).interrupted = true;
    notifyObservers((o) => o.interrupted?.(host, redact(detail)));
    const text = `${this.paint('stopped', 'stopped'.padEnd(8))} ${host}  ${detail}`;
    if (this.opts.json) process.stderr.write(`${redact(text)}\n`);
    this.line(text);
  }

  verbose(text: string): void {
    if (this.opts.verbose) this.line(this.paint('skipped', text));
  }

  stop(): void {
    this.spinner?.stop();
  }

  /** The recap table (or the --json document); `interruptedBy`: the signal that stopped the run. */
  finish(interruptedBy?: string): void {
    this.stop();
    const durationMs = Date.now() - this.started;
    const roundTrips = Object.fromEntries([...this.stats].map(([name, s]) => [name, s.roundTrips]));
    notifyObservers((o) => o.finished?.({ check: this.opts.check, roundTrips }));
    if (this.opts.json) {
      const hosts: Record<string, HostStats> = {};
      for (const [name, s] of this.stats) hosts[name] = s;
      const doc = { hosts, durationMs, ...(interruptedBy ? { interruptedBy } : {}) };
      process.stdout.write(`${redact(JSON.stringify(doc, null, 2))}\n`);
      return;
    }
    if (this.stats.size === 0) return;
    const width = Math.max(4, ...[...this.stats.keys()].map((h) => h.length));
    const head = `${'host'.padEnd(width)}  ${['ok', 'changed', 'failed', 'ignored', 'skipped', 'unreachable', 'round trips'].join('  ')}`;
    this.out.write(`\n${head}\n`);
    for (const [name, s] of this.stats) {
      const cells = [
        String(s.ok).padStart(2),
        String(s.changed).padStart(7),
        String(s.failed).padStart(6),
        String(s.ignored).padStart(7),
        String(s.skipped).padStart(7),
        (s.unreachable ? 'yes' : 'no').padStart(11),
        String(s.roundTrips).padStart(11),
      ];
      this.out.write(`${redact(name.padEnd(width))}  ${cells.join('  ')}\n`);
    }
    for (const [name, s] of this.stats) {
      if (s.ignored) this.out.write(`${redact(name)}: ignored failures: ${s.ignoredTasks.join(', ')}\n`);
    }
    const stopped = [...this.stats].filter(([, s]) => s.interrupted).map(([name]) => name);
    if (interruptedBy) {
      this.out.write(
        `interrupted by ${interruptedBy}: ${stopped.length ? `stopped early: ${redact(stopped.join(', '))}` : 'every host had finished'}; ` +
          'notified handlers that did not run are recorded on the hosts and run at the next run\n',
      );
    }
    const label = this.opts.check ? 'check mode: nothing was changed; ' : '';
    this.out.write(`${label}done in ${(durationMs / 1000).toFixed(1)} s\n`);
  }
}
