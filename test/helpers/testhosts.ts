/**
 * Real test hosts for an ava test file:
 *
 *   const hosts = useTestHosts(test, ['nginx-a']);     // booted in test.before, stopped in test.after.always
 *   hosts.get('nginx-a')  → { name, address, port: 22, user: 'root', key }
 *   await hosts.ssh('nginx-a', 'systemctl is-active nginx')  → { stdout, stderr, code }
 *
 * Test files run in parallel, so each file names its hosts after its purpose (`nginx-a`, not `a`): a name
 * used by two files at once is an error. A file that does not need a fresh machine may share one with
 * other files: `useTestHosts(test, ['shared-web'], { shared: true })` in each; the last one stops it.
 * Hosts are stopped even when the worker is interrupted (Ctrl-C, SIGTERM); what a SIGKILL leaves behind
 * is cleared by the next `up` or `verdandi testhost down --all`.
 */
import type { ExecutionContext, TestFn } from 'ava';
import { run } from '../../src/testhost/exec.js';
import type { Progress, TestHost } from '../../src/testhost/index.js';
import { acquire, newLeaseId, release } from '../../src/testhost/leases.js';
import { SSH_OPTIONS } from '../../src/testhost/machine.js';
import { checkMachine } from '../../src/testhost/preflight.js';

export type { TestHost } from '../../src/testhost/index.js';

export interface SshResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface TestHosts {
  /** The host of that name (throws when it is not one of this file's, or did not boot). */
  get(name: string): TestHost;
  /** Runs `command` with root's shell on the host over plain ssh, with the harness's key. */
  ssh(name: string, command: string, opts?: { input?: string; timeoutMs?: number }): Promise<SshResult>;
  all(): TestHost[];
}

export interface UseTestHostsOptions {
  /** Share the hosts with other test files that also say shared (default: a fresh host of its own). */
  shared?: boolean;
}

/** Leases this process holds, released on SIGINT/SIGTERM. */
const held = new Map<string, readonly string[]>();
let signalHandlersInstalled = false;

function installSignalHandlers(): void {
  if (signalHandlersInstalled) return;
  signalHandlersInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      const releases = [...held].map(([leaseId, names]) => release(leaseId, names).catch(() => {}));
      // Then die of the same signal, as the worker would have without this handler.
      void Promise.all(releases).finally(() => process.kill(process.pid, signal));
    });
  }
}

function progressTo(t: ExecutionContext): Progress {
  return {
    start: (s) => t.log(`${s}...`),
    succeed: (s) => t.log(s),
    fail: (s) => t.log(`failed: ${s}`),
    info: (s) => t.log(s),
  };
}

export function useTestHosts(
  test: TestFn,
  names: readonly string[],
  opts: UseTestHostsOptions = {},
): TestHosts {
  if (new Set(names).size !== names.length)
    throw new Error(`useTestHosts: a name is listed twice in ${names}`);
  const hosts = new Map<string, TestHost>();
  let leaseId: string | undefined;

  test.before(async (t) => {
    // The first file to run may build the base image (about 3 minutes) before booting.
    t.timeout(20 * 60_000);
    // Not root, tools missing: one clear error before anything is taken (so after.always has nothing to do).
    await checkMachine();
    installSignalHandlers();
    leaseId = await newLeaseId();
    held.set(leaseId, names);
    for (const host of await acquire(leaseId, names, { shared: opts.shared, progress: progressTo(t) })) {
      hosts.set(host.name, host);
    }
  });

  test.after.always(async (t) => {
    t.timeout(5 * 60_000);
    if (!leaseId) return;
    await release(leaseId, names);
    held.delete(leaseId);
  });

  const get = (name: string): TestHost => {
    const host = hosts.get(name);
    if (!host) {
      throw new Error(
        `test host ${name} is not booted: this file has ${names.join(', ')} (did test.before fail?)`,
      );
    }
    return host;
  };

  return {
    get,
    all: () => names.map(get),
    ssh: (name, command, sshOpts = {}) => {
      const host = get(name);
      return run(
        'ssh',
        [
          ...SSH_OPTIONS,
          '-o',
          'ConnectTimeout=10',
          '-i',
          host.key,
          '-p',
          String(host.port),
          `${host.user}@${host.address}`,
          '--',
          command,
        ],
        { input: sshOpts.input, timeoutMs: sshOpts.timeoutMs ?? 10 * 60_000 },
      );
    },
  };
}
