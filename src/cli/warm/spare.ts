/**
 * A spare engine's process (protocol.ts says what it is): `node spare.js <dir> <idleSeconds>`, started
 * detached by successor.ts. It loads the command line and the engine, then serves `<dir>/spare.sock`
 * (made under another name, 0600, renamed into place, as the connection keeper's) until a command line
 * comes, `verdandi disconnect` stops it, or `idleSeconds` pass. It serves one command and becomes it:
 * the socket is removed at once, so the next command finds no busy spare, and the process exits with
 * the command. Before that it has run nothing of a user's: no playbook, no secret, no connection.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { FrameReader, frame, splitRequest } from '../../connection/keeper-protocol.js';
import { checkPrivateDir, servePrivately } from '../../connection/keeper-socket.js';
import { whenCommandEnds } from './handover.js';
import {
  buildIdentity,
  type Control,
  clearDeadMarkers,
  type Hello,
  type RunHello,
  SPARE_LOADING_PREFIX,
  SPARE_SOCKET,
  WARM_FRAME,
} from './protocol.js';
import { RelayedInput, RelayedOutput, useRelayedStdio } from './relayed-stdio.js';

type RunCli = (argv: string[]) => Promise<void>;

/**
 * Loads what the commands a spare serves load before their first connection: the command line, the
 * recorder, the commands, the connection code, the compile cache and the public API roles import.
 */
async function warmUp(): Promise<RunCli> {
  const { runCli } = await import('../program.js');
  await Promise.all([
    import('../recording.js'),
    import('../../commands/run.js'),
    import('../../commands/provision.js'),
    import('../../commands/check.js'),
    import('../../commands/ping.js'),
    import('../../deploy/deploy.js'),
    import('../../connection/kept.js'),
    import('../../engine/compile-cache.js'),
  ]);
  // The public API is an entry of the build of its own (index.js beside this file), which the loader
  // imports by that URL: the same module, loaded now.
  const publicApi = new URL('./index.js', import.meta.url).href;
  await import(publicApi);
  return runCli;
}

/** Becomes the user's command: its arguments, environment, directory, umask and terminal. */
async function become(socket: Socket, hello: RunHello, rest: Buffer, runCli: RunCli): Promise<void> {
  // Written at once, as Node writes to a pipe on its standard output: nothing is queued when it exits.
  (socket as unknown as { _handle?: { setBlocking?: (on: boolean) => void } })._handle?.setBlocking?.(true);
  const send = (type: number, payload: Buffer | string) => {
    if (!socket.destroyed) socket.write(frame(type, payload));
  };
  const control = (message: Control) => send(WARM_FRAME.control, JSON.stringify(message));
  const stdin = new RelayedInput(control, hello.stdin);
  const stdout = new RelayedOutput((chunk) => send(WARM_FRAME.stdout, chunk), hello.stdout);
  const stderr = new RelayedOutput((chunk) => send(WARM_FRAME.stderr, chunk), hello.stderr);

  const reader = new FrameReader((type, payload) => {
    if (type === WARM_FRAME.stdin) stdin.received(Buffer.from(payload));
    else if (type === WARM_FRAME.stdinEnd) stdin.received(null);
    else if (type === WARM_FRAME.control) {
      const message = JSON.parse(payload.toString('utf8')) as Control;
      if ('resize' in message) {
        stdout.resized(...message.resize);
        stderr.resized(...message.resize);
      }
    }
  });
  socket.on('data', (chunk: Buffer) => reader.push(chunk));

  let announced = false;
  const announce = (code: number) => {
    if (announced) return;
    announced = true;
    control({ exit: code });
    socket.end();
  };
  whenCommandEnds(announce);
  process.on('exit', (code) => announce(code));
  // The user's process went away without the command being done (killed, its terminal closed): what
  // the terminal's hang-up does to a command run in the user's process.
  socket.once('close', () => {
    if (!announced) process.kill(process.pid, 'SIGHUP');
  });

  useRelayedStdio(stdin, stdout, stderr);
  // Node prints an uncaught error on its own standard error, which is /dev/null here.
  process.on('uncaughtExceptionMonitor', (err) => stderr.write(`${inspect(err)}\n`));
  for (const name of Object.keys(process.env)) delete process.env[name];
  Object.assign(process.env, hello.env);
  process.chdir(hello.cwd);
  process.umask(hello.umask);
  process.argv = [process.execPath, ...hello.argv.slice(1)];
  control({ accepted: process.pid });
  if (rest.length > 0) reader.push(rest);
  await runCli(process.argv);
}

async function main(): Promise<void> {
  const [dir, idleText] = process.argv.slice(2);
  const idleSeconds = Number(idleText);
  if (!dir || !Number.isInteger(idleSeconds) || idleSeconds <= 0) {
    process.stderr.write('usage: spare.js <dir> <idleSeconds>\n');
    process.exit(1);
  }
  process.umask(0o077);
  checkPrivateDir(dir);
  clearDeadMarkers(dir);
  const loading = join(dir, `${SPARE_LOADING_PREFIX}${process.pid}`);
  writeFileSync(loading, '');
  const loaded = () => rmSync(loading, { force: true });
  let runCli: RunCli;
  try {
    runCli = await warmUp();
  } finally {
    loaded();
  }
  const build = buildIdentity();

  const path = join(dir, SPARE_SOCKET);
  const own = join(dir, `spare-${process.pid}.sock`);
  const server = createServer();
  const unlinkServed = await servePrivately(server, path, own);
  // Another spare serves this user already.
  if (!unlinkServed) process.exit(0);
  const quit = () => {
    unlinkServed();
    server.close();
    process.exit(0);
  };
  const idle = setTimeout(quit, idleSeconds * 1000);
  // Its socket removed (the directory deleted, a user's clean-up): no command can find it any more.
  const orphaned = setInterval(() => {
    if (!existsSync(path)) quit();
  }, 1000);
  orphaned.unref();
  let taken = false;

  server.on('connection', (socket) => {
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      let request: ReturnType<typeof splitRequest>;
      let hello: Hello;
      try {
        request = splitRequest(buffered);
        if (!request) return;
        hello = JSON.parse(request.line) as Hello;
      } catch {
        socket.destroy();
        return;
      }
      socket.off('data', onData);
      const answer = (message: Control) => socket.write(frame(WARM_FRAME.control, JSON.stringify(message)));
      if (taken) {
        answer({ refused: 'busy' });
        socket.end();
      } else if (hello.op === 'stop') {
        answer({ refused: 'stopped' });
        socket.end(quit);
      } else if (hello.build !== build) {
        // Started by another build (the user upgraded or rebuilt): of no use to anyone.
        answer({ refused: 'build' });
        socket.end(quit);
      } else {
        taken = true;
        clearTimeout(idle);
        clearInterval(orphaned);
        server.close();
        unlinkServed();
        become(socket, hello, request.rest, runCli).catch((err: Error) => {
          process.stderr.write(`verdandi: ${err.message}\n`);
          process.exit(1);
        });
      }
    };
    socket.on('data', onData);
  });
}

await main();
