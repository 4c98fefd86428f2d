/**
 * Editing decrypted secrets in the user's editor, with the plaintext on disk as briefly and privately as
 * possible: a 0600 file in a fresh 0700 directory, on a RAM-backed filesystem when there is one, and
 * overwritten then removed whatever happens (editor error, invalid YAML, Ctrl-C, kill).
 */
import { spawn } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';
import { processStart } from '../util/process.js';
import { raw, words } from '../util/shell.js';
import { canPrompt, InterruptedError, promptChoice } from './tty.js';
import { parseSecretsYaml, SecretsYamlError } from './yaml.js';

/** Where edits put their plaintext copy, instead of the default below (a RAM disk of your choice). */
export const EDIT_DIR_ENV = 'VERDANDI_SECRETS_EDIT_DIR';

/**
 * `$VERDANDI_SECRETS_EDIT_DIR` when set, else a RAM-backed directory when the system has one (nothing
 * reaches a disk), else the temporary dir.
 */
export function privateTempRoot(): string {
  const chosen = process.env[EDIT_DIR_ENV];
  if (chosen) {
    try {
      if (statSync(chosen).isDirectory()) return chosen;
    } catch {
      // Said below.
    }
    throw new UserError(
      `$${EDIT_DIR_ENV} names ${chosen}, which is not a directory`,
      1,
      'create it (on a RAM disk: the plaintext is written there while you edit), or unset the variable',
    );
  }
  for (const dir of ['/dev/shm', process.env.XDG_RUNTIME_DIR]) {
    if (!dir) continue;
    try {
      if (statSync(dir).isDirectory()) {
        accessSync(dir, constants.W_OK);
        return dir;
      }
    } catch {
      // Not there or not writable: next.
    }
  }
  return tmpdir();
}

/** Overwrites a file with zeros (so its plaintext does not linger in freed blocks), then removes it. */
export function wipeFile(path: string): void {
  const size = lstatSync(path).size;
  if (size > 0) {
    try {
      const fd = openSync(path, 'r+');
      writeSync(fd, Buffer.alloc(size));
      fsyncSync(fd);
      closeSync(fd);
    } catch {
      // Removed below all the same.
    }
  }
  rmSync(path, { force: true });
}

/** Wipes every file under `dir` (the editor's swap and backup files too), then removes the directory. */
export function wipeDirectory(dir: string): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = lstatSync(path);
    if (stat.isDirectory()) wipeDirectory(path);
    else if (stat.isFile()) wipeFile(path);
  }
  rmSync(dir, { recursive: true, force: true });
}

/** The editor's directory of the process `pid` started at `start`: `verdandi-secrets-<pid>-<start>-XXXXXX`. */
const EDIT_DIR = /^verdandi-secrets-(\d+)-(\d+)-[A-Za-z0-9]{6}$/;

function editDirPrefix(): string {
  return `verdandi-secrets-${process.pid}-${processStart(process.pid) ?? '0'}-`;
}

/**
 * Wipes the plaintext copies that a killed edit left (SIGKILL, a power cut of a RAM-less machine: no
 * handler ran): the editor directories of this user whose process is gone. A live edit's directory
 * (its process runs, with the same start time) is left alone. Returns how many were removed.
 */
export function removeEditLeftovers(root = privateTempRoot()): number {
  // Without /proc no process can be known dead: remove nothing.
  if (processStart(process.pid) === undefined) return 0;
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const owner = EDIT_DIR.exec(name);
    if (!owner) continue;
    const dir = join(root, name);
    try {
      const stat = lstatSync(dir);
      if (!stat.isDirectory() || stat.uid !== process.getuid?.()) continue;
      if (processStart(Number(owner[1])) === owner[2]) continue;
      wipeDirectory(dir);
      removed++;
    } catch {
      // Removed meanwhile by another command, or not ours to remove.
    }
  }
  return removed;
}

export function editorCommand(): string {
  return process.env.VISUAL || process.env.EDITOR || 'vi';
}

/**
 * Runs the editor on `file`, attached to our terminal. `$EDITOR` is a shell command as in git
 * (`code --wait` works); the file is passed as "$1", never pasted into it.
 */
function runEditor(file: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const editor = editorCommand();
  return new Promise((resolvePromise, reject) => {
    const child = spawn('sh', ['-c', words(raw(editor), raw('"$@"')), 'editor', file], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolvePromise({ code, signal }));
  });
}

const WIPE_ON: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Lets the user edit `initial` (named `<name>.yml` for the editor's syntax colors). Returns the new text,
 * or undefined when it is unchanged. Invalid YAML: says where, then edits again or aborts (UserError).
 */
export async function editText(name: string, initial: string, what: string): Promise<string | undefined> {
  // Named by our pid and start time, so a later command knows when the process that made it is gone.
  const dir = mkdtempSync(join(privateTempRoot(), editDirPrefix()));
  let editorRunning = false;
  const wipe = () => wipeDirectory(dir);
  // While the editor runs, Ctrl-C belongs to it (vi uses it; git does the same). Otherwise a signal
  // wipes the plaintext before we die: the file being edited is never left behind.
  const onSignal = (signal: NodeJS.Signals) => {
    if (editorRunning && signal === 'SIGINT') return;
    wipe();
    process.stderr.write(`error: interrupted (${signal}): nothing was changed\n`);
    process.exit(1);
  };
  for (const s of WIPE_ON) process.on(s, onSignal);
  process.on('exit', wipe);
  try {
    const file = join(dir, `${name}.yml`);
    writeFileSync(file, initial, { mode: 0o600, flag: 'wx' });
    for (;;) {
      editorRunning = true;
      const { code, signal } = await runEditor(file).finally(() => {
        editorRunning = false;
      });
      // 130: the editor was a shell script, whose shell exited on the Ctrl-C.
      if (signal === 'SIGINT' || code === 130) throw new InterruptedError();
      if (code !== 0) {
        throw new UserError(
          `the editor (${editorCommand()}) ${signal ? `was killed by ${signal}` : `exited with code ${code}`}: ` +
            `nothing was changed in ${what}`,
          1,
          'check $VISUAL / $EDITOR, then run the command again',
        );
      }
      // The editor may have replaced the file (write to new + rename): read it by name.
      const edited = existsSync(file) ? readFileSync(file) : Buffer.alloc(0);
      const text = decodeEdited(edited, what);
      if (text === initial) return undefined;
      try {
        parseSecretsYaml(text);
        return text;
      } catch (err) {
        if (!(err instanceof SecretsYamlError)) throw err;
        const problem = `invalid YAML at line ${err.line}, column ${err.column}: ${err.reason}`;
        if (!canPrompt()) {
          throw new UserError(
            `${problem}; ${what} was left as it was`,
            1,
            'run the command again and fix it',
          );
        }
        process.stderr.write(`error: ${problem}\n`);
        const choice = await promptChoice('[e]dit again or [a]bort (changes lost)? ', ['e', 'a']);
        if (choice === 'a') throw new UserError(`aborted: ${what} was left as it was`);
      }
    }
  } finally {
    wipe();
    for (const s of WIPE_ON) process.off(s, onSignal);
    process.off('exit', wipe);
  }
}

function decodeEdited(bytes: Buffer, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UserError(`the edited text is not UTF-8; ${what} was left as it was`, 1, 'save it as UTF-8');
  }
}
