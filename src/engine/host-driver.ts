/**
 * The host driver: how every command that walks hosts (deploy, rollback, status, backup, restore) does
 * it, in the manner of Kamal's `with_lock`. The command validates everything first (options, secrets,
 * sites: nothing is contacted before), then hands the driver its targets and what to do on one host.
 * The driver:
 *   - runs the hosts in `--serial` batches (the next batch does not start after a failure, when the
 *     command says so);
 *   - opens each host (`openHost`), takes the host's deploy lock when the command changes things
 *     (waiting `--lock-wait` seconds, breaking it first with `--break-lock`, taking over the lock of a
 *     dead holder), keeps it fresh while it works, stops what a dead run left running, releases it;
 *   - turns a lost connection into that host's `unreachable` result, never a crash of the others;
 *   - on Ctrl-C / SIGTERM aborts the signal it gives the work (the work stops its remote command and
 *     cleans up), starts no new host, releases the locks, and says 130 / 143; a second signal quits at once;
 *   - returns one result per host and the exit code: any host unreachable → 3, else any failure → 2.
 */
import type { ConnectOptions } from '../connection/index.js';
import { openHost } from '../connection/open-host.js';
import { type Connection, UnreachableError } from '../connection/types.js';
import type { InventoryHost } from '../inventory/types.js';
import { runExitCode, UserError } from '../util/errors.js';
import { batchSizes } from './execute.js';
import {
  acquireLockScript,
  breakLockScript,
  DEPLOY_LOCK_DIR,
  deadHolder,
  describeHolder,
  LOCK_HEARTBEAT_SECONDS,
  LOCK_HELD,
  lockFileContent,
  newLockInfo,
  parseLockFile,
  refreshLockScript,
  releaseLockScript,
} from './host-lock.js';
import { RunStop, type StopSignal } from './interrupt.js';
import { stopLeftoversScript } from './remote-process.js';

/** `--serial`, `--lock-wait`, `--break-lock` as every host-walking command accepts them (strings from the CLI). */
export interface HostWalkCliOptions {
  serial?: string;
  lockWait?: string;
  breakLock?: boolean;
}

export interface HostWalkOptions {
  /** Hosts per batch: a number or a percentage; undefined for all at once. */
  serial?: number | string;
  lockWaitSeconds: number;
  breakLock: boolean;
}

export const DEFAULT_LOCK_WAIT_SECONDS = 120;

/** Parses and checks the shared options (a user error, exit 1, before any host is contacted). */
export function parseHostWalkOptions(o: HostWalkCliOptions): HostWalkOptions {
  let lockWaitSeconds = DEFAULT_LOCK_WAIT_SECONDS;
  if (o.lockWait !== undefined) {
    lockWaitSeconds = o.lockWait.trim() === '' ? Number.NaN : Number(o.lockWait);
    if (!Number.isFinite(lockWaitSeconds) || lockWaitSeconds < 0)
      throw new UserError(`--lock-wait must be a number of seconds, got "${o.lockWait}"`, 1);
  }
  let serial: number | string | undefined;
  if (o.serial !== undefined) {
    serial = o.serial.trim().endsWith('%') ? o.serial.trim() : Number(o.serial);
    try {
      batchSizes(1, serial);
    } catch {
      throw new UserError(`--serial must be a positive number or a percentage, got "${o.serial}"`, 1);
    }
  }
  return { serial, lockWaitSeconds, breakLock: !!o.breakLock };
}

export type HostStatus = 'ok' | 'failed' | 'unreachable' | 'skipped' | 'interrupted';

export interface HostRun<R> {
  host: string;
  status: HostStatus;
  /** Where a host that did not finish stopped (`connect`, `lock`, or the work's message). */
  step?: string;
  message?: string;
  /** What the work returned (absent when it did not run to its end). */
  result?: R;
}

export interface DriverOutput {
  info(text: string): void;
  warn(text: string): void;
}

export interface LockRequest {
  /** Why, for whoever waits: "deploy staging --branch main". */
  reason: string;
  /** `user@machine`. */
  by: string;
  dir?: string;
}

