/**
 * A handshake the server accepted but did not finish (a busy sshd: MaxStartups, a loaded host) is tried
 * once more before the host counts as unreachable, and the message says so; a host that refuses the
 * connection is down and is not retried. Against a real SSH server (ssh2's) behind a TCP front that
 * stays silent on the connections the test chooses.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
// @ts-expect-error ssh2 ships no type declarations (node-ssh's dependency; the engine types what it uses).
import ssh2 from 'ssh2';
import { SshConnection } from '../../src/connection/ssh.js';
import { UnreachableError } from '../../src/connection/types.js';
import { RunEvents } from '../../src/engine/events.js';
import { observeRuns } from '../../src/util/run-events.js';

const dir = mkdtempSync(join(tmpdir(), 'vd-handshake-'));
const hostKey = ssh2.utils.generateKeyPairSync('ed25519');
const userKey = ssh2.utils.generateKeyPairSync('ed25519');
const keyFile = join(dir, 'id_ed25519');
writeFileSync(keyFile, userKey.private, { mode: 0o600 });

/** What the test uses of ssh2's server side. */
interface AuthContext {
  method: string;
  accept(): void;
  reject(methods: string[]): void;
}
interface SshClient {
  on(event: 'authentication', listener: (ctx: AuthContext) => void): void;
  on(event: 'error', listener: () => void): void;
}

/** An SSH server accepting the test's key, on a port of its own. */
async function sshServer(): Promise<{ server: Server; port: number }> {
  const server = new ssh2.Server({ hostKeys: [hostKey.private] }, (client: SshClient) => {
    client.on('authentication', (ctx: AuthContext) =>
      ctx.method === 'publickey' ? ctx.accept() : ctx.reject(['publickey']),
    );
    client.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/**
 * A TCP front: connection n (from 1) is silent when `silent(n)`, else piped to `port`. With `starveMs`,
 * accepting a connection blocks the whole process that long, as a controller starved of CPU would be
 * just after its socket connected (the client's own connect event then waits behind it).
 */
async function front(port: number, silent: (n: number) => boolean, starveMs = 0) {
  let connections = 0;
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    const until = Date.now() + starveMs;
    while (Date.now() < until) {
      /* starved: no timer, no I/O of this process runs */
    }
    sockets.push(socket);
    socket.on('error', () => {});
    if (silent(++connections)) return;
    const upstream = connect(port, '127.0.0.1', () => socket.pipe(upstream).pipe(socket));
    sockets.push(upstream);
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => connections,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const target = (port: number, name = 'web1') => ({
  name,
  address: '127.0.0.1',
  port,
  user: 'deploy',
  key: keyFile,
  become: false,
});
const options = {
  knownHostsFile: join(dir, 'known_hosts'),
  hostKeyChecking: 'off' as const,
  connectTimeoutMs: 700,
};

test('a handshake accepted but left unanswered is tried once more, and the second one connects', async (t) => {
  const { server, port } = await sshServer();
  const tcp = await front(port, (n) => n === 1);
  t.teardown(() => {
    tcp.close();
    server.close();
  });
  const conn = await SshConnection.open(target(tcp.port), options);
  t.is(tcp.connections(), 2);
  await conn.close();
});

// Serial: the observers see every connection of the process, and the busy wait below stops them all.
test.serial('the retry is said as it happens (what failed, and when the second try comes)', async (t) => {
  const { server, port } = await sshServer();
  const tcp = await front(port, (n) => n === 1);
  const said: Array<{ host: string; message: string }> = [];
  const stop = observeRuns({
    handshakeRetry: (host, message) => host === 'said' && said.push({ host, message }),
  });
  t.teardown(() => {
    stop();
    tcp.close();
    server.close();
  });
  const conn = await SshConnection.open(target(tcp.port, 'said'), options);
  await conn.close();
  t.is(said.length, 1);
  t.regex(
    said[0].message,
    /connection timed out: the server accepted the connection but did not finish the SSH handshake; trying once more in [12]\.\d s$/,
  );
});

test.serial(
  "a run's events carry the retry: a warning naming the host (on stderr with --json)",
  async (t) => {
    const { server, port } = await sshServer();
    const tcp = await front(port, (n) => n === 1);
    const events = new RunEvents();
    const warnings: Array<{ host?: string; text: string }> = [];
    events.on((e) => {
      if (e.type === 'message' && e.level === 'warn') warnings.push({ host: e.host, text: e.text });
    });
    t.teardown(() => {
      events.close();
      tcp.close();
      server.close();
    });
    const conn = await SshConnection.open(target(tcp.port, 'evented'), options);
    await conn.close();
    const mine = () => warnings.filter((w) => w.host === 'evented');
    // Before any host's work met its connection (a connection warmed while the roles load): held, said
    // when the first host connects (never, when the run stops before).
    t.is(mine().length, 0);
    events.emit({ type: 'host-connected', host: 'evented' });
    t.is(mine().length, 1);
    t.regex(
      mine()[0].text,
      /^evented {2}deploy@127\.0\.0\.1:\d+: connection timed out: .*trying once more in/,
    );
  },
);

test.serial(
  'a controller starved past the limit before its socket connected still has the whole limit for the handshake',
  async (t) => {
    const { server, port } = await sshServer();
    const tcp = await front(port, () => false, 600);
    const said: string[] = [];
    const stop = observeRuns({ handshakeRetry: (host, message) => host === 'starved' && said.push(message) });
    t.teardown(() => {
      stop();
      tcp.close();
      server.close();
    });
    // The process gets no CPU for twice the limit once the connection is accepted: the limit starts again
    // from the client's connect event, and the handshake itself takes milliseconds.
    const conn = await SshConnection.open(target(tcp.port, 'starved'), { ...options, connectTimeoutMs: 300 });
    await conn.close();
    t.is(tcp.connections(), 1, 'one handshake, no retry');
    t.deepEqual(said, []);
  },
);

test('two handshakes left unanswered: unreachable (timeout), and the message says it was tried twice', async (t) => {
  const { server, port } = await sshServer();
  const tcp = await front(port, () => true);
  t.teardown(() => {
    tcp.close();
    server.close();
  });
  const err = await t.throwsAsync(SshConnection.open(target(tcp.port), options), {
    instanceOf: UnreachableError,
  });
  t.is((err as UnreachableError).reason, 'timeout');
  t.regex(
    err?.message ?? '',
    /connection timed out \(tried twice: the first SSH handshake was accepted but did not finish\)/,
  );
  t.is(tcp.connections(), 2);
});

test('a refused connection is not retried: the host is down', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as { port: number }).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const started = Date.now();
  const err = await t.throwsAsync(SshConnection.open(target(port), options), {
    instanceOf: UnreachableError,
  });
  t.is((err as UnreachableError).reason, 'refused');
  t.notRegex(err?.message ?? '', /tried twice/);
  t.true(Date.now() - started < 1000, 'no pause for a retry (it waits 1 s at least)');
});
