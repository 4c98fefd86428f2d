/**
 * `verdandi status <env>`: per host and site, what runs (release, branch, commit, when, by whom), the
 * processes of both colors, nginx, the health check through nginx, maintenance, free disk: the usual
 * debugging checklist (nginx up? supervisor program running? which code?) in one command, read-only.
 */
import { sh, words } from '../util/shell.js';
import { healthHost } from './commands.js';
import { closeSession, type DeployCliOptions, type HostSession, openSession, walkOptions } from './deploy.js';
import { parseReleaseRecord, type ReleaseRecord } from './release.js';
import { runtimeOf } from './runtimes/index.js';
import type { Stack } from './runtimes/runtime.js';
import type { Site } from './site.js';
import { COLORS, type Color, type SitePaths, sitePaths } from './site-base.js';
import { parseState, type SiteState, stateScript } from './state.js';

/** Read-only script: the deploy state plus processes, nginx, health through nginx, disk. */
export function statusScript(site: Site, paths: SitePaths): string {
  const lines = [
    stateScript(site, paths).replace(/\nexit 0$/, ''),
    'echo "nginx=$(systemctl is-active nginx 2>/dev/null)"',
  ];
  lines.push(...runtimeOf(site).statusLines(site, paths));
  const scheme = site.nginx.tls ? 'https' : 'http';
  const port = site.nginx.tls ? 443 : site.nginx.listen;
  const url = `${scheme}://127.0.0.1:${port}${site.health.path}`;
  lines.push(
    `echo "health=$(${words('curl', '-k', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', '-H', `Host: ${healthHost(site)}`, url)})"`,
    `echo "disk=$(${sh`df -h --output=avail ${paths.dir}`} 2>/dev/null | tail -n 1 | tr -d ' ')"`,
    `echo "last=$(${sh`tail -n 1 ${paths.deployLog}`} 2>/dev/null)"`,
  );
  return lines.join('\n');
}

export interface SiteStatus {
  host: string;
  site: string;
  provisioned: boolean;
  release?: string;
  record?: ReleaseRecord;
  live?: Color;
  maintenance: boolean;
  /** Switched on by hand (`verdandi maintenance on`): since when, by whom. */
  maintenanceByHand?: { since: string; by: string };
  releases: string[];
  processes: Partial<Record<Color, string>>;
  nginx: string;
  health: { url: string; status: string; expected: number; ok: boolean };
  freeDisk: string;
  lastDeploy?: Record<string, unknown>;
  /** Swarm sites: the stack's services and their running tasks. */
  stack?: Stack;
  error?: string;
}

export function parseStatus(host: string, site: Site, paths: SitePaths, stdout: string): SiteStatus {
  const state: SiteState = parseState(paths, stdout);
  const kv = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  const stack = runtimeOf(site).parseStack(stdout);
  const processes: Partial<Record<Color, string>> = {};
  for (const c of COLORS) if (kv.has(`proc_${c}`)) processes[c] = kv.get(`proc_${c}`) || 'unknown';
  let lastDeploy: Record<string, unknown> | undefined;
  try {
    lastDeploy = kv.get('last') ? JSON.parse(kv.get('last')!) : undefined;
  } catch {
    lastDeploy = undefined;
  }
  const code = kv.get('health') ?? '';
  return {
    host,
    site: site.name,
    provisioned: state.provisioned,
    release: state.current,
    record: parseReleaseRecord(state.record ?? ''),
    live: state.live,
    maintenance: state.maintenance,
    ...(state.maintenanceByHand ? { maintenanceByHand: state.maintenanceByHand } : {}),
    releases: state.releases,
    processes,
    nginx: kv.get('nginx') || 'unknown',
    health: {
      url: site.health.path,
      status: code || 'no answer',
      expected: site.health.status,
      ok: code === String(site.health.status),
    },
    freeDisk: kv.get('disk') || '?',
    lastDeploy,
    ...(stack ? { stack } : {}),
  };
}

/** Per service: replicas, image, and how many of its running tasks each node has; then each task. */
function formatStack(stack: NonNullable<SiteStatus['stack']>): string[] {
  if (stack.services.length === 0) return ['  stack     no services deployed'];
  const lines: string[] = [];
  for (const svc of stack.services) {
    const perNode = new Map<string, number>();
    for (const task of stack.tasks)
      if (task.name.startsWith(`${svc.name}.`)) perNode.set(task.node, (perNode.get(task.node) ?? 0) + 1);
    const nodes = [...perNode].sort(([a], [b]) => a.localeCompare(b)).map(([n, c]) => `${n}: ${c}`);
    lines.push(
      `  service   ${svc.name} replicas ${svc.replicas}, on ${nodes.join(', ') || 'no node'}, image ${svc.image}`,
    );
  }
  for (const task of stack.tasks)
    lines.push(`  task      ${task.name} on ${task.node}: ${task.state}, ${task.image}`);
  return lines;
}

