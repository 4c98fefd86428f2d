/** How `verdandi history` prints runs: a table of runs, and one run like the live output. */
import type { RunRecord, RunSummary } from './types.js';

function when(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function formatRunList(runs: RunSummary[]): string {
  if (runs.length === 0) return 'no runs recorded yet\n';
  const rows = runs.map((r) => [
    String(r.id),
    when(r.startedAt),
    r.command + (r.check ? ' --check' : ''),
    r.env,
    r.status,
    `${r.ok}/${r.changed}/${r.failed}`,
    seconds(r.durationMs),
    `${r.user}@${r.machine}`,
    r.hostNames.length > 3
      ? `${r.hostNames.slice(0, 3).join(',')} +${r.hostNames.length - 3}`
      : r.hostNames.join(','),
  ]);
  const head = ['id', 'started (UTC)', 'command', 'env', 'status', 'ok/chg/fail', 'took', 'who', 'hosts'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

export function formatRun(run: RunRecord): string {
  const out: string[] = [];
  const git = run.gitCommit
    ? `${run.gitCommit.slice(0, 12)}${run.gitDirty ? ' (dirty tree)' : ''}`
    : 'not a git tree';
  out.push(`run ${run.id}: ${run.argv}`);
  out.push(`  started ${when(run.startedAt)} by ${run.user}@${run.machine}, took ${seconds(run.durationMs)}`);
  out.push(`  env ${run.env}, commit ${git}, status ${run.status} (exit ${run.exitCode})`);
  if (run.error) out.push(`  error: ${run.error}`);
  out.push('');
  for (const h of run.hosts) {
    if (h.status === 'unreachable') out.push(`${'unreachable'.padEnd(8)} ${h.name}  ${h.detail ?? ''}`);
    for (const t of h.tasks) {
      const word = t.status === 'changed' && run.check ? 'would change' : t.status;
      // What the live output does not say: how long the task took and the round trips it cost.
      out.push(
        `${word.padEnd(8)} ${h.name}  ${t.label}${t.detail ? ` (${t.detail})` : ''}  [${seconds(t.durationMs)}, ${t.roundTrips} rt]`,
      );
      for (const block of [t.diff, t.failure]) {
        if (block)
          out.push(
            ...block
              .replace(/\n$/, '')
              .split('\n')
              .map((l) => `    ${l}`),
          );
      }
    }
    if (h.status === 'interrupted') out.push(`${'stopped'.padEnd(8)} ${h.name}  ${h.detail ?? ''}`);
  }
  for (const d of run.deploys) {
    const what = d.action === 'rollback' ? `rollback to ${d.release}` : `release ${d.release}`;
    const commit = d.commit ? ` (${d.commit.slice(0, 12)}${d.branch ? `, ${d.branch}` : ''})` : '';
    out.push(
      `${'logged'.padEnd(8)} ${d.host}  ${d.site}  ${what}${commit}: ${d.outcome}${d.step ? ` at ${d.step}` : ''}`,
    );
  }
  if (run.hosts.length > 0) {
    const width = Math.max(4, ...run.hosts.map((h) => h.name.length));
    out.push('', `${'host'.padEnd(width)}  ok  changed  failed  skipped  unreachable  round trips`);
    for (const h of run.hosts) {
      out.push(
        `${h.name.padEnd(width)}  ${String(h.ok).padStart(2)}  ${String(h.changed).padStart(7)}  ${String(h.failed).padStart(6)}  ${String(h.skipped).padStart(7)}  ${(h.status === 'unreachable' ? 'yes' : 'no').padStart(11)}  ${String(h.roundTrips).padStart(11)}`,
      );
    }
  }
  return `${out.join('\n')}\n`;
}
