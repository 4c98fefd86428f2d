/**
 * What the HTML report carries: every run in a compact row (the list stays small with 10,000 runs) and
 * the full detail (hosts, tasks, diffs, failures) of the newest ones.
 */
import type { RunRecord, RunSummary } from '../history/types.js';

/** One run in the list: an array, not an object, so 10,000 of them stay a few megabytes. */
export type RunRow = [
  id: number,
  startedAt: string,
  command: string,
  env: string,
  status: string,
  exitCode: number,
  durationMs: number,
  who: string,
  gitCommit: string,
  gitDirty: 0 | 1,
  ok: number,
  changed: number,
  failed: number,
  hosts: string,
  check: 0 | 1,
  argv: string,
];

export interface ReportData {
  generatedAt: string;
  /** Newest first. */
  runs: RunRow[];
  /** By run id. */
  details: Record<string, Pick<RunRecord, 'hosts' | 'error'>>;
  /** How many of the newest runs carry details. */
  detailCount: number;
}

export function reportData(runs: RunSummary[], details: RunRecord[], generatedAt = new Date()): ReportData {
  return {
    generatedAt: generatedAt.toISOString(),
    runs: runs.map((r) => [
      r.id,
      r.startedAt,
      r.command,
      r.env,
      r.status,
      r.exitCode,
      r.durationMs,
      `${r.user}@${r.machine}`,
      r.gitCommit ?? '',
      r.gitDirty ? 1 : 0,
      r.ok,
      r.changed,
      r.failed,
      r.hostNames.join(','),
      r.check ? 1 : 0,
      r.argv,
    ]),
    details: Object.fromEntries(details.map((d) => [String(d.id), { hosts: d.hosts, error: d.error }])),
    detailCount: details.length,
  };
}
