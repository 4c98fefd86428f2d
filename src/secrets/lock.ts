/**
 * The lock on an environment's secrets file: every command that rewrites `secrets/<env>.yml.asc`
 * (create, edit, set, encrypt, rekey, import) holds it from reading the file to replacing it, so two
 * writers at once never lose an update: the second waits for the first, then reads what it wrote.
 *
 * The lock is a directory beside the file, `secrets/<env>.yml.asc.lock`, made complete (with the
 * holder's pid, process start time, command and time) under a temporary name and renamed into place:
 * rename(2) onto an existing, non-empty directory fails, so exactly one process wins, and a waiter
 * never sees a lock without its holder. A holder that died without releasing it (SIGKILL) is known by
 * its pid, gone or now another process's (another start time); the next writer takes the lock over.
 * Two writers that both find the holder dead take turns through a second directory (`.takeover`), so
 * only one removes it, and never a live lock taken meanwhile.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { UserError } from '../util/errors.js';
import { processStart } from '../util/process.js';
import { redact } from '../util/redact.js';

/** How long a writer waits for the lock by default, in seconds. */
export const DEFAULT_LOCK_TIMEOUT_SECONDS = 60;
/** Overrides the default wait (seconds; 0: fail at once when the file is locked). */
export const LOCK_TIMEOUT_ENV = 'VERDANDI_SECRETS_LOCK_TIMEOUT';
/** A takeover takes milliseconds: a `.takeover` directory older than this was left by a killed process. */
const TAKEOVER_STALE_MS = 10_000;

export interface LockHolder {
  pid: number;
  /** Start time of that process (/proc/<pid>/stat field 22): a reused pid has another one. */
  pidStart: string;
  /** The machine it runs on (a project on a shared disk may be used from several). */
  host: string;
  /** Its command line, as a user reads it (`verdandi secrets edit staging`). */
  command: string;
  /** When it took the lock (ISO 8601). */
  since: string;
  /** Random per acquisition: a process only ever releases its own lock. */
  token: string;
}

export interface LockOptions {
  /** The secrets file as messages show it. */
  shown: string;
  /** Seconds to wait for a live holder (`--lock-timeout`); default `$VERDANDI_SECRETS_LOCK_TIMEOUT` or 60. */
  timeoutSeconds?: number;
  /** Where the one-line notes go (waiting, a dead holder's lock taken over); default stderr. */
  note?: (line: string) => void;
}

export function lockPathOf(file: string): string {
  return `${file}.lock`;
}

/** The wait bound: the option, else the variable, else the default; a bad value is a usage error. */
export function lockTimeoutSeconds(option?: string | number): number {
  const [given, origin] =
    option !== undefined
      ? [String(option), '--lock-timeout']
      : process.env[LOCK_TIMEOUT_ENV] !== undefined && process.env[LOCK_TIMEOUT_ENV] !== ''
        ? [process.env[LOCK_TIMEOUT_ENV], `$${LOCK_TIMEOUT_ENV}`]
        : [undefined, ''];
  if (given === undefined) return DEFAULT_LOCK_TIMEOUT_SECONDS;
  const seconds = Number(given);
  if (given.trim() === '' || !Number.isFinite(seconds) || seconds < 0) {
    throw new UserError(
      `${origin} must be a number of seconds (0 or more), got "${given}"`,
      1,
      `for example ${origin === '--lock-timeout' ? '--lock-timeout 120' : `${LOCK_TIMEOUT_ENV}=120`}`,
    );
  }
  return seconds;
}

/**
 * The holder of the lock; 'gone' when there is no lock any more; 'unreadable' when we may not read it
 * (a lock of another user: alive as far as we can know); undefined when it holds no valid holder.
 */
function readHolder(lockDir: string): LockHolder | 'gone' | 'unreadable' | undefined {
  let text: string;
  try {
    text = readFileSync(join(lockDir, 'holder'), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES') return 'unreadable';
    // The lock was released (or moved aside) between our attempt and this read: try again.
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      try {
        statSync(lockDir);
      } catch {
        return 'gone';
      }
    }
    return undefined;
  }
  try {
    const holder = JSON.parse(text) as LockHolder;
    return Number.isInteger(holder.pid) && typeof holder.token === 'string' ? holder : undefined;
  } catch {
    return undefined;
  }
}

/** "pid 4242 (verdandi secrets edit staging) since 2026-12-05T20:41:07.000Z". */
export function describeHolder(holder: LockHolder | undefined): string {
  if (!holder) return 'an unknown process (its lock holds no readable holder)';
  const where = holder.host === hostname() ? '' : ` on ${holder.host}`;
  return `pid ${holder.pid}${where} (${holder.command}) since ${holder.since}`;
}

/**
 * Why the holder is dead (its lock may be taken over), or undefined while it may be alive. Only a
 * holder of this machine can be known dead; a lock without a readable holder cannot be a live lock
 * (it appears complete), so it is dead too.
 */
