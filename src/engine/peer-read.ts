/**
 * Reads a value one host's step needs from another host of the inventory, during the run (RunStep.
 * stdinFrom: a swarm worker's join needs the manager's join token, which exists only once the
 * manager's swarm does, so it cannot be read when the run is planned).
 *
 * Each read opens a connection of its own to the other host and closes it after: the host's own work
 * may hold its pooled connection at that moment (a connection is leased by one host's work), and a read
 * must not wait for a `--forks` slot that the reading host itself holds. At most one read per host
 * run is in flight, so a run never has more than twice `--forks` connections.
 *
 * The value is registered as a secret before anything else sees it: redacted from every output.
 */
import { type Connection, type ConnectOptions, connect } from '../connection/index.js';
import { openHost } from '../connection/open-host.js';
import type { InventoryHost } from '../inventory/types.js';
import { registerSecret } from '../util/redact.js';
import type { PeerRead } from './types.js';

export type PeerConnector = (host: InventoryHost, opts: ConnectOptions) => Promise<Connection>;

export class PeerReader {
  /** Reads in flight: closed at once by `closeAll` (a second Ctrl-C aborts what runs). */
  private readonly open = new Set<Connection>();

  constructor(
    private readonly hosts: Map<string, InventoryHost>,
    /** Every host's vars after interpolation (its sudo password may be one). */
    private readonly vars: Map<string, Record<string, unknown>>,
    private readonly opts: ConnectOptions,
    private readonly connector: PeerConnector = connect,
  ) {}

  /** The trimmed output of `read.command` on `read.host`; rejects when it fails or prints nothing. */
  async read(read: PeerRead): Promise<string> {
    const host = this.hosts.get(read.host);
    if (!host) throw new Error(`no host named "${read.host}" in the inventory`);
    const conn = await openHost(host, this.opts, this.vars.get(host.name) ?? host.vars, this.connector);
    this.open.add(conn);
    try {
      const res = await conn.exec(read.command);
      const value = res.stdout.trim();
      if (value !== '') registerSecret(value);
      if (res.code !== 0) {
        const why = res.stderr.trim().split('\n').slice(-3).join('\n');
        throw new Error(`the command failed there (exit code ${res.code})${why ? `: ${why}` : ''}`);
      }
      if (value === '') throw new Error('the command printed nothing');
      return value;
    } finally {
      this.open.delete(conn);
      try {
        await conn.close();
      } catch {
        /* a lost connection has nothing left to close */
      }
    }
  }

  /** Closes the connections of the reads in flight: their reads reject (the steps waiting fail). */
  async closeAll(): Promise<void> {
    await Promise.all(
      [...this.open].map((conn) =>
        conn.close().catch(() => {
          /* a lost connection has nothing left to close */
        }),
      ),
    );
  }
}
