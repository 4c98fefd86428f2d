/**
 * What the CLI and the connection keeper (keeper.ts) say to each other over the keeper's unix socket.
 * Each request is a unix connection of its own, opened by the CLI, that starts with one JSON line:
 *
 *   {"op":"open", "route":{...}, "idleSeconds":60}
 *       Lease the SSH connection of this route (opened, or the one kept since an earlier run). The
 *       keeper answers one `result` frame: {"ok":true,"id":N,"reused":bool} or {"error":{reason,message}}. The
 *       unix connection then stays open for as long as the CLI uses the host: its lease.
 *   {"op":"exec", "id":N, "command":"sh -c ..."}
 *       Run `command` on connection N (the id an `open` answered). A connection lost since is not
 *       replaced behind the CLI's back: the exec fails as it would on a direct connection.
 *       After the line the CLI sends the command's standard input (the script and the sudo password
 *       framed by the CLI, as protocol.ts says) in `stdin` frames, then one `stdinEnd` frame. The
 *       keeper answers `stdout` and `stderr` frames as the output arrives, then one `result`:
 *       {"code":N} or {"error":{reason,message}}. The CLI closing the socket before that aborts the
 *       command (its channel is closed: a write in progress installs nothing), as ExecOptions.signal:
 *       the end of its input is a frame, so a closed socket never passes for it.
 *   {"op":"stop"}
 *       Close every connection and exit (`verdandi disconnect`): answers {"closed":N}.
 *
 * A frame: a type byte, the payload's length (4 bytes, big-endian), the payload.
 *
 * A route holds everything that decides how a host is reached and checked: the endpoint (address,
 * port, user, keys, the jump chain, the ssh config's values), the known_hosts file, the checking
 * mode, the timeouts and the ssh-agent. Two runs share a connection only when all of that is equal.
 * No secret is part of it: the sudo password travels inside an exec's standard input only.
 */
import type { HostKeyChecking, SshEndpoint } from './route.js';
import type { UnreachableError } from './types.js';

export const FRAME = { stdout: 1, stderr: 2, result: 3, stdin: 4, stdinEnd: 5 } as const;
export type FrameType = (typeof FRAME)[keyof typeof FRAME];

/** The longest request line the keeper reads (a route with its jump chain is a few KB). */
export const MAX_REQUEST_LINE = 1 << 20;

/** How one host is reached: what the keeper opens a connection with, and what keys it. */
export interface KeeperRoute {
  endpoint: SshEndpoint;
  knownHostsFile: string;
  hostKeyChecking: HostKeyChecking;
  connectTimeoutMs: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** The ssh-agent socket of the run ($SSH_AUTH_SOCK), when it has one. */
  agentSocket?: string;
}

export type KeeperRequest =
  | { op: 'open'; route: KeeperRoute; idleSeconds: number }
  | { op: 'exec'; id: number; command: string }
  | { op: 'stop' };

export interface WireError {
  reason: UnreachableError['reason'];
  message: string;
}

export type OpenResult = { ok: true; id: number; reused: boolean } | { error: WireError };
export type ExecOutcome = { code: number } | { error: WireError };

/**
 * The key of a route: the same text for the same way to the same host. Where each value came from
 * (`sources`, for `ping -v` and messages) is no part of it.
 */
export function routeKey(route: KeeperRoute): string {
  const strip = (e: SshEndpoint): unknown => {
    const { sources: _sources, via, ...rest } = e;
    return { ...rest, via: via && strip(via) };
  };
  return JSON.stringify({ ...route, endpoint: strip(route.endpoint) });
}

export function requestLine(request: KeeperRequest): string {
  return `${JSON.stringify(request)}\n`;
}

/** A frame of `type` (FRAME here; the warm engine of the CLI has its own types on the same framing). */
export function frame(type: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const head = Buffer.alloc(5);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Splits a byte stream back into frames, whatever the chunks it arrives in. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (type: number, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 5) {
      const length = this.pending.readUInt32BE(1);
      if (this.pending.length < 5 + length) return;
      const type = this.pending.readUInt8(0);
      const payload = this.pending.subarray(5, 5 + length);
      this.pending = this.pending.subarray(5 + length);
      this.onFrame(type, payload);
    }
  }

  /** Bytes of a frame not received whole (a keeper that died mid-frame). */
  get partial(): number {
    return this.pending.length;
  }
}

/**
 * Reads the request line at the start of a unix connection; `rest` is what followed it in the same
 * chunk (the first bytes of an exec's standard input). Rejects on a line too long or not JSON.
 */
export function splitRequest(buffered: Buffer): { line: string; rest: Buffer } | undefined {
  const end = buffered.indexOf(0x0a);
  if (end < 0) {
    if (buffered.length > MAX_REQUEST_LINE) throw new Error('request line too long');
    return undefined;
  }
  return { line: buffered.subarray(0, end).toString('utf8'), rest: buffered.subarray(end + 1) };
}
