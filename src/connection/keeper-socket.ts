/**
 * Where the connection keeper's socket lives, and the checks that make it the user's own. Whoever can
 * connect to the socket runs commands on the user's hosts, so: a directory of the user's alone (0700,
 * owned by the user, not a symbolic link), a socket 0600 owned by the user. Anything else is refused,
 * not repaired: another user could have made it, to read what goes through or to answer in the
 * keeper's place.
 *
 * The directory is `$XDG_RUNTIME_DIR/verdandi` (a tmpfs of the user's, removed at logout) when the
 * session has one, else `verdandi-<uid>` in the system's temporary directory.
 */
import { chmodSync, lstatSync, mkdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:net';
import os from 'node:os';
import { isAbsolute, join } from 'node:path';
import { UserError } from '../util/errors.js';
import { socketAnswers } from '../util/unix-socket.js';

export const KEEPER_SOCKET = 'keeper.sock';

/** A unix socket's path must fit in sun_path (108 bytes on Linux, with its NUL). */
const MAX_SOCKET_PATH = 107;

const WITHOUT = 'run without --persist (and without $VERDANDI_PERSIST)';

export function currentUid(): number {
  return process.getuid?.() ?? 0;
}

/** The keeper's directory for this user. */
export function keeperDir(env: NodeJS.ProcessEnv = process.env, uid = currentUid()): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime && isAbsolute(runtime)) return join(runtime, 'verdandi');
  return join(os.tmpdir(), `verdandi-${uid}`);
}

export function keeperSocket(dir: string): string {
  const path = join(dir, KEEPER_SOCKET);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new UserError(
      `the connection keeper's socket path ${path} is longer than a unix socket allows (${MAX_SOCKET_PATH} bytes)`,
      1,
      `set XDG_RUNTIME_DIR (or TMPDIR) to a shorter directory, or ${WITHOUT}`,
    );
  }
  return path;
}

function mode(m: number): string {
  return `0${(m & 0o777).toString(8)}`;
}

/**
 * Creates the directory (0700) when it is missing, then checks it: a directory, not a link, the
 * user's, nobody else's to read or write. Throws a UserError saying what is wrong.
 */
export function ensurePrivateDir(dir: string, uid = currentUid()): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
    // mkdir's mode passes through the umask: a stricter one is fine, a looser one is not possible.
    chmodSync(dir, 0o700);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new UserError(
        `cannot create the connection keeper's directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        1,
        `check that its parent is writable, or ${WITHOUT}`,
      );
    }
  }
  checkPrivateDir(dir, uid);
}

export function checkPrivateDir(dir: string, uid = currentUid()): void {
  const st = lstatSync(dir);
  const refuse = (why: string): never => {
    throw new UserError(
      `refusing the connection keeper's directory ${dir}: ${why}; another user could read or replace its socket`,
      1,
      `remove it (only you should have made it), or ${WITHOUT}`,
    );
  };
  if (st.isSymbolicLink()) refuse('it is a symbolic link');
  if (!st.isDirectory()) refuse('it is not a directory');
  if (st.uid !== uid) refuse(`it is owned by uid ${st.uid}, not by you (uid ${uid})`);
  if ((st.mode & 0o077) !== 0) refuse(`its mode is ${mode(st.mode)}, not 0700`);
}

/**
 * Checks the socket before connecting to it: `absent` when there is none (a keeper is to be
 * started), else it must be a socket of the user's, 0600 or stricter.
 */
export function checkPrivateSocket(path: string, uid = currentUid()): 'absent' | 'ok' {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw err;
  }
  const refuse = (why: string): never => {
    throw new UserError(
      `refusing the connection keeper's socket ${path}: ${why}`,
      1,
      `remove it (only you should have made it), or ${WITHOUT}`,
    );
  };
  if (!st.isSocket()) refuse('it is not a socket');
  if (st.uid !== uid) refuse(`it is owned by uid ${st.uid}, not by you (uid ${uid})`);
  if ((st.mode & 0o077) !== 0) refuse(`its mode is ${mode(st.mode)}, not 0600`);
  return 'ok';
}

/** The keeper's directory made or checked, and its socket checked when there is one: before a run. */
export function checkKeeperPlace(): void {
  const dir = keeperDir();
  ensurePrivateDir(dir);
  checkPrivateSocket(keeperSocket(dir));
}

/**
 * Serves `server` on `path`, a socket of the private directory, as the one process of its kind (the
 * connection keeper, a spare engine): it listens on `own`, a name of its own beside it, sets that socket
 * to 0600 and renames it into place, so a client never finds the socket not yet private. Resolves with
 * undefined when another process already answers on `path` (this one's socket is removed: the caller
 * exits), else with the function that removes the socket in place while it is still this process's
 * (not a newer one's). To be called under umask 077.
 */
export async function servePrivately(
  server: Server,
  path: string,
  own: string,
): Promise<(() => void) | undefined> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(own, () => resolve());
  });
  // Made under umask 077 (0700: a socket's x bit means nothing); 0600 is what clients check for.
  chmodSync(own, 0o600);
  if (await socketAnswers(path)) {
    server.close();
    unlinkSync(own);
    return undefined;
  }
  renameSync(own, path);
  const servedInode = statSync(path).ino;
  return () => {
    try {
      if (statSync(path).ino === servedInode) unlinkSync(path);
    } catch {
      // Already gone.
    }
  };
}
