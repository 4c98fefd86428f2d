/**
 * What deploy, rollback, status, backup and restore say: each call is one typed event of the run
 * (engine/events.ts): a step per host and site (started, ok, failed with the command's output tail),
 * what was written into a site's deploy log, lines for the user. The terminal, --json, the history
 * and the webhooks are the consumers of these events.
 */
import type { RunEvents, StepStatus } from '../engine/events.js';
import type { DeployLogEntry } from '../util/run-events.js';

export class DeployOutput {
  constructor(
    readonly events: RunEvents,
    readonly opts: { verbose: boolean },
  ) {}

  /** `web1  app  health check  ok (0.8 s)` */
  step(host: string, site: string, step: string, detail: string, status: StepStatus = 'ok'): void {
    this.events.emit({ type: 'step', host, site, step, status, detail, roundTrips: 0 });
  }

  /** A step starts (the spinner shows it). */
  started(host: string, site: string, step: string): void {
    this.events.emit({ type: 'step', host, site, step, status: 'started', detail: '', roundTrips: 0 });
  }

  /** A step failed: `output` is the block shown under it (command, exit code, output tail). */
  failed(host: string, site: string, step: string, output?: string, detail = 'FAILED'): void {
    this.events.emit({ type: 'step', host, site, step, status: 'failed', detail, output, roundTrips: 0 });
  }

  /** What was written into the site's deploy log on `host`: for the run history, nothing printed. */
  logged(host: string, entry: DeployLogEntry): void {
    this.events.emit({ type: 'deploy-logged', host, entry });
  }

  info(text: string): void {
    this.events.emit({ type: 'message', level: 'info', text });
  }

  /** An indented block: a plan. */
  block(text: string): void {
    this.info(
      text
        .replace(/\s+$/, '')
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n'),
    );
  }

  verbose(text: string): void {
    this.events.emit({ type: 'message', level: 'verbose', text });
  }

  warn(text: string): void {
    this.events.emit({ type: 'message', level: 'warn', text });
  }

  /** The command's own fields of the --json document. */
  json(doc: Record<string, unknown>): void {
    this.events.emit({ type: 'result', data: doc });
  }
}

/** The last lines of a command's output, for failure reports. */
export function tail(text: string, lines = 20): string {
  const all = text.replace(/\s+$/, '').split('\n');
  return all.slice(-lines).join('\n');
}

/** A multi-line script as one readable line (failure reports show the command that failed). */
export function oneLine(script: string, max = 600): string {
  const lines = script
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  // `do`, `then`, `else`, `{` and `|` go on without a `;` (it would not be valid shell).
  const flat = lines.reduce(
    (acc, l) => (acc === '' ? l : /(\bdo|\bthen|\belse|[{|&])$/.test(acc) ? `${acc} ${l}` : `${acc}; ${l}`),
    '',
  );
  return flat.length > max ? `${flat.slice(0, max)} …` : flat;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
