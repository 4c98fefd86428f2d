/**
 * A TCP proxy that puts a slow link between the machine running the tools and one test host's sshd:
 * this kernel has no `netem`, so the delay is added here, in user space. Used by bench/latency.ts.
 *
 * - Every byte is held `oneWayMs` in each direction (a round trip costs 2 × oneWayMs more than the
 *   loopback and veth under it), in order; with `kbitPerSecond`, each direction is also a link of that
 *   rate (a chunk waits for the ones before it to be "on the wire").
 * - Bounded: at most `maxConnections` at once (more are refused, reset), and at most `maxBufferedBytes`
 *   held per direction of a connection (past it the sending side is paused until the delayed bytes are
 *   written), so a fast sender cannot make it buffer without limit.
 * - It counts what the link carried: connections, bytes, and round trips. A round trip is a burst of
 *   client → server bytes answered by a burst of server → client bytes, seen at the proxy: the count
 *   includes the SSH handshake's own exchanges, so it is what a real link of that latency would cost.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface LatencyProxyOptions {
  /** Where to forward to (the test host's sshd). */
  targetHost: string;
  targetPort: number;
  /** Delay added in each direction, ms. A round trip gets twice this. */
  oneWayMs: number;
  /** A link of this rate in each direction, kbit/s; undefined: no cap. */
  kbitPerSecond?: number;
  /** Connections open at once; more are reset. Default 200. */
  maxConnections?: number;
  /** Bytes held per direction of a connection before its sender is paused. Default 4 MiB. */
  maxBufferedBytes?: number;
}

export interface LinkStats {
  connections: number;
  /** Connections refused because `maxConnections` were open. */
  refused: number;
  roundTrips: number;
  bytesUp: number;
  bytesDown: number;
}

const emptyStats = (): LinkStats => ({ connections: 0, refused: 0, roundTrips: 0, bytesUp: 0, bytesDown: 0 });

/**
 * One direction of one connection: chunks leave `oneWayMs` after they came (and after the chunks
 * before them went through the rate cap), always in order.
 */
class DelayedPipe {
  private readonly queue: Array<{ due: number; chunk: Buffer }> = [];
  private timer: NodeJS.Timeout | undefined;
  private held = 0;
  /** The sender closed its side. */
  ended = false;
  /** When the link is free again (rate cap): a chunk starts after the one before it. */
  private wireFreeAt = 0;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly oneWayMs: number,
    private readonly bytesPerMs: number | undefined,
    private readonly maxHeld: number,
    /** Called once the other side was ended after the last delayed byte. */
    private readonly onDone: () => void,
  ) {}

  /** The sender's end was passed on. */
  done = false;

  push(chunk: Buffer): void {
    const now = performance.now();
    let sent = now;
    if (this.bytesPerMs !== undefined) {
      const start = Math.max(now, this.wireFreeAt);
      this.wireFreeAt = start + chunk.length / this.bytesPerMs;
      sent = this.wireFreeAt;
    }
    this.queue.push({ due: sent + this.oneWayMs, chunk });
    this.held += chunk.length;
    if (this.held > this.maxHeld) this.from.pause();
    this.schedule();
  }

  /** The sender closed its side: the other side is ended once the bytes before it are delivered. */
  end(): void {
    this.ended = true;
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  private schedule(): void {
    if (this.timer) return;
    const next = this.queue[0];
    if (!next) {
      if (this.ended && !this.done) {
        this.done = true;
        if (!this.to.destroyed) this.to.end();
        this.onDone();
      }
      return;
    }
    const wait = Math.max(0, next.due - performance.now());
    this.timer = setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0].due <= now + 0.5) {
      const { chunk } = this.queue.shift()!;
      this.held -= chunk.length;
      if (!this.to.destroyed) this.to.write(chunk);
    }
    if (this.held <= this.maxHeld && this.from.isPaused()) this.from.resume();
    this.schedule();
  }
}

export class LatencyProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private stats = emptyStats();
  private open = 0;

  constructor(private readonly opts: LatencyProxyOptions) {}

  /** Listens on a free port of 127.0.0.1; resolves with the port. */
  async listen(): Promise<number> {
    // Half-open: a side that finished sending still gets the other side's delayed bytes.
    const server = createServer({ allowHalfOpen: true }, (client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP port');
    return address.port;
  }

  /** What the link carried since the last `takeStats`, and counting starts again from zero. */
  takeStats(): LinkStats {
    const taken = this.stats;
    this.stats = emptyStats();
    return taken;
  }

  /** Stops listening and cuts every connection. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.open >= (this.opts.maxConnections ?? 200)) {
      this.stats.refused++;
      client.resetAndDestroy();
      return;
    }
    this.open++;
    this.stats.connections++;
    const server = connect({ port: this.opts.targetPort, host: this.opts.targetHost, allowHalfOpen: true });
    client.setNoDelay(true);
    server.setNoDelay(true);
    this.sockets.add(client);
    this.sockets.add(server);
    const bytesPerMs = this.opts.kbitPerSecond === undefined ? undefined : this.opts.kbitPerSecond / 8;
    const maxHeld = this.opts.maxBufferedBytes ?? 4 * 2 ** 20;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      this.open--;
      up.stop();
      down.stop();
      this.sockets.delete(client);
      this.sockets.delete(server);
    };
    const closeBoth = () => {
      finish();
      client.destroy();
      server.destroy();
    };
    // Both directions finished (each end passed on after its delayed bytes): the sockets close by
    // themselves once their last bytes are flushed.
    const bothDone = () => {
      if (up.done && down.done) finish();
    };
    const up = new DelayedPipe(client, server, this.opts.oneWayMs, bytesPerMs, maxHeld, bothDone);
    const down = new DelayedPipe(server, client, this.opts.oneWayMs, bytesPerMs, maxHeld, bothDone);
    // Who sent the last burst: a server burst after a client burst closes one round trip.
    let last: 'client' | 'server' | undefined;
    client.on('data', (chunk: Buffer) => {
      this.stats.bytesUp += chunk.length;
      last = 'client';
      up.push(chunk);
    });
    server.on('data', (chunk: Buffer) => {
      this.stats.bytesDown += chunk.length;
      if (last === 'client') this.stats.roundTrips++;
      last = 'server';
      down.push(chunk);
    });
    client.on('end', () => up.end());
    server.on('end', () => down.end());
    // An error on either side (the host reset the connection, the tool was killed) ends both.
    client.on('error', closeBoth);
    server.on('error', closeBoth);
    // Closed without an end (killed, reset): nothing more can go through either way.
    client.on('close', () => {
      if (!up.ended) closeBoth();
    });
    server.on('close', () => {
      if (!down.ended) closeBoth();
    });
  }
}
