/**
 * The SSH connections of a session, bounded by `--forks`: at most `limit` connections are open or
 * opening at any time, so a run over 1,000 hosts with `--forks 100` never has more than 100 handshakes
 * and host runs in flight.
 *
 * - A host's work leases its connection (`acquire`), opening it when needed, and gives it back
 *   (`release`): closed, or kept idle for later work on the same host (the next play).
 * - When every slot is taken, a connection nobody leases (one opened early by `warm`, or kept for a
 *   later play) is closed to make room; otherwise the caller waits for a slot. Each lease is held by
 *   one host's work, and there are never more of those than `limit`, so nobody waits forever.
 * - `warm` starts the first handshakes while the roles load (connecting changes nothing on a host):
 *   no more than the free slots.
 */
import { type ConnectOptions, connect } from '../connection/index.js';
import { openHost } from '../connection/open-host.js';
import type { Connection } from '../connection/types.js';
import type { InventoryHost } from '../inventory/types.js';

export type Connector = (host: InventoryHost, opts: ConnectOptions) => Promise<Connection>;

interface Entry {
  conn: Promise<Connection>;
  leased: boolean;
  /** True once a host's work leased it; until then it was only warmed, for work that may never come. */
  wanted: boolean;
  /** True once the handshake ended, either way. */
  settled: boolean;
  /** False once the connection failed (its slot was given back at once). */
  holdsSlot: boolean;
}

export class ConnectionPool {
  private readonly entries = new Map<string, Entry>();
  /** Round trips of connections already closed, per host (a host may be connected more than once). */
  private readonly closedRoundTrips = new Map<string, number>();
  private used = 0;
  private waiters: Array<() => void> = [];
  readonly unreachable = new Set<string>();

  constructor(
    private readonly opts: ConnectOptions,
    readonly limit = Number.POSITIVE_INFINITY,
    private readonly connector: Connector = connect,
  ) {}

  /** The host's connection for its work now (opened when needed). Rejects with UnreachableError. */
  acquire(host: InventoryHost, vars: Record<string, unknown> = host.vars): Promise<Connection> {
    const entry = this.entries.get(host.name) ?? this.open(host, vars);
    entry.leased = true;
    entry.wanted = true;
    return entry.conn;
  }

  /** The host's work is done: close its connection, unless `keep` (more work on it soon). */
  async release(name: string, keep = false): Promise<void> {
    const entry = this.entries.get(name);
    if (!entry) return;
    entry.leased = false;
    if (!keep) await this.close(name);
    // An idle connection can make room for someone waiting for a slot.
    else this.waiters.shift()?.();
  }

  /** Starts connecting to the first of these hosts, as many as there are free slots. */
  warm(hosts: InventoryHost[], vars: Map<string, Record<string, unknown>>): void {
    for (const h of hosts) {
      if (this.used >= this.limit) return;
      if (!this.entries.has(h.name)) this.open(h, vars.get(h.name) ?? h.vars).conn.catch(() => {});
    }
  }

  /** How many connections are open or opening now. */
  get openCount(): number {
    return this.used;
  }

  async roundTrips(name: string): Promise<number> {
    const closed = this.closedRoundTrips.get(name) ?? 0;
    const entry = this.entries.get(name);
    if (!entry) return closed;
    try {
      return closed + (await entry.conn).roundTrips;
    } catch {
      return closed;
    }
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((name) => this.close(name)));
  }

  private open(host: InventoryHost, vars: Record<string, unknown>): Entry {
    const entry: Entry = {
      leased: false,
      wanted: false,
      settled: false,
      holdsSlot: false,
      conn: Promise.resolve(undefined as never),
    };
    entry.conn = (async () => {
      await this.takeSlot(entry);
      try {
        return await openHost(host, this.opts, vars, this.connector);
      } catch (err) {
        entry.holdsSlot = false;
        this.freeSlot();
        throw err;
      } finally {
        entry.settled = true;
      }
    })();
    this.entries.set(host.name, entry);
    return entry;
  }

  private async close(name: string): Promise<void> {
    const entry = this.entries.get(name);
    if (!entry) return;
    this.entries.delete(name);
    if (!entry.wanted && !entry.settled) {
      // Warmed for work that never came (a first play remembered from an earlier run whose pattern has
      // since moved), and still opening: nobody waits for it (a silent host would hold the run's end for
      // the whole connect timeout); it is closed, and its slot given back, once its handshake ends.
      void this.closeWhenOpen(name, entry);
      return;
    }
    await this.closeWhenOpen(name, entry);
  }

  private async closeWhenOpen(name: string, entry: Entry): Promise<void> {
    let conn: Connection;
    try {
      conn = await entry.conn;
    } catch {
      return; // never opened: its slot is already free
    }
    this.closedRoundTrips.set(name, (this.closedRoundTrips.get(name) ?? 0) + conn.roundTrips);
    try {
      await conn.close();
    } catch {
      /* a lost connection has nothing left to close */
    } finally {
      if (entry.holdsSlot) this.freeSlot();
    }
  }

  private async takeSlot(entry: Entry): Promise<void> {
    while (this.used >= this.limit) {
      const idle = [...this.entries].find(([, e]) => !e.leased && e.holdsSlot);
      if (idle) await this.close(idle[0]);
      else await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    // Taken in the same tick as the check: another caller sees this slot as used (and evictable).
    this.used++;
    entry.holdsSlot = true;
  }

  private freeSlot(): void {
    this.used--;
    this.waiters.shift()?.();
  }
}
