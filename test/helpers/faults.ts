/**
 * Fault injection for the e2e tests, on real test hosts (see test/helpers/testhosts.ts):
 *
 *   const restore = await slowLink(host);            // tc tbf on the host's veth: ~4 Mbit/s
 *   const undrop = await dropPackets(host);          // iptables DROP inside its namespace: a silent host
 *   await killSshSessions(hosts, 'faults-a');        // kill -9 of every other `sshd: root@notty`
 *   const v = startVerdandi(['provision', inv]);     // the CLI as a child process
 *   await waitOnHost(hosts, 'faults-a', 'test -e /tmp/marker');   // poll a marker, no fixed sleeps
 *   v.kill('SIGINT'); const res = await v.result;
 *   const { exitCode, output } = await interrupt(v);   // Ctrl-C, SIGKILL if it does not end in time
 *
 * Every fault has its undo; tests call it in `finally` (or t.teardown) so a failing test leaves the
 * host usable for the next one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { run } from '../../src/testhost/exec.js';
import { hostVethName, namespaceName } from '../../src/testhost/naming.js';
import { CLI_BIN, type CliResult, PROJECT_ROOT } from './cli.js';
import type { TestHost, TestHosts } from './testhosts.js';

/** The slot of a test host, from its address 10.231.<slot>.2. */
export function slotOf(host: TestHost): number {
  const m = /^10\.231\.(\d+)\.2$/.exec(host.address);
  if (!m) throw new Error(`${host.name}: ${host.address} is not a test host address`);
  return Number(m[1]);
}

