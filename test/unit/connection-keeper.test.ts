/**
 * The connection keeper of `--persist` without a host: its frames, its directory and socket checks,
 * and the keeper itself serving the real client (kept.ts) over a real unix socket, its SSH connections
 * fakes. A route's connection is opened once and reused; a command's standard input arrives framed by
 * the client (the sudo password in it); aborting a command closes its channel; a kept connection
 * whose host key the known_hosts file no longer accepts is refused and closed; a lost one is not
 * reused; after the idle timeout everything is closed.
 */
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect as connectUnix, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import test from 'ava';
import { persistFromEnv, persistSeconds } from '../../src/cli/context.js';
import { Keeper, type KeptSsh } from '../../src/connection/keeper.js';
import {
  FRAME,
  FrameReader,
  frame,
  type KeeperRoute,
  requestLine,
  routeKey,
  splitRequest,
} from '../../src/connection/keeper-protocol.js';
import {
  checkPrivateDir,
  checkPrivateSocket,
  ensurePrivateDir,
  keeperDir,
  keeperSocket,
} from '../../src/connection/keeper-socket.js';
import { keeperEnvironment, openKept } from '../../src/connection/kept.js';
import { frameHead } from '../../src/connection/protocol.js';
import type { SshEndpoint } from '../../src/connection/route.js';
import {
  AbortedError,
  type ExecOptions,
  type ExecResult,
  UnreachableError,
} from '../../src/connection/types.js';
import { UserError } from '../../src/util/errors.js';

const UID = process.getuid?.() ?? 0;
const runtime = mkdtempSync(join(tmpdir(), 'vd-keeper-unit-'));
process.env.XDG_RUNTIME_DIR = runtime;

function endpoint(name: string, over: Partial<SshEndpoint> = {}): SshEndpoint {
  return {
    name,
    address: `10.0.0.${name.length}`,
    port: 22,
    user: 'root',
    become: false,
    identityFiles: [],
    identitiesOnly: false,
    sources: { address: 'inventory x.yml:1' },
    ...over,
  };
}

const sshOptions = {
  knownHostsFile: '/srv/ops/.verdandi/known_hosts',
  hostKeyChecking: 'accept-new',
  connectTimeoutMs: 10_000,
} as const;

function route(e: SshEndpoint, over: Partial<KeeperRoute> = {}): KeeperRoute {
  return { endpoint: e, ...sshOptions, ...over };
}

// ---- frames and routes ----------------------------------------------------------------------------

test('frames come back whole, whatever the chunks they arrive in', (t) => {
  const sent = [
    frame(FRAME.stdout, 'hello'),
    frame(FRAME.stderr, Buffer.alloc(70_000, 7)),
    frame(FRAME.result, '{"code":0}'),
  ];
  const bytes = Buffer.concat(sent);
  const got: Array<[number, number]> = [];
  const reader = new FrameReader((type, payload) => got.push([type, payload.length]));
  for (let i = 0; i < bytes.length; i += 997) reader.push(bytes.subarray(i, i + 997));
  t.deepEqual(got, [
    [FRAME.stdout, 5],
    [FRAME.stderr, 70_000],
    [FRAME.result, 10],
  ]);
  t.is(reader.partial, 0);
});

test('a request line is split from the standard input that follows it', (t) => {
  const line = requestLine({ op: 'exec', id: 3, command: 'sh -c x' });
  t.is(splitRequest(Buffer.from(line.slice(0, 10))), undefined);
  const split = splitRequest(Buffer.from(`${line}7\nscript`));
  t.deepEqual(JSON.parse(split!.line), { op: 'exec', id: 3, command: 'sh -c x' });
  t.is(split!.rest.toString(), '7\nscript');
  t.throws(() => splitRequest(Buffer.alloc(2 << 20, 97)), { message: /too long/ });
});

