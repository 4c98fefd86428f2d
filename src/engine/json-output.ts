/**
 * `--json`: one document on stdout at the end of the run, the same shape for every command that walks
 * hosts (`verdandi schema --events` prints its JSON Schema; README, "How a run works"). A consumer of
 * the run's events (events.ts):
 *
 *   { command, env, check, exitCode, durationMs, interruptedBy?,
 *     hosts: { <name>: { ok, changed, failed, skipped, unreachable, interrupted, roundTrips, ... } },
 *     events: [ ... every event but the spinner's activity ... ],
 *     ... }
 *
 * A command's own results come as `result` events: merged into `hosts.<name>` (backup's dumps) or into
 * the document (deploy's `outcomes`, status's `sites`).
 */

import { jsonDocumentWritten } from '../util/stdio.js';
import type { RunEvent } from './events.js';
import { HostTally } from './report.js';

export class JsonOutput {
  private readonly tally = new HostTally();
  private readonly events: RunEvent[] = [];
  private readonly hostData = new Map<string, Record<string, unknown>>();
  private data: Record<string, unknown> = {};
  private started?: Extract<RunEvent, { type: 'run-started' }>;

  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}

  readonly handle = (e: RunEvent): void => {
    this.tally.count(e);
    if (e.type === 'message' && e.level === 'activity') return;
    this.events.push(e);
    if (e.type === 'run-started') this.started = e;
    if (e.type === 'result') {
      if (e.host === undefined) this.data = { ...this.data, ...e.data };
      else {
        this.tally.host(e.host);
        this.hostData.set(e.host, { ...this.hostData.get(e.host), ...e.data });
      }
    }
    if (e.type === 'run-ended') {
      jsonDocumentWritten();
      this.out.write(`${JSON.stringify(this.document(e), null, 2)}\n`);
    }
  };

  document(end: Extract<RunEvent, { type: 'run-ended' }>): Record<string, unknown> {
    const hosts: Record<string, unknown> = {};
    for (const [name, s] of this.tally.stats) hosts[name] = { ...s, ...this.hostData.get(name) };
    return {
      command: this.started?.command,
      env: this.started?.env,
      check: end.check,
      exitCode: end.exitCode,
      durationMs: end.durationMs,
      ...(end.interruptedBy ? { interruptedBy: end.interruptedBy } : {}),
      ...this.data,
      hosts,
      events: this.events,
    };
  }
}
