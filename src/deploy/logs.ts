/**
 * `verdandi logs <env> [site]`: a site's logs on every host that runs it (where they are depends on
 * its runtime: `logsScript`), or without a site the journal of the units the roles manage. Each line
 * is printed whole, prefixed with its host and source, bounded in length, its control characters
 * escaped. `-f` follows until Ctrl-C; the remote reader then stops with its whole process group (the
 * end of the SSH channel stops it: `followScript`), whatever ended the channel.
 *
 * The lines are the command's data: they go to stdout (one JSON object each with --json); what the
 * run says (a host unreachable, the end) goes to stderr, so `verdandi logs prod app | grep x` works.
 */
import { PassThrough, Writable } from 'node:stream';
import { type ContextOptions, loadRunContext } from '../engine/context.js';
import { runOutputs } from '../engine/outputs.js';
import { contextWalker } from '../engine/walker.js';
import type { InventoryHost } from '../inventory/types.js';
import { UserError } from '../util/errors.js';
import { DEFAULT_FORKS } from '../util/pool.js';
import { quote, words } from '../util/shell.js';
import { printable } from '../util/terminal-text.js';
import { runtimeOf } from './runtimes/index.js';
import type { LogsQuery } from './runtimes/runtime.js';
import type { Site } from './site.js';
import { sitePaths } from './site-base.js';
import { parseSitesVars } from './targets.js';

export interface LogsCliOptions extends ContextOptions {
  follow?: boolean;
  tail?: string;
  since?: string;
  grep?: string;
  json?: boolean;
  verbose?: boolean;
}

/** A log line longer than this is cut (a runaway line must not fill the terminal or the memory). */
export const MAX_LINE_CHARS = 8192;
export const DEFAULT_TAIL = 100;

/** The units of the roles whose journal `logs` without a site shows (those present on the host). */
export const JOURNAL_UNITS = ['nginx', 'postgresql', 'mariadb', 'supervisor', 'docker'];

const SINCE_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `--tail`, `--since`, `--grep` checked: a `LogsQuery` and the host-side filter. */
export function parseLogsOptions(o: Pick<LogsCliOptions, 'tail' | 'since' | 'grep' | 'follow'>): {
  query: LogsQuery;
  grep?: string;
} {
  const tailText = o.tail ?? String(DEFAULT_TAIL);
  if (!/^\d+$/.test(tailText.trim()))
    throw new UserError(`--tail must be a number of lines, got "${o.tail}"`, 1, 'e.g. --tail 200');
  let sinceSeconds: number | undefined;
  if (o.since !== undefined) {
    const m = /^(\d+)([smhd])$/.exec(o.since.trim());
    if (!m || Number(m[1]) === 0)
      throw new UserError(
        `--since must be a duration, got "${o.since}"`,
        1,
        'a number and a unit: 30s, 10m, 2h, 1d',
      );
    sinceSeconds = Number(m[1]) * SINCE_UNITS[m[2]];
  }
  if (o.grep !== undefined) {
    if (o.grep === '') throw new UserError('--grep needs a regular expression', 1);
    try {
      new RegExp(o.grep);
    } catch (err) {
      throw new UserError(`--grep: not a regular expression: ${(err as Error).message}`, 1);
    }
  }
  return {
    query: { tail: Number(tailText.trim()), follow: !!o.follow, sinceSeconds },
    ...(o.grep !== undefined ? { grep: o.grep } : {}),
  };
}

/** The journal of the roles' units present on the host, each line tagged `journal`. */
export function journalScript(q: LogsQuery): string {
  const read = words(
    'journalctl',
    '--no-pager',
    '--output',
    'short-iso',
    '--lines',
    String(q.tail),
    ...(q.sinceSeconds !== undefined ? ['--since', `-${q.sinceSeconds}s`] : []),
    ...(q.follow ? ['--follow'] : []),
  );
  return [
    'vd_units=',
    // postgresql's own logs are in its clusters' units (postgresql@15-main): the glob takes them.
    `for vd_u in ${JOURNAL_UNITS.join(' ')}; do systemctl cat "$vd_u.service" >/dev/null 2>&1 && vd_units="$vd_units -u $vd_u*"; done`,
    `[ -n "$vd_units" ] || { echo "journal | (none of ${JOURNAL_UNITS.join(', ')} is installed on this host)"; exit 0; }`,
    `set -f; ${read} $vd_units 2>&1 | sed -u 's/^/journal | /'`,
  ].join('\n');
}