export function deadHolder(
  holder: LockHolder | undefined,
  startOf: (pid: number) => string | undefined = processStart,
): string | undefined {
  if (!holder) return 'it holds no readable holder';
  if (holder.host !== hostname()) return undefined;
  const start = startOf(holder.pid);
  if (start === undefined) return `its process ${holder.pid} is gone`;
  if (start !== holder.pidStart)
    return `its process ${holder.pid} is gone (the pid is another process's now)`;
  return undefined;
}

/** Moves a directory aside (atomically: nobody sees it half removed), then removes it. */
function removeDirectory(dir: string): void {
  const aside = join(dirname(dir), `.tmp-removed-${basename(dir)}-${randomBytes(4).toString('hex')}`);
  try {
    renameSync(dir, aside);
  } catch {
    return; // Already gone.
  }
  rmSync(aside, { recursive: true, force: true });
}

/**
 * Removes the lock of the dead `holder`, unless another process is already at it. Returns true when
 * this process removed it.
 */
function takeOver(lockDir: string, holder: LockHolder | undefined): boolean {
  const guard = `${lockDir}.takeover`;
  try {
    mkdirSync(guard);
  } catch {
    // Another writer is taking it over; a guard left by a killed one is removed once stale.
    try {
      if (Date.now() - statSync(guard).mtimeMs > TAKEOVER_STALE_MS) rmdirSync(guard);
    } catch {
      // Gone meanwhile.
    }
    return false;
  }
  try {
    // Only dead holders' locks are removed here, and only while we hold the guard: the lock we read
    // is still the dead one unless it was released and taken again, which its new holder's token shows.
    const now = readHolder(lockDir);
    if (now === 'gone' || now === 'unreadable' || now?.token !== holder?.token) return false;
    removeDirectory(lockDir);
    return true;
  } finally {
    rmdirSync(guard);
  }
}

export interface HeldLock {
  /** Releases the lock (only while it is still ours); safe to call more than once. */
  release(): void;
}

/**
 * Takes the lock of `file`, waiting up to the bound for a live holder, taking over a dead one's.
 * Released by `release()`, and at the latest when the process exits.
 */
export async function lockFile(file: string, opts: LockOptions): Promise<HeldLock> {
  const lockDir = lockPathOf(file);
  const timeoutSeconds = opts.timeoutSeconds ?? lockTimeoutSeconds();
  const note = opts.note ?? ((line: string) => process.stderr.write(`${line}\n`));
  const deadline = Date.now() + timeoutSeconds * 1000;
  const me: LockHolder = {
    pid: process.pid,
    pidStart: processStart(process.pid) ?? '?',
    host: hostname(),
    command: redact(['verdandi', ...process.argv.slice(2)].join(' ')),
    since: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  mkdirSync(dirname(file), { recursive: true });
  let waitingFor: string | undefined;
  for (;;) {
    const temp = mkdtempSync(join(dirname(file), `.tmp-${basename(lockDir)}-`));
    // Readable by all (mkdtemp makes it 0700): another user of a shared checkout sees who holds it.
    chmodSync(temp, 0o755);
    writeFileSync(join(temp, 'holder'), `${JSON.stringify({ ...me, since: new Date().toISOString() })}\n`);
    try {
      renameSync(temp, lockDir);
      return heldLock(lockDir, me.token);
    } catch (err) {
      rmSync(temp, { recursive: true, force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
    const read = readHolder(lockDir);
    if (read === 'gone') continue;
    const holder = read === 'unreadable' ? undefined : read;
    const dead = read === 'unreadable' ? undefined : deadHolder(holder);
    if (dead) {
      if (takeOver(lockDir, holder)) {
        note(`note: took over the lock on ${opts.shown} from ${describeHolder(holder)}: ${dead}`);
      }
      continue;
    }
    const who =
      read === 'unreadable' ? 'a process of another user (its lock cannot be read)' : describeHolder(holder);
    if (Date.now() >= deadline) {
      throw new UserError(
        `${opts.shown} is locked by ${who}; waited ${timeoutSeconds} s`,
        1,
        `run the command again when that one is done, or wait longer with --lock-timeout SECONDS (or ` +
          `$${LOCK_TIMEOUT_ENV}); if that process is not a verdandi command any more, remove ${opts.shown}.lock`,
      );
    }
    if (waitingFor !== holder?.token) {
      waitingFor = holder?.token;
      note(`waiting for the lock on ${opts.shown}: held by ${who} (up to ${timeoutSeconds} s)`);
    }
    await delay(Math.min(50 + Math.floor(Math.random() * 100), Math.max(0, deadline - Date.now())));
  }
}

function heldLock(lockDir: string, token: string): HeldLock {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off('exit', release);
    const holder = readHolder(lockDir);
    if (typeof holder === 'object' && holder.token === token) removeDirectory(lockDir);
  };
  process.on('exit', release);
  return { release };
}

/** Runs `fn` while holding the lock of `file`; released when it ends, even by an error. */
export async function withFileLock<T>(file: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await lockFile(file, opts);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
