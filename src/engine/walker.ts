/**
 * The walker: how every command that works on hosts walks them (provision, run, deploy, rollback,
 * status, backup, restore, and the deploy logs `report --hosts` reads). The command validates
 * everything first (nothing is contacted before), then gives the walker its hosts, how to batch them,
 * the optional lock, and what to do on one host. The walker:
 *   - connects through the run's ConnectionPool: at most `--forks` connections open or opening, and at
 *     most `--forks` hosts worked on at once;
 *   - runs the hosts in `serial` batches (a number or a percentage); after a batch where more than
 *     `maxFailPercentage` of the hosts failed or were unreachable, the later batches do not start;
 *   - takes the host's deploy lock when asked (waiting `lockWaitSeconds`, breaking it first with
 *     `breakLock`, taking over the lock of a dead holder), keeps it fresh while the work runs, stops
 *     what a dead run left running, releases it;
 *   - turns a lost connection into that host's `unreachable`, an error into that host's failure: the
 *     other hosts always finish;
 *   - on Ctrl-C / SIGTERM: nothing new starts; with `onInterrupt: 'finish'` the steps in flight finish
 *     (provision, run) and a second signal closes every connection; with `'abort'` the signal given to
 *     the work is aborted (it stops its remote command and undoes its half-made change, deploy & co)
 *     and a second signal ends the walk at once;
 *   - says everything as typed events (events.ts), and gives the one exit code of the run (runExitCode:
 *     unreachable 3 > failed 2 > 0; 130 / 143 when interrupted).
 * It never ends the process: the command line does, with the code it returns.
 */
import { AbortedError, type Connection, type ExecResult, UnreachableError } from '../connection/types.js';
import type { InventoryHost } from '../inventory/types.js';
import { runExitCode, UserError } from '../util/errors.js';
import { ConnectionPool } from './connection-pool.js';
import type { RunContext } from './context.js';
import type { RunEvents } from './events.js';
import {
  acquireLockScript,
  breakLockScript,
  DEPLOY_LOCK_DIR,
  deadHolder,
  describeHolder,
  LOCK_HEARTBEAT_SECONDS,
  LOCK_HELD,
  LOCK_SCRIPT_DIR,
  type LockedOutput,
  lockedScript,
  lockFileContent,
  newLockInfo,
  parseLocked,
  parseLockFile,
  refreshLockScript,
  releaseLockScript,
} from './host-lock.js';
import { RunStop, type SignalSource, type StopSignal } from './interrupt.js';
import { newNonce } from './probe-batch.js';
import { execStoppable, stopLeftoversScript } from './remote-process.js';
import { InterruptedError } from './run.js';

export const DEFAULT_LOCK_WAIT_SECONDS = 120;

/** The sizes of the batches of `total` hosts: `serial` a number or a percentage ("30%"). */
export function batchSizes(total: number, serial?: number | string): number[] {
  if (serial === undefined || total === 0) return [total];
  let size: number;
  if (typeof serial === 'string' && serial.trim().endsWith('%')) {
    const pct = Number.parseFloat(serial);
    if (!(pct > 0 && pct <= 100))
      throw new UserError(`serial must be a number or a percentage, got "${serial}"`, 1);
    size = Math.max(1, Math.floor((total * pct) / 100));
  } else {
    size = Number(serial);
    if (!Number.isInteger(size) || size < 1)
      throw new UserError(`serial must be a positive number, got "${serial}"`, 1);
  }
  const out: number[] = [];
  for (let left = total; left > 0; left -= size) out.push(Math.min(size, left));
  return out;
}

export type HostStatus = 'ok' | 'failed' | 'unreachable' | 'skipped' | 'interrupted';

export interface HostRun<R> {
  host: string;
  status: HostStatus;
  /** Where a host that did not finish stopped (`connect`, `lock`, `connection`). */
  step?: string;
  message?: string;
  /** What the work returned (absent when it did not run to its end). */
  result?: R;
}

