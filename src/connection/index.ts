/** Opens the right kind of connection for an inventory host. */
import type { InventoryHost } from '../inventory/types.js';
import { knownHostsFile } from './known-hosts.js';
import { LocalConnection } from './local.js';
import { SshConnection } from './ssh.js';
import { CONNECTION_DEFAULTS, type Connection } from './types.js';

export type { Connection, ExecOptions, ExecResult } from './types.js';
export { AbortedError, UnreachableError } from './types.js';

export interface ConnectOptions {
  projectDir: string;
  hostKeyChecking?: 'accept-new' | 'off';
  connectTimeoutMs?: number;
  /** SSH keepalive interval and unanswered count before the host is declared lost (see ssh.ts). */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  becomePassword?: string;
}

export { knownHostsFile } from './known-hosts.js';

function isLocal(host: InventoryHost): boolean {
  return host.connection === 'local' || (host.address === 'localhost' && host.connection !== 'ssh');
}

export async function connect(host: InventoryHost, opts: ConnectOptions): Promise<Connection> {
  if (isLocal(host)) return new LocalConnection(host.name, host.become);
  return SshConnection.open(host, {
    knownHostsFile: knownHostsFile(opts.projectDir),
    hostKeyChecking: opts.hostKeyChecking ?? 'accept-new',
    connectTimeoutMs: opts.connectTimeoutMs ?? CONNECTION_DEFAULTS.connectTimeout * 1000,
    keepaliveIntervalMs: opts.keepaliveIntervalMs,
    keepaliveCountMax: opts.keepaliveCountMax,
    becomePassword: opts.becomePassword,
  });
}
