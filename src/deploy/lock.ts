/**
 * The per-host deploy lock, like Kamal's: a directory created atomically, so the first deploy to create
 * it holds it; the file inside says who holds it, since when and why, so the one that waits can
 * tell its user. A token (random per deploy) makes sure a deploy only ever releases its own lock.
 */
import { randomBytes } from 'node:crypto';
import { quote } from '../util/shell.js';
import { DEPLOY_LOCK_DIR } from './site.js';

export interface LockInfo {
  by: string;
  since: string;
  reason: string;
  token: string;
}

/** Exit code of the acquire script when another deploy holds the lock. */
export const LOCK_HELD = 75;

export function newLockInfo(by: string, reason: string, now = new Date()): LockInfo {
  return { by, since: now.toISOString(), reason, token: randomBytes(8).toString('hex') };
}

export function lockFileContent(info: LockInfo): string {
  return `Locked by: ${info.by}\nSince: ${info.since}\nReason: ${info.reason}\nToken: ${info.token}\n`;
}

export function parseLockFile(text: string): Partial<LockInfo> {
  const field = (label: string) => new RegExp(`^${label}: (.*)$`, 'm').exec(text)?.[1];
  return { by: field('Locked by'), since: field('Since'), reason: field('Reason'), token: field('Token') };
}

/** One line for a user: "alice@laptop since 2026-11-22T03:45:00.000Z (deploy staging --branch main)". */
export function describeHolder(text: string): string {
  const info = parseLockFile(text);
  if (!info.by) return 'an unknown deploy (the lock file is empty or unreadable)';
  return `${info.by} since ${info.since ?? '?'}${info.reason ? ` (${info.reason})` : ''}`;
}

/**
 * Takes the lock or prints the holder's file and exits LOCK_HELD. The lock file's content comes on
 * stdin. The directory is made complete (with its file) under a temporary name, then renamed into
 * place: rename(2) onto an existing, non-empty directory fails, so exactly one deploy wins, and a
 * waiter never sees a lock without its file.
 */
export function acquireLockScript(dir = DEPLOY_LOCK_DIR): string {
  const d = quote(dir);
  return [
    `mkdir -p "$(dirname ${d})" || exit 1`,
    `tmp=$(mktemp -d "$(dirname ${d})/.lock.XXXXXX") || exit 1`,
    'cat > "$tmp/info"',
    `if mv -T "$tmp" ${d} 2>/dev/null; then exit 0; fi`,
    'rm -rf "$tmp"',
    `cat ${d}/info 2>/dev/null`,
    `exit ${LOCK_HELD}`,
  ].join('\n');
}

/** Releases the lock only when it is still ours (same token). */
export function releaseLockScript(token: string, dir = DEPLOY_LOCK_DIR): string {
  const d = quote(dir);
  return `if grep -qxF ${quote(`Token: ${token}`)} ${d}/info 2>/dev/null; then rm -rf ${d}; fi`;
}

/** `--break-lock`: removes whoever's lock, printing what it was. */
export function breakLockScript(dir = DEPLOY_LOCK_DIR): string {
  const d = quote(dir);
  return `if [ -d ${d} ]; then cat ${d}/info 2>/dev/null; rm -rf ${d}; fi`;
}