/** `--serial`, `--lock-wait`, `--break-lock` as the command line has parsed them (src/cli/context.ts). */
export interface HostWalkOptions {
  /** Hosts per batch: a number or a percentage; undefined for the command's default. */
  serial?: number | string;
  lockWaitSeconds: number;
  breakLock: boolean;
}

export interface LockOptions {
  /** Why, for whoever waits: "deploy staging --branch main". */
  reason: string;
  /** `user@machine`. */
  by: string;
  waitSeconds: number;
  /** Remove another run's lock first (it is said). */
  breakLock: boolean;
  dir?: string;
  /**
   * The host's first work, sent in the same script as the lock's first try (host-lock.ts
   * lockedScript: one round trip where the lock, the leftovers and a first look would take one each):
   * it runs once the lock is taken; when it exits OPENING_DONE the script releases the lock before it
   * ends. What it printed reaches the work as `HostWork.opened`.
   */
  opening?: (host: string) => LockOpening | undefined;
}

export interface LockOpening {
  script: string;
  /** Fail the exec after this long (a fetch the opening runs). */
  timeoutMs?: number;
}

/** What the lock's opening printed, for the work. */
export interface Opened {
  stdout: string;
  code: number;
  /** The script released the lock after the opening: the work must change nothing on the host. */
  released: boolean;
}

export interface WalkerOptions {
  /** The command and environment, for the `run-started` event. */
  command: string;
  env: string;
  check: boolean;
  events: RunEvents;
  conns: ConnectionPool;
  /** Each host's vars after interpolation of the secrets (its sudo password may be one). */
  hostVars: Map<string, Record<string, unknown>>;
  /** Hosts worked on at once. */
  forks: number;
  /** What the first Ctrl-C / SIGTERM does (see the top of this file). */
  onInterrupt: 'finish' | 'abort';
  /** Closed with the connections on a second signal (the peer reads of provision and run). */
  peers?: { closeAll(): Promise<unknown> };
  /** Where signals come from (tests give their own). */
  signals?: SignalSource;
}

export interface WalkOptions {
  serial?: number | string;
  /** Later batches do not start after a batch where more than this share failed (default 0). */
  maxFailPercentage?: number;
  /** The host's deploy lock around the work; none for commands that change nothing. */
  lock?: LockOptions;
  /** Keep the host's connection open when its work succeeded (more work on it follows). */
  keepOpen?: (host: string) => boolean;
}

export interface HostWork {
  conn: Connection;
  /** Aborted on Ctrl-C / SIGTERM with `onInterrupt: 'abort'`: the work stops and undoes. */
  signal: AbortSignal;
  /** Requested on Ctrl-C / SIGTERM: no new step starts. */
  stop: RunStop;
  events: RunEvents;
  /** What the lock's opening printed (LockOptions.opening); absent when it did not run to its end. */
  opened?: Opened;
}

export interface WorkResult<R> {
  ok: boolean;
  result: R;
}

export interface Target {
  host: InventoryHost;
}

class LockFailure extends Error {}

const RANK: Record<HostStatus, number> = { skipped: 0, ok: 1, interrupted: 2, failed: 3, unreachable: 4 };

/** The one rule: any host unreachable → 3, else any failed → 2, else 0; 130 / 143 when interrupted. */
export function exitCodeOf(statuses: HostStatus[], interrupted?: StopSignal): number {
  if (interrupted) return interrupted === 'SIGTERM' ? 143 : 130;
  return runExitCode({ unreachable: statuses.includes('unreachable'), failed: statuses.includes('failed') });
}

export class Walker {
  readonly stop: RunStop;
  private readonly abort = new AbortController();
  private quitNow?: () => void;
  private readonly quit: Promise<void>;
  private readonly statuses = new Map<string, HostStatus>();
  private closed = false;