async function must(cmd: string, args: string[]): Promise<void> {
  const res = await run(cmd, args, { timeoutMs: 30_000 });
  if (res.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${res.code}: ${res.stderr}`);
}

/**
 * Slows the host's link to `rate` (a 5 MB write then takes about 10 s at 4 Mbit/s). Returns the undo.
 * The qdisc is on the build machine's side of the veth: it shapes what goes to the host.
 */
export async function slowLink(host: TestHost, rate = '4mbit'): Promise<() => Promise<void>> {
  const dev = hostVethName(slotOf(host));
  await run('tc', ['qdisc', 'del', 'dev', dev, 'root'], { timeoutMs: 30_000 }); // a leftover, if any
  await must('tc', [
    'qdisc',
    'add',
    'dev',
    dev,
    'root',
    'tbf',
    'rate',
    rate,
    'burst',
    '16kb',
    'latency',
    '500ms',
  ]);
  return async () => {
    await run('tc', ['qdisc', 'del', 'dev', dev, 'root'], { timeoutMs: 30_000 });
  };
}

/** Drops every packet to the host (inside its namespace): SSH sees silence, as with a dead network. */
export async function dropPackets(host: TestHost): Promise<() => Promise<void>> {
  const ns = namespaceName(host.name);
  await must('ip', ['netns', 'exec', ns, 'iptables', '-I', 'INPUT', '-j', 'DROP']);
  return async () => {
    await run('ip', ['netns', 'exec', ns, 'iptables', '-D', 'INPUT', '-j', 'DROP'], { timeoutMs: 30_000 });
  };
}

/**
 * The host takes SSH only from `from` (a bastion's address): iptables in its namespace resets every
 * other connection to port 22, so the machine running the tests cannot reach it directly. Returns the undo.
 */
export async function sshOnlyFrom(host: string, from: string): Promise<() => Promise<void>> {
  const ns = namespaceName(host);
  const rule = ['INPUT', '-p', 'tcp', '--dport', '22', '!', '-s', from, '-j', 'REJECT'];
  const reset = [...rule, '--reject-with', 'tcp-reset'];
  const added = await run('ip', ['netns', 'exec', ns, 'iptables', '-w', '-I', ...reset]);
  if (added.code !== 0) throw new Error(`iptables in ${ns}: ${added.stderr}`);
  return async () => {
    await run('ip', ['netns', 'exec', ns, 'iptables', '-w', '-D', ...reset]);
  };
}

/**
 * Kills (-9) the SSH sessions on the host, as a dropped connection would end them on the host's side:
 * every `sshd: <user>@notty` process but the one running this very command.
 */
export async function killSshSessions(hosts: TestHosts, name: string): Promise<number> {
  const res = await hosts.ssh(
    name,
    `n=0; for p in $(pgrep -f '^sshd: [^ ]+@notty'); do [ "$p" = "$PPID" ] && continue; kill -9 "$p" && n=$((n+1)); done; echo $n`,
    { timeoutMs: 30_000 },
  );
  return Number(res.stdout.trim());
}

/**
 * Polls `condition` (a shell test) on the host until it exits 0: the way to wait for a marker (a file
 * appearing, a process starting). Throws after `timeoutMs`.
 */
export async function waitOnHost(
  hosts: TestHosts,
  name: string,
  condition: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // One ssh call loops on the host, so the wait is fine-grained (0.05 s) without an ssh per poll.
  const seconds = Math.ceil(timeoutMs / 1000);
  const script = `i=0; while ! ( ${condition} ) >/dev/null 2>&1; do i=$((i+1)); [ $i -gt ${seconds * 20} ] && exit 1; sleep 0.05; done`;
  const res = await hosts.ssh(name, script, { timeoutMs: timeoutMs + 15_000 });
  if (res.code !== 0 || Date.now() > deadline + 15_000) {
    throw new Error(`${name}: condition never held within ${timeoutMs} ms: ${condition}`);
  }
}

/** A verdandi run in progress (CI mode, plain output). */
export interface RunningCli {
  child: ChildProcess;
  /** Output so far. */
  readonly stdout: string;
  readonly stderr: string;
  kill(signal: NodeJS.Signals): void;
  /** Resolves when the process ended; `code` is 128 + the signal number when a signal killed it. */
  result: Promise<CliResult & { signal: NodeJS.Signals | null; ms: number }>;
}

export function startVerdandi(
  args: readonly string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): RunningCli {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    cwd: opts.cwd ?? PROJECT_ROOT,
    env: { ...process.env, CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 5 * 60_000);
  const result = new Promise<CliResult & { signal: NodeJS.Signals | null; ms: number }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const bySignal =
        signal === 'SIGKILL' ? 137 : signal === 'SIGTERM' ? 143 : signal === 'SIGINT' ? 130 : 1;
      resolve({ stdout, stderr, code: code ?? bySignal, signal, ms: Date.now() - started });
    });
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    kill: (signal) => child.kill(signal),
    result,
  };
}

/** sha256 of a file on the host ('' when it does not exist). */
export async function sha256On(hosts: TestHosts, name: string, path: string): Promise<string> {
  const res = await hosts.ssh(name, `if [ -f '${path}' ]; then sha256sum '${path}' | cut -d' ' -f1; fi`);
  return res.stdout.trim();
}

/**
 * Ctrl-C to a run in progress: SIGINT, then SIGKILL when it has not ended `graceMs` later. `exitCode` is
 * null when a signal ended the process (it did not exit by itself); `afterSignalMs`, how long it took
 * to end after the SIGINT; `output`, what it printed (stdout, then stderr).
 */
export async function interrupt(
  v: RunningCli,
  graceMs = 30_000,
): Promise<{ exitCode: number | null; output: string; afterSignalMs: number }> {
  const signalled = Date.now();
  v.kill('SIGINT');
  const timer = setTimeout(() => v.kill('SIGKILL'), graceMs);
  const res = await v.result;
  clearTimeout(timer);
  return {
    exitCode: res.signal === null ? res.code : null,
    output: res.stdout + res.stderr,
    afterSignalMs: Date.now() - signalled,
  };
}

/** The processes on the host whose command line holds `pattern` (none: empty), grep left out. */
export async function processesOnHost(hosts: TestHosts, name: string, pattern: string): Promise<string> {
  const res = await hosts.ssh(
    name,
    `ps -eww -o pid=,args= | grep -F -- ${JSON.stringify(pattern)} | grep -v grep || true`,
  );
  return res.stdout.trim();
}