test('a route is keyed by how the host is reached, not by where each value was written', (t) => {
  const a = route(endpoint('web1'));
  t.is(
    routeKey(a),
    routeKey(route(endpoint('web1', { sources: { address: 'ssh config ~/.ssh/config:3' } }))),
  );
  t.not(routeKey(a), routeKey(route(endpoint('web1'), { knownHostsFile: '/elsewhere/known_hosts' })));
  t.not(routeKey(a), routeKey(route(endpoint('web1'), { hostKeyChecking: 'off' })));
  t.not(routeKey(a), routeKey(route(endpoint('web1', { key: '/k/id_other' }))));
  t.not(routeKey(a), routeKey(route(endpoint('web1', { via: endpoint('bastion') }))));
  t.not(
    routeKey(route(endpoint('web1', { via: endpoint('bastion') }))),
    routeKey(route(endpoint('web1', { via: endpoint('bastion', { port: 2222 }) }))),
  );
});

test("the keeper's environment holds none of the run's secrets", (t) => {
  const env = keeperEnvironment({
    PATH: '/usr/bin',
    HOME: '/home/ops',
    VERDANDI_VAULT_PASSWORD: 'vault pw',
    VERDANDI_PGP_KEY: 'key',
    SSH_AUTH_SOCK: '/run/agent',
    NODE_OPTIONS: '--require x',
  });
  t.deepEqual(env, { PATH: '/usr/bin', HOME: '/home/ops' });
});

test('--persist and $VERDANDI_PERSIST take whole seconds up to a day, 0 for off', (t) => {
  t.is(persistSeconds('--persist')('90'), 90);
  t.is(persistSeconds('--persist')('0'), 0);
  t.throws(() => persistSeconds('--persist')('1m'), {
    instanceOf: UserError,
    message: /--persist must be a whole number of seconds/,
  });
  t.throws(() => persistSeconds('--persist')('86401'), { instanceOf: UserError });
  t.is(persistFromEnv({}), undefined);
  t.is(persistFromEnv({ VERDANDI_PERSIST: '30' }), 30);
  t.throws(() => persistFromEnv({ VERDANDI_PERSIST: 'yes' }), { message: /\$VERDANDI_PERSIST must be/ });
});

// ---- the directory and the socket -------------------------------------------------------------------

test('the keeper directory: under $XDG_RUNTIME_DIR, else per user in the temporary directory', (t) => {
  t.is(keeperDir({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000), '/run/user/1000/verdandi');
  t.is(keeperDir({}, 1000), join(tmpdir(), 'verdandi-1000'));
  t.is(keeperDir({ XDG_RUNTIME_DIR: 'relative' }, 7), join(tmpdir(), 'verdandi-7'));
  t.throws(() => keeperSocket(`/${'d'.repeat(120)}`), {
    instanceOf: UserError,
    message: /longer than a unix socket allows/,
  });
});

test('the directory is made 0700, and refused when loose, a link, not a directory or not ours', (t) => {
  const base = mkdtempSync(join(tmpdir(), 'vd-keeper-dir-'));
  const made = join(base, 'made');
  const oldMask = process.umask(0);
  try {
    ensurePrivateDir(made);
  } finally {
    process.umask(oldMask);
  }
  t.notThrows(() => checkPrivateDir(made));
  const loose = join(base, 'loose');
  mkdirSync(loose);
  chmodSync(loose, 0o755);
  t.throws(() => ensurePrivateDir(loose), { instanceOf: UserError, message: /its mode is 0755, not 0700/ });
  const link = join(base, 'link');
  symlinkSync(made, link);
  t.throws(() => checkPrivateDir(link), { message: /it is a symbolic link/ });
  const file = join(base, 'file');
  writeFileSync(file, '');
  t.throws(() => checkPrivateDir(file), { message: /it is not a directory/ });
  t.throws(() => checkPrivateDir(made, UID + 1), {
    message: new RegExp(`it is owned by uid ${UID}, not by you \\(uid ${UID + 1}\\)`),
  });
});

test('the socket must be a socket of ours, 0600', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'vd-keeper-sock-'));
  const path = join(base, 'keeper.sock');
  t.is(checkPrivateSocket(path), 'absent');
  const server = createServer();
  await new Promise<void>((r) => server.listen(path, r));
  t.teardown(() => server.close());
  chmodSync(path, 0o666);
  t.throws(() => checkPrivateSocket(path), { instanceOf: UserError, message: /its mode is 0666, not 0600/ });
  chmodSync(path, 0o600);
  t.is(checkPrivateSocket(path), 'ok');
  t.throws(() => checkPrivateSocket(path, UID + 1), { message: /owned by uid/ });
  const file = join(base, 'plain');
  writeFileSync(file, '');
  t.throws(() => checkPrivateSocket(file), { message: /it is not a socket/ });
});