  constructor(
    private readonly o: WalkerOptions,
    hosts: string[],
  ) {
    this.quit = new Promise((resolve) => {
      this.quitNow = resolve;
    });
    const { events } = o;
    events.emit({ type: 'run-started', command: o.command, env: o.env, hosts, check: o.check });
    this.stop = new RunStop().listen(
      (signal) => {
        const again = signal === 'SIGINT' ? 'Ctrl-C' : signal;
        events.emit({
          type: 'message',
          level: 'warn',
          text:
            o.onInterrupt === 'finish'
              ? `${signal}: stopping: the steps in flight finish, no new step starts (${again} again aborts them)`
              : `\n${signal}: stopping. The command running on each host is stopped, half-made changes undone, the locks released (${again} again quits at once).`,
        });
        if (o.onInterrupt === 'abort') this.abort.abort(signal);
      },
      (signal) => {
        events.emit({
          type: 'message',
          level: 'warn',
          text:
            o.onInterrupt === 'finish'
              ? `${signal} again: aborting the steps in flight (no file is installed half-written)`
              : `${signal} again: quitting now (a lock left behind is taken over by the next deploy)`,
        });
        void o.conns.closeAll();
        void o.peers?.closeAll();
        if (o.onInterrupt === 'abort') this.quitNow?.();
      },
      o.signals,
    );
  }

  /** The run's event stream. */
  get events(): RunEvents {
    return this.o.events;
  }

  /** Hosts that failed or were unreachable so far (a later play does not run on them). */
  get failed(): Set<string> {
    return new Set(
      [...this.statuses].filter(([, s]) => s === 'failed' || s === 'unreachable').map(([h]) => h),
    );
  }

  /** The hosts found unreachable so far. */
  get unreachable(): Set<string> {
    return new Set([...this.statuses].filter(([, s]) => s === 'unreachable').map(([h]) => h));
  }

  /** Works on `targets`, in batches; returns one run per target, in their order. */
  async walk<T extends Target, R>(
    targets: T[],
    opts: WalkOptions,
    work: (target: T, host: HostWork) => Promise<WorkResult<R>>,
  ): Promise<HostRun<R>[]> {
    const runs: HostRun<R>[] = [];
    let offset = 0;
    let stopped: string | undefined;
    for (const size of batchSizes(targets.length, opts.serial)) {
      const batch = targets.slice(offset, offset + size);
      offset += size;
      const why = this.stop.signal ? `interrupted (${this.stop.signal})` : stopped;
      if (why) {
        for (const t of batch) runs.push({ host: t.host.name, status: 'skipped', message: why });
        continue;
      }
      // Every host of the batch ends before the next batch starts: one host's error never leaves a
      // sibling half-done. At most `forks` hosts at once.
      const results: (HostRun<R> | undefined)[] = batch.map(() => undefined);
      let next = 0;
      const lane = async () => {
        while (next < batch.length) {
          const i = next++;
          results[i] = await this.runHost(batch[i], opts, work);
        }
      };
      const lanes = Promise.all(Array.from({ length: Math.min(this.o.forks, batch.length) }, lane));
      await Promise.race([lanes, this.quit]);
      const done = results.map(
        (r, i): HostRun<R> =>
          r ?? { host: batch[i].host.name, status: 'interrupted', message: 'quit on a second signal' },
      );
      for (const r of done) this.record(r.host, r.status);
      runs.push(...done);
      if (this.stop.requested) continue;
      const bad = done.filter((r) => r.status === 'failed' || r.status === 'unreachable').length;
      const max = opts.maxFailPercentage ?? 0;
      if (bad > 0 && (bad * 100) / batch.length > max && offset < targets.length) {
        this.o.events.emit({
          type: 'batch-stopped',
          bad,
          of: batch.length,
          maxFailPercentage: max,
          notStarted: targets.length - offset,
        });
        stopped = 'not started: an earlier host failed';
      }
    }
    return runs;
  }

  private record(host: string, status: HostStatus): void {
    // A host keeps its worst outcome across the walks of a run (facts, then each play).
    const before = this.statuses.get(host);
    if (before === undefined || RANK[status] > RANK[before]) this.statuses.set(host, status);
  }

