/**
 * The per-host deploy lock, like Kamal's: a directory created atomically, so the first command to create
 * it holds it; the file inside says who holds it, since when and why, so the one that waits can tell its
 * user. A token (random per run) makes sure a run only ever releases its own lock.
 *
 * A holder that died without releasing (SIGKILL, a lost laptop) must not block every later deploy: the
 * file names the controller machine, the process id and that process's start time, and the holder
 * touches the file every minute while it runs. A later run takes the lock over, saying so, when the
 * holder's process is gone on this same machine, or when the file was not touched for
 * LOCK_STALE_SECONDS (a holder on another machine that stopped beating).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { processStart } from '../util/process.js';
import { quote } from '../util/shell.js';
import { framed, framedSections } from './probe-batch.js';
import { stopLeftoversScript } from './remote-process.js';
import type { ProbeResult } from './types.js';

/** Per-host deploy lock (one deploy, rollback or restore at a time on a host). */
export const DEPLOY_LOCK_DIR = '/var/lib/verdandi/deploy.lock';

/**
 * Where the walker's lock scripts (lockedScript) record themselves while they run, to be stopped on
 * Ctrl-C: not remote-process.ts RUN_DIR, whose groups the lock's holder stops as a dead run's leftovers.
 * Another run's script taking the lock at the same moment is alive and must be left to its wait.
 */
export const LOCK_SCRIPT_DIR = '/run/verdandi/locking';

/** Exit code of the acquire script when another run holds the lock. */
export const LOCK_HELD = 75;

/** The holder refreshes the lock file this often... */
export const LOCK_HEARTBEAT_SECONDS = 60;
/** ...so a lock file untouched for this long belongs to a dead holder. */
export const LOCK_STALE_SECONDS = 600;

export interface LockInfo {
  by: string;
  since: string;
  reason: string;
  /** Host name of the machine running Verdandi. */
  controller: string;
  pid: number;
  /** Start time of that process (/proc/<pid>/stat field 22): a reused pid has another one. */
  pidStart: string;
  token: string;
}

export function newLockInfo(by: string, reason: string, now = new Date()): LockInfo {
  return {
    by,
    since: now.toISOString(),
    reason,
    controller: hostname(),
    pid: process.pid,
    pidStart: processStart(process.pid) ?? '?',
    token: randomBytes(8).toString('hex'),
  };
}

export function lockFileContent(info: LockInfo): string {
  return [
    `Locked by: ${info.by}`,
    `Since: ${info.since}`,
    `Reason: ${info.reason}`,
    `Controller: ${info.controller}`,
    `Pid: ${info.pid}`,
    `Pid-Start: ${info.pidStart}`,
    `Token: ${info.token}`,
    '',
  ].join('\n');
}

export interface HeldLock extends Partial<Omit<LockInfo, 'pid'>> {
  pid?: number;
  /** Seconds since the holder last touched the file (host clock), when the acquire script said. */
  idleSeconds?: number;
}

export function parseLockFile(text: string): HeldLock {
  const field = (label: string) => new RegExp(`^${label}: (.*)$`, 'm').exec(text)?.[1];
  const pid = Number(field('Pid'));
  const held: HeldLock = {
    by: field('Locked by'),
    since: field('Since'),
    reason: field('Reason'),
    controller: field('Controller'),
    pid: Number.isInteger(pid) && pid > 0 ? pid : undefined,
    pidStart: field('Pid-Start'),
    token: field('Token'),
  };
  const idle = Number(field('Idle'));
  if (field('Idle') !== undefined && Number.isFinite(idle)) held.idleSeconds = idle;
  return held;
}

/** One line for a user: "alice@laptop since 2026-11-22T03:45:00.000Z (deploy staging --branch main)". */
export function describeHolder(text: string): string {
  const info = parseLockFile(text);
  if (!info.by) return 'an unknown deploy (the lock file is empty or unreadable)';
  return `${info.by} since ${info.since ?? '?'}${info.reason ? ` (${info.reason})` : ''}`;
}