/** The source's lines filtered on the host (`grep -E`, line by line so that following goes on). */
export function filtered(script: string, grep: string | undefined): string {
  if (grep === undefined) return script;
  return `{ ${script}\n} | ${words('grep', '--line-buffered', '-E', '-e', grep)}`;
}

/**
 * Runs `script` in a process group of its own, and stops that group (TERM) when the channel's input
 * ends: Ctrl-C closes the channel, and so does a lost connection, a killed Verdandi. Without this, a
 * `tail -F` started over SSH without a terminal runs on forever. Ends with 0 (a `grep` that matched
 * nothing is no failure).
 */
export function followScript(script: string): string {
  return [
    // Background commands of a non-interactive shell read /dev/null: the channel's input goes by fd 3.
    'exec 3<&0',
    `setsid sh -c ${quote(script)} </dev/null &`,
    'vd_pid=$!',
    '( cat >/dev/null; kill -TERM "-$vd_pid" 2>/dev/null ) <&3 >/dev/null 2>&1 &',
    'exec 3<&-',
    'wait "$vd_pid"',
    'exit 0',
  ].join('\n');
}

export interface LogLine {
  host: string;
  source: string;
  line: string;
}

/**
 * One host's output cut into lines, each bounded to `max` characters; a cut line comes with the length
 * it had (`cutLine` says so).
 */
export class LineSplitter extends Writable {
  private buf = '';
  private cut = 0;

  constructor(
    private readonly onLine: (line: string, fullLength?: number) => void,
    private readonly max = MAX_LINE_CHARS,
  ) {
    super({ decodeStrings: false });
  }

  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (err?: Error) => void): void {
    this.push(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
    done();
  }

  /** Takes text as it comes: complete lines are given at once, a runaway one is cut. */
  push(text: string): void {
    let rest = text;
    for (;;) {
      const nl = rest.indexOf('\n');
      const piece = nl < 0 ? rest : rest.slice(0, nl);
      const room = this.max - this.buf.length;
      if (piece.length > room) {
        this.buf += piece.slice(0, Math.max(0, room));
        this.cut += piece.length - Math.max(0, room);
      } else this.buf += piece;
      if (nl < 0) return;
      this.emitLine();
      rest = rest.slice(nl + 1);
    }
  }

  /** The last line without its newline, when there is one. */
  flush(): void {
    if (this.buf || this.cut) this.emitLine();
  }

  private emitLine(): void {
    const line = this.buf;
    const full = this.cut ? this.buf.length + this.cut : undefined;
    this.buf = '';
    this.cut = 0;
    this.onLine(line, full);
  }
}

/** `source | text` as the scripts print it; a line without a source (it should not happen) keeps all. */
export function parseLogLine(host: string, raw: string): LogLine {
  const sep = raw.indexOf(' | ');
  if (sep < 0) return { host, source: '', line: raw };
  return { host, source: raw.slice(0, sep), line: raw.slice(sep + 3) };
}

/** A line cut by LineSplitter says so, with the length its text (after the source) had. */
export function cutLine(l: LogLine, raw: string, fullLength: number | undefined): LogLine {
  if (fullLength === undefined) return l;
  const prefix = raw.length - l.line.length;
  return { ...l, line: `${l.line} … [line cut: ${fullLength - prefix} characters]` };
}

/** `web1 blue | text`, escaped: a host's control sequences never reach the terminal raw. */
export function formatLogLine(l: LogLine): string {
  return `${l.host}${l.source ? ` ${printable(l.source)}` : ''} | ${printable(l.line)}`;
}

