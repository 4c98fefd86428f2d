/**
 * A lock shared by every process on the build machine (parallel ava workers, a CLI in another terminal):
 * whoever creates the lock directory holds the lock. The directory is prepared beside it with the
 * holder's pid and start time inside, then renamed into place (atomic, and refused when the lock
 * exists), so a lock is never seen without its owner; a lock whose holder died (a killed test run) is
 * broken by the next caller.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { delay } from './exec.js';
import { currentProcess, isAlive, type ProcessId } from './processes.js';

export interface LockOptions {
  /** Give up after this long (default 10 minutes: a waiter may wait for a whole base image build). */
  timeoutMs?: number;
  /** Called once when the lock is busy, e.g. to tell the user what we wait for. */
  onWait?: () => void;
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

export async function acquireLock(lockDir: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000);
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
    // Held by someone else, or by another async call of this very process: either way, wait.
    // (The harness never takes a lock it already holds, so waiting cannot deadlock.)
    const owner = await readOwner(lockDir);
    if (await isAbandoned(lockDir)) {
      await breakAbandoned(lockDir, owner);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out waiting for lock ${lockDir} (held by pid ${owner?.pid ?? 'unknown'}); if no verdandi process runs, remove it`,
      );
    }
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
