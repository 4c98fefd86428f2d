/**
 * A host reached through the connection keeper (keeper.ts): the run's side of `--persist`. The first
 * run starts the keeper (detached, its own process group: a Ctrl-C in the terminal does not reach it)
 * and waits for its ready line; every run then asks it for each host's connection (a lease that lasts
 * as long as the run uses the host) and sends each command over a unix connection of its own.
 *
 * The command line, the script and the sudo password are framed here exactly as for a direct
 * connection (protocol.ts): the password is in the command's standard input, never on any command line
 * (neither the keeper's nor the host's). Aborting a command (Ctrl-C's second signal, a timeout, the
 * connection closed) closes its unix connection, and the keeper closes its channel. A run that ends or
 * dies closes its leases; the keeper's idle timeout starts when the last run is gone.
 *
 * An interactive command (`console`, `exec -t`: a terminal on the host) opens a direct connection of
 * its own, a handshake: the keeper serves plain commands only.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect as connectUnix, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { Transform } from 'node:stream';
import { entryProgram } from '../util/entry-program.js';
import { notifyObservers } from '../util/run-events.js';
import { socketAnswers } from '../util/unix-socket.js';
import { OutputCollector } from './bounded-output.js';
import { openEndpoint } from './jump-hosts.js';
import {
  type ExecOutcome,
  FRAME,
  FrameReader,
  frame,
  type KeeperRequest,
  type KeeperRoute,
  type OpenResult,
  requestLine,
} from './keeper-protocol.js';
import { checkPrivateSocket, ensurePrivateDir, keeperDir, keeperSocket } from './keeper-socket.js';
import { frameInput, remoteCommand } from './protocol.js';
import type { SshEndpoint } from './route.js';
import type { SshConnection, SshOptions } from './ssh.js';
import {
  AbortedError,
  type Connection,
  type ExecOptions,
  type ExecResult,
  type InteractiveSession,
  type TerminalSize,
  UnreachableError,
} from './types.js';

/** How long a run waits for the keeper it started to serve its socket. */
const KEEPER_START_MS = 10_000;

/** The keeper's socket of this process's user, once checked (and the keeper started when needed). */
let ready: Promise<string> | undefined;

/**
 * The keeper's socket, the keeper started when none serves it. The directory and the socket are
 * checked first (keeper-socket.ts): another user's, or too open, is refused (a UserError).
 */
export function keeperReady(idleSeconds: number): Promise<string> {
  ready ??= (async () => {
    const dir = keeperDir();
    ensurePrivateDir(dir);
    const path = keeperSocket(dir);
    if (checkPrivateSocket(path) === 'ok' && (await socketAnswers(path))) return path;
    await startKeeper(dir, idleSeconds);
    checkPrivateSocket(path);
    return path;
  })();
  ready.catch(() => {
    ready = undefined;
  });
  return ready;
}

function startKeeper(dir: string, idleSeconds: number): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      [...entryProgram(import.meta.url, 'keeper.js', './keeper-main'), dir, String(idleSeconds)],
      {
        detached: true,
        cwd: '/',
        // Not the run's environment: it may hold secrets ($VERDANDI_VAULT_PASSWORD, $VERDANDI_PGP_KEY)
        // the keeper has no use for. Each run tells it its ssh-agent with the route.
        env: keeperEnvironment(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let said = '';
    let stderr = '';
    const timer = setTimeout(() => finish(new Error('it did not answer within 10 s')), KEEPER_START_MS);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      child.unref();
      if (!err) return done();
      fail(
        new UnreachableError(
          '',
          'other',
          `could not start the connection keeper: ${err.message}${stderr ? ` (${stderr.trim().split('\n').pop()})` : ''}`,
        ),
      );
    };
    child.stdout.on('data', (d: Buffer) => {
      said += d.toString();
      if (said.includes('ready\n')) finish();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    child.once('error', (err) => finish(err));
    child.once('exit', (code) => finish(new Error(`it exited with code ${code}`)));
  });
}

/** The keeper's environment: what Node and the SSH code need, nothing of the run's own settings. */
export function keeperEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const kept: NodeJS.ProcessEnv = {};
  for (const name of ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'TMPDIR', 'XDG_RUNTIME_DIR'])
    if (env[name] !== undefined) kept[name] = env[name];
  return kept;
}

