/**
 * What deploy, rollback and status print: one line per step per host and site, an indented block for
 * a failure (command, exit code, output tail), everything through `redact`. With --json, lines go to
 * stderr and stdout carries one JSON document at the end.
 */
import { redact } from '../util/redact.js';
import { type DeployLogEntry, notifyObservers } from '../util/run-events.js';

export interface DeployOutputOptions {
  json: boolean;
  verbose: boolean;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

export class DeployOutput {
  private readonly out: NodeJS.WritableStream;
  private readonly err: NodeJS.WritableStream;
  constructor(readonly opts: DeployOutputOptions) {
    this.out = opts.out ?? process.stdout;
    this.err = opts.err ?? process.stderr;
  }

  private write(text: string): void {
    (this.opts.json ? this.err : this.out).write(`${redact(text)}\n`);
  }

  /** `web1  app  health check  ok (0.8 s)` */
  step(host: string, site: string, step: string, detail: string): void {
    const status = /^FAILED/.test(detail) ? 'failed' : step === 'skipped' ? 'skipped' : 'ok';
    notifyObservers((o) => o.task?.(host, `${site} › ${step}`, status, redact(detail)));
    this.write(`${host}  ${site}  ${step.padEnd(22)} ${detail}`);
  }

  /** What was written into the site's deploy log on `host`: for the run history, nothing printed. */
  logged(host: string, entry: DeployLogEntry): void {
    notifyObservers((o) => o.deployLogged?.(host, entry));
  }

  info(text: string): void {
    this.write(text);
  }

  /** An indented block: a failure's report (after a FAILED step) or a plan. */
  block(text: string): void {
    notifyObservers((o) => o.failure?.(redact(text)));
    this.write(
      text
        .replace(/\s+$/, '')
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n'),
    );
  }

  verbose(text: string): void {
    if (this.opts.verbose) this.write(text);
  }

  warn(text: string): void {
    this.err.write(`${redact(text)}\n`);
  }

  /** The --json document (stdout), or nothing. */
  json(doc: unknown): void {
    if (this.opts.json) this.out.write(`${redact(JSON.stringify(doc, null, 2))}\n`);
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
