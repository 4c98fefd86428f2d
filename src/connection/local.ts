/**
 * A connection to the machine Verdandi runs on (inventory host `localhost` / `connection: local`).
 * Same protocol as SSH (protocol.ts): a fixed command line, the script and its payload on stdin.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { notifyObservers } from '../util/run-events.js';
import { OutputCollector } from './bounded-output.js';
import { frameInput, localArgv } from './protocol.js';
import { AbortedError, type Connection, type ExecOptions, type ExecResult } from './types.js';

export class LocalConnection implements Connection {
  roundTrips = 0;
  private readonly running = new Set<() => void>();
  constructor(
    readonly host: string,
    private readonly become = false,
  ) {}

  exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (opts.signal?.aborted) return Promise.reject(new AbortedError(this.host));
    this.roundTrips++;
    notifyObservers((o) => o.roundTrip?.(this.host));
    const [cmd, args] = localArgv(this.become && process.getuid?.() !== 0);
    return new Promise((resolve, reject) => {
      // Its own process group, so an abort stops what the script started too.
      const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      const stdout = new OutputCollector(opts.bound);
      const stderr = new OutputCollector(opts.bound && { tailBytes: opts.bound.tailBytes });
      let aborted = false;
      const abort = () => {
        if (aborted) return;
        aborted = true;
        // Ending the input first: a write in progress sees an incomplete transfer and installs nothing.
        child.stdin.destroy();
        try {
          if (child.pid) process.kill(-child.pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
        done();
        reject(new AbortedError(this.host));
      };
      this.running.add(abort);
      opts.signal?.addEventListener('abort', abort, { once: true });
      if (opts.stdout) child.stdout.pipe(opts.stdout, { end: false });
      else child.stdout.on('data', (d: Buffer) => stdout.push(d));
      child.stderr.on('data', (d: Buffer) => stderr.push(d));
      const timer = opts.timeoutMs
        ? setTimeout(() => {
            try {
              if (child.pid) process.kill(-child.pid, 'SIGTERM');
            } catch {
              /* already gone */
            }
          }, opts.timeoutMs).unref()
        : undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        this.running.delete(abort);
        opts.signal?.removeEventListener('abort', abort);
      };
      child.on('error', (err) => {
        done();
        reject(err);
      });
      child.on('close', (code, signal) => {
        if (aborted) return;
        done();
        const bySignal = signal ? 128 + ((constants.signals as Record<string, number>)[signal] ?? 0) : 255;
        resolve({
          stdout: stdout.text(),
          stderr: stderr.text(),
          code: code ?? bySignal,
        });
      });
      child.stdin.on('error', () => {});
      const input = frameInput(script, opts.stdin);
      input.on('error', () => abort());
      input.pipe(child.stdin);
    });
  }

  async close(): Promise<void> {
    for (const abort of [...this.running]) abort();
  }
}
