/**
 * The time limit of an SSH handshake (`--connect-timeout`), kept by the connection instead of ssh2's
 * `readyTimeout`, for two reasons found with a thousand hosts and `--forks 100` on a loaded machine:
 *
 * - **It counts from when the socket connected.** ssh2 starts its timer before the TCP connection,
 *   so a slow accept ate the handshake's time. Here the TCP connection has the limit, and the
 *   handshake (the server's identification, the key exchange, authentication) has it again from the
 *   moment the connection is accepted, as OpenSSH's ConnectTimeout bounds the connection and then the
 *   identification.
 * - **A late timer does not beat the answer.** When a process is starved of CPU (a hundred handshakes
 *   in flight, a saturated machine), its event loop runs seldom: when it runs, the expired timer fires
 *   first (timers come before I/O in Node's loop) although the server's last message is already
 *   waiting in the socket. So an expired deadline gives the I/O that is waiting one turn of the loop
 *   (`setImmediate` runs after the poll phase) and only then declares the timeout, if the handshake is
 *   still not done by then.
 */
export class HandshakeDeadline {
  private timer?: NodeJS.Timeout;
  private finished = false;

  /** `onExpired` is called at most once, `ms` after the last `start()`, unless `finish()` came first. */
  constructor(
    private readonly ms: number,
    private readonly onExpired: () => void,
  ) {}

  /** (Re)starts the limit: at the TCP connect, again when the server accepted the connection. */
  start(): void {
    if (this.finished || this.ms <= 0) return;
    clearTimeout(this.timer);
    const timer = setTimeout(() => {
      // The I/O already waiting runs in this turn's poll phase, before the check phase; it may finish
      // the handshake, or restart the limit (the socket's connection was among the waiting events).
      setImmediate(() => {
        if (this.finished || this.timer !== timer) return;
        this.finished = true;
        this.onExpired();
      });
    }, this.ms);
    this.timer = timer;
  }

  /** The handshake is over (done, or failed otherwise): the limit no longer applies. */
  finish(): void {
    this.finished = true;
    clearTimeout(this.timer);
  }
}
