/**
 * The benchmark's slow-link proxy (bench/latency-proxy.ts), against a local echo-like server: each
 * exchange takes at least the round trip it adds, bytes arrive whole and in order, round trips and
 * connections are counted, a half-closed client still gets the delayed answer, and the connection
 * bound refuses the one too many.
 */
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import test from 'ava';
import { LatencyProxy } from '../../bench/latency-proxy.js';

/** A server that answers every line with `ok <line>`; on the client's end, `bye` and closes. */
async function lineServer(): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    let pending = '';
    s.on('data', (b: Buffer) => {
      pending += b.toString();
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        s.write(`ok ${pending.slice(0, nl)}\n`);
        pending = pending.slice(nl + 1);
        nl = pending.indexOf('\n');
      }
    });
    s.on('end', () => s.end('bye\n'));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port };
}

/** Sends `line` and resolves with the answer line and how long it took. */
function exchange(socket: Socket, line: string): Promise<{ answer: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    let got = '';
    const onData = (b: Buffer) => {
      got += b.toString();
      if (got.endsWith('\n')) {
        socket.off('data', onData);
        resolve({ answer: got, ms: performance.now() - started });
      }
    };
    socket.on('data', onData);
    socket.write(`${line}\n`);
  });
}

test('each exchange costs the added round trip, and the proxy counts it', async (t) => {
  const { server, port } = await lineServer();
  const proxy = new LatencyProxy({ targetHost: '127.0.0.1', targetPort: port, oneWayMs: 40 });
  const proxyPort = await proxy.listen();
  t.teardown(async () => {
    await proxy.close();
    server.close();
  });
  const socket = connect({ port: proxyPort, host: '127.0.0.1', allowHalfOpen: true });
  await once(socket, 'connect');
  for (const line of ['one', 'two', 'three']) {
    const { answer, ms } = await exchange(socket, line);
    t.is(answer, `ok ${line}\n`);
    t.true(ms >= 78, `an exchange took ${ms} ms, under the 80 ms round trip`);
  }
  // Half-closed: the delayed answer to the end still arrives (an end carries no bytes: no round trip).
  let rest = '';
  socket.on('data', (b: Buffer) => {
    rest += b.toString();
  });
  socket.end();
  await once(socket, 'close');
  t.is(rest, 'bye\n');
  const stats = proxy.takeStats();
  t.like(stats, { connections: 1, refused: 0, roundTrips: 3, bytesUp: 'one\ntwo\nthree\n'.length });
  t.deepEqual(proxy.takeStats(), { connections: 0, refused: 0, roundTrips: 0, bytesUp: 0, bytesDown: 0 });
});

test('a big transfer arrives whole and in order, at the capped rate', async (t) => {
  const { server, port } = await lineServer();
  // 800 kbit/s: 100 kB per second each way.
  const proxy = new LatencyProxy({
    targetHost: '127.0.0.1',
    targetPort: port,
    oneWayMs: 5,
    kbitPerSecond: 800,
  });
  const proxyPort = await proxy.listen();
  t.teardown(async () => {
    await proxy.close();
    server.close();
  });
  const socket = connect({ port: proxyPort, host: '127.0.0.1' });
  await once(socket, 'connect');
  const lines = Array.from({ length: 2000 }, (_, i) => `line ${String(i).padStart(5, '0')}`);
  const started = performance.now();
  let got = '';
  const expected = lines.map((l) => `ok ${l}\n`).join('');
  const done = new Promise<void>((resolve) => {
    socket.on('data', (b: Buffer) => {
      got += b.toString();
      if (got.length >= expected.length) resolve();
    });
  });
  for (const line of lines) socket.write(`${line}\n`);
  await done;
  const ms = performance.now() - started;
  t.is(got, expected);
  // 22 kB up then 28 kB down at 100 kB/s: at least a quarter of a second, far more than 10 ms of delay.
  t.true(ms >= 250, `took ${ms} ms`);
  socket.destroy();
});

test('past maxConnections, a connection is refused and counted', async (t) => {
  const { server, port } = await lineServer();
  const proxy = new LatencyProxy({
    targetHost: '127.0.0.1',
    targetPort: port,
    oneWayMs: 0,
    maxConnections: 1,
  });
  const proxyPort = await proxy.listen();
  t.teardown(async () => {
    await proxy.close();
    server.close();
  });
  const first = connect({ port: proxyPort, host: '127.0.0.1' });
  await once(first, 'connect');
  t.is((await exchange(first, 'x')).answer, 'ok x\n');
  const second = connect({ port: proxyPort, host: '127.0.0.1' });
  // events.once would reject on the reset: the reset is what is expected here.
  const reset = await new Promise<string | undefined>((resolve) => {
    let code: string | undefined;
    second.on('error', (e: NodeJS.ErrnoException) => {
      code = e.code;
    });
    second.on('close', () => resolve(code));
  });
  t.is(reset, 'ECONNRESET');
  t.like(proxy.takeStats(), { connections: 1, refused: 1 });
  first.destroy();
});