/** ` since <time> (by hand, by <who>)` for a maintenance switched on by `verdandi maintenance on`. */
function byHand(st: SiteStatus): string {
  const m = st.maintenanceByHand;
  return m ? ` since ${m.since} (by hand, by ${m.by})` : '';
}

export function formatStatus(st: SiteStatus): string {
  if (st.error) return `${st.host}  ${st.site}\n  error: ${st.error}`;
  const r = st.record;
  const lines = [`${st.host}  ${st.site}`];
  if (!st.provisioned) lines.push('  not provisioned (run verdandi provision with the sites role)');
  lines.push(
    r
      ? `  live      ${st.release}: ${r.branch} @ ${r.commit.slice(0, 7)}, deployed ${r.time} by ${r.by}`
      : `  live      ${st.release ?? 'nothing deployed yet'}`,
  );
  const procs = Object.entries(st.processes)
    .map(([c, s]) => {
      if (c === st.live) return `${c} (live): ${s}`;
      // The other color only runs during a deploy: stopped is its normal state.
      return `${c}: ${s === 'EXITED' || s === 'STOPPED' || s === 'exited' || s === 'absent' ? 'idle' : s}`;
    })
    .join(', ');
  if (procs) lines.push(`  processes ${procs}`);
  if (st.stack) lines.push(...formatStack(st.stack));
  lines.push(`  nginx     ${st.nginx}${st.maintenance ? `, MAINTENANCE ON${byHand(st)}` : ''}`);
  lines.push(
    `  health    ${st.health.url} → ${st.health.status} (${st.health.ok ? 'ok' : `expected ${st.health.expected}`})`,
  );
  lines.push(
    `  releases  ${st.releases.length} kept${st.releases.length ? `, oldest ${st.releases[0]}` : ''}`,
  );
  if (st.lastDeploy && st.lastDeploy.outcome === 'failed') {
    lines.push(
      `  last      FAILED ${st.lastDeploy.action ?? 'deploy'} of ${st.lastDeploy.branch ?? '?'} at "${st.lastDeploy.step ?? '?'}" (${st.lastDeploy.time ?? '?'})`,
    );
  }
  lines.push(`  disk      ${st.freeDisk} free`);
  return lines.join('\n');
}

export async function status(env: string, o: DeployCliOptions): Promise<number> {
  const s = await openSession(env, o, 'status');
  try {
    return await statusOf(s, o);
  } finally {
    await closeSession(s);
  }
}

async function statusOf(s: HostSession, o: DeployCliOptions): Promise<number> {
  const all: SiteStatus[] = [];
  // Read-only: all hosts at once (unless --serial), no lock.
  const runs = await s.walker.walk(s.targets, walkOptions(s, undefined, false), async (t, { conn }) => {
    const mine: SiteStatus[] = [];
    for (const site of t.vars.sites) {
      const paths = sitePaths(site, t.vars.sites_root);
      const res = await conn.exec(statusScript(site, paths));
      mine.push(parseStatus(t.host.name, site, paths, res.stdout));
    }
    all.push(...mine);
    // A site that does not answer its health check makes `status` fail: usable from cron or monitoring.
    return { ok: mine.every((st) => st.health.ok), result: mine };
  });
  for (const run of runs) {
    if (run.status === 'ok' || run.status === 'failed') continue;
    const t = s.targets.find((x) => x.host.name === run.host)!;
    for (const site of t.vars.sites)
      all.push(unreachable(run.host, site, `${run.status}: ${run.message ?? ''}`));
  }
  all.sort((a, b) => (a.host === b.host ? a.site.localeCompare(b.site) : a.host.localeCompare(b.host)));
  if (o.json) s.out.json({ sites: all });
  else for (const st of all) s.out.info(formatStatus(st));
  return s.walker.finish();
}

function unreachable(host: string, site: Site, message: string): SiteStatus {
  return {
    host,
    site: site.name,
    provisioned: false,
    maintenance: false,
    releases: [],
    processes: {},
    nginx: 'unknown',
    health: { url: site.health.path, status: 'unreachable', expected: site.health.status, ok: false },
    freeDisk: '?',
    error: message,
  };
}