export interface DriveOptions extends HostWalkOptions {
  connectOptions: ConnectOptions;
  /** Each host's vars after interpolation of the secrets (its sudo password may be one). */
  hostVars: Map<string, Record<string, unknown>>;
  out: DriverOutput;
  /** The host's deploy lock around the work; undefined for commands that change nothing. */
  lock?: LockRequest;
  /** After a batch where a host failed or was unreachable, the later batches are skipped. */
  stopAfterFailure: boolean;
  /** How hosts are opened (tests give fakes). */
  open?: (host: InventoryHost, vars: Record<string, unknown>) => Promise<Connection>;
}

export interface Target {
  host: InventoryHost;
}

export interface HostWork {
  conn: Connection;
  /** Aborted on Ctrl-C / SIGTERM: the work stops its remote command and undoes its half-made change. */
  signal: AbortSignal;
}

export interface WorkResult<R> {
  ok: boolean;
  result: R;
}

export interface DriveResult<R> {
  runs: HostRun<R>[];
  /** The signal that interrupted the run, if one did. */
  interrupted?: StopSignal;
  exitCode: number;
}

/** The exit code of a walk: the one rule of every command (runExitCode), or 130 / 143 when interrupted. */
export function exitCodeOf(statuses: HostStatus[], interrupted?: StopSignal): number {
  if (interrupted) return interrupted === 'SIGTERM' ? 143 : 130;
  return runExitCode({ unreachable: statuses.includes('unreachable'), failed: statuses.includes('failed') });
}

class LockFailure extends Error {}

export async function driveHosts<T extends Target, R>(
  targets: T[],
  opts: DriveOptions,
  work: (target: T, host: HostWork) => Promise<WorkResult<R>>,
): Promise<DriveResult<R>> {
  const abort = new AbortController();
  const stop = new RunStop().listen(
    (signal) => {
      opts.out.warn(
        `\n${signal}: stopping. The command running on each host is stopped, half-made changes undone, the locks released (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again quits at once).`,
      );
      abort.abort(signal);
    },
    (signal) => {
      opts.out.warn(`${signal} again: quitting now (a lock left behind is taken over by the next deploy)`);
      process.exit(signal === 'SIGTERM' ? 143 : 130);
    },
  );
  const runs: HostRun<R>[] = [];
  try {
    let offset = 0;
    let stopped: string | undefined;
    for (const size of batchSizes(targets.length, opts.serial)) {
      const batch = targets.slice(offset, offset + size);
      offset += size;
      const why = stop.signal ? `interrupted (${stop.signal})` : stopped;
      if (why) {
        for (const t of batch) runs.push({ host: t.host.name, status: 'skipped', message: why });
        continue;
      }
      // Every host of the batch ends (settles) before the next batch: one host's error never
      // leaves a sibling mid-deploy behind.
      const results = await Promise.all(batch.map((t) => runHost(t, opts, abort.signal, work)));
      runs.push(...results);
      if (opts.stopAfterFailure && results.some((r) => r.status !== 'ok'))
        stopped = 'not started: an earlier host failed';
    }
  } finally {
    stop.dispose();
  }
  return {
    runs,
    interrupted: stop.signal,
    exitCode: exitCodeOf(
      runs.map((r) => r.status),
      stop.signal,
    ),
  };
}

