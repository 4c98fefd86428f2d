/**
 * `verdandi ping` and `verdandi facts`: connect to every host (at most --forks at once), nothing else.
 * No secrets needed. Exit 3 when a host could not be reached (the one exit-code rule).
 */
import { connect } from '../connection/index.js';
import { describeChain, type SshEndpoint, type SshRouting } from '../connection/route.js';
import { UnreachableError } from '../connection/types.js';
import { type ConnectionSettings, connectOptionsOf, sshRoutingOf } from '../engine/context.js';
import { gatherFacts } from '../engine/facts.js';
import type { HostFacts } from '../engine/types.js';
import { loadInventory, selectHosts } from '../inventory/index.js';
import type { InventoryHost } from '../inventory/types.js';
import { runExitCode } from '../util/errors.js';
import { DEFAULT_FORKS, mapLimited } from '../util/pool.js';

export interface ReachOptions extends ConnectionSettings {
  limit?: string;
  json?: boolean;
  /** Connections open at once (default DEFAULT_FORKS). */
  forks?: number;
  /** ping: also say where each connection setting came from (inventory, ssh config, default). */
  verbose?: boolean;
}

type Outcome<T> =
  | { host: string; ok: true; value: T; ms: number }
  | { host: string; ok: false; reason: string; message: string };

async function eachHost<T>(
  env: string,
  o: ReachOptions,
  work: (c: Awaited<ReturnType<typeof connect>>) => Promise<T>,
) {
  const inv = await loadInventory(env, { cwd: process.cwd() });
  const hosts: InventoryHost[] = o.limit ? selectHosts(inv, o.limit) : [...inv.hosts.values()];
  const routing = sshRoutingOf(inv, hosts, o);
  // At most --forks connections at a time, each closed before the next host's opens.
  const options = connectOptionsOf(inv.projectDir, o, undefined, routing);
  const results = await mapLimited(hosts, o.forks ?? DEFAULT_FORKS, async (h): Promise<Outcome<T>> => {
    const start = Date.now();
    try {
      const conn = await connect(h, options);
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
  return { results, hosts, routing };
}

/** `ping -v`: each setting of the host (and of its jump hosts) with where its value came from. */
export function describeEndpoint(host: InventoryHost, routing: SshRouting): string[] {
  if (host.connection === 'local' || (host.address === 'localhost' && host.connection !== 'ssh'))
    return ['    connection  local'];
  const lines: string[] = [];
  const row = (indent: string, label: string, value: string | undefined) => {
    if (value !== undefined) lines.push(`${indent}${label.padEnd(18)}${value}`);
  };
  const add = (e: SshEndpoint, indent: string) => {
    const s = e.sources;
    row(indent, 'address', `${e.address}  (${s.address})`);
    row(indent, 'port', `${e.port}  (${s.port})`);
    row(indent, 'user', `${e.user}  (${s.user})`);
    row(indent, 'key', s.key);
    for (const name of ['known hosts', 'host key checking', 'connect timeout', 'keepalive'] as const)
      row(indent, name, s[name]);
  };
  const endpoint = routing.endpointOf(host);
  add(endpoint, '    ');
  if (endpoint.via) {
    row('    ', 'jump', endpoint.sources.jump);
    row('    ', 'route', [...describeChain(endpoint.via), host.name].join(' → '));
    for (let hop: SshEndpoint | undefined = endpoint.via; hop; hop = hop.via) {
      lines.push(`    jump host ${hop.name}:`);
      add(hop, '      ');
    }
  }
  return lines;
}

export async function ping(env: string, o: ReachOptions): Promise<number> {
  const { results, hosts, routing } = await eachHost(env, o, async (conn) => {
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
    for (const [i, r] of results.entries()) {
      process.stdout.write(
        r.ok
          ? `ok           ${r.host}  (${r.ms} ms)\n`
          : `unreachable  ${r.host}  ${r.reason}: ${r.message}\n`,
      );
      if (o.verbose) process.stdout.write(`${describeEndpoint(hosts[i], routing).join('\n')}\n`);
    }
  }
  return runExitCode({ unreachable: results.some((r) => !r.ok), failed: false });
}

export async function facts(env: string, o: ReachOptions): Promise<number> {
  const { results } = await eachHost(env, o, gatherFacts);
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
  return runExitCode({ unreachable: results.some((r) => !r.ok), failed: false });
}
