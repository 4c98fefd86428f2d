/**
 * An interactive command on one host with the local terminal attached (`verdandi console`, `db`).
 *
 * With a terminal (stdin and stdout both TTYs): the host gives the command a terminal of the local
 * window's size (ssh's `pty-req`), kept in step when the window changes; local stdin is in raw mode,
 * so every key, Ctrl-C included, is a byte for the remote program and none a signal for Verdandi. The
 * command hangs up with its terminal when the session ends: nothing of it stays on the host.
 *
 * Without one, with a command given: no terminal, the output streamed as it comes, stdin passed on,
 * the command run in a process group of its own (remote-process.ts) that Ctrl-C stops on the host.
 *
 * The script goes to a 0700 directory of its own on the host first (the usual exec: on stdin, never
 * on a command line), and removes it as it starts; the interactive command line is `sh <that file>`.
 * Either way the exit code is the remote command's.
 */
import type { Connection, InteractiveSession, TerminalSize } from '../connection/types.js';
import { UserError } from '../util/errors.js';
import { newProcessId, stopOnAbort, supervised } from './remote-process.js';

/** The local terminal, when stdin and stdout both are one. */
export function localTerminal(): TerminalSize | undefined {
  if (!process.stdin.isTTY || !process.stdout.isTTY) return undefined;
  return {
    term: process.env.TERM || 'xterm-256color',
    rows: process.stdout.rows || 24,
    cols: process.stdout.columns || 80,
  };
}

/**
 * Refuses, before any host is contacted, an interactive session that has no terminal to run in: no
 * command given and stdin or stdout not a terminal.
 */
export function requireTerminal(what: string, hasCommand: boolean, tty = !!localTerminal()): void {
  if (hasCommand || tty) return;
  throw new UserError(
    `${what} needs a terminal: stdin and stdout are not both one here`,
    1,
    `run it from a terminal, or give the command to run after --: ${what} … -- <command>`,
  );
}

/**
 * The host an interactive session opens on: `wanted` (which must be in the inventory and be one of
 * `candidates`, the hosts that run `what`), else the first candidate. `note` says which one was
 * picked when several could be.
 */
export function pickHost(
  candidates: string[],
  what: string,
  inventoryHosts: string[],
  wanted?: string,
): { host: string; note?: string } {
  const hint = `the hosts of ${what}: ${candidates.join(', ') || 'none'}`;
  if (wanted !== undefined) {
    if (!inventoryHosts.includes(wanted))
      throw new UserError(`--host ${wanted}: no such host in the inventory`, 1, hint);
    if (!candidates.includes(wanted))
      throw new UserError(`--host ${wanted}: not a host of ${what} (or --limit left it out)`, 1, hint);
    return { host: wanted };
  }
  if (candidates.length === 0) throw new UserError(`no host of ${what}`, 1);
  if (candidates.length === 1) return { host: candidates[0] };
  return {
    host: candidates[0],
    note: `${candidates.length} hosts of ${what} (${candidates.join(', ')}): on ${candidates[0]} (choose another with --host)`,
  };
}

/** Writes `script` to a fresh 0700 directory on the host; returns the file's path. */
async function uploadScript(conn: Connection, script: string): Promise<string> {
  // The script's first line removes its directory: `sh` holds the file open, nothing is left behind.
  const body = `rm -rf "$(dirname "$0")"\n${script}\n`;
  const res = await conn.exec(
    'd=$(mktemp -d /tmp/verdandi-console.XXXXXX) && cat > "$d/script" && echo "$d/script"',
    { stdin: body },
  );
  const path = res.stdout.trim();
  if (res.code !== 0 || !path.startsWith('/tmp/verdandi-console.'))
    throw new Error(`${conn.host}: could not write the console's script in /tmp: ${res.stderr.trim()}`);
  return path;
}

/** Runs `script` on the host with the local terminal attached; resolves with its exit code. */
export async function runInteractive(conn: Connection, script: string, signal: AbortSignal): Promise<number> {
  if (!conn.interactive) {
    throw new UserError(
      `${conn.host} is a local connection: an interactive session needs an SSH host`,
      1,
      'give the host an address in the inventory',
    );
  }
  const tty = localTerminal();
  const id = newProcessId();
  const path = await uploadScript(conn, tty ? script : supervised(script, id));
  let session: InteractiveSession;
  try {
    session = await conn.interactive(path, tty);
  } catch (err) {
    await conn.exec(`rm -rf "$(dirname '${path}')"`).catch(() => undefined);
    throw err;
  }
  // Ctrl-C (without a terminal) or SIGTERM: the command is stopped on the host, then the session ends.
  const releaseStop = tty ? () => undefined : stopOnAbort(conn, id, signal);
  const hangUp = () => session.close();
  signal.addEventListener('abort', hangUp, { once: true });
  const stdin = process.stdin;
  const toRemote = (d: Buffer) => session.stream.write(d);
  const onResize = () => session.resize(process.stdout.rows, process.stdout.columns);
  session.stream.on('data', (d: Buffer) => process.stdout.write(d));
  session.stderr.on('data', (d: Buffer) => process.stderr.write(d));
  if (tty) {
    stdin.setRawMode(true);
    process.stdout.on('resize', onResize);
  }
  stdin.on('data', toRemote);
  const endInput = () => session.stream.end();
  stdin.once('end', endInput);
  stdin.resume();
  try {
    return await session.exit;
  } finally {
    signal.removeEventListener('abort', hangUp);
    releaseStop();
    stdin.off('data', toRemote);
    stdin.off('end', endInput);
    stdin.pause();
    if (tty) {
      stdin.setRawMode(false);
      process.stdout.off('resize', onResize);
    }
  }
}
