/**
 * The connection keeper: a small process of the user's, started by the first run given `--persist`,
 * that keeps the runs' SSH connections open between runs, so a run right after another pays no
 * handshake (what OpenSSH's ControlPersist does for Ansible). It serves the requests of
 * keeper-protocol.ts on a unix socket only its user can reach (keeper-socket.ts), and knows nothing
 * of scripts, `become` or passwords: the CLI frames each command's standard input itself, and the
 * keeper passes the bytes to the channel.
 *
 * - A connection is opened the way a run opens it (jump-hosts.ts, ssh.ts: same host key checks, same
 *   keys, same retries), keyed by its whole route: a run with another known_hosts file, another
 *   checking mode or another jump chain gets a connection of its own.
 * - Before a kept connection serves a new run, its host key (and its jump hosts') is checked again
 *   against the known_hosts file as it is now: a key removed or replaced there is refused with the
 *   message a new handshake would give, and the connection is closed.
 * - A lost connection is dropped, never replaced under a run that uses it: that run sees it lost.
 * - Idle timeout: when no run has been connected for `idleSeconds` (the latest run's `--persist`), every
 *   connection is closed and the process exits. Nothing outlives the timeout.
 * - A run that goes away (it ended, was killed) closes its unix connections: the commands it had in
 *   flight have their channels closed, as when a direct connection drops.
 */
import type { Server, Socket } from 'node:net';
import { PassThrough, type Readable, Writable } from 'node:stream';
import {
  type ExecOutcome,
  FRAME,
  FrameReader,
  type FrameType,
  frame,
  type KeeperRequest,
  type KeeperRoute,
  type OpenResult,
  routeKey,
  splitRequest,
  type WireError,
} from './keeper-protocol.js';
import { AbortedError, type ExecOptions, type ExecResult, UnreachableError } from './types.js';

/** What the keeper uses of a connection (SshConnection's; tests give fakes). */
export interface KeptSsh {
  execFramed(
    command: string,
    input: () => Readable,
    opts: ExecOptions & { stderr?: Writable },
  ): Promise<ExecResult>;
  recheckHostKey(): UnreachableError | undefined;
  /** Defined once the connection is lost. */
  lostError(): UnreachableError | undefined;
  close(): Promise<void>;
}

export type Opener = (route: KeeperRoute) => Promise<KeptSsh>;

interface Kept {
  id: number;
  conn: Promise<KeptSsh>;
}

function wireError(err: unknown): WireError {
  if (err instanceof UnreachableError) return { reason: err.reason, message: err.message };
  if (err instanceof AbortedError)
    return { reason: 'lost', message: 'lost connection: the connection keeper closed it' };
  return { reason: 'other', message: (err as Error)?.message ?? String(err) };
}

export class Keeper {
  private readonly byRoute = new Map<string, Kept>();
  private readonly byId = new Map<number, Kept>();
  private nextId = 1;
  /** Unix connections open now (leases and commands): while there is one, the keeper is not idle. */
  private readonly clients = new Set<Socket>();
  private idleTimer?: NodeJS.Timeout;
  /** The commands being served: their results are written before the keeper stops. */
  private readonly running = new Set<Promise<void>>();
  private stopping?: Promise<number>;

  constructor(
    private readonly opener: Opener,
    private idleSeconds: number,
    /** Called once, when the keeper has closed everything: the process exits. */
    private readonly onStopped: () => void,
  ) {
    this.armIdle();
  }

  /** Serves every unix connection of `server`. */
  serve(server: Server): void {
    server.on('connection', (socket) => this.accept(socket));
  }

