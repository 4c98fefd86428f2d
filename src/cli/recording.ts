/**
 * Which commands are recorded in the run history, and the seam between the CLI and the recorder: the
 * recorder starts before the command's action and is given the exit code at the end (main.ts). The
 * history code is imported only when a recorded command runs.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { UnreachableError } from '../connection/types.js';
import { listenToRuns } from '../engine/events.js';
import { InventoryError } from '../inventory/types.js';
import { entryProgram } from '../util/entry-program.js';
import { UserError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { exitWhenFlushed } from '../util/stdio.js';

const RECORDED = new Set([
  'provision',
  'run',
  'deploy',
  'rollback',
  'backup',
  'restore',
  'exec',
  'lock release',
  'maintenance',
]);
/** Where the environment is among the command's arguments, when not first (`maintenance on <env>`). */
const ENV_ARGUMENT: Record<string, number> = { maintenance: 1 };

/** `deploy`, or `lock release` for a subcommand; undefined below that. */
function commandName(program: Command, action: Command): string | undefined {
  if (action.parent === program) return action.name();
  if (action.parent?.parent === program) return `${action.parent.name()} ${action.name()}`;
  return undefined;
}

export interface Recording {
  finish(exitCode: number, error?: unknown): Promise<void>;
}

/** Starts recording when `action` is a recorded command and the project's history is not off. */
export async function startRecording(
  program: Command,
  action: Command,
  args: string[],
): Promise<Recording | undefined> {
  const name = commandName(program, action);
  if (name === undefined || !RECORDED.has(name)) return undefined;
  const env = String(action.args[ENV_ARGUMENT[name] ?? 0] ?? '');
  const [{ Recorder }, { historyLocation }, { resolveInventoryPath }] = await Promise.all([
    import('../history/recorder.js'),
    import('../history/store.js'),
    import('../inventory/load.js'),
  ]);
  const projectDir = projectDirOf(env, resolveInventoryPath);
  let location: ReturnType<typeof historyLocation>;
  try {
    location = historyLocation(projectDir);
  } catch (err) {
    process.stderr.write(`warning: this run is not recorded: ${redact((err as Error).message)}\n`);
    return undefined;
  }
  if (location.kind === 'off') return undefined;
  const recorder = new Recorder({
    command: name,
    env: envName(env),
    args,
    projectDir,
    verdandiVersion: program.version() ?? 'unknown',
  });
  const stop = listenToRuns(recorder.handle);
  const stopSignals = recordSignals(recorder, projectDir);
  return {
    async finish(exitCode, error) {
      stop();
      stopSignals();
      const known =
        error instanceof UserError || error instanceof InventoryError || error instanceof UnreachableError;
      const spooled = await recorder.finish({
        exitCode,
        error: error === undefined ? undefined : { message: messageOf(error), internal: !known },
      });
      if (spooled) importInBackground(projectDir);
    },
  };
}

/**
 * Ctrl-C / SIGTERM of a command that does not handle them itself: Node would end at once, unrecorded.
 * Then the run is recorded as interrupted and the command ends with the signal's code (130, 143). A
 * command that handles the signal (a provision stops its hosts cleanly) ends the normal way, with
 * that code, and is recorded at its end: this listener then does nothing.
 */
function recordSignals(
  recorder: { finish(end: { exitCode: number }): Promise<string | undefined> },
  projectDir: string,
) {
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    const handler = () => {
      if (process.listenerCount(signal) > 1) return; // the command stops itself
      void recorder.finish({ exitCode: code }).then((spooled) => {
        if (spooled) importInBackground(projectDir);
        void exitWhenFlushed(code);
      });
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}

/**
 * The import of the spool (`verdandi history import --quiet`) as a process of its own that outlives
 * this one: the run's end does not wait for the store (see history/spool.ts). Its problems are
 * reported by the next run. It is history/import-main.ts, an entry of its own: it loads the store, not
 * the command line.
 */
function importInBackground(projectDir: string): void {
  try {
    const child = spawn(
      process.execPath,
      entryProgram(import.meta.url, 'history-import.js', '../history/import-main'),
      { cwd: projectDir, detached: true, stdio: 'ignore' },
    );
    child.on('error', () => {});
    child.unref();
  } catch {
    /* the run stays in the spool; the next `history`, `report` or import writes it */
  }
}

/** The project folder of an environment, as the inventory loader finds it (the cwd when unknown). */
function projectDirOf(env: string, resolveInventoryPath: (env: string, cwd: string) => string): string {
  const cwd = process.cwd();
  try {
    const file = resolveInventoryPath(env, cwd);
    const dir = file.slice(0, file.lastIndexOf('/'));
    return dir.endsWith('/inventories') ? dir.slice(0, -'/inventories'.length) : dir;
  } catch {
    return cwd;
  }
}

function envName(env: string): string {
  const base = env.split('/').pop() ?? env;
  return base.replace(/\.(ya?ml|ini)$/, '');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
