/**
 * SSH connection through node-ssh: one connection per host, reused for every command of the run.
 * Commands run with `sh -c`; with `become`, through sudo (the password, when one is needed, goes on
 * stdin, never on a command line).
 */
import { NodeSSH } from 'node-ssh';
import { words } from '../util/shell.js';
import { fingerprint, hostPattern, KnownHosts } from './known-hosts.js';
import { type Connection, type ExecOptions, type ExecResult, UnreachableError } from './types.js';

export interface SshTarget {
  name: string;
  address: string;
  port: number;
  user: string;
  key?: string;
  become: boolean;
}

export interface SshOptions {
  /** Where the project's known_hosts lives. */
  knownHostsFile: string;
  hostKeyChecking: 'accept-new' | 'off';
  connectTimeoutMs: number;
  becomePassword?: string;
  /** Concurrent channels per connection: below OpenSSH's default MaxSessions (10). */
  maxChannels?: number;
}

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

/** Wraps a script into the command line sshd runs (through the user's login shell). */
export function remoteCommand(
  script: string,
  become: boolean,
  withPassword: boolean,
  viaStdin: boolean,
): string {
  const shell = viaStdin ? words('sh', '-s') : words('sh', '-c', script);
  if (!become) return shell;
  // -H: HOME of root; -n: never prompt (fails fast instead of hanging) unless we have a password.
  return withPassword ? `sudo -S -p '' -H -- ${shell}` : `sudo -n -H -- ${shell}`;
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

export class SshConnection implements Connection {
  private ssh = new NodeSSH();
  private channels: Semaphore;
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

  static async open(target: SshTarget, opts: SshOptions): Promise<SshConnection> {
    const conn = new SshConnection(target, opts);
    await conn.connect();
    return conn;
  }

  private async connect(): Promise<void> {
    const { target, opts } = this;
    let hostKeyProblem: string | undefined;
    const knownHosts = new KnownHosts(opts.knownHostsFile);
    try {
      await this.ssh.connect({
        host: target.address,
        port: target.port,
        username: target.user,
        privateKeyPath: target.key,
        agent: target.key ? undefined : process.env.SSH_AUTH_SOCK,
        readyTimeout: opts.connectTimeoutMs,
        keepaliveInterval: 15_000,
        hostVerifier: (key: Buffer) => {
          if (opts.hostKeyChecking === 'off') return true;
          const verdict = knownHosts.verify(target.address, target.port, key);
          if (verdict.kind === 'changed') {
            hostKeyProblem =
              `the host key of ${hostPattern(target.address, target.port)} changed (now ${fingerprint(key)}); ` +
              `refusing to connect. If the host was reinstalled, delete line ${verdict.line} of ${opts.knownHostsFile}`;
            return false;
          }
          return true;
        },
      });
    } catch (err) {
      if (hostKeyProblem) throw new UnreachableError(target.name, 'hostkey', hostKeyProblem);
      const { reason, message } = classifySshError(err);
      throw new UnreachableError(
        target.name,
        reason,
        `${target.user}@${target.address}:${target.port}: ${message}`,
      );
    }
  }

  async exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const withPassword = this.target.become && !!this.opts.becomePassword;
    // A script that needs no stdin of its own travels on stdin, not as an argument: nothing of it
    // (guards, lineinfile lines) shows in `ps` on the host, and there is no length limit. The brace
    // group makes the shell read the whole script before running any of it, and its commands get
    // /dev/null as stdin so none can swallow the rest of the script.
    const viaStdin = opts.stdin === undefined;
    const command = remoteCommand(script, this.target.become, withPassword, viaStdin);
    let stdin = viaStdin ? `{\n${script}\n} </dev/null\n` : opts.stdin;
    if (withPassword) stdin = `${this.opts.becomePassword}\n${stdin ?? ''}`;
    await this.channels.acquire();
    this.roundTrips++;
    try {
      const run = this.ssh.execCommand(command, { stdin, noTrim: true });
      const result = opts.timeoutMs
        ? await Promise.race([
            run,
            new Promise<never>((_, reject) =>
              setTimeout(
                () => reject(new Error(`command timed out after ${opts.timeoutMs} ms`)),
                opts.timeoutMs,
              ).unref(),
            ),
          ])
        : await run;
      return { stdout: result.stdout, stderr: result.stderr, code: result.code ?? 255 };
    } catch (err) {
      const { reason, message } = classifySshError(err);
      throw new UnreachableError(this.target.name, reason, `lost connection: ${message}`);
    } finally {
      this.channels.release();
    }
  }

  async close(): Promise<void> {
    this.ssh.dispose();
  }
}
