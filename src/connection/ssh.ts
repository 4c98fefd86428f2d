/**
 * SSH connection through node-ssh (connect) and its ssh2 client (commands): one connection per host,
 * reused for every command of the run. Every command is the fixed bootstrap of protocol.ts, the script
 * and its payload on stdin; with `become`, through sudo (the password, when one is needed, is stdin's
 * first line, never on a command line).
 *
 * A lost connection is this host's failure only: the client has a permanent `error` listener (an
 * unhandled `error` event would end the whole process), and every command in flight rejects with an
 * UnreachableError. Keepalives declare a silent host dead after interval × (count + 1). The handshake's
 * time limit is kept here (handshake-deadline.ts), not by ssh2, so a starved controller is fair to it.
 *
 * Behind a jump host (jump-hosts.ts), the connection runs over a channel of the jump host's own
 * connection (`sock`); when that one is lost, this host is lost with a message naming the jump host.
 */
import { readFile, stat } from 'node:fs/promises';
import { constants } from 'node:os';
import type { Duplex, Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { NodeSSH } from 'node-ssh';
import { UserError } from '../util/errors.js';
import { notifyObservers } from '../util/run-events.js';
import { words } from '../util/shell.js';
import { OutputCollector } from './bounded-output.js';
import { HandshakeDeadline } from './handshake-deadline.js';
import { fingerprint, hostPattern, KnownHosts } from './known-hosts.js';
import { frameInput, remoteCommand } from './protocol.js';
import type { HostKeyChecking, SshEndpoint } from './route.js';
import {
  AbortedError,
  CONNECTION_DEFAULTS,
  type Connection,
  type ExecOptions,
  type ExecResult,
  type InteractiveSession,
  type TerminalSize,
  UnreachableError,
} from './types.js';

/** What a connection needs of a host: its endpoint (route.ts), the ssh config's parts optional. */
export type SshTarget = Pick<SshEndpoint, 'name' | 'address' | 'port' | 'user' | 'key' | 'become'> &
  Partial<Omit<SshEndpoint, 'via'>>;

export interface SshOptions {
  /** Where the project's known_hosts lives. */
  knownHostsFile: string;
  hostKeyChecking: HostKeyChecking;
  connectTimeoutMs: number;
  /** Send an SSH keepalive after this long without traffic (default 5 s)... */
  keepaliveIntervalMs?: number;
  /** ...and declare the host lost when this many go unanswered (default 2: lost within ~15 s). */
  keepaliveCountMax?: number;
  becomePassword?: string;
  /** Concurrent channels per connection: below OpenSSH's default MaxSessions (10). */
  maxChannels?: number;
  /** The channel of the jump host's connection to run this connection over... */
  sock?: Duplex;
  /** ...and that jump host: when it is lost, so is this connection. */
  through?: SshConnection;
  /** The ssh-agent's socket (default: $SSH_AUTH_SOCK; the connection keeper is given its client's). */
  agentSocket?: string;
}

/** The pause before the one retry of a handshake the server accepted but did not finish (doubled at most, by jitter). */
export const HANDSHAKE_RETRY_MS = 1000;

/** Bounds concurrent channels on one connection. */
class Semaphore {
  private waiting: Array<() => void> = [];
  private active = 0;
  constructor(private readonly max: number) {}
  async acquire(): Promise<void> {
    if (this.active < this.max) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
  }
  release(): void {
    this.active--;
    this.waiting.shift()?.();
  }
}

export function classifySshError(err: unknown): { reason: UnreachableError['reason']; message: string } {
  const e = err as { code?: string; level?: string; message?: string };
  const msg = e?.message ?? String(err);
  if (e?.code === 'ECONNREFUSED')
    return { reason: 'refused', message: 'connection refused (is sshd running?)' };
  if (e?.code === 'ENOTFOUND' || e?.code === 'EAI_AGAIN')
    return { reason: 'dns', message: `unknown host name (${msg})` };
  if (e?.code === 'EHOSTUNREACH' || e?.code === 'ENETUNREACH')
    return { reason: 'timeout', message: `no route to host (${e.code})` };
  if (e?.level === 'client-timeout' || /timed out/i.test(msg) || e?.code === 'ETIMEDOUT')
    return { reason: 'timeout', message: 'connection timed out' };
  if (/lost before handshake/i.test(msg) || e?.code === 'ECONNRESET')
    return {
      reason: 'refused',
      message: 'connection closed before the SSH handshake (host down, or no sshd there?)',
    };
  if (e?.level === 'client-authentication' || /authentication/i.test(msg))
    return { reason: 'auth', message: 'authentication failed (check user and key)' };
  return { reason: 'other', message: msg };
}

/** What Verdandi uses of ssh2's client and channels (ssh2 ships no type declarations). */
interface ExecChannel extends NodeJS.WritableStream, NodeJS.ReadableStream {
  stderr: NodeJS.ReadableStream;
  close(): void;
  setWindow(rows: number, cols: number, height: number, width: number): void;
  signal(name: string): void;
}
interface Client {
  on(event: 'error', listener: (err: unknown) => void): void;
  on(event: 'end' | 'close' | 'connect', listener: () => void): void;
  emit(event: 'error', err: Error): boolean;
  destroy(): void;
  exec(command: string, callback: (err: Error | undefined, channel: ExecChannel) => void): void;
  exec(
    command: string,
    options: { pty?: TerminalSize },
    callback: (err: Error | undefined, channel: ExecChannel) => void,
  ): void;
  forwardOut(
    srcIP: string,
    srcPort: number,
    dstIP: string,
    dstPort: number,
    callback: (err: Error | undefined, stream: Duplex) => void,
  ): void;
}

/**
 * OpenSSH's sshd announces all its host keys after authentication (`hostkeys-00@openssh.com`, for
 * clients that update their known_hosts). ssh2 answers every announcement by asking the server to
 * prove it holds each key, then checks each signature, only to emit a `hostkeys` event nobody here
 * listens to: a round trip, a signature per host key on the host and a verification each on the
 * controller, per connection (about a third of the controller's CPU per host of a no-change run of
 * many hosts). The host's key is checked once, in the key exchange (`hostVerifier`); the announcement
 * is acknowledged and nothing more. ssh2 has no option for this: its message handler for global
 * requests is wrapped (private fields, checked here: when they are not there, ssh2 keeps its way).
 */
export function skipHostKeysProof(client: unknown): void {
  type GlobalRequest = (proto: unknown, name: string, wantReply: boolean, data: unknown) => void;
  const handlers = (client as { _protocol?: { _handlers?: { GLOBAL_REQUEST?: GlobalRequest } } })._protocol
    ?._handlers;
  const original = handlers?.GLOBAL_REQUEST;
  if (!handlers || typeof original !== 'function' || SKIPS_PROOF.has(original)) return;
  const skipping: GlobalRequest = (proto, name, wantReply, data) => {
    if (name !== 'hostkeys-00@openssh.com') return original(proto, name, wantReply, data);
    if (wantReply) (proto as { requestSuccess(): void }).requestSuccess();
  };
  SKIPS_PROOF.add(skipping);
  handlers.GLOBAL_REQUEST = skipping;
}
const SKIPS_PROOF = new WeakSet<object>();

/**
 * Private keys by path: the hosts of an inventory mostly share one, read once, not per host. Kept
 * while the file's size and modification time stay the same (one `stat` per connection), so a key
 * replaced while a long-lived process runs (the deploy webhook) is read again.
 */
const privateKeys = new Map<string, { size: number; mtimeMs: number; text: Promise<string> }>();

export async function readPrivateKey(host: string, path: string): Promise<string> {
  try {
    const { size, mtimeMs } = await stat(path);
    let entry = privateKeys.get(path);
    if (!entry || entry.size !== size || entry.mtimeMs !== mtimeMs) {
      entry = { size, mtimeMs, text: readFile(path, 'utf8') };
      const read = entry;
      // A failed read is not kept: the next host tries again.
      read.text.catch(() => privateKeys.get(path) === read && privateKeys.delete(path));
      privateKeys.set(path, entry);
    }
    return await entry.text;
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    throw new UnreachableError(
      host,
      'auth',
      `cannot read the private key ${path} (${code ?? message}): check the host's \`key\` in the inventory`,
    );
  }
}

/** A command in flight, so a lost connection can fail it at once. */
interface InFlight {
  fail(err: Error): void;
}

/** The exit code of a command ssh2 reports as (code) or (null, signal name). */
export function exitCodeOf(code: number | null | undefined, signal?: string): number | undefined {
  if (typeof code === 'number') return code;
  if (signal) {
    const number = (constants.signals as Record<string, number>)[`SIG${signal}`];
    return 128 + (number ?? 0);
  }
  return undefined;
}

export class SshConnection implements Connection {
  private ssh = new NodeSSH();
  private channels: Semaphore;
  private readonly inFlight = new Set<InFlight>();
  /** Why the connection is gone (set once, by the client's error/end/close or by close()). */
  private lost?: UnreachableError | AbortedError;
  /** Connections running over this one (it is their jump host): lost with it. */
  private readonly dependents = new Set<SshConnection>();
  private readonly closeListeners: Array<() => void> = [];
  roundTrips = 0;

  private constructor(
    private readonly target: SshTarget,
    private readonly opts: SshOptions,
  ) {
    this.channels = new Semaphore(opts.maxChannels ?? 8);
  }

  get host(): string {
    return this.target.name;
  }

  /**
   * Connects. A handshake that timed out or was cut after the TCP connection was accepted is tried
   * once more after a short, jittered pause: the server answered the connection but was too busy to
   * finish (sshd's MaxStartups, a loaded host, a thousand hosts at once). A host that refuses or does
   * not answer at all is not retried: it is down. Over a jump host (`sock`) the channel is used once.
   * The retry is told to the run's observers as it starts (a warning in the output), so a run where
   * every host was reached still shows the servers that struggled.
   */
  static async open(target: SshTarget, opts: SshOptions): Promise<SshConnection> {
    const first = new SshConnection(target, opts);
    try {
      await first.connect();
      return first;
    } catch (err) {
      if (!(err instanceof UnreachableError) || !first.slowHandshake(err) || opts.sock) throw err;
      const pause = HANDSHAKE_RETRY_MS * (1 + Math.random());
      const retry = `${err.message}: the server accepted the connection but did not finish the SSH handshake; trying once more in ${(pause / 1000).toFixed(1)} s`;
      notifyObservers((o) => o.handshakeRetry?.(target.name, retry));
      await sleep(pause);
    }
    const second = new SshConnection(target, opts);
    try {
      await second.connect();
      return second;
    } catch (err) {
      if (!(err instanceof UnreachableError)) throw err;
      throw new UnreachableError(
        err.host,
        err.reason,
        `${err.message} (tried twice: the first SSH handshake was accepted but did not finish)`,
      );
    }
  }

  /** The TCP connection was accepted (the client saw it connect): set by connect(). */
  private accepted = false;

  /** The server took the connection but did not complete the handshake in time, or cut it. */
  private slowHandshake(err: UnreachableError): boolean {
    return this.accepted && (err.reason === 'timeout' || err.reason === 'refused');
  }

  /** The host key the server proved it holds in the key exchange (set by connect()). */
  private hostKey?: Buffer;

  /**
   * What is wrong with `key` as this host's key, by the known_hosts file and the checking mode of this
   * connection; undefined when it is accepted (a new key is then recorded under accept-new).
   */
  private hostKeyProblem(key: Buffer): string | undefined {
    const { target, opts } = this;
    const knownHostsFile = target.knownHostsFile ?? opts.knownHostsFile;
    // --host-key-checking off wins; else the ssh config's StrictHostKeyChecking, else the run's mode.
    const checking =
      opts.hostKeyChecking === 'off' ? 'off' : (target.hostKeyChecking ?? opts.hostKeyChecking);
    if (checking === 'off') return undefined;
    const verdict = new KnownHosts(knownHostsFile).verify(
      target.address,
      target.port,
      key,
      checking === 'accept-new',
    );
    if (verdict.kind === 'changed') {
      return (
        `the host key of ${hostPattern(target.address, target.port)} changed (now ${fingerprint(key)}); ` +
        `refusing to connect. If the host was reinstalled, delete line ${verdict.line} of ${knownHostsFile}`
      );
    }
    if (verdict.kind === 'new' && checking === 'yes') {
      return (
        `the host key of ${hostPattern(target.address, target.port)} (${fingerprint(key)}) is not in ` +
        `${knownHostsFile} and StrictHostKeyChecking is ${target.sources?.['host key checking'] ?? 'yes'}: ` +
        'add the key there (ssh-keyscan), or set StrictHostKeyChecking accept-new for this host'
      );
    }
    return undefined;
  }

  /**
   * Checks the key this connection was opened with against the known_hosts file as it is now, and
   * those of its jump hosts: what a connection kept open between runs (keeper.ts) goes through before
   * each run uses it, so a key the user removed or replaced there is refused as a new handshake would.
   */
  recheckHostKey(): UnreachableError | undefined {
    const jump = this.opts.through?.recheckHostKey();
    if (jump) return new UnreachableError(this.target.name, jump.reason, jump.message);
    const problem = this.hostKey && this.hostKeyProblem(this.hostKey);
    return problem ? new UnreachableError(this.target.name, 'hostkey', problem) : undefined;
  }

  private async connect(): Promise<void> {
    const { target, opts } = this;
    let hostKeyProblem: string | undefined;
    const privateKey = target.key === undefined ? undefined : await readPrivateKey(target.name, target.key);
    const authHandler = target.key === undefined ? await this.configuredAuth() : undefined;
    // The handshake's limit (handshake-deadline.ts): on the TCP connect, then again from the moment the
    // server accepted it. On expiry, ssh2's own timeout is played: its error, the socket destroyed.
    const deadline = new HandshakeDeadline(opts.connectTimeoutMs, () => {
      const client = this.client() as Client | null;
      const err = Object.assign(new Error('Timed out while waiting for handshake'), {
        level: 'client-timeout',
      });
      client?.emit('error', err);
      client?.destroy();
    });
    try {
      const connecting = this.ssh.connect({
        host: target.address,
        port: target.port,
        sock: opts.sock,
        username: target.user,
        privateKey,
        agent: target.key ? undefined : this.agentSocket(),
        authHandler,
        readyTimeout: 0, // the deadline above keeps the time instead
        keepaliveInterval: opts.keepaliveIntervalMs ?? CONNECTION_DEFAULTS.keepalive * 1000,
        keepaliveCountMax: opts.keepaliveCountMax ?? CONNECTION_DEFAULTS.keepaliveCount,
        hostVerifier: (key: Buffer) => {
          // Called during the key exchange: the client exists, authentication has not started.
          skipHostKeysProof(this.client());
          hostKeyProblem = this.hostKeyProblem(key);
          this.hostKey = key;
          return hostKeyProblem === undefined;
        },
      });
      // node-ssh creates its client synchronously: its socket's connection is seen from here. Over a
      // jump host's channel (`sock`) there is no TCP connect: ssh2 starts the handshake at once.
      deadline.start();
      if (opts.sock) this.accepted = true;
      this.client().on('connect', () => {
        this.accepted = true;
        deadline.start();
      });
      await connecting;
      deadline.finish();
    } catch (err) {
      deadline.finish();
      if (hostKeyProblem) throw new UnreachableError(target.name, 'hostkey', hostKeyProblem);
      const lostJump = opts.through?.lostError();
      if (lostJump) throw new UnreachableError(target.name, lostJump.reason, lostJump.message);
      const { reason, message } = classifySshError(err);
      throw new UnreachableError(
        target.name,
        reason,
        `${target.user}@${target.address}:${target.port}${viaText(opts.through)}: ${message}`,
      );
    }
    opts.through?.dependents.add(this);
    this.watch(this.client());
  }

  /**
   * The ssh config's IdentityFile keys (those that exist), then the ssh-agent unless IdentitiesOnly.
   * Undefined without identity files: ssh2's default (the agent) as before.
   */
  private async configuredAuth(): Promise<unknown[] | undefined> {
    const { target } = this;
    if (!target.identityFiles?.length) return undefined;
    const username = target.user;
    const methods: unknown[] = [];
    for (const file of target.identityFiles) {
      try {
        methods.push({ type: 'publickey', username, key: await readPrivateKey(target.name, file) });
      } catch {
        // OpenSSH skips an IdentityFile that is not there (a pattern in `Host *` for other hosts).
      }
    }
    const agent = this.agentSocket();
    if (!target.identitiesOnly && agent) methods.push({ type: 'agent', username, agent });
    return methods;
  }

  private agentSocket(): string | undefined {
    return 'agentSocket' in this.opts ? this.opts.agentSocket : process.env.SSH_AUTH_SOCK;
  }

  /**
   * A channel to `address:port` from this host (a jump host): what the next hop's connection runs
   * over. Fails with an UnreachableError naming this jump host.
   */
  forwardOut(address: string, port: number): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const failed = (why: string) =>
        new UnreachableError(
          this.target.name,
          'refused',
          `jump host ${this.target.name} could not reach ${address}:${port}: ${why}`,
        );
      if (this.lost) return reject(this.lostError() ?? failed('its connection is closed'));
      try {
        this.client().forwardOut('127.0.0.1', 0, address, port, (err, stream) => {
          if (err) reject(this.lostError() ?? failed(err.message));
          else resolve(stream);
        });
      } catch (err) {
        reject(this.lostError() ?? failed((err as Error).message));
      }
    });
  }

  /** When this connection is lost: the error its dependents report (naming it as their jump host). */
  lostError(): UnreachableError | undefined {
    if (!(this.lost instanceof UnreachableError)) return undefined;
    return new UnreachableError(
      this.target.name,
      'lost',
      `lost the jump host ${this.target.name} (${this.target.user}@${this.target.address}:${this.target.port}): ${this.lost.message.replace(/^lost connection: /, '')}`,
    );
  }

  /** Called once, when the connection is closed (the jump host is given back). */
  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  private client(): Client {
    return this.ssh.connection as unknown as Client;
  }

  /** From now on, whatever ends the connection fails this host's commands, and nothing else. */
  private watch(client: Client): void {
    client.on('error', (err: unknown) => this.markLost(lostMessage(err)));
    client.on('end', () => this.markLost('the host closed the connection'));
    client.on('close', () => this.markLost('the connection closed'));
  }

  private markLost(message: string): void {
    if (!this.lost) {
      // Behind a lost jump host, that is why (its own events may come first or after this one's).
      const jump = this.opts.through?.lostError();
      this.lost = jump
        ? new UnreachableError(this.target.name, 'lost', `lost connection: ${jump.message}`)
        : new UnreachableError(this.target.name, 'lost', `lost connection: ${message}`);
    }
    for (const f of [...this.inFlight]) f.fail(this.lost);
    for (const d of [...this.dependents]) d.jumpHostLost(this);
  }

  /** Our jump host is gone: so is this connection, and it says why. */
  private jumpHostLost(jump: SshConnection): void {
    const why = jump.lostError();
    if (why) this.markLost(why.message);
    this.ssh.dispose();
  }

  async exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const withPassword = this.target.become && !!this.opts.becomePassword;
    const command = remoteCommand(this.target.become, withPassword);
    const password = withPassword ? this.opts.becomePassword : undefined;
    this.roundTrips++;
    notifyObservers((o) => o.roundTrip?.(this.target.name));
    return this.execFramed(command, () => frameInput(script, opts.stdin, password), opts);
  }

  /**
   * Runs `command` (remoteCommand's) with the standard input `input()` makes, already framed: what the
   * connection keeper (keeper.ts) runs for its clients, which frame the script and the sudo password
   * themselves. With `stderr`, the command's standard error goes there as it arrives.
   */
  async execFramed(
    command: string,
    input: () => Readable,
    opts: ExecOptions & { stderr?: Writable } = {},
  ): Promise<ExecResult> {
    if (this.lost) throw this.lost;
    if (opts.signal?.aborted) throw new AbortedError(this.target.name);
    await this.channels.acquire();
    try {
      return await this.run(command, input, opts);
    } finally {
      this.channels.release();
    }
  }

  private run(command: string, makeInput: () => Readable, opts: ExecOptions & { stderr?: Writable }) {
    return new Promise<ExecResult>((resolve, reject) => {
      let channel: ExecChannel | undefined;
      let input: Readable | undefined;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => finish(new AbortedError(this.target.name));
      const self: InFlight = { fail: (err) => finish(err) };
      const finish = (outcome: Error | ExecResult) => {
        if (settled) return;
        settled = true;
        this.inFlight.delete(self);
        opts.signal?.removeEventListener('abort', onAbort);
        if (timer) clearTimeout(timer);
        if (outcome instanceof Error) {
          // Closing the channel ends the command's input: a write in progress installs nothing.
          // The input is dropped too, so a payload stream (a file being sent) is closed.
          input?.destroy();
          channel?.close();
          reject(outcome);
        } else resolve(outcome);
      };
      this.inFlight.add(self);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs) {
        timer = setTimeout(
          () => finish(new Error(`command timed out after ${opts.timeoutMs} ms`)),
          opts.timeoutMs,
        );
        timer.unref();
      }
      if (this.lost) return finish(this.lost);
      try {
        this.client().exec(command, (err, ch) => {
          if (err) {
            return finish(
              this.lost ??
                new UnreachableError(this.target.name, 'lost', `could not open a channel: ${err.message}`),
            );
          }
          channel = ch;
          if (settled) return ch.close();
          const stdout = new OutputCollector(opts.bound);
          const stderr = new OutputCollector(opts.bound && { tailBytes: opts.bound.tailBytes });
          let exit: number | undefined;
          if (opts.stdout) ch.pipe(opts.stdout, { end: false });
          else ch.on('data', (d: Buffer) => stdout.push(d));
          if (opts.stderr) ch.stderr.pipe(opts.stderr, { end: false });
          else ch.stderr.on('data', (d: Buffer) => stderr.push(d));
          ch.on('exit', (code: number | null, signal?: string) => {
            exit = exitCodeOf(code, signal);
          });
          // EPIPE and the like: the connection is going; the client's own events say why.
          ch.on('error', (e: Error) => finish(this.lost ?? lostError(this.target.name, e)));
          ch.on('close', () => {
            // No exit status: the session ended under the command (sshd killed, connection lost).
            if (exit === undefined) {
              return finish(
                this.lost ??
                  new UnreachableError(this.target.name, 'lost', 'lost connection: the session ended'),
              );
            }
            finish({ stdout: stdout.text(), stderr: stderr.text(), code: exit });
          });
          input = makeInput();
          input.on('error', (e) => finish(e));
          input.pipe(ch);
        });
      } catch (err) {
        // ssh2 throws synchronously when the connection is already gone ("Not connected").
        finish(this.lost ?? lostError(this.target.name, err));
      }
    });
  }

  async interactive(path: string, tty: TerminalSize | undefined): Promise<InteractiveSession> {
    const host = this.target.name;
    if (this.lost) throw this.lost;
    if (this.target.become && this.opts.becomePassword) {
      // sudo would read its password from the terminal the user types in: refused rather than echoed.
      throw new UserError(
        `${host}: an interactive command needs root or sudo without a password (this host's become has a password)`,
        1,
        'connect as root, or give the user NOPASSWD sudo on this host',
      );
    }
    const command = this.target.become ? words('sudo', '-n', '-H', '--', 'sh', path) : words('sh', path);
    await this.channels.acquire();
    this.roundTrips++;
    notifyObservers((o) => o.roundTrip?.(host));
    let released = false;
    const release = () => {
      if (!released) this.channels.release();
      released = true;
    };
    let channel: ExecChannel;
    try {
      channel = await new Promise<ExecChannel>((resolve, reject) => {
        try {
          this.client().exec(command, tty ? { pty: tty } : {}, (err, ch) =>
            err
              ? reject(
                  this.lost ?? new UnreachableError(host, 'lost', `could not open a channel: ${err.message}`),
                )
              : resolve(ch),
          );
        } catch (err) {
          reject(this.lost ?? lostError(host, err));
        }
      });
    } catch (err) {
      release();
      throw err;
    }
    const exit = new Promise<number>((resolve, reject) => {
      let code: number | undefined;
      const self: InFlight = {
        fail: (err) => {
          end();
          channel.close();
          reject(err);
        },
      };
      const end = () => {
        this.inFlight.delete(self);
        release();
      };
      this.inFlight.add(self);
      channel.on('exit', (c: number | null, signal?: string) => {
        code = exitCodeOf(c, signal);
      });
      channel.on('error', (e: Error) => self.fail(this.lost ?? lostError(host, e)));
      channel.on('close', () => {
        end();
        if (code !== undefined) resolve(code);
        else reject(this.lost ?? new UnreachableError(host, 'lost', 'lost connection: the session ended'));
      });
    });
    return {
      stream: channel,
      stderr: channel.stderr,
      resize: (rows, cols) => channel.setWindow(rows, cols, 0, 0),
      signal: (name) => channel.signal(name),
      close: () => channel.close(),
      exit,
    };
  }

  async close(): Promise<void> {
    if (!this.lost) this.lost = new AbortedError(this.target.name);
    for (const f of [...this.inFlight]) f.fail(this.lost);
    this.ssh.dispose();
    this.opts.through?.dependents.delete(this);
    for (const listener of this.closeListeners.splice(0)) listener();
  }
}

function viaText(through: SshConnection | undefined): string {
  return through ? ` (through the jump host ${through.host})` : '';
}

function lostMessage(err: unknown): string {
  const e = err as { code?: string; message?: string; level?: string };
  if (e?.message === 'Keepalive timeout') return 'no answer to keepalives (host down or network cut)';
  if (e?.code === 'ECONNRESET') return 'connection reset by the host (ECONNRESET)';
  if (e?.code === 'EPIPE') return 'connection broken (EPIPE)';
  if (e?.code === 'ETIMEDOUT') return 'connection timed out';
  return e?.message ?? String(err);
}

function lostError(host: string, err: unknown): UnreachableError {
  return new UnreachableError(host, 'lost', `lost connection: ${lostMessage(err)}`);
}