  private async runHost<T extends Target, R>(
    t: T,
    opts: WalkOptions,
    work: (target: T, host: HostWork) => Promise<WorkResult<R>>,
  ): Promise<HostRun<R>> {
    const host = t.host.name;
    const { events, conns } = this.o;
    const signal = this.abort.signal;
    if (this.stop.requested) {
      events.emit({ type: 'host-interrupted', host, detail: 'not started' });
      return { host, status: 'skipped', message: `interrupted (${this.stop.signal}): not started` };
    }
    let conn: Connection;
    try {
      conn = await conns.acquire(t.host, this.o.hostVars.get(host) ?? t.host.vars);
    } catch (err) {
      await conns.release(host);
      if (err instanceof UnreachableError) {
        conns.unreachable.add(host);
        events.emit({
          type: 'host-unreachable',
          host,
          reason: `${err.reason}: ${err.message}`,
          step: 'connect',
        });
        return { host, status: 'unreachable', step: 'connect', message: err.message };
      }
      const message = err instanceof Error ? err.message : String(err);
      events.emit({ type: 'host-failed', host, message: `cannot connect: ${message}` });
      return { host, status: 'failed', step: 'connect', message };
    }
    events.emit({ type: 'host-connected', host });
    let lock: HostLock | undefined;
    let opened: Opened | undefined;
    let run: HostRun<R>;
    try {
      if (opts.lock) {
        const taken = await HostLock.take(conn, host, opts.lock, events, signal);
        lock = taken.lock;
        opened = taken.opened;
        const left = (taken.leftovers ?? (await conn.exec(stopLeftoversScript())).stdout).trim();
        if (left)
          events.emit({
            type: 'message',
            level: 'info',
            host,
            text: `${host}  stopped what an interrupted run left running:\n    ${left.split('\n').join('\n    ')}`,
          });
      }
      const { ok, result } = await work(t, { conn, signal, stop: this.stop, events, opened });
      if (!ok && signal.aborted) {
        events.emit({ type: 'host-interrupted', host, detail: 'interrupted' });
        run = { host, status: 'interrupted', message: 'interrupted', result };
      } else run = { host, status: ok ? 'ok' : 'failed', result };
    } catch (err) {
      run = this.hostError(host, err, signal);
    } finally {
      await lock?.release();
    }
    const keep = run.status === 'ok' && !!opts.keepOpen?.(host);
    await conns.release(host, keep);
    return run;
  }

  /** What an error thrown on a host makes of it: that host's outcome, never a crash of the others. */
  private hostError<R>(host: string, err: unknown, signal: AbortSignal): HostRun<R> {
    const { events, conns } = this.o;
    if (err instanceof InterruptedError) {
      events.emit({ type: 'host-interrupted', host, detail: err.message });
      return { host, status: 'interrupted', message: err.message };
    }
    if (err instanceof AbortedError) {
      const detail = 'aborted: the commands in flight were cut off';
      events.emit({ type: 'host-interrupted', host, detail });
      return { host, status: 'interrupted', message: detail };
    }
    if (err instanceof UnreachableError) {
      conns.unreachable.add(host);
      events.emit({
        type: 'host-unreachable',
        host,
        reason: `${err.reason}: ${err.message}`,
        step: 'connection',
      });
      return { host, status: 'unreachable', step: 'connection', message: err.message };
    }
    if (err instanceof LockFailure) {
      if (signal.aborted) events.emit({ type: 'host-interrupted', host, detail: 'waiting for the lock' });
      return { host, status: signal.aborted ? 'interrupted' : 'failed', step: 'lock', message: err.message };
    }
    if (err instanceof UserError) {
      events.emit({ type: 'host-failed', host, message: err.message });
      return { host, status: 'failed', message: err.message };
    }
    // A bug: this host fails with its message, the other hosts finish their work.
    const message = err instanceof Error ? err.message : String(err);
    events.emit({
      type: 'host-failed',
      host,
      message: `internal error (this is a bug in Verdandi): ${message}`,
    });
    return { host, status: 'failed', message: `internal error: ${message}` };
  }