/** Connects to the keeper and sends `request`; the socket, for the rest of the exchange. */
function request(path: string, req: KeeperRequest): Socket {
  const socket = connectUnix(path);
  socket.write(requestLine(req));
  return socket;
}

/** The route of an endpoint as the keeper keys it (keeper-protocol.ts). */
function routeOf(endpoint: SshEndpoint, opts: SshOptions): KeeperRoute {
  return {
    endpoint,
    knownHostsFile: resolve(opts.knownHostsFile),
    hostKeyChecking: opts.hostKeyChecking,
    connectTimeoutMs: opts.connectTimeoutMs,
    keepaliveIntervalMs: opts.keepaliveIntervalMs,
    keepaliveCountMax: opts.keepaliveCountMax,
    agentSocket: process.env.SSH_AUTH_SOCK,
  };
}

/** Leases `endpoint`'s connection from the keeper (started when needed). Rejects with UnreachableError. */
export async function openKept(
  endpoint: SshEndpoint,
  opts: SshOptions,
  idleSeconds: number,
): Promise<KeptConnection> {
  const host = endpoint.name;
  const route = routeOf(endpoint, opts);
  for (let attempt = 1; ; attempt++) {
    let path: string;
    try {
      path = await keeperReady(idleSeconds);
    } catch (err) {
      if (err instanceof UnreachableError) throw new UnreachableError(host, err.reason, err.message);
      throw err;
    }
    const lease = request(path, { op: 'open', route, idleSeconds });
    const answer = await new Promise<OpenResult | NodeJS.ErrnoException>((resolveOpen) => {
      let error: NodeJS.ErrnoException | undefined;
      const unanswered = () =>
        resolveOpen(error ?? new Error('the connection keeper closed the connection unanswered'));
      const reader = new FrameReader((type, payload) => {
        if (type !== FRAME.result) return;
        lease.off('close', unanswered);
        resolveOpen(JSON.parse(payload.toString('utf8')) as OpenResult);
      });
      lease.on('data', (d: Buffer) => reader.push(d));
      lease.on('error', (err) => {
        error = err;
      });
      lease.once('close', unanswered);
    });
    if (answer instanceof Error) {
      // The keeper exited since this process last used it (its idle timeout): start another, once.
      if (attempt === 1 && (answer.code === 'ENOENT' || answer.code === 'ECONNREFUSED')) {
        ready = undefined;
        continue;
      }
      throw new UnreachableError(host, 'other', `the connection keeper did not answer: ${answer.message}`);
    }
    if ('error' in answer) {
      lease.destroy();
      throw new UnreachableError(host, answer.error.reason, answer.error.message);
    }
    return new KeptConnection(endpoint, opts, path, answer.id, answer.reused, lease);
  }
}

/** Stops the keeper of this user, when one runs: how many connections it closed (undefined: none ran). */
export async function stopKeeper(): Promise<number | undefined> {
  const path = keeperSocket(keeperDir());
  if (checkPrivateSocket(path) === 'absent' || !(await socketAnswers(path))) return undefined;
  const socket = request(path, { op: 'stop' });
  return new Promise((resolveStop) => {
    let closed: number | undefined;
    const reader = new FrameReader((type, payload) => {
      if (type === FRAME.result) closed = (JSON.parse(payload.toString('utf8')) as { closed: number }).closed;
    });
    socket.on('data', (d: Buffer) => reader.push(d));
    socket.once('error', () => undefined);
    socket.once('close', () => resolveStop(closed ?? 0));
    socket.once('end', () => resolveStop(closed ?? 0));
  });
}

/** Whether a keeper serves this user's socket now (for tests and `verdandi disconnect`). */
export function keeperRunning(): Promise<boolean> {
  const dir = keeperDir();
  return existsSync(dir) ? socketAnswers(keeperSocket(dir)) : Promise.resolve(false);
}

export class KeptConnection implements Connection {
  roundTrips = 0;
  private readonly inFlight = new Set<(err: Error) => void>();
  private lost?: UnreachableError | AbortedError;
  /** The direct connection of interactive commands, opened by the first one. */
  private direct?: Promise<SshConnection>;

