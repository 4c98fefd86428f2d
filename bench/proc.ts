/** Running and timing processes, and the small statistics the benchmark reports. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Finished {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall-clock time from spawn to exit, in milliseconds. */
  ms: number;
  /** CPU time (user + system) of the process and its children, in ms, when asked for with `cpu`. */
  cpuMs?: number;
  /**
   * Peak resident memory (KiB) of the process, when asked for with `cpu`: GNU time's maximum RSS, the
   * largest of the process and its children (Verdandi starts none: ssh is a library in its process).
   */
  maxRssKb?: number;
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  /** Killed (SIGKILL) after this long; the result then has code 124. */
  timeoutMs?: number;
  /**
   * Also measure the CPU time the command used on this machine, and its peak memory (through GNU time,
   * when installed): unlike wall-clock time, CPU time hardly depends on what else the machine is doing.
   */
  cpu?: boolean;
}

const GNU_TIME = '/usr/bin/time';
/** How long a process's pipes are still read after it exited (see runTimed). */
const PIPES_AFTER_EXIT_MS = 2_000;
let cpuFileCounter = 0;

/** Runs the command under GNU time, then reads the CPU time and peak memory it wrote. */
async function runWithCpu(command: string, args: string[], opts: SpawnOptions): Promise<Finished> {
  const file = join(tmpdir(), `verdandi-bench-cpu-${process.pid}-${cpuFileCounter++}`);
  const res = await runTimed(GNU_TIME, ['-q', '-f', '%U %S %M', '-o', file, command, ...args], {
    ...opts,
    cpu: false,
  });
  const text = await readFile(file, 'utf8').catch(() => '');
  await rm(file, { force: true });
  const [user, system, maxRssKb] = (text.trim().split('\n').at(-1) ?? '').split(' ').map(Number);
  if (!Number.isFinite(user) || !Number.isFinite(system)) return res;
  return {
    ...res,
    cpuMs: (user + system) * 1000,
    maxRssKb: Number.isFinite(maxRssKb) ? maxRssKb : undefined,
  };
}

/** Runs a program (no shell) to its end and times it. Never throws on a non-zero exit. */
export function runTimed(command: string, args: string[], opts: SpawnOptions = {}): Promise<Finished> {
  if (opts.cpu && existsSync(GNU_TIME)) return runWithCpu(command, args, opts);
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    child.once('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    // Timed to the process's exit, not to the close of its pipes, which a process it left behind may
    // hold open: a daemon it forked would otherwise add its whole life to the figure. Checked for
    // Ansible's ControlPersist masters (they outlive ansible-playbook by 60 s): with Ansible 2.14 they
    // do not hold them (ssh runs with pipes of Ansible's own, its masters keep only those), the pipes
    // closed within 1 ms of the exit, with and without GNU time. The output is read until the pipes
    // close or PIPES_AFTER_EXIT_MS after the exit, whichever comes first.
    let exitedAt: bigint | undefined;
    let exitCode: number | null = null;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve({
        code: timedOut ? 124 : (exitCode ?? 255),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: Number((exitedAt ?? process.hrtime.bigint()) - started) / 1e6,
      });
    };
    child.once('exit', (code) => {
      exitedAt = process.hrtime.bigint();
      exitCode = code;
      setTimeout(finish, PIPES_AFTER_EXIT_MS);
    });
    child.once('close', (code) => {
      exitCode ??= code;
      finish();
    });
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {}); // the program may exit before reading everything
      child.stdin.end(opts.input);
    }
  });
}

/** Like runTimed, but a non-zero exit is an error carrying the end of the output. */
export async function runOk(command: string, args: string[], opts: SpawnOptions = {}): Promise<Finished> {
  const res = await runTimed(command, args, opts);
  if (res.code !== 0) {
    const tail = `${res.stdout}\n${res.stderr}`.trim().split('\n').slice(-20).join('\n');
    throw new Error(`${command} ${args.slice(0, 6).join(' ')}... exited ${res.code}:\n${tail}`);
  }
  return res;
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Runs `fn` over items with at most `limit` at a time; results keep the items' order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>) {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return results;
}

/** The 1-minute load average: other work on the machine skews every figure, so the report shows it. */
export async function loadAverage(): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  return Number((await readFile('/proc/loadavg', 'utf8')).split(' ')[0]);
}

export const seconds = (ms: number) => (ms / 1000).toFixed(2);