export interface Here {
  controller: string;
  /** The start time of a local process, undefined when it is gone. */
  processStart(pid: number): string | undefined;
}

const thisMachine: Here = { controller: hostname(), processStart };

/**
 * Why the holder of a lock is dead (so the lock may be taken over), or undefined when it may be alive.
 * Only a holder on this machine can be known dead by its process; any holder is dead once it stopped
 * touching the file for LOCK_STALE_SECONDS.
 */
export function deadHolder(held: HeldLock, here: Here = thisMachine): string | undefined {
  if (held.controller === here.controller && held.pid !== undefined) {
    const start = here.processStart(held.pid);
    if (start === undefined) return `its process ${held.pid} on ${held.controller} is gone`;
    if (held.pidStart && held.pidStart !== '?' && start !== held.pidStart)
      return `its process ${held.pid} on ${held.controller} is gone (the pid now belongs to another process)`;
  }
  if (held.idleSeconds !== undefined && held.idleSeconds > LOCK_STALE_SECONDS)
    return `it was last refreshed ${held.idleSeconds} s ago (a live holder refreshes it every ${LOCK_HEARTBEAT_SECONDS} s; the bound is ${LOCK_STALE_SECONDS} s)`;
  return undefined;
}

/**
 * Takes the lock or prints the holder's file (plus `Idle: <seconds since it was touched>`) and exits
 * LOCK_HELD. The lock file's content comes on stdin. The directory is made complete (with its file)
 * under a temporary name, then renamed into place: rename(2) onto an existing, non-empty directory
 * fails, so exactly one run wins, and a waiter never sees a lock without its file.
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
    `m=$(stat -c %Y ${d}/info 2>/dev/null) && echo "Idle: $(( $(date +%s) - m ))"`,
    `exit ${LOCK_HELD}`,
  ].join('\n');
}

/** Removes the lock only when it is still the one of `token` (ours, or a dead holder's we take over). */
export function releaseLockScript(token: string, dir = DEPLOY_LOCK_DIR): string {
  const d = quote(dir);
  return `if grep -qxF ${quote(`Token: ${token}`)} ${d}/info 2>/dev/null; then rm -rf ${d}; fi`;
}

/** The holder's heartbeat: touches the file while the lock is still its own. */
export function refreshLockScript(token: string, dir = DEPLOY_LOCK_DIR): string {
  const d = quote(dir);
  return `if grep -qxF ${quote(`Token: ${token}`)} ${d}/info 2>/dev/null; then touch ${d}/info; fi`;
}

/**
 * Exit code of a lock opening (lockedScript) whose work needs the lock no more: the script releases it
 * before it ends. A code no script ends with by itself (0 is any script's that simply ran to its end).
 */
export const OPENING_DONE = 99;

export interface LockedScriptOptions {
  /** The run's token (its lock file's `Token:`): the release is only ever of this lock. */
  token: string;
  /** The frames' markers' nonce (probe-batch.ts). */
  nonce: string;
  /** The work run holding the lock. */
  opening: string;
  /** Take the lock first (its file's content on stdin); false once an earlier exec took it. */
  acquire: boolean;
  /** `--break-lock`: remove whoever's lock before taking it (with `acquire`). */
  breakLock?: boolean;
  dir?: string;
  /** Where the supervised commands are recorded (remote-process.ts RUN_DIR by default). */
  runDir?: string;
}

/**
 * A holder's first round trip as ONE script, each part in a frame: (breaks the lock,) takes it
 * (acquireLockScript, reading the lock file's content on stdin; when the lock is held the script ends
 * there, with its exit code and the holder's file), stops what a dead run left running
 * (stopLeftoversScript), runs `opening` holding the lock, and when the opening exits OPENING_DONE
 * releases the lock (releaseLockScript) before it ends. parseLocked reads it back.
 */