async function runHost<T extends Target, R>(
  t: T,
  opts: DriveOptions,
  signal: AbortSignal,
  work: (target: T, host: HostWork) => Promise<WorkResult<R>>,
): Promise<HostRun<R>> {
  const host = t.host.name;
  const { out } = opts;
  let conn: Connection;
  try {
    const vars = opts.hostVars.get(host) ?? t.host.vars;
    conn = await (opts.open ?? ((h, v) => openHost(h, opts.connectOptions, v)))(t.host, vars);
  } catch (err) {
    if (err instanceof UnreachableError) {
      out.warn(`${host}  unreachable (${err.reason}): ${err.message}`);
      return { host, status: 'unreachable', step: 'connect', message: err.message };
    }
    const message = err instanceof Error ? err.message : String(err);
    out.warn(`${host}  cannot connect: ${message}`);
    return { host, status: 'failed', step: 'connect', message };
  }
  let lock: HostLock | undefined;
  try {
    if (opts.lock) {
      lock = await HostLock.take(conn, host, opts, signal);
      const left = (await conn.exec(stopLeftoversScript())).stdout.trim();
      if (left)
        out.info(
          `${host}  stopped what an interrupted run left running:\n    ${left.split('\n').join('\n    ')}`,
        );
    }
    const { ok, result } = await work(t, { conn, signal });
    if (signal.aborted && !ok) return { host, status: 'interrupted', message: 'interrupted', result };
    return { host, status: ok ? 'ok' : 'failed', result };
  } catch (err) {
    if (err instanceof UnreachableError) {
      out.warn(`${host}  connection lost (${err.reason}): ${err.message}`);
      return { host, status: 'unreachable', step: 'connection', message: err.message };
    }
    if (err instanceof LockFailure)
      return { host, status: signal.aborted ? 'interrupted' : 'failed', step: 'lock', message: err.message };
    if (err instanceof UserError) {
      out.warn(`${host}  error: ${err.message}`);
      return { host, status: 'failed', message: err.message };
    }
    // A bug: this host fails with its message, the siblings of the batch finish their work.
    const message = err instanceof Error ? err.message : String(err);
    out.warn(`${host}  internal error (this is a bug in Verdandi): ${message}`);
    return { host, status: 'failed', message: `internal error: ${message}` };
  } finally {
    await lock?.release();
    await conn.close().catch(() => undefined);
  }
}

/** A held deploy lock: refreshed every minute, released once (even after a lost connection, quietly). */
class HostLock {
  private readonly timer: NodeJS.Timeout;
  private constructor(
    private readonly conn: Connection,
    private readonly token: string,
    private readonly dir: string,
  ) {
    this.timer = setInterval(() => {
      conn.exec(refreshLockScript(token, dir)).catch(() => undefined);
    }, LOCK_HEARTBEAT_SECONDS * 1000);
    this.timer.unref();
  }

  static async take(
    conn: Connection,
    host: string,
    opts: DriveOptions,
    signal: AbortSignal,
  ): Promise<HostLock> {
    const req = opts.lock!;
    const dir = req.dir ?? DEPLOY_LOCK_DIR;
    const { out } = opts;
    if (opts.breakLock) {
      const res = await conn.exec(breakLockScript(dir));
      if (res.stdout.trim()) out.info(`${host}  broke the deploy lock held by ${describeHolder(res.stdout)}`);
    }
    const info = newLockInfo(req.by, req.reason);
    const deadline = Date.now() + opts.lockWaitSeconds * 1000;
    let told = false;
    for (;;) {
      const res = await conn.exec(acquireLockScript(dir), { stdin: lockFileContent(info) });
      if (res.code === 0) {
        out.info(`${host}  lock taken`);
        return new HostLock(conn, info.token, dir);
      }
      if (res.code !== LOCK_HELD)
        throw new LockFailure(
          `cannot take the deploy lock of ${host} (exit ${res.code}): ${res.stderr.trim()}`,
        );
      const holder = describeHolder(res.stdout);
      const held = parseLockFile(res.stdout);
      const dead = deadHolder(held);
      if (dead && held.token) {
        out.info(`${host}  taking over the deploy lock held by ${holder}: ${dead}`);
        await conn.exec(releaseLockScript(held.token, dir));
        continue;
      }
      if (signal.aborted || Date.now() >= deadline) {
        const message = `another deploy holds the lock of ${host}: ${holder}`;
        out.info(
          `${host}  lock FAILED\n    ${message}\n    (waited ${opts.lockWaitSeconds} s; if that deploy is dead, run again with --break-lock)`,
        );
        throw new LockFailure(message);
      }
      if (!told) {
        out.info(`${host}  waiting for the deploy lock held by ${holder}`);
        told = true;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    try {
      await this.conn.exec(releaseLockScript(this.token, this.dir));
    } catch {
      // The connection is gone: the lock stays; its holder (this process) ends, so the next run takes it over.
    }
  }
}