  constructor(
    private readonly endpoint: SshEndpoint,
    private readonly opts: SshOptions,
    private readonly path: string,
    private readonly id: number,
    /** The keeper had this connection open already: no handshake was made for this run. */
    readonly reused: boolean,
    private readonly lease: Socket,
  ) {
    lease.on('close', () => {
      this.markLost(
        new UnreachableError(this.host, 'lost', 'lost connection: the connection keeper went away'),
      );
    });
  }

  get host(): string {
    return this.endpoint.name;
  }

  private markLost(err: UnreachableError | AbortedError): void {
    this.lost ??= err;
    for (const fail of [...this.inFlight]) fail(this.lost);
  }

  async exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (this.lost) throw this.lost;
    if (opts.signal?.aborted) throw new AbortedError(this.host);
    const withPassword = this.endpoint.become && !!this.opts.becomePassword;
    const command = remoteCommand(this.endpoint.become, withPassword);
    this.roundTrips++;
    notifyObservers((o) => o.roundTrip?.(this.host));
    const input = frameInput(script, opts.stdin, withPassword ? this.opts.becomePassword : undefined);
    const socket = request(this.path, { op: 'exec', id: this.id, command });
    return new Promise<ExecResult>((resolveExec, reject) => {
      const stdout = new OutputCollector(opts.bound);
      const stderr = new OutputCollector(opts.bound && { tailBytes: opts.bound.tailBytes });
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => finish(new AbortedError(this.host));
      const finish = (outcome: Error | ExecResult) => {
        if (settled) return;
        settled = true;
        this.inFlight.delete(finish);
        opts.signal?.removeEventListener('abort', onAbort);
        if (timer) clearTimeout(timer);
        if (outcome instanceof Error) {
          // Closing the unix connection makes the keeper close the channel: the command sees the end
          // of its input, a write in progress installs nothing.
          input.destroy();
          socket.destroy();
          reject(outcome);
        } else resolveExec(outcome);
      };
      this.inFlight.add(finish);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs) {
        timer = setTimeout(
          () => finish(new Error(`command timed out after ${opts.timeoutMs} ms`)),
          opts.timeoutMs,
        );
        timer.unref();
      }
      const reader = new FrameReader((type, payload) => {
        if (type === FRAME.stdout) {
          if (!opts.stdout) return stdout.push(payload);
          // The download's own pace: the keeper's channel waits while the file is written.
          if (!opts.stdout.write(payload)) {
            socket.pause();
            opts.stdout.once('drain', () => socket.resume());
          }
        } else if (type === FRAME.stderr) stderr.push(payload);
        else if (type === FRAME.result) {
          const outcome = JSON.parse(payload.toString('utf8')) as ExecOutcome;
          if ('error' in outcome)
            finish(new UnreachableError(this.host, outcome.error.reason, outcome.error.message));
          else finish({ stdout: stdout.text(), stderr: stderr.text(), code: outcome.code });
          // The command is over: what it did not read of its input is not sent.
          if (!input.readableEnded) input.destroy();
          socket.destroy();
        }
      });
      socket.on('data', (d: Buffer) => reader.push(d));
      socket.on('error', () => undefined);
      socket.on('close', () =>
        finish(
          this.lost ??
            new UnreachableError(this.host, 'lost', 'lost connection: the connection keeper went away'),
        ),
      );
      input.on('error', (err) => finish(err));
      // The input in frames, its end one too: the keeper tells the end of the input from an abort.
      const framed = new Transform({
        transform: (chunk: Buffer, _encoding, callback) => callback(null, frame(FRAME.stdin, chunk)),
        flush: (callback) => callback(null, frame(FRAME.stdinEnd, '')),
      });
      input.pipe(framed).pipe(socket, { end: false });
    });
  }

  /** A terminal on the host needs a channel of this process: a direct connection, opened once. */
  async interactive(path: string, tty: TerminalSize | undefined): Promise<InteractiveSession> {
    if (this.lost) throw this.lost;
    this.direct ??= openEndpoint(this.endpoint, this.opts);
    const direct = await this.direct;
    this.roundTrips++;
    return direct.interactive(path, tty);
  }

  async close(): Promise<void> {
    this.markLost(new AbortedError(this.host));
    this.lease.destroy();
    const direct = await this.direct?.catch(() => undefined);
    await direct?.close();
  }
}
