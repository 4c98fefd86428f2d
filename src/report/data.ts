/**
 * What the HTML report carries: every run in a compact row (the list stays small with 10,000 runs) and
 * the full detail (hosts, tasks, diffs, failures) of the newest ones.
 */
import type { RecordedDeploy, RunRecord, RunSummary, SiteDeployRecord } from '../history/types.js';

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

/** One deploy or rollback of a site on a host. */
export type DeployRow = [
  site: string,
  host: string,
  action: string,
  release: string,
  commit: string,
  branch: string,
  by: string,
  time: string,
  outcome: string,
  step: string,
  from: string,
  /** The run of this history that made it (0: none, made elsewhere). */
  runId: number,
  /** `both`: in this history and in the host's log; `here`: only here (host not read); `host`: only there. */
  source: 'both' | 'here' | 'host',
];

/** The per-site deploy history: from this history's runs and, when read, the hosts' own logs. */
export interface DeployHistory {
  rows: DeployRow[];
  /** Whether the hosts' logs were read (`report --hosts`). */
  hostsRead: boolean;
  /** Hosts whose logs could not be read, and why. */
  notes: string[];
}

export interface ReportData {
  generatedAt: string;
  deploys: DeployHistory;
  /** Newest first. */
  runs: RunRow[];
  /** By run id. */
  details: Record<string, Pick<RunRecord, 'hosts' | 'error'>>;
  /** How many of the newest runs carry details. */
  detailCount: number;
}

/** An entry of a site's deploy log, as recorded here or read from its host (absent fields: none). */
export type DeployEntry = Omit<SiteDeployRecord, 'commit' | 'branch' | 'step' | 'from'> &
  Partial<Record<'commit' | 'branch' | 'step' | 'from', string | null>>;

/** Identifies one entry of a site's deploy log, wherever it was read. */
const entryKey = (d: DeployEntry) => [d.host, d.site, d.action, d.release, d.time].join('\u0000');

/**
 * The deploys this history recorded and those read from the hosts, as one list, newest first: an entry
 * in both (same host, site, action, release and time) is listed once.
 */
export function mergeDeploys(
  local: RecordedDeploy[],
  fromHosts?: { entries: DeployEntry[]; notes: string[] },
): DeployHistory {
  const onHosts = new Set((fromHosts?.entries ?? []).map(entryKey));
  const seen = new Set<string>();
  const rows: DeployRow[] = [];
  const row = (d: DeployEntry, runId: number, source: DeployRow[12]): DeployRow => [
    d.site,
    d.host,
    d.action,
    d.release,
    d.commit ?? '',
    d.branch ?? '',
    d.by,
    d.time,
    d.outcome,
    d.step ?? '',
    d.from ?? '',
    runId,
    source,
  ];
  for (const d of local) {
    const key = entryKey(d);
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push(row(d, d.runId, onHosts.has(key) ? 'both' : 'here'));
  }
  for (const d of fromHosts?.entries ?? []) {
    const key = entryKey(d);
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push(row(d, 0, 'host'));
  }
  rows.sort((a, b) => (a[7] < b[7] ? 1 : a[7] > b[7] ? -1 : 0));
  return { rows, hostsRead: !!fromHosts, notes: fromHosts?.notes ?? [] };
}

export function reportData(
  runs: RunSummary[],
  details: RunRecord[],
  deploys: DeployHistory = { rows: [], hostsRead: false, notes: [] },
  generatedAt = new Date(),
): ReportData {
  return {
    generatedAt: generatedAt.toISOString(),
    deploys,
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
