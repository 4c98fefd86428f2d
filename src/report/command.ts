/**
 * `verdandi report`: the run history as one HTML file; `--open` shows it in a browser, `--serve` serves
 * it on 127.0.0.1 (built again at each load, so a reload shows the runs recorded since). With
 * `--hosts`, the deploy logs of the environment's hosts are read too (deploy/records.ts) and merged
 * into each site's deploy history: a host that does not answer is a note, never a failure.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { openProjectHistory } from '../history/commands.js';
import type { HistoryStore } from '../history/store.js';
import { UserError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { type DeployEntry, mergeDeploys, reportData } from './data.js';
import { renderReport } from './html.js';

export interface ReportOptions {
  out?: string;
  env?: string;
  details?: string;
  open?: boolean;
  serve?: boolean | string;
  hosts?: boolean;
  limit?: string;
  vaultPasswordFile?: string;
  hostKeyChecking?: 'accept-new' | 'off';
  connectTimeout?: number;
}

/** How many of the newest deploys recorded here the report carries. */
const DEPLOYS_CARRIED = 2000;

/** What was read from the hosts' deploy logs (`--hosts`). */
export interface HostDeployLogs {
  entries: DeployEntry[];
  notes: string[];
}

/**
 * The page for the runs in `store`: every run listed, the newest `details` with their detail, each
 * site's deploys (merged with `fromHosts` when the hosts were read).
 */
export async function buildReport(
  store: HistoryStore,
  o: { env?: string; details: number; fromHosts?: HostDeployLogs },
): Promise<string> {
  const runs = await store.list({ env: o.env });
  const details = await store.getMany(runs.slice(0, o.details).map((r) => r.id));
  const deploys = mergeDeploys(await store.deploys({ env: o.env, last: DEPLOYS_CARRIED }), o.fromHosts);
  return redact(
    renderReport(reportData(runs, details, deploys), o.env ? `Verdandi runs: ${o.env}` : 'Verdandi runs'),
  );
}

/** `--hosts`: the deploy logs of the environment's hosts; what could not be read is said on stderr. */
async function readHosts(o: ReportOptions): Promise<HostDeployLogs | undefined> {
  if (!o.hosts) return undefined;
  if (!o.env) {
    throw new UserError(
      '--hosts reads the deploy logs of one environment: name it with --env',
      1,
      'e.g. verdandi report --env staging --hosts',
    );
  }
  const { readHostDeployLogs } = await import('../deploy/records.js');
  const logs = await readHostDeployLogs(o.env, {
    limit: o.limit,
    vaultPasswordFile: o.vaultPasswordFile,
    hostKeyChecking: o.hostKeyChecking,
    connectTimeout: o.connectTimeout,
  });
  for (const note of logs.notes) process.stderr.write(`warning: ${redact(note)}\n`);
  return logs;
}

export async function report(o: ReportOptions): Promise<number> {
  const details = Number(o.details ?? 300);
  if (!Number.isInteger(details) || details < 0) {
    throw new UserError(`--details must be a whole number, got "${o.details}"`, 1);
  }
  if (o.serve !== undefined && o.serve !== false) return serve(o, details);
  // The hosts first: their errors are the user's to fix (exit 1) before anything is written.
  const fromHosts = await readHosts(o);
  const store = await openProjectHistory();
  let file: string;
  try {
    const html = await buildReport(store, { env: o.env, details, fromHosts });
    file = path.resolve(o.out ?? '.verdandi/report.html');
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, html);
  } finally {
    await store.close();
  }
  process.stdout.write(`report written: ${file}\n`);
  if (o.open) openInBrowser(file);
  return 0;
}

/** xdg-open when there is a desktop; otherwise the path is all we can give. */
function openInBrowser(file: string): void {
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    process.stdout.write(`no desktop here: open file://${file} in a browser\n`);
    return;
  }
  execFile('xdg-open', [file], (err) => {
    if (err) process.stdout.write(`could not start a browser (${err.message}): open file://${file}\n`);
  });
}

async function serve(o: ReportOptions, details: number): Promise<number> {
  const port = o.serve === true ? 8765 : Number(o.serve);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UserError(`--serve takes a port number, got "${o.serve}"`, 1);
  }
  // Once before serving: an inventory or secrets error stops here, not at each load.
  await readHosts(o);
  const server = createServer(async (req, res) => {
    if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    let store: HistoryStore | undefined;
    try {
      const fromHosts = await readHosts(o);
      store = await openProjectHistory();
      const html = await buildReport(store, { env: o.env, details, fromHosts });
      res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
        .end(html);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${redact((err as Error).message)}\n`);
    } finally {
      await store?.close();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new UserError(`port ${port} on 127.0.0.1 is in use`, 1, 'give another: --serve <port>')
          : err,
      ),
    );
    // Only this machine: the history names hosts, users and commands.
    server.listen(port, '127.0.0.1', resolve);
  });
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  process.stdout.write(`serving the report on http://127.0.0.1:${actual}/ (Ctrl-C stops)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      server.close(() => resolve());
      server.closeAllConnections();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
