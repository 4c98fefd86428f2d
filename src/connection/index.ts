/** Opens the right kind of connection for an inventory host. */
import type { InventoryHost } from '../inventory/types.js';
import { knownHostsFile } from './known-hosts.js';
import { LocalConnection } from './local.js';
import { SshConnection } from './ssh.js';
import type { Connection } from './types.js';

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
  return SshConnection.open(
    {
      name: host.name,
      address: host.address,
      port: host.port,
      user: host.user,
      key: host.key,
      become: host.become,
    },
    {
      knownHostsFile: knownHostsFile(opts.projectDir),
      hostKeyChecking: opts.hostKeyChecking ?? 'accept-new',
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      keepaliveIntervalMs: opts.keepaliveIntervalMs,
      keepaliveCountMax: opts.keepaliveCountMax,
      becomePassword: opts.becomePassword,
    },
  );
}