// ---- the keeper, served to the real client -------------------------------------------------------------

class FakeSsh implements KeptSsh {
  inputs: string[] = [];
  commands: string[] = [];
  aborted = 0;
  closed = false;
  lost?: UnreachableError;
  hostKeyProblem?: UnreachableError;
  /** While set, a command waits for its abort. */
  hang = false;
  async execFramed(
    command: string,
    input: () => Readable,
    opts: ExecOptions & { stderr?: Writable },
  ): Promise<ExecResult> {
    if (this.lost) throw this.lost;
    this.commands.push(command);
    if (this.hang) {
      input();
      await new Promise<void>((resolve) => opts.signal?.addEventListener('abort', () => resolve()));
      this.aborted++;
      throw new AbortedError('fake');
    }
    const chunks: Buffer[] = [];
    for await (const chunk of input()) chunks.push(chunk as Buffer);
    this.inputs.push(Buffer.concat(chunks).toString('utf8'));
    opts.stdout?.write(Buffer.from('out'));
    opts.stderr?.write(Buffer.from('err'));
    return { stdout: '', stderr: '', code: 7 };
  }
  recheckHostKey() {
    return this.hostKeyProblem;
  }
  lostError() {
    return this.lost;
  }
  async close() {
    this.closed = true;
  }
}

const opened: Array<{ route: KeeperRoute; ssh: FakeSsh }> = [];
let failNext: UnreachableError | undefined;
let server: Server;

test.before(async () => {
  const dir = keeperDir();
  ensurePrivateDir(dir);
  const path = keeperSocket(dir);
  const keeper = new Keeper(
    async (r) => {
      if (failNext) {
        const err = failNext;
        failNext = undefined;
        throw err;
      }
      const ssh = new FakeSsh();
      opened.push({ route: r, ssh });
      return ssh;
    },
    60,
    () => undefined,
  );
  server = createServer();
  keeper.serve(server);
  await new Promise<void>((r) => server.listen(path, r));
  chmodSync(path, 0o600);
});

test.after.always(() => server?.close());

test.serial('a route is opened once: the next run reuses it, another route gets its own', async (t) => {
  opened.length = 0;
  const first = await openKept(endpoint('reuse'), sshOptions, 60);
  t.false(first.reused);
  await first.close();
  const second = await openKept(endpoint('reuse'), sshOptions, 60);
  t.true(second.reused);
  const other = await openKept(endpoint('reuse'), { ...sshOptions, hostKeyChecking: 'off' }, 60);
  t.false(other.reused);
  t.is(opened.length, 2);
  await Promise.all([second.close(), other.close()]);
  t.false(opened[0].ssh.closed, 'closing a run does not close the kept connection');
});

test.serial(
  'a command travels framed, its password in its input; output, errors and code come back',
  async (t) => {
    opened.length = 0;
    const conn = await openKept(
      endpoint('frames', { become: true, user: 'deploy' }),
      { ...sshOptions, becomePassword: 'pw-s3cret' },
      60,
    );
    const res = await conn.exec('echo hi', { stdin: 'payload' });
    t.deepEqual(res, { stdout: 'out', stderr: 'err', code: 7 });
    t.is(conn.roundTrips, 1);
    const [ssh] = opened.map((o) => o.ssh);
    t.is(ssh.inputs[0], `${frameHead('echo hi', 'pw-s3cret').toString()}payload`);
    t.regex(ssh.commands[0], /^sudo -S -p '' -H -- sh -c /);
    t.false(ssh.commands[0].includes('pw-s3cret'), 'the password is in the input only');
    t.false(JSON.stringify(opened[0].route).includes('pw-s3cret'), 'nor in the route');
    // Many at once on one connection.
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => conn.exec(`echo ${i}`)));
    t.true(many.every((r) => r.code === 7));
    t.is(conn.roundTrips, 21);
    await conn.close();
  },
);

