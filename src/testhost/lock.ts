/**
 * A lock shared by every process on the build machine (parallel ava workers, a CLI in another terminal):
 * `mkdir` is atomic, so whoever creates the lock directory holds the lock. The holder writes its pid
 * and start time inside; a lock whose holder died (a killed test run) is broken by the next caller.
 */
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

/** A lock directory without an owner file is being set up; only this old is it considered abandoned. */
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
  if (owner && abandonedOwner && (owner.pid !== abandonedOwner.pid || owner.start !== abandonedOwner.start)) {
    // We moved a lock that someone took after we looked: put it back if nobody took the name since.
    await rename(aside, lockDir).catch(() => {});
    return;
  }
  await rm(aside, { recursive: true, force: true });
}

export async function acquireLock(lockDir: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000);
  const me = await currentProcess();
  let announced = false;
  await mkdir(join(lockDir, '..'), { recursive: true });
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'owner.json'), JSON.stringify(me));
      return async () => {
        await rm(lockDir, { recursive: true, force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
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