  /**
   * The run is over: the `run-ended` event (the recap, the --json document, the history's end) and the
   * exit code. `failed`: hosts the command judged failed beyond the walks' own outcomes.
   */
  async finish(): Promise<number> {
    const exitCode = exitCodeOf([...this.statuses.values()], this.stop.signal);
    const roundTrips: Record<string, number> = {};
    for (const host of this.statuses.keys()) roundTrips[host] = await this.o.conns.roundTrips(host);
    this.o.events.emit({
      type: 'run-ended',
      exitCode,
      durationMs: this.o.events.elapsed(),
      check: this.o.check,
      roundTrips,
      ...(this.stop.signal ? { interruptedBy: this.stop.signal } : {}),
    });
    return exitCode;
  }

  /** Stops listening for signals and closes every connection (also when the run ended in an error). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop.dispose();
    await this.o.conns.closeAll();
  }
}

/** What taking the lock gave: the lock (none when the opening's script released it), the rest. */
interface Taken {
  lock?: HostLock;
  /** What the opening printed, when it ran to its end. */
  opened?: Opened;
  /** What the leftovers' stop printed, when the lock's script ran it. */
  leftovers?: string;
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

  /**
   * Takes the lock: breaks it first with `breakLock`, waits while another run holds it, takes over the
   * lock of a dead holder. With an opening, the first try is lockedScript's one round trip (the break,
   * the lock, the leftovers, the opening, the release when the opening is done); after a wait, the
   * leftovers and the opening follow the lock in one more.
   */
  static async take(
    conn: Connection,
    host: string,
    req: LockOptions,
    events: RunEvents,
    signal: AbortSignal,
  ): Promise<Taken> {
    const dir = req.dir ?? DEPLOY_LOCK_DIR;
    const info = newLockInfo(req.by, req.reason);
    const opening = req.opening?.(host);
    let first: ExecResult | undefined;
    if (opening) {
      const tried = await HostLock.opened(conn, host, events, info.token, dir, opening, signal, {
        stdin: lockFileContent(info),
        breakLock: req.breakLock,
      });
      if (tried.out.broken?.trim()) HostLock.tellBroken(events, host, tried.out.broken);
      if (tried.out.lock?.exitCode === 0) {
        events.emit({ type: 'lock', host, state: 'taken', message: 'lock taken' });
        return tried.taken;
      }
      tried.taken.lock?.stopBeating();
      // Cut short before it said whether it took the lock (Ctrl-C): a lock it may have taken goes.
      if (!tried.out.lock) await conn.exec(releaseLockScript(info.token, dir)).catch(() => undefined);
      first = tried.out.lock
        ? { stdout: tried.out.lock.stdout, stderr: tried.res.stderr, code: tried.out.lock.exitCode }
        : tried.res;
    } else if (req.breakLock) {
      const res = await conn.exec(breakLockScript(dir));
      if (res.stdout.trim()) HostLock.tellBroken(events, host, res.stdout);
    }
    const deadline = Date.now() + req.waitSeconds * 1000;
    let told = false;
    for (;;) {
      const res = first ?? (await conn.exec(acquireLockScript(dir), { stdin: lockFileContent(info) }));
      first = undefined;
      if (res.code === 0) {
        events.emit({ type: 'lock', host, state: 'taken', message: 'lock taken' });
        if (!opening) return { lock: new HostLock(conn, info.token, dir) };
        return (await HostLock.opened(conn, host, events, info.token, dir, opening, signal)).taken;
      }
      if (res.code !== LOCK_HELD) {
        const message = `cannot take the deploy lock of ${host} (exit ${res.code}): ${res.stderr.trim()}`;
        events.emit({ type: 'lock', host, state: 'refused', message: `lock FAILED\n    ${message}` });
        throw new LockFailure(message);
      }
      const holder = describeHolder(res.stdout);
      const held = parseLockFile(res.stdout);
      const dead = deadHolder(held);
      if (dead && held.token) {
        events.emit({
          type: 'lock',
          host,
          state: 'taken-over',
          holder,
          message: `taking over the deploy lock held by ${holder}: ${dead}`,
        });
        await conn.exec(releaseLockScript(held.token, dir));
        continue;
      }
      if (signal.aborted || Date.now() >= deadline) {
        const message = `another deploy holds the lock of ${host}: ${holder}`;
        events.emit({
          type: 'lock',
          host,
          state: 'refused',
          holder,
          message: `lock FAILED\n    ${message}\n    (waited ${req.waitSeconds} s; if that deploy is dead, run again with --break-lock)`,
        });
        throw new LockFailure(message);
      }
      if (!told) {
        events.emit({
          type: 'lock',
          host,
          state: 'waiting',
          holder,
          message: `waiting for the deploy lock held by ${holder}`,
        });
        told = true;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /**
   * Runs lockedScript: taking the lock first when `acquire` gives the lock file's content. It runs
   * stoppable (Ctrl-C stops it with what it started, a fetch too; recorded in LOCK_SCRIPT_DIR), beating
   * from the start: the heartbeat only touches a lock of this token.
   */
  private static async opened(
    conn: Connection,
    host: string,
    events: RunEvents,
    token: string,
    dir: string,
    opening: LockOpening,
    signal: AbortSignal,
    acquire?: { stdin: string; breakLock: boolean },
  ): Promise<{ res: ExecResult; out: LockedOutput; taken: Taken }> {
    const nonce = newNonce();
    const script = lockedScript({
      token,
      nonce,
      dir,
      opening: opening.script,
      acquire: !!acquire,
      breakLock: acquire?.breakLock,
    });
    const lock = new HostLock(conn, token, dir);
    let res: ExecResult;
    try {
      res = await execStoppable(
        conn,
        script,
        { stdin: acquire?.stdin, timeoutMs: opening.timeoutMs },
        signal,
        LOCK_SCRIPT_DIR,
      );
    } catch (err) {
      if (err instanceof UnreachableError || err instanceof AbortedError) {
        lock.stopBeating();
        throw err;
      }
      // A timeout: whatever the script took is let go, and the host fails with the message.
      await lock.release();
      const message = `the deploy lock's script on ${host} failed: ${err instanceof Error ? err.message : String(err)}`;
      events.emit({ type: 'lock', host, state: 'refused', message: `lock FAILED\n    ${message}` });
      throw new LockFailure(message);
    }
    const out = parseLocked(res.stdout, nonce);
    const opened = out.opening && {
      stdout: out.opening.stdout,
      code: out.opening.exitCode,
      released: out.released,
    };
    if (out.released) lock.stopBeating();
    return { res, out, taken: { lock: out.released ? undefined : lock, opened, leftovers: out.leftovers } };
  }

  private static tellBroken(events: RunEvents, host: string, file: string): void {
    const holder = describeHolder(file);
    events.emit({
      type: 'lock',
      host,
      state: 'broken',
      holder,
      message: `broke the deploy lock held by ${holder}`,
    });
  }

  private stopBeating(): void {
    clearInterval(this.timer);
  }

  async release(): Promise<void> {
    this.stopBeating();
    try {
      await this.conn.exec(releaseLockScript(this.token, this.dir));
    } catch {
      // The connection is gone: the lock stays; its holder (this process) ends, so the next run takes it over.
    }
  }
}

/**
 * A walker for a command that acts on hosts outside a run of tasks (exec, lock, logs, db, backup,
 * restore): connections of its own from the run's context (`connections` of them at most, default
 * `forks`), and the first Ctrl-C / SIGTERM aborting the work.
 */
export function contextWalker(
  ctx: Pick<RunContext, 'env' | 'connectOptions' | 'vars'>,
  o: { command: string; events: RunEvents; forks: number; connections?: number },
  hosts: string[],
): Walker {
  return new Walker(
    {
      command: o.command,
      env: ctx.env,
      check: false,
      events: o.events,
      conns: new ConnectionPool(ctx.connectOptions, o.connections ?? o.forks),
      hostVars: ctx.vars,
      forks: o.forks,
      onInterrupt: 'abort',
    },
    hosts,
  );
}
