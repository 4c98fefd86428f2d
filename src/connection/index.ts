/** Opens the right kind of connection for an inventory host. */
import type { InventoryHost } from '../inventory/types.js';
import { openEndpoint } from './jump-hosts.js';
import { knownHostsFile } from './known-hosts.js';
import { LocalConnection } from './local.js';
import { SshRouting } from './route.js';
import type { SshOptions } from './ssh.js';
import { loadSshConfig } from './ssh-config.js';
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
  /**
   * How each host is reached: the OpenSSH client configuration and the jump hosts (route.ts). Without
   * it, the user's ~/.ssh/config is read, and a jump host must be written user@host:port.
   */
  routing?: SshRouting;
  /**
   * `--persist`: reach SSH hosts through the connection keeper (kept.ts), which keeps each connection
   * open this many seconds after the last run used it.
   */
  persistSeconds?: number;
}

export { knownHostsFile } from './known-hosts.js';

function isLocal(host: InventoryHost): boolean {
  return host.connection === 'local' || (host.address === 'localhost' && host.connection !== 'ssh');
}

let defaultRouting: SshRouting | undefined;

export async function connect(host: InventoryHost, opts: ConnectOptions): Promise<Connection> {
  if (isLocal(host)) return new LocalConnection(host.name, host.become);
  defaultRouting ??= new SshRouting(loadSshConfig(), new Map());
  const endpoint = (opts.routing ?? defaultRouting).endpointOf(host);
  // The command line's values win over the ssh config's (ConnectTimeout, ServerAlive*), then defaults.
  const sshOptions: SshOptions = {
    knownHostsFile: knownHostsFile(opts.projectDir),
    hostKeyChecking: opts.hostKeyChecking ?? 'accept-new',
    connectTimeoutMs:
      opts.connectTimeoutMs ?? endpoint.connectTimeoutMs ?? CONNECTION_DEFAULTS.connectTimeout * 1000,
    keepaliveIntervalMs: opts.keepaliveIntervalMs ?? endpoint.keepaliveIntervalMs,
    keepaliveCountMax: opts.keepaliveCountMax ?? endpoint.keepaliveCountMax,
    becomePassword: opts.becomePassword,
  };
  if (opts.persistSeconds) {
    const { openKept } = await import('./kept.js');
    return openKept(endpoint, sshOptions, opts.persistSeconds);
  }
  return openEndpoint(endpoint, sshOptions);
}
