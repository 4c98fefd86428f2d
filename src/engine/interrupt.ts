/**
 * Ctrl-C and SIGTERM during a run (provision, run). The first signal is a stop request: no new command
 * starts on any host (no new step, no handler, no new host), the commands that run something (run
 * steps: command, shell, apt...) are stopped with their whole process group on the host (`aborted`
 * fires; see remote-process.ts), a file being sent arrives whole, the recap prints and the run exits
 * 130 (SIGINT) or 143 (SIGTERM). A second signal aborts at once: every
 * connection is closed, which ends the input of the commands still running, so a write in progress
 * installs nothing (its size and sha256 do not match) and leaves no temporary file.
 */
export type StopSignal = 'SIGINT' | 'SIGTERM';

export interface SignalSource {
  on(signal: StopSignal, handler: () => void): unknown;
  off(signal: StopSignal, handler: () => void): unknown;
}

const EXIT_CODES: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 };

export class RunStop {
  /** The first signal received, once one was. */
  signal?: StopSignal;
  private readonly handlers = new Map<StopSignal, () => void>();
  private source: SignalSource = process;
  private readonly controller = new AbortController();

  /** Aborted by the first signal: the commands running on the hosts are stopped. */
  get aborted(): AbortSignal {
    return this.controller.signal;
  }

  get requested(): boolean {
    return this.signal !== undefined;
  }

  /** 130 after SIGINT, 143 after SIGTERM; undefined when no stop was requested. */
  get exitCode(): number | undefined {
    return this.signal ? EXIT_CODES[this.signal] : undefined;
  }

  /**
   * Listens for SIGINT and SIGTERM until `dispose`. `onFirst` says what happens (a line for the user);
   * `onSecond` aborts the commands in flight. `source`: where signals come from (tests pass their own).
   */
  listen(
    onFirst: (signal: StopSignal) => void,
    onSecond: (signal: StopSignal) => void,
    source: SignalSource = process,
  ): this {
    this.source = source;
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const handler = () => {
        if (this.signal === undefined) {
          this.signal = signal;
          onFirst(signal);
          this.controller.abort(signal);
        } else onSecond(signal);
      };
      this.handlers.set(signal, handler);
      source.on(signal, handler);
    }
    return this;
  }

  dispose(): void {
    for (const [signal, handler] of this.handlers) this.source.off(signal, handler);
    this.handlers.clear();
  }
}
