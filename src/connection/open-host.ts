/**
 * Opening a host the way every command does: the connection options of the run, and the host's own
 * sudo password when the run was not given one with -K (a var, usually `{{ secrets.x }}`).
 */
import type { InventoryHost } from '../inventory/types.js';
import { registerSecret } from '../util/redact.js';
import { type ConnectOptions, connect } from './index.js';
import type { Connection } from './types.js';

/** The sudo password of a become host: a var (usually `{{ secrets.x }}`), Ansible's names accepted. */
export function becomePasswordOf(vars: Record<string, unknown>): string | undefined {
  for (const key of ['become_password', 'ansible_become_password', 'ansible_become_pass']) {
    const v = vars[key];
    if (typeof v === 'string' && v !== '') {
      registerSecret(v);
      return v;
    }
  }
  return undefined;
}

/**
 * Connects to `host`; `vars` are its vars after interpolation of the secrets. `connector` is how
 * (tests give fakes).
 */
export function openHost(
  host: InventoryHost,
  opts: ConnectOptions,
  vars: Record<string, unknown> = host.vars,
  connector: (host: InventoryHost, opts: ConnectOptions) => Promise<Connection> = connect,
): Promise<Connection> {
  return connector(host, { ...opts, becomePassword: opts.becomePassword ?? becomePasswordOf(vars) });
}