  accept(socket: Socket): void {
    if (this.stopping) return void socket.destroy();
    this.clients.add(socket);
    this.disarmIdle();
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.clients.delete(socket);
      if (this.clients.size === 0) this.armIdle();
    });
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      let split: ReturnType<typeof splitRequest>;
      let request: KeeperRequest;
      try {
        split = splitRequest(buffered);
        if (!split) return;
        request = JSON.parse(split.line) as KeeperRequest;
      } catch {
        return void socket.destroy();
      }
      socket.off('data', onData);
      socket.pause();
      if (split.rest.length > 0) socket.unshift(split.rest);
      this.dispatch(socket, request);
    };
    socket.on('data', onData);
  }

  private dispatch(socket: Socket, request: KeeperRequest): void {
    if (request.op === 'open') void this.open(socket, request.route, request.idleSeconds);
    else if (request.op === 'exec') {
      const running = this.exec(socket, request.id, request.command);
      this.running.add(running);
      void running.finally(() => this.running.delete(running));
    } else if (request.op === 'stop') {
      // Answered once everything is closed: not one of the leases ended then.
      this.clients.delete(socket);
      void this.stop().then((closed) => {
        if (!socket.destroyed) socket.end(frame(FRAME.result, JSON.stringify({ closed })));
      });
    } else socket.destroy();
  }

  /** The connection of `route`: the one kept, when it is still good, else a new one. */
  private async open(socket: Socket, route: KeeperRoute, idleSeconds: number): Promise<void> {
    if (Number.isFinite(idleSeconds) && idleSeconds > 0) this.idleSeconds = idleSeconds;
    const reply = (result: OpenResult) => {
      if (!socket.destroyed) socket.write(frame(FRAME.result, JSON.stringify(result)));
    };
    const key = routeKey(route);
    let reused = false;
    let kept = this.byRoute.get(key);
    if (kept) {
      const conn = await kept.conn.catch(() => undefined);
      if (!conn || conn.lostError()) this.forget(kept);
      else {
        const problem = conn.recheckHostKey();
        if (problem) {
          this.forget(kept);
          await conn.close().catch(() => undefined);
          return reply({ error: wireError(problem) });
        }
        reused = true;
      }
    }
    if (!reused) {
      const opened: Kept = { id: this.nextId++, conn: this.opener(route) };
      kept = opened;
      this.byRoute.set(key, opened);
      this.byId.set(opened.id, opened);
      try {
        await opened.conn;
      } catch (err) {
        // A host that could not be reached is tried again by the next run, not remembered.
        this.forget(opened);
        return reply({ error: wireError(err) });
      }
    }
    if (this.stopping) return reply({ error: wireError(new AbortedError(route.endpoint.name)) });
    reply({ ok: true, id: kept!.id, reused });
  }

  private forget(kept: Kept): void {
    for (const [key, k] of this.byRoute) if (k === kept) this.byRoute.delete(key);
    this.byId.delete(kept.id);
  }

  private async exec(socket: Socket, id: number, command: string): Promise<void> {
    const abort = new AbortController();
    let done = false;
    // The run closed its side before the result: it aborted the command (or went away).
    socket.on('end', () => !done && abort.abort());
    socket.on('close', () => !done && abort.abort());
    // The command's standard input, from the run's frames; the socket waits while the channel does.
    const input = new PassThrough();
    const reader = new FrameReader((type, payload) => {
      if (type === FRAME.stdinEnd) input.end();
      else if (type === FRAME.stdin && !input.write(payload)) {
        socket.pause();
        input.once('drain', () => socket.resume());
      }
    });
    socket.on('data', (d: Buffer) => reader.push(d));
    socket.resume();
    const output = (type: FrameType) =>
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          if (socket.destroyed) return callback();
          if (socket.write(frame(type, chunk))) callback();
          else socket.once('drain', () => callback());
        },
      });
    let outcome: ExecOutcome;
    const kept = this.byId.get(id);
    const conn = kept && (await kept.conn.catch(() => undefined));
    try {
      if (!conn)
        throw new UnreachableError('', 'lost', 'lost connection: the connection keeper no longer holds it');
      const res = await conn.execFramed(command, () => input, {
        stdout: output(FRAME.stdout),
        stderr: output(FRAME.stderr),
        signal: abort.signal,
      });
      outcome = { code: res.code };
    } catch (err) {
      if (err instanceof AbortedError && abort.signal.aborted) return;
      if (conn?.lostError() && kept) this.forget(kept);
      outcome = { error: wireError(err) };
    } finally {
      done = true;
      input.destroy();
    }
    if (!socket.destroyed) socket.end(frame(FRAME.result, JSON.stringify(outcome)));
  }

  private armIdle(): void {
    this.disarmIdle();
    this.idleTimer = setTimeout(() => void this.stop(), this.idleSeconds * 1000);
  }

  private disarmIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** Closes every connection (the commands in flight are cut off) and says how many there were. */
  stop(): Promise<number> {
    this.stopping ??= (async () => {
      this.disarmIdle();
      const all = [...this.byId.values()];
      this.byId.clear();
      this.byRoute.clear();
      const conns = await Promise.all(all.map((k) => k.conn.catch(() => undefined)));
      await Promise.all(conns.map((c) => c?.close().catch(() => undefined)));
      // The commands cut off answer their runs, then every run's lease ends.
      await Promise.all([...this.running]);
      for (const socket of this.clients) socket.end();
      this.onStopped();
      return conns.filter(Boolean).length;
    })();
    return this.stopping;
  }
}
