/**
 * The user's side of the warm engine (protocol.ts says what it is): hands a command line to a ready
 * spare and stands in for it until it ends. This module is all the `verdandi` process loads then, so
 * it imports Node's own modules and the small socket and frame helpers only.
 *
 * What the user's process does for the spare:
 * - writes the spare's standard output and error, in the order they come, to its own (a terminal, a
 *   pipe, a file at its offset: whatever the user gave it);
 * - reads its own standard input only when the spare reads it, in raw mode when the spare asks for it
 *   (a passphrase prompt), and gives every byte to the spare;
 * - passes on SIGINT, SIGTERM, SIGHUP and SIGQUIT to the spare's process group (what the terminal
 *   would have done), and a window's new size;
 * - ends with the spare's exit code.
 * No spare ready, or one that refuses (another build, busy): undefined, and the command runs in this
 * process as it would without a spare.
 */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { FrameReader, frame } from '../../connection/keeper-protocol.js';
import { checkPrivateDir, checkPrivateSocket, keeperDir } from '../../connection/keeper-socket.js';
import {
  buildIdentity,
  type Control,
  loadingSpares,
  type RunHello,
  SPARE_SOCKET,
  type StreamShape,
  spareLoading,
  WARM_FRAME,
  warmCommand,
} from './protocol.js';

/** How long a spare still loading is waited for (loading takes about a third of a second). */
const LOADING_WAIT_MS = 3000;
const LOADING_POLL_MS = 10;

const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;

/** The spare's socket once one serves it (waiting for one still loading), else undefined. */
async function readySocket(dir: string): Promise<string | undefined> {
  const path = join(dir, SPARE_SOCKET);
  const deadline = Date.now() + LOADING_WAIT_MS;
  for (;;) {
    // A directory or socket that is not the user's alone: the run without a spare says what is wrong.
    if (checkPrivateSocket(path) === 'ok') return path;
    if (Date.now() > deadline || !spareLoading(dir)) return undefined;
    await new Promise((resolve) => setTimeout(resolve, LOADING_POLL_MS));
  }
}

function shape(stream: NodeJS.ReadStream | NodeJS.WriteStream): StreamShape {
  if (!stream.isTTY) return { tty: false };
  const out = stream as NodeJS.WriteStream;
  return { tty: true, columns: out.columns, rows: out.rows };
}

/** The environment handed over: the user's, with the terminal's name for gpg's pinentry when there is one. */
function environment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (value !== undefined) env[name] = value;
  if (process.stdin.isTTY && !env.GPG_TTY) {
    try {
      const tty = readlinkSync('/proc/self/fd/0');
      if (tty.startsWith('/dev/')) env.GPG_TTY = tty;
    } catch {
      // No /proc: gpg.ts asks `tty`, in the spare, which has no terminal; pinentry then says so.
    }
  }
  return env;
}

/**
 * Runs `argv` (process.argv) on a ready spare: resolves with its exit code, or undefined when there is
 * none to run it (the caller runs the command itself).
 */
export async function runWarm(argv: string[]): Promise<number | undefined> {
  if (!warmCommand(argv.slice(2), process.env, process.execArgv)) return undefined;
  let path: string | undefined;
  try {
    const dir = keeperDir();
    if (!existsSync(dir)) return undefined;
    checkPrivateDir(dir);
    path = await readySocket(dir);
  } catch {
    return undefined;
  }
  if (!path) return undefined;
  const hello: RunHello = {
    op: 'run',
    build: buildIdentity(),
    argv,
    env: environment(),
    cwd: process.cwd(),
    umask: process.umask(),
    stdin: shape(process.stdin),
    stdout: shape(process.stdout),
    stderr: shape(process.stderr),
  };
  return handOver(connect(path), hello);
}

