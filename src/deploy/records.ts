/**
 * The deploy logs the hosts keep (one JSON line per deploy and rollback of a site, written by the
 * plan's `record` step, commands.ts `recordDeploy`), read back for `verdandi report --hosts`: what
 * was deployed from any machine, a colleague's or CI's included. Read-only and bounded: every host at
 * once, a short connect timeout, the newest lines of each log, one command per host; a host that does
 * not answer is a note, never an error.
 */

import { ConnectionPool } from '../engine/connection-pool.js';
import { type ContextOptions, loadRunContext } from '../engine/context.js';
import { RunEvents } from '../engine/events.js';
import { Walker } from '../engine/walker.js';
import { DEFAULT_FORKS } from '../util/pool.js';
import type { DeployLogEntry } from '../util/run-events.js';
import { sh } from '../util/shell.js';
import { sitePaths } from './site-base.js';
import { parseSitesVars } from './targets.js';

/** How many of the newest lines of each site's log are read. */
export const DEPLOY_LOG_LINES = 500;
/** Seconds to wait for a host to answer, unless --connect-timeout says otherwise. */
const CONNECT_TIMEOUT_SECONDS = 5;
/** The one command on each host: past this, the host is noted as not read. */
const READ_TIMEOUT_MS = 20_000;

export type HostLogEntry = DeployLogEntry & { host: string };

export interface HostLogs {
  entries: HostLogEntry[];
  /** Per host that could not be read: why (unreachable, a failing command). */
  notes: string[];
}

const MARK = '@@verdandi-site ';

/** Prints, per site, a mark line and the newest lines of its deploy log (none when it has none yet). */
export function deployLogScript(logs: Array<{ site: string; file: string }>): string {
  return logs
    .map(
      ({ site, file }) =>
        `${sh`printf '%s\n' ${MARK + site}`}; ${sh`tail -n ${String(DEPLOY_LOG_LINES)} ${file}`} 2>/dev/null`,
    )
    .concat('exit 0')
    .join('\n');
}

/** The entries of `deployLogScript`'s output; a line that is not an entry (a partial write) is skipped. */
export function parseDeployLogs(host: string, stdout: string): HostLogEntry[] {
  const out: HostLogEntry[] = [];
  let site = '';
  for (const line of stdout.split('\n')) {
    if (line.startsWith(MARK)) {
      site = line.slice(MARK.length).trim();
      continue;
    }
    if (!line.trim()) continue;
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
    if (!v || typeof v !== 'object' || typeof v.release !== 'string' || typeof v.time !== 'string') continue;
    const text = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
    out.push({
      host,
      // Rollbacks recorded before entries named their site: the log's place says it.
      site: text('site') ?? site,
      action: v.action === 'rollback' ? 'rollback' : 'deploy',
      release: v.release,
      time: v.time,
      by: text('by') ?? '',
      outcome: text('outcome') ?? '',
      commit: text('commit'),
      branch: text('branch'),
      step: text('step'),
      from: text('from'),
    });
  }
  return out;
}

/** Reads the deploy logs of every site of `env`'s hosts (`--limit` applies). */
export async function readHostDeployLogs(env: string, o: ContextOptions): Promise<HostLogs> {
  // The inventory (and the secrets a host's vars may need) load before any host: their errors are the user's.
  const ctx = await loadRunContext(env, {
    ...o,
    connectTimeout: o.connectTimeout ?? CONNECT_TIMEOUT_SECONDS,
  });
  const targets = ctx.hosts
    .map((host) => ({
      host,
      vars: parseSitesVars(host, ctx.vars.get(host.name) ?? host.vars, ctx.sensitive.get(host.name)),
    }))
    .filter((t) => t.vars.sites.length > 0);
  const notes: string[] = [];
  if (targets.length === 0) return { entries: [], notes: [`no host of ${ctx.env} has sites`] };
  type Read = { entries: HostLogEntry[] } | { error: string };
  // A read that shows nothing: what could not be read becomes a note.
  const events = new RunEvents();
  const walker = new Walker(
    {
      command: 'report',
      env: ctx.env,
      check: true,
      events,
      conns: new ConnectionPool(ctx.connectOptions, DEFAULT_FORKS),
      hostVars: ctx.vars,
      forks: DEFAULT_FORKS,
      onInterrupt: 'abort',
    },
    targets.map((t) => t.host.name),
  );
  const runs = await walker.walk<(typeof targets)[number], Read>(
    targets,
    { maxFailPercentage: 100 },
    async (t, { conn }) => {
      const script = deployLogScript(
        t.vars.sites.map((site) => ({ site: site.name, file: sitePaths(site, t.vars.sites_root).deployLog })),
      );
      try {
        const res = await conn.exec(script, { timeoutMs: READ_TIMEOUT_MS });
        if (res.code !== 0)
          return { ok: false, result: { error: `exit ${res.code}: ${res.stderr.trim().split('\n')[0]}` } };
        return { ok: true, result: { entries: parseDeployLogs(t.host.name, res.stdout) } };
      } catch (err) {
        return { ok: false, result: { error: (err as Error).message } };
      }
    },
  );
  await walker.close();
  events.close();
  const entries: HostLogEntry[] = [];
  for (const run of runs) {
    const r = run.result;
    if (r && 'entries' in r) entries.push(...r.entries);
    else notes.push(`${run.host}: not read (${r ? r.error : `${run.status}: ${run.message ?? ''}`})`);
  }
  return { entries, notes };
}
