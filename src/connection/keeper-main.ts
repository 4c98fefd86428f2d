/**
 * The connection keeper's process (keeper.ts says what it does): `node keeper.js <dir> <idleSeconds>`,
 * started detached by kept.ts. Its command line names its directory and timeout, nothing else; it
 * writes one line on its standard output when it serves the socket (or found another keeper serving
 * it), which the run that started it waits for, and nothing after: it logs nothing.
 *
 * The socket is made under another name, set to 0600, then renamed into place, so a run never finds a
 * socket not yet private; two keepers started at once leave one serving: the second one sees the
 * first answer and exits.
 */
import { chmodSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { openEndpoint } from './jump-hosts.js';
import { Keeper } from './keeper.js';
import { checkPrivateDir, keeperSocket } from './keeper-socket.js';

/** Does a keeper answer on `path`? */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function main(): Promise<void> {
  const [dir, idleText] = process.argv.slice(2);
  const idleSeconds = Number(idleText);
  if (!dir || !Number.isFinite(idleSeconds) || idleSeconds <= 0) {
    process.stderr.write('usage: keeper.js <dir> <idleSeconds>\n');
    process.exit(1);
  }
  process.umask(0o077);
  checkPrivateDir(dir);
  const path = keeperSocket(dir);
  const own = join(dir, `keeper-${process.pid}.sock`);
  let servedInode: number | undefined;

  const server = createServer();
  const keeper = new Keeper(
    (route) =>
      openEndpoint(route.endpoint, {
        knownHostsFile: route.knownHostsFile,
        hostKeyChecking: route.hostKeyChecking,
        connectTimeoutMs: route.connectTimeoutMs,
        keepaliveIntervalMs: route.keepaliveIntervalMs,
        keepaliveCountMax: route.keepaliveCountMax,
        agentSocket: route.agentSocket,
      }),
    idleSeconds,
    () => {
      // Once the last run's socket has closed, the process ends, whatever else is still winding down
      // (an SSH connection saying goodbye); a run that does not close its socket is not waited for long.
      server.close(() => process.exit(0));
      setTimeout(() => process.exit(0), 5000).unref();
      // The socket in place is removed only when it is still this keeper's (not a newer keeper's).
      try {
        if (statSync(path).ino === servedInode) unlinkSync(path);
      } catch {
        /* already gone */
      }
    },
  );
  keeper.serve(server);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => void keeper.stop());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(own, () => resolve());
  });
  // Made under umask 077 (0700: a socket's x bit means nothing); 0600 is what runs check for.
  chmodSync(own, 0o600);
  if (await answers(path)) {
    // Another keeper serves this user already: it is the one the run talks to.
    server.close();
    unlinkSync(own);
    process.stdout.write('ready\n');
    process.exit(0);
  }
  renameSync(own, path);
  servedInode = statSync(path).ino;
  process.stdout.write('ready\n');
}

await main();
