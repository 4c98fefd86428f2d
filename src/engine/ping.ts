/** `verdandi ping` and `verdandi facts`: connect to every host, nothing else. No secrets needed. */
import { parsePositiveInt } from '../cli/context.js';
import { connect } from '../connection/index.js';
import { UnreachableError } from '../connection/types.js';
import { loadInventory, selectHosts } from '../inventory/index.js';
import type { InventoryHost } from '../inventory/types.js';
import { mapLimited } from '../util/pool.js';
import { gatherFacts } from './facts.js';
import type { HostFacts } from './types.js';

interface ConnOpts {
  limit?: string;
  json?: boolean;
  connectTimeout?: string;
  forks?: string;
  keepalive?: string;
  keepaliveCount?: string;
  hostKeyChecking?: 'accept-new' | 'off';
}

type Outcome<T> =
  | { host: string; ok: true; value: T; ms: number }
  | { host: string; ok: false; reason: string; message: string };

async function eachHost<T>(
  env: string,
  o: ConnOpts,
  work: (c: Awaited<ReturnType<typeof connect>>) => Promise<T>,
) {
  const timeout = parsePositiveInt(o.connectTimeout, '--connect-timeout', 10) * 1000;
  const inv = await loadInventory(env, { cwd: process.cwd() });
  const hosts: InventoryHost[] = o.limit ? selectHosts(inv, o.limit) : [...inv.hosts.values()];
  // At most --forks connections at a time, each closed before the next host's opens.
  const forks = parsePositiveInt(o.forks, '--forks', 20);
  return mapLimited(hosts, forks, async (h): Promise<Outcome<T>> => {
    const start = Date.now();
    try {
      const conn = await connect(h, {
        projectDir: inv.projectDir,
        hostKeyChecking: o.hostKeyChecking,
        connectTimeoutMs: timeout,
        keepaliveIntervalMs: parsePositiveInt(o.keepalive, '--keepalive', 5) * 1000,
        keepaliveCountMax: parsePositiveInt(o.keepaliveCount, '--keepalive-count', 2),
      });
      try {
        return { host: h.name, ok: true, value: await work(conn), ms: Date.now() - start };
      } finally {
        await conn.close();
      }
    } catch (err) {
      if (err instanceof UnreachableError)
        return { host: h.name, ok: false, reason: err.reason, message: err.message };
      throw err;
    }
  });
}

export async function ping(env: string, o: ConnOpts): Promise<number> {
  const results = await eachHost(env, o, async (conn) => {
    const res = await conn.exec('echo pong');
    if (res.code !== 0 || res.stdout.trim() !== 'pong') {
      throw new UnreachableError(
        conn.host,
        'other',
        `connected, but a command failed: ${res.stderr.trim() || `exit ${res.code}`}`,
      );
    }
    return true;
  });
  if (o.json) {
    const hosts: Record<string, unknown> = {};
    for (const r of results)
      hosts[r.host] = r.ok
        ? { reachable: true, ms: r.ms }
        : { reachable: false, reason: r.reason, message: r.message };
    process.stdout.write(`${JSON.stringify({ hosts }, null, 2)}\n`);
  } else {
    for (const r of results) {
      process.stdout.write(
        r.ok
          ? `ok           ${r.host}  (${r.ms} ms)\n`
          : `unreachable  ${r.host}  ${r.reason}: ${r.message}\n`,
      );
    }
  }
  return results.some((r) => !r.ok) ? 3 : 0;
}

export async function facts(env: string, o: ConnOpts): Promise<number> {
  const results = await eachHost(env, o, gatherFacts);
  if (o.json) {
    const hosts: Record<string, HostFacts | { unreachable: true; reason: string }> = {};
    for (const r of results)
      hosts[r.host] = r.ok ? r.value : { unreachable: true, reason: `${r.reason}: ${r.message}` };
    process.stdout.write(`${JSON.stringify({ hosts }, null, 2)}\n`);
  } else {
    for (const r of results) {
      if (!r.ok) {
        process.stdout.write(`${r.host}: unreachable (${r.reason}: ${r.message})\n`);
        continue;
      }
      const f = r.value;
      process.stdout.write(
        `${r.host}\n  os        ${f.os.prettyName}\n  arch      ${f.arch}  kernel ${f.kernel}\n` +
          `  hostname  ${f.hostname}\n  memory    ${f.memoryMb} MB, ${f.cpus} cpus\n` +
          `  packages  ${f.packageCount} installed\n  services  ${f.services.join(', ')}\n`,
      );
    }
  }
  return results.some((r) => !r.ok) ? 3 : 0;
}
