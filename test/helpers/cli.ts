/**
 * The verdandi command line as a user runs it: `node bin/verdandi.js ...` (the built CLI: `npm test`
 * builds first; run `npm run build` before running single test files), in CI mode (plain output).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';

/** The project root, from this file's own location (test/helpers/). */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI_BIN = join(PROJECT_ROOT, 'bin', 'verdandi.js');

export interface CliResult {
  stdout: string;
  stderr: string;
  /** Exit code; 124 when killed after `timeoutMs`. */
  code: number;
}

export interface CliOptions {
  /** Working directory (default: the project root). */
  cwd?: string;
  /** Added to (and overriding) the test process's environment. */
  env?: Record<string, string>;
  /** Sent on standard input (default: none, stdin closed at once). */
  input?: string;
  /** Kill the CLI after this long (default 5 minutes). */
  timeoutMs?: number;
}

/**
 * Removes a project folder the CLI ran in. Each run ends by starting `verdandi history import` in the
 * background (see src/history/spool.ts), which may still be writing `.verdandi/` when the test is over:
 * the removal is retried until it is done (a bare rmSync failed with ENOTEMPTY).
 */
export function removeProject(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 20 });
}

/**
 * Projects written into temporary folders and the CLI run in them, with one compile cache for the test
 * file (`name` names the folders): `project({ 'verdandi.ts': ..., 'roles/app/index.ts': ... })` writes
 * the files and returns the folder; `cli(dir, args, env)` runs the CLI there (2 minutes at most).
 */
export function cliProjects(name: string) {
  const cache = mkdtempSync(join(tmpdir(), `vd-${name}-cache-`));
  return {
    project(files: Record<string, string>): string {
      const dir = mkdtempSync(join(tmpdir(), `vd-${name}-`));
      for (const [path, text] of Object.entries(files)) {
        mkdirSync(join(dir, path, '..'), { recursive: true });
        writeFileSync(join(dir, path), text);
      }
      return dir;
    },
    cli: (dir: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
      runCli(args, { cwd: dir, env: { VERDANDI_TS_CACHE: cache, ...env }, timeoutMs: 120_000 }),
  };
}

export function runCli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, ...args], {
      cwd: opts.cwd ?? PROJECT_ROOT,
      env: { ...process.env, CI: 'true', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(
      () => {
        timedOut = true;
        child.kill('SIGKILL');
      },
      opts.timeoutMs ?? 5 * 60_000,
    );
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code: timedOut ? 124 : (code ?? 1) });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Writes `content` as YAML to `<dir>/inventories/<name>.yml` and returns its path, so the inventory
 * can be passed as a path, or as `<name>` from `cwd: dir`.
 */
export function writeInventory(dir: string, content: unknown, name = 'test'): string {
  const path = join(dir, 'inventories', `${name}.yml`);
  mkdirSync(join(dir, 'inventories'), { recursive: true });
  writeFileSync(path, yaml.dump(content, { lineWidth: -1 }));
  return path;
}

/**
 * A new project folder (`mkdtemp` with `prefix`) whose environment `env` has secrets: the vault
 * password in `secrets/<env>.vault-password` and each of `secrets` stored with `verdandi secrets set`.
 */
export async function projectWithSecrets(
  prefix: string,
  env: string,
  vaultPassword: string,
  secrets: Record<string, string>,
): Promise<string> {
  const project = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(project, 'secrets'));
  writeFileSync(join(project, 'secrets', `${env}.vault-password`), `${vaultPassword}\n`, { mode: 0o600 });
  for (const [key, value] of Object.entries(secrets)) {
    const set = await runCli(['secrets', 'set', env, key], { cwd: project, input: value });
    if (set.code !== 0) throw new Error(`secrets set ${env} ${key} failed (${set.code}): ${set.stderr}`);
  }
  return project;
}
