/**
 * Connections through jump hosts (bastions). Each jump host has one connection, shared by every host
 * behind it: each of those runs its own SSH connection over a `direct-tcpip` channel of it (what
 * `ssh -J` does). The hosts' connections are bounded by `--forks` (the connection pool), so are the
 * channels through a jump host. A jump host's connection is closed shortly after the last host
 * behind it closed (a run working host after host does not reconnect to it every time).
 *
 * A jump host that cannot be reached, or is lost, makes the hosts behind it unreachable (their
 * UnreachableError names it), nothing else.
 */
import { endpointKey, type SshEndpoint } from './route.js';
import { SshConnection, type SshOptions } from './ssh.js';
import { UnreachableError } from './types.js';

interface Shared {
  conn: Promise<SshConnection>;
  users: number;
  idle?: NodeJS.Timeout;
}

/** How long an unused jump host connection stays open for the next host behind it. */
const LINGER_MS = 2000;

const shared = new Map<string, Shared>();

/** Opens `endpoint`, through its jump hosts when it has some. */
export async function openEndpoint(endpoint: SshEndpoint, opts: SshOptions): Promise<SshConnection> {
  if (!endpoint.via) return SshConnection.open(endpoint, opts);
  const { conn: jump, release } = await acquireJumpHost(endpoint.via, opts, endpoint.name);
  try {
    const sock = await jump.forwardOut(endpoint.address, endpoint.port);
    const conn = await SshConnection.open(endpoint, { ...opts, sock, through: jump });
    conn.onClose(release);
    return conn;
  } catch (err) {
    release();
    if (err instanceof UnreachableError && err.host !== endpoint.name)
      throw new UnreachableError(endpoint.name, err.reason, err.message);
    throw err;
  }
}

/** The shared connection to a jump host, opened when needed; `release` gives it back. */
async function acquireJumpHost(
  endpoint: SshEndpoint,
  opts: SshOptions,
  forHost: string,
  retried = false,
): Promise<{ conn: SshConnection; release: () => void }> {
  const key = endpointKey(endpoint);
  let entry = shared.get(key);
  if (!entry) {
    const opening: Shared = { users: 0, conn: openEndpoint(endpoint, jumpOptions(opts)) };
    entry = opening;
    shared.set(key, entry);
    // A jump host that could not be reached is tried again by the next host, not remembered.
    opening.conn.catch(() => shared.get(key) === opening && shared.delete(key));
  }
  const current = entry;
  current.users++;
  if (current.idle) clearTimeout(current.idle);
  current.idle = undefined;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    current.users--;
    if (current.users > 0) return;
    current.idle = setTimeout(() => {
      if (current.users > 0 || shared.get(key) !== current) return;
      shared.delete(key);
      current.conn.then((c) => c.close()).catch(() => {});
    }, LINGER_MS);
    current.idle.unref();
  };
  let conn: SshConnection;
  try {
    conn = await current.conn;
  } catch (err) {
    release();
    if (err instanceof UnreachableError) {
      throw new UnreachableError(
        forHost,
        err.reason,
        `cannot reach the jump host ${endpoint.name}: ${err.message.replace(/^cannot reach the jump host [^:]+: /, '')}`,
      );
    }
    throw err;
  }
  const lost = conn.lostError();
  if (lost) {
    // Lost since it was opened: a new one, once.
    if (shared.get(key) === current) shared.delete(key);
    release();
    if (retried) throw new UnreachableError(forHost, lost.reason, lost.message);
    return acquireJumpHost(endpoint, opts, forHost, true);
  }
  return { conn, release };
}

/** A jump host runs no commands: no sudo password, no channel limit of its own. */
function jumpOptions(opts: SshOptions): SshOptions {
  return { ...opts, becomePassword: undefined, sock: undefined, through: undefined };
}