function handOver(socket: Socket, hello: RunHello): Promise<number | undefined> {
  return new Promise((resolve) => {
    let pid: number | undefined;
    let ended = false;
    let reading = false;
    let rawMode = false;
    const send = (type: number, payload: Buffer | string) => {
      if (!socket.destroyed) socket.write(frame(type, payload));
    };
    const toSpare = (data: Buffer) => send(WARM_FRAME.stdin, data);
    const inputEnded = () => send(WARM_FRAME.stdinEnd, '');
    const forward = (signal: NodeJS.Signals) => {
      if (pid === undefined) return;
      try {
        process.kill(-pid, signal);
      } catch {
        try {
          process.kill(pid, signal);
        } catch {
          // Already gone: its socket's end says so.
        }
      }
    };
    const resized = () => {
      const { columns, rows } = process.stdout;
      send(WARM_FRAME.control, JSON.stringify({ resize: [columns, rows] } satisfies Control));
    };

    const finish = (code: number | undefined) => {
      if (ended) return;
      ended = true;
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
      process.stdout.off('resize', resized);
      process.stdin.off('data', toSpare);
      process.stdin.off('end', inputEnded);
      if (reading) process.stdin.pause();
      if (rawMode) process.stdin.setRawMode?.(false);
      socket.destroy();
      resolve(code);
    };

    const onControl = (control: Control) => {
      if ('accepted' in control) {
        pid = control.accepted;
        for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
        if (process.stdout.isTTY) process.stdout.on('resize', resized);
      } else if ('refused' in control) finish(undefined);
      else if ('exit' in control) finish(control.exit);
      else if ('rawMode' in control) {
        rawMode = control.rawMode;
        process.stdin.setRawMode?.(control.rawMode);
      } else if ('stdin' in control) {
        if (control.stdin === 'on' && !reading) {
          reading = true;
          process.stdin.on('data', toSpare);
          process.stdin.once('end', inputEnded);
          process.stdin.resume();
        } else if (control.stdin === 'off' && reading) {
          reading = false;
          process.stdin.off('data', toSpare);
          process.stdin.pause();
        }
      }
    };

    const reader = new FrameReader((type, payload) => {
      if (type === WARM_FRAME.stdout) process.stdout.write(payload);
      else if (type === WARM_FRAME.stderr) process.stderr.write(payload);
      else if (type === WARM_FRAME.control) onControl(JSON.parse(payload.toString('utf8')) as Control);
    });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.once('error', () => undefined);
    socket.once('close', () => {
      if (ended) return;
      if (pid === undefined) return finish(undefined);
      // The spare ended without its exit code: it was killed. Say so, as a shell says a killed process.
      process.stderr.write(`verdandi: the warm engine running this command (process ${pid}) was stopped\n`);
      finish(1);
    });
    socket.write(`${JSON.stringify(hello)}\n`);
  });
}

/**
 * `verdandi disconnect`: stops the spare serving `dir` and any still loading there (true when there
 * was one).
 */
export async function stopSpare(dir = keeperDir()): Promise<boolean> {
  const loading = stopLoadingSpares(dir);
  const path = join(dir, SPARE_SOCKET);
  try {
    if (checkPrivateSocket(path) !== 'ok') return loading;
  } catch {
    return loading;
  }
  const served = await new Promise<boolean>((resolve) => {
    const socket = connect(path);
    socket.once('error', () => resolve(false));
    socket.once('connect', () => socket.write(`${JSON.stringify({ op: 'stop' })}\n`));
    // Its answer (refused: stopped) is all there is to read: it exits after it.
    socket.once('data', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('close', () => resolve(false));
  });
  return served || loading;
}

/** Ends the spares still loading in `dir` (a marker names each; its command line must be a spare's). */
function stopLoadingSpares(dir: string): boolean {
  let stopped = false;
  for (const pid of loadingSpares(dir)) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('spare')) continue;
      process.kill(pid, 'SIGTERM');
      stopped = true;
    } catch {
      // Gone meanwhile.
    }
  }
  return stopped;
}
