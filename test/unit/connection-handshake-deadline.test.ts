/**
 * The handshake's time limit (src/connection/handshake-deadline.ts): it expires when nothing finishes
 * the handshake, but an answer that is already waiting when a starved event loop finally runs wins
 * over the expired timer, and a restart (the socket's connection accepted) gives the whole limit again.
 * The starved loop is a synchronous busy wait past the limit; the answer is a byte written to a real
 * loopback socket before it, so it is in the kernel's buffer when the loop comes back.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { HandshakeDeadline } from '../../src/connection/handshake-deadline.js';

/** Blocks the event loop for `ms`, as a process starved of CPU would be. */
function busyWait(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    /* the loop cannot run: timers expire, I/O piles up */
  }
}

/** A connected loopback pair: `near` receives what `far` writes. */
async function socketPair(): Promise<{ near: Socket; far: Socket; close: () => void }> {
  let accepted: (s: Socket) => void = () => {};
  const near = new Promise<Socket>((resolve) => {
    accepted = resolve;
  });
  const server: Server = createServer((s) => accepted(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const far = connect((server.address() as { port: number }).port, '127.0.0.1');
  await new Promise<void>((resolve) => far.once('connect', () => resolve()));
  const n = await near;
  return {
    near: n,
    far,
    close: () => {
      n.destroy();
      far.destroy();
      server.close();
    },
  };
}

/** Resolves when `cond()` holds (checked every 10 ms), or rejects after `ms`. */
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10); // polling a flag set by a callback
  }
}

test('expires once when nothing finishes the handshake', async (t) => {
  let expired = 0;
  const deadline = new HandshakeDeadline(30, () => expired++);
  deadline.start();
  await until(() => expired > 0);
  await sleep(100); // nothing more may come
  t.is(expired, 1);
});

test('an answer already waiting when the starved loop runs again beats the expired timer', async (t) => {
  const pair = await socketPair();
  t.teardown(pair.close);
  let expired = 0;
  let answered = false;
  const deadline = new HandshakeDeadline(20, () => expired++);
  pair.near.on('data', () => {
    answered = true;
    deadline.finish();
  });
  deadline.start();
  pair.far.write('answer'); // on loopback, in the near socket's buffer at once
  busyWait(200); // ten times the limit: the timer is due before the loop reads the socket
  await until(() => answered);
  await sleep(50);
  t.is(expired, 0);
});

test('the same starved loop with no answer waiting: expired', async (t) => {
  const pair = await socketPair();
  t.teardown(pair.close);
  let expired = 0;
  const deadline = new HandshakeDeadline(20, () => expired++);
  pair.near.on('data', () => deadline.finish());
  deadline.start();
  busyWait(200);
  await until(() => expired > 0);
  t.is(expired, 1);
});

test('a restart among the waiting events (the connection accepted) gives the whole limit again', async (t) => {
  const pair = await socketPair();
  t.teardown(pair.close);
  let expired = 0;
  let expiredAt = 0;
  const deadline = new HandshakeDeadline(150, () => {
    expired++;
    expiredAt = Date.now();
  });
  const restartedAt: number[] = [];
  pair.near.on('data', () => {
    restartedAt.push(Date.now());
    deadline.start();
  });
  deadline.start();
  pair.far.write('connected');
  busyWait(300); // past the first limit, with the restart waiting
  await until(() => expired > 0);
  t.is(expired, 1);
  t.is(restartedAt.length, 1);
  t.true(expiredAt - restartedAt[0] >= 145, `expired ${expiredAt - restartedAt[0]} ms after the restart`);
});

test('finish() before the limit: never expires', async (t) => {
  let expired = 0;
  const deadline = new HandshakeDeadline(20, () => expired++);
  deadline.start();
  deadline.finish();
  await sleep(80);
  t.is(expired, 0);
});
