/**
 * Runs programs on the build machine. Always an argv array, never a shell: no value is ever parsed as
 * shell syntax. `words()` is only used to show a failed command in an error message.
 */
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { words } from '../util/shell.js';

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit status; 124 when killed by `timeoutMs`, like timeout(1). */
  code: number;
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Also write the program's stderr to ours as it comes (the progress of a long build). */
  echoStderr?: boolean;
}

/**
 * root's PATH on some machines lacks the sbin dirs where debootstrap, ip and iptables live: add them.
 */
export function pathWithSbin(path: string | undefined = process.env.PATH): string {
  const dirs = (path || '/usr/local/bin:/usr/bin:/bin').split(':').filter(Boolean);
  for (const extra of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!dirs.includes(extra)) dirs.push(extra);
  return dirs.join(':');
}

export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = opts.env ?? process.env;
    const child = spawn(command, args, {
      env: { ...env, PATH: pathWithSbin(env.PATH) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (opts.echoStderr) process.stderr.write(chunk);
      stderr += chunk;
    });
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, opts.timeoutMs);
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ stdout, stderr, code: timedOut ? 124 : (code ?? (signal ? 128 : 1)) });
    });
    // The child may exit without reading its input (EPIPE): that is its business, not an error here.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Like `run`, but a non-zero exit is an error naming the command and its stderr. */
export async function runOk(
  command: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const result = await run(command, args, opts);
  if (result.code !== 0) {
    const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join('\n');
    throw new Error(`\`${words(command, ...args)}\` failed (exit ${result.code}): ${detail}`);
  }
  return result;
}

/** Whether `command` is found on PATH (as `command -v` would). */
export async function commandExists(command: string): Promise<boolean> {
  for (const dir of pathWithSbin().split(':')) {
    try {
      await access(join(dir, command), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
