/**
 * A lock shared by every process on the build machine (parallel ava workers, a CLI in another terminal):
 * whoever creates the lock directory holds the lock. The directory is prepared beside it with the
 * holder's pid and start time inside, then renamed into place (atomic, and refused when the lock
 * exists), so a lock is never seen without its owner; a lock whose holder died (a killed test run) is
 * broken by the next caller.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { delay } from './exec.js';
import { currentProcess, isAlive, type ProcessId } from './processes.js';

export interface LockOptions {
  /** Give up after this long (default 10 minutes: a waiter may wait for a whole base image build). */
  timeoutMs?: number;
  /** Called once when the lock is busy, e.g. to tell the user what we wait for. */
  onWait?: () => void;
}

/** How long a caller waits by default (LockOptions.timeoutMs). */
const DEFAULT_TIMEOUT_MS = 10 * 60_000;

function timedOut(lockDir: string, holder: string): Error {
  return new Error(
    `timed out waiting for lock ${lockDir} (held by pid ${holder}); if no verdandi process runs, remove it`,
  );
}

/** A lock directory without an owner file (left by an older harness); only this old is it abandoned. */
const OWNERLESS_GRACE_MS = 10_000;

async function readOwner(lockDir: string): Promise<ProcessId | undefined> {
  try {
    return JSON.parse(await readFile(join(lockDir, 'owner.json'), 'utf8')) as ProcessId;
  } catch {
    return undefined;
  }
}

async function isAbandoned(lockDir: string): Promise<boolean> {
  const owner = await readOwner(lockDir);
  if (owner) return !(await isAlive(owner));
  try {
    return Date.now() - (await stat(lockDir)).mtimeMs > OWNERLESS_GRACE_MS;
  } catch {
    return false; // gone meanwhile: not ours to break, just try again
  }
}

/**
 * Removes an abandoned lock. Moving it aside first (rename is atomic) means that of two processes that
 * both saw it abandoned, only one removes it, and none removes a fresh lock taken meanwhile by a third.
 */
async function breakAbandoned(lockDir: string, abandonedOwner: ProcessId | undefined): Promise<void> {
  const aside = `${lockDir}.broken-${process.pid}-${Date.now()}`;
  try {
    await rename(lockDir, aside);
  } catch {
    return;
  }
  const owner = await readOwner(aside);
  const same =
    owner === undefined
      ? abandonedOwner === undefined
      : owner.pid === abandonedOwner?.pid && owner.start === abandonedOwner.start;
  if (!same) {
    // We moved a lock that someone took after we looked: put it back if nobody took the name since.
    await rename(aside, lockDir).catch(() => {});
    return;
  }
  await rm(aside, { recursive: true, force: true });
}

/** Creates the lock with its owner file already inside; false when someone holds it. */
async function takeLock(lockDir: string, me: ProcessId): Promise<boolean> {
  const prepared = `${lockDir}.new-${process.pid}-${randomUUID()}`;
  await mkdir(prepared);
  try {
    await writeFile(join(prepared, 'owner.json'), JSON.stringify(me));
    await rename(prepared, lockDir);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
    return false;
  } finally {
    await rm(prepared, { recursive: true, force: true });
  }
}

/**
 * The callers of this process, one at a time per lock: each waits here for the one before it to release
 * the lock, instead of on the directory. On the directory, two callers of one process that both saw an
 * abandoned lock could break it together: the second moved aside the lock the first had just taken, and
 * put it back a moment later, so the first one's release found no lock (seen in a unit test under
 * load). Across processes that takes a process killed while holding the lock and two others arriving
 * at once.
 */
const waitingHere = new Map<string, Promise<void>>();

export async function acquireLock(lockDir: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  const key = resolve(lockDir);
  const waitedFor = waitingHere.get(key);
  const before = waitedFor ?? Promise.resolve();
  let done = () => {};
  const mine = new Promise<void>((resolveMine) => {
    done = resolveMine;
  });
  const queue = before.then(() => mine);
  waitingHere.set(key, queue);
  const leave = () => {
    done();
    if (waitingHere.get(key) === queue) waitingHere.delete(key);
  };
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = Date.now();
  try {
    if (waitedFor !== undefined) {
      opts.onWait?.();
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(timedOut(lockDir, String(process.pid))), timeoutMs);
      });
      await Promise.race([before, expired]).finally(() => clearTimeout(timer));
    }
    const release = await acquireAcrossProcesses(lockDir, {
      ...opts,
      timeoutMs: Math.max(0, timeoutMs - (Date.now() - started)),
      onWait: waitedFor === undefined ? opts.onWait : undefined,
    });
    return async () => {
      try {
        await release();
      } finally {
        leave();
      }
    };
  } catch (err) {
    leave();
    throw err;
  }
}

async function acquireAcrossProcesses(lockDir: string, opts: LockOptions): Promise<() => Promise<void>> {
  const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const me = await currentProcess();
  let announced = false;
  await mkdir(join(lockDir, '..'), { recursive: true });
  for (;;) {
    if (await takeLock(lockDir, me)) {
      return async () => {
        // Moved aside whole, then removed: emptied in place, the directory could be taken over by
        // another caller's rename (a rename replaces an empty directory) before it is gone.
        const released = `${lockDir}.released-${process.pid}-${randomUUID()}`;
        await rename(lockDir, released);
        await rm(released, { recursive: true, force: true });
      };
    }
    // Held by another process: wait. (The harness never takes a lock it already holds, so waiting
    // cannot deadlock.)
    const owner = await readOwner(lockDir);
    if (await isAbandoned(lockDir)) {
      await breakAbandoned(lockDir, owner);
      continue;
    }
    if (Date.now() >= deadline) throw timedOut(lockDir, String(owner?.pid ?? 'unknown'));
    if (!announced) {
      announced = true;
      opts.onWait?.();
    }
    await delay(50 + Math.floor(Math.random() * 100));
  }
}

/** Runs `fn` while holding the lock; released even when `fn` throws. */
export async function withLock<T>(lockDir: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const release = await acquireLock(lockDir, opts);
  try {
    return await fn();
  } finally {
    await release();
  }
}