export function lockedScript(o: LockedScriptOptions): string {
  const dir = o.dir ?? DEPLOY_LOCK_DIR;
  const noInput = '</dev/null';
  const parts: string[] = [];
  if (o.acquire) {
    if (o.breakLock) parts.push(framed('break', breakLockScript(dir), o.nonce, noInput));
    parts.push(
      framed('lock', acquireLockScript(dir), o.nonce, ''),
      'if [ "$vd_rc" != 0 ]; then exit "$vd_rc"; fi',
    );
  }
  parts.push(
    framed('leftovers', stopLeftoversScript(10, o.runDir), o.nonce, noInput),
    framed('opening', o.opening, o.nonce, noInput),
    `if [ "$vd_rc" = ${OPENING_DONE} ]; then`,
    framed('release', releaseLockScript(o.token, dir), o.nonce, noInput),
    'fi',
    'exit 0',
  );
  return parts.join('\n');
}

/** What lockedScript printed; a part is absent when the script did not run it, or was cut short in it. */
export interface LockedOutput {
  /** The lock file `--break-lock` removed (empty when there was none). */
  broken?: string;
  /** The acquire script's output (the holder's file when held) and exit code (0: taken, LOCK_HELD). */
  lock?: ProbeResult;
  /** What stopLeftoversScript stopped. */
  leftovers?: string;
  /** The opening's output and exit code. */
  opening?: ProbeResult;
  /** The script released the lock after the opening. */
  released: boolean;
}

export function parseLocked(stdout: string, nonce: string): LockedOutput {
  const parts = framedSections(stdout, nonce);
  return {
    broken: parts.get('break')?.stdout,
    lock: parts.get('lock'),
    leftovers: parts.get('leftovers')?.stdout,
    opening: parts.get('opening'),
    released: parts.get('release')?.exitCode === 0,
  };
}

/** `--break-lock`: removes whoever's lock, printing what it was. */
export function breakLockScript(dir = DEPLOY_LOCK_DIR): string {
  const d = quote(dir);
  return `if [ -d ${d} ]; then cat ${d}/info 2>/dev/null; rm -rf ${d}; fi`;
}

/**
 * `verdandi lock status`: prints `Held: yes`, the holder's file and `Idle: <seconds since it was
 * touched>` when the lock is held; `Held: no` otherwise. Read-only.
 */
export function lockStatusScript(dir = DEPLOY_LOCK_DIR): string {
  const d = quote(dir);
  return [
    `if [ ! -d ${d} ]; then echo 'Held: no'; exit 0; fi`,
    "echo 'Held: yes'",
    `cat ${d}/info 2>/dev/null`,
    `m=$(stat -c %Y ${d}/info 2>/dev/null) && echo "Idle: $(( $(date +%s) - m ))"`,
    'exit 0',
  ].join('\n');
}

/** A host's lock as `lock status` shows it. */
export interface LockStatus {
  held: boolean;
  holder?: HeldLock;
  /** Why the holder is dead (its lock may be released safely), undefined when it may be alive. */
  dead?: string;
}

export function parseLockStatus(stdout: string, here: Here = thisMachine): LockStatus {
  if (!/^Held: yes$/m.test(stdout)) return { held: false };
  const holder = parseLockFile(stdout);
  return { held: true, holder, dead: deadHolder(holder, here) };
}

/** One line for `lock status`: who, since when, from which command, and whether it is alive. */
export function describeLockStatus(st: LockStatus): string {
  if (!st.held || !st.holder) return 'free';
  const h = st.holder;
  const who = h.by
    ? `${h.by} since ${h.since ?? '?'}`
    : 'an unknown holder (the lock file is empty or unreadable)';
  const what = h.reason ? `, command: ${h.reason}` : '';
  const where = h.controller ? `, on ${h.controller}${h.pid ? ` pid ${h.pid}` : ''}` : '';
  const beat = h.idleSeconds !== undefined ? `, heartbeat ${h.idleSeconds} s ago` : '';
  const alive = st.dead ? ` (dead: ${st.dead})` : ' (alive)';
  return `held by ${who}${what}${where}${beat}${alive}`;
}
