/**
 * Starting the spare that serves the next command (protocol.ts says what a spare is): at the end of a
 * command that a spare could have served, so that the next one, within `--persist`'s time, finds one
 * ready. One spare per user at a time: none is started while one serves or loads.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPrivateDir, keeperDir } from '../../connection/keeper-socket.js';
import { keeperEnvironment } from '../../connection/kept.js';
import { entryProgram } from '../../util/entry-program.js';
import { socketAnswers } from '../../util/unix-socket.js';
import { SPARE_LOADING_PREFIX, SPARE_SOCKET, spareLoading, warmCommand } from './protocol.js';

/** Defined by the bundler (scripts/bundle.js). */
declare const VERDANDI_BUNDLED: boolean | undefined;

/**
 * Starts a spare for `idleSeconds` when the command line `argv` (process.argv) could be served by one
 * and none serves or loads. Only the build has one: run from its TypeScript sources, there is no
 * bundle for a spare to load.
 */
export async function startSpare(argv: readonly string[], idleSeconds: number): Promise<void> {
  if (typeof VERDANDI_BUNDLED === 'undefined' || !VERDANDI_BUNDLED) return;
  if (!warmCommand(argv.slice(2), process.env, process.execArgv)) return;
  const dir = keeperDir();
  if (!existsSync(dir)) return;
  checkPrivateDir(dir);
  if (spareLoading(dir) || (await socketAnswers(join(dir, SPARE_SOCKET)))) return;
  const child = spawn(
    process.execPath,
    [...entryProgram(import.meta.url, 'spare.js', './spare'), dir, String(idleSeconds)],
    // Not the run's environment, as the connection keeper's: the command it serves brings its own.
    { detached: true, cwd: '/', env: keeperEnvironment(), stdio: 'ignore' },
  );
  child.once('error', () => undefined);
  // Its loading marker, written now rather than by the spare once Node has started: a command (or
  // `verdandi disconnect`) right after this one knows of it at once.
  if (child.pid !== undefined)
    writeFileSync(join(dir, `${SPARE_LOADING_PREFIX}${child.pid}`), '', { mode: 0o600 });
  child.unref();
}
