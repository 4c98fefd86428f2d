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
import { createServer } from 'node:net';
import { join } from 'node:path';
import { openEndpoint } from './jump-hosts.js';
import { Keeper } from './keeper.js';
import { checkPrivateDir, keeperSocket, servePrivately } from './keeper-socket.js';

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
  let release: (() => void) | undefined;

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
      release?.();
    },
  );
  keeper.serve(server);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => void keeper.stop());

  release = await servePrivately(server, path, own);
  process.stdout.write('ready\n');
  // Another keeper serves this user already: it is the one the run talks to.
  if (!release) process.exit(0);
}

await main();