interface LogsTarget {
  host: InventoryHost;
  /** The site on this host, or none: the journal. */
  site?: Site;
  sitesRoot: string;
}

export async function logs(
  env: string,
  siteName: string | undefined,
  o: LogsCliOptions,
  stdout: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const { query, grep } = parseLogsOptions(o);
  const ctx = await loadRunContext(env, o);
  const targets: LogsTarget[] = [];
  const known = new Set<string>();
  for (const host of ctx.hosts) {
    const vars = parseSitesVars(host, ctx.vars.get(host.name) ?? host.vars, ctx.sensitive.get(host.name));
    for (const s of vars.sites) known.add(s.name);
    if (siteName === undefined) targets.push({ host, sitesRoot: vars.sites_root });
    else {
      const site = vars.sites.find((s) => s.name === siteName);
      if (site) targets.push({ host, site, sitesRoot: vars.sites_root });
    }
  }
  if (targets.length === 0) {
    throw new UserError(
      siteName === undefined
        ? `no host of ${ctx.env}${o.limit ? ` matches --limit ${o.limit}` : ''}`
        : `no host of ${ctx.env}${o.limit ? ` matching --limit ${o.limit}` : ''} has a site named "${siteName}"`,
      1,
      siteName === undefined ? 'check --limit' : `known sites: ${[...known].sort().join(', ') || 'none'}`,
    );
  }
  // Every user error before any host is contacted: a runtime that cannot answer the query.
  const scripts = new Map<string, string>();
  for (const t of targets) {
    const body = t.site
      ? runtimeOf(t.site).logsScript(t.site, sitePaths(t.site, t.sitesRoot), query)
      : journalScript(query);
    if (typeof body !== 'string') throw new UserError(`--since: ${body.refused}`, 1, 'use --tail instead');
    scripts.set(t.host.name, followScript(filtered(body, grep)));
  }

  // The run's own words go to stderr: stdout is the log lines.
  const events = await runOutputs({ json: false, verbose: !!o.verbose, check: false, out: process.stderr });
  // Following: every host at once (a host waiting for a free slot would never get one).
  const forks = query.follow ? Math.max(DEFAULT_FORKS, targets.length) : DEFAULT_FORKS;
  const walker = contextWalker(
    ctx,
    { command: 'logs', events, forks: forks },
    targets.map((t) => t.host.name),
  );
  const print = (l: LogLine) => {
    // One write per line: the lines of several hosts interleave whole.
    stdout.write(o.json ? `${JSON.stringify(l)}\n` : `${formatLogLine(l)}\n`);
  };
  const notDeployed: string[] = [];
  try {
    await walker.walk(targets, { maxFailPercentage: 100 }, async (t, { conn, signal }) => {
      const host = t.host.name;
      if (t.site) {
        const paths = sitePaths(t.site, t.sitesRoot);
        const deployed = await conn.exec(`[ -L ${quote(paths.current)} ] && echo yes; true`);
        if (deployed.stdout.trim() !== 'yes') {
          notDeployed.push(host);
          events.emit({
            type: 'message',
            level: 'warn',
            host,
            text: `${host}  site ${t.site.name} is not deployed here yet: no logs (verdandi deploy ${ctx.env} --site ${t.site.name})`,
          });
          return { ok: true, result: undefined };
        }
      }
      const lines = new LineSplitter((raw, full) => print(cutLine(parseLogLine(host, raw), raw, full)));
      // The channel's input stays open while the reader runs: its end is what stops it on the host.
      const input = new PassThrough();
      try {
        await conn.exec(scripts.get(host)!, { stdin: input, stdout: lines, signal });
      } finally {
        input.end();
        lines.flush();
      }
      return { ok: true, result: undefined };
    });
    const code = await walker.finish();
    // A site not deployed yet is the user's mistake (exit 1), unless a host did worse.
    return code === 0 && notDeployed.length > 0 ? 1 : code;
  } finally {
    await walker.close();
    events.close();
  }
}
