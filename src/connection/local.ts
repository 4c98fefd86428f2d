/** A connection to the machine Verdandi runs on (inventory host `localhost` / `connection: local`). */
import { spawn } from 'node:child_process';
import type { Connection, ExecOptions, ExecResult } from './types.js';

export class LocalConnection implements Connection {
  roundTrips = 0;
  constructor(
    readonly host: string,
    private readonly become = false,
  ) {}

  exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.roundTrips++;
    const needSudo = this.become && process.getuid?.() !== 0;
    const [cmd, args] = needSudo ? ['sudo', ['-n', '-H', '--', 'sh', '-c', script]] : ['sh', ['-c', script]];
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => {
        stdout += d;
      });
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      const timer = opts.timeoutMs
        ? setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs).unref()
        : undefined;
      child.on('error', reject);
      child.on('close', (code) => {
        if (timer) clearTimeout(timer);
        resolve({ stdout, stderr, code: code ?? 255 });
      });
      child.stdin.on('error', () => {});
      child.stdin.end(opts.stdin ?? '');
    });
  }

  async close(): Promise<void> {}
}
