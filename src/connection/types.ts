/** One connection per host, reused for the whole run. SSH and local connections share this interface. */

export interface ExecOptions {
  /** Sent on standard input (after the sudo password when one is needed). */
  stdin?: string;
  /** Fail the exec after this many milliseconds (default: none). */
  timeoutMs?: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit status of the remote shell. */
  code: number;
}

export interface Connection {
  /** Inventory name of the host. */
  readonly host: string;
  /** Runs `script` with `sh -c` on the host, through sudo when the host uses `become`. */
  exec(script: string, opts?: ExecOptions): Promise<ExecResult>;
  /** How many commands were sent so far (each exec is one round trip). */
  readonly roundTrips: number;
  close(): Promise<void>;
}

/** Why a host could not be reached; `reason` is one of refused, timeout, auth, hostkey, dns, other. */
export class UnreachableError extends Error {
  constructor(
    readonly host: string,
    readonly reason: 'refused' | 'timeout' | 'auth' | 'hostkey' | 'dns' | 'other',
    message: string,
  ) {
    super(message);
    this.name = 'UnreachableError';
  }
}
