/**
 * A spare's standard streams once it runs a user's command (spare.ts): stand-ins for process.stdin,
 * stdout and stderr that go through the unix connection to the user's `verdandi` process, which
 * writes and reads its own (client.ts). A stream that is a terminal on the user's side is one here
 * too: `isTTY`, its size (kept in step with the window), the cursor and colour methods of Node's
 * tty.WriteStream, and `setRawMode` on standard input (done by the user's process on its terminal).
 */
import { Readable, Writable } from 'node:stream';
import tty from 'node:tty';
import type { Control, StreamShape } from './protocol.js';

/** Node's terminal methods work on any stream with `columns`, `rows` and `write` (they write escapes). */
const TERMINAL_METHODS = [
  'clearLine',
  'clearScreenDown',
  'cursorTo',
  'moveCursor',
  'getColorDepth',
  'hasColors',
  'getWindowSize',
] as const;

export class RelayedOutput extends Writable {
  isTTY?: true;
  columns?: number;
  rows?: number;

  constructor(
    private readonly send: (chunk: Buffer) => void,
    shape: StreamShape,
  ) {
    super({ decodeStrings: true });
    if (!shape.tty) return;
    this.isTTY = true;
    this.columns = shape.columns;
    this.rows = shape.rows;
    const self = this as unknown as Record<string, unknown>;
    const terminal = tty.WriteStream.prototype as unknown as Record<string, unknown>;
    for (const method of TERMINAL_METHODS) self[method] = terminal[method];
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (chunk.length > 0) this.send(chunk);
    done();
  }

  /** The user's window changed size: what tty.WriteStream does on SIGWINCH. */
  resized(columns: number, rows: number): void {
    if (!this.isTTY) return;
    this.columns = columns;
    this.rows = rows;
    this.emit('resize');
  }
}

export class RelayedInput extends Readable {
  isTTY?: true;
  isRaw = false;
  /** Asked the user's process for input, and not told it to stop since. */
  private asked = false;

  constructor(
    private readonly control: (control: Control) => void,
    shape: StreamShape,
  ) {
    super();
    if (shape.tty) this.isTTY = true;
    this.on('pause', () => {
      if (!this.asked) return;
      this.asked = false;
      this.control({ stdin: 'off' });
    });
  }

  /** Like tty.ReadStream's, on the user's terminal. */
  setRawMode(mode: boolean): this {
    if (!this.isTTY) throw new Error('setRawMode: standard input is not a terminal');
    this.isRaw = mode;
    this.control({ rawMode: mode });
    return this;
  }

  /** process.stdin's handle methods: the relay holds no handle of its own. */
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  override _read(): void {
    if (this.asked) return;
    this.asked = true;
    this.control({ stdin: 'on' });
  }

  /** Bytes the user's process read for us; null at the end of its input. */
  received(data: Buffer | null): void {
    this.push(data);
  }
}

/** Makes the relays this process's standard streams, and its console's. */
export function useRelayedStdio(stdin: RelayedInput, stdout: RelayedOutput, stderr: RelayedOutput): void {
  for (const [name, stream] of [
    ['stdin', stdin],
    ['stdout', stdout],
    ['stderr', stderr],
  ] as const) {
    Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => stream });
  }
  globalThis.console = new console.Console({ stdout, stderr });
}