test.serial('aborting a command closes its channel in the keeper', async (t) => {
  opened.length = 0;
  const conn = await openKept(endpoint('abort'), sshOptions, 60);
  const ssh = opened[0].ssh;
  ssh.hang = true;
  const controller = new AbortController();
  const running = conn.exec('sleep 100', { signal: controller.signal });
  while (ssh.commands.length === 0) await new Promise((r) => setTimeout(r, 5));
  controller.abort();
  await t.throwsAsync(running, { instanceOf: AbortedError });
  while (ssh.aborted === 0) await new Promise((r) => setTimeout(r, 5));
  t.is(ssh.aborted, 1);
  // Closing the run's connection cuts the commands it still has in flight the same way.
  const cut = conn.exec('sleep 100');
  while (ssh.commands.length < 2) await new Promise((r) => setTimeout(r, 5));
  await conn.close();
  await t.throwsAsync(cut, { instanceOf: AbortedError });
  while (ssh.aborted < 2) await new Promise((r) => setTimeout(r, 5));
  t.pass();
});

test.serial('a kept connection whose host key is no longer accepted is refused and closed', async (t) => {
  opened.length = 0;
  (await openKept(endpoint('hostkey'), sshOptions, 60)).close();
  const ssh = opened[0].ssh;
  ssh.hostKeyProblem = new UnreachableError(
    'hostkey',
    'hostkey',
    'the host key of 10.0.0.7 changed (now SHA256:x); refusing to connect',
  );
  const err = await t.throwsAsync(openKept(endpoint('hostkey'), sshOptions, 60), {
    instanceOf: UnreachableError,
  });
  t.is(err?.reason, 'hostkey');
  t.is(err?.host, 'hostkey');
  t.regex(err?.message ?? '', /changed \(now SHA256:x\); refusing to connect/);
  t.true(ssh.closed);
  // The next run makes a new connection (a handshake, whose key is checked).
  const again = await openKept(endpoint('hostkey'), sshOptions, 60);
  t.false(again.reused);
  t.is(opened.length, 2);
  await again.close();
});

test.serial('a lost connection is not reused, and is lost for the run that holds it', async (t) => {
  opened.length = 0;
  const conn = await openKept(endpoint('lost'), sshOptions, 60);
  opened[0].ssh.lost = new UnreachableError('lost', 'lost', 'lost connection: no answer to keepalives');
  const err = await t.throwsAsync(conn.exec('true'), { instanceOf: UnreachableError });
  t.is(err?.reason, 'lost');
  t.is(err?.host, 'lost');
  const next = await openKept(endpoint('lost'), sshOptions, 60);
  t.false(next.reused);
  await Promise.all([conn.close(), next.close()]);
});

test.serial('an unreachable host is reported to the run and not remembered', async (t) => {
  failNext = new UnreachableError('x', 'refused', 'root@10.0.0.4:22: connection refused (is sshd running?)');
  const err = await t.throwsAsync(openKept(endpoint('down'), sshOptions, 60), {
    instanceOf: UnreachableError,
  });
  t.is(err?.host, 'down');
  t.is(err?.reason, 'refused');
  const conn = await openKept(endpoint('down'), sshOptions, 60);
  t.false(conn.reused);
  await conn.close();
});

test('after the idle timeout with no run connected, every connection is closed and the keeper stops', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'vd-keeper-idle-')), 'k.sock');
  const ssh = new FakeSsh();
  let stoppedAt = 0;
  const stopped = new Promise<void>((resolve) => {
    const keeper = new Keeper(
      async () => ssh,
      0.3,
      () => {
        stoppedAt = Date.now();
        resolve();
      },
    );
    const idleServer = createServer();
    keeper.serve(idleServer);
    idleServer.listen(path);
    t.teardown(() => idleServer.close());
  });
  await new Promise((r) => setTimeout(r, 20));
  const lease = connectUnix(path);
  lease.write(requestLine({ op: 'open', route: route(endpoint('idle')), idleSeconds: 0.3 }));
  await new Promise<void>((resolve) => {
    const reader = new FrameReader(() => resolve());
    lease.on('data', (d: Buffer) => reader.push(d));
  });
  const released = Date.now();
  // Held by a run: not idle.
  await new Promise((r) => setTimeout(r, 500));
  t.false(ssh.closed, 'not closed while a run holds it');
  lease.destroy();
  const leftAt = Date.now();
  await stopped;
  t.true(ssh.closed);
  t.true(stoppedAt - leftAt >= 250, `stopped ${stoppedAt - leftAt} ms after the run left`);
  t.true(released > 0);
});
