/** One connection per host, reused for the whole run. SSH and local connections share this interface. */
import type { Writable } from 'node:stream';
import type { OutputBound } from './bounded-output.js';

/** How long to wait for a host, and how a silent one is found lost, unless told otherwise (seconds). */
export const CONNECTION_DEFAULTS = { connectTimeout: 10, keepalive: 5, keepaliveCount: 2 } as const;

export interface ExecOptions {
  /**
   * The command's standard input (file content, SQL, env values): sent after the script on the same
   * channel, never on a command line. A stream is piped as it comes (large transfers).
   */
  stdin?: string | Buffer | NodeJS.ReadableStream;
  /**
   * Where the command's standard output goes as it arrives (a download). The result's `stdout` is then
   * empty. Verdandi does not end this stream: the caller does, after the exec resolved.
   */
  stdout?: Writable;
  /**
   * Keep only the end of stdout and stderr (a command's own output, which may have no end): see
   * bounded-output.ts. Default: everything is kept (Verdandi's own probes and reads).
   */
  bound?: OutputBound;
  /** Fail the exec after this many milliseconds (default: none). */
  timeoutMs?: number;
  /**
   * Aborts the command: the channel is closed (the command sees the end of its input, so a write in
   * progress installs nothing) and the exec rejects with an AbortedError.
   */
  signal?: AbortSignal;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit status of the remote shell (128 + the signal number when a signal killed it). */
  code: number;
}

/** The terminal an interactive command gets on the host (ssh's `pty-req`). */
export interface TerminalSize {
  /** $TERM on the host. */
  term: string;
  rows: number;
  cols: number;
}

/** An interactive command in progress: its input and output, as they come, and its end. */
export interface InteractiveSession {
  /** Written: the command's input (raw key presses with a terminal). Read: its output. */
  readonly stream: NodeJS.ReadWriteStream;
  /** Its standard error (empty with a terminal: the terminal carries both). */
  readonly stderr: NodeJS.ReadableStream;
  /** Tells the host's terminal its new size (the local window changed). */
  resize(rows: number, cols: number): void;
  /** Sends a signal to the command (`TERM`, `HUP`), where the host's sshd supports it. */
  signal(name: string): void;
  /** Ends the session (the command sees its terminal hang up). */
  close(): void;
  /** The command's exit code (128 + signal when one killed it); rejects when the connection is lost. */
  readonly exit: Promise<number>;
}

export interface Connection {
  /** Inventory name of the host. */
  readonly host: string;
  /**
   * Runs `script` on the host, through sudo when the host uses `become`. The script travels on the
   * channel's standard input, ahead of `opts.stdin` (see protocol.ts): nothing of it shows in `ps`.
   */
  exec(script: string, opts?: ExecOptions): Promise<ExecResult>;
  /**
   * Starts the script file `path`, already on the host, as an interactive command: with a terminal of
   * `tty`'s size when given, through sudo with `become`. The file's path is the only argument `ps`
   * shows. SSH connections only (a local connection has no terminal to hand over).
   */
  interactive?(path: string, tty: TerminalSize | undefined): Promise<InteractiveSession>;
  /** How many commands were sent so far (each exec is one round trip). */
  readonly roundTrips: number;
  /** Closes the connection. Commands still running are cut off: their execs reject with AbortedError. */
  close(): Promise<void>;
}

/** Why a host could not be reached (or was lost); `reason` is one of refused, timeout, auth, hostkey, dns, lost, other. */
export class UnreachableError extends Error {
  constructor(
    readonly host: string,
    readonly reason: 'refused' | 'timeout' | 'auth' | 'hostkey' | 'dns' | 'lost' | 'other',
    message: string,
  ) {
    super(message);
    this.name = 'UnreachableError';
  }
}

/** The exec was aborted by its caller (ExecOptions.signal, or the connection closed while it ran). */
export class AbortedError extends Error {
  constructor(readonly host: string) {
    super(`${host}: command aborted`);
    this.name = 'AbortedError';
  }
}
