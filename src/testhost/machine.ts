/**
 * One test host's machine: its overlay on the base image, the systemd-nspawn process that boots it
 * (detached: it outlives the process that started it), waiting until it is ready, and powering it off.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdir, open, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type PublicHostKey, parsePublicKey } from '../connection/known-hosts.js';
import { UserError } from '../util/errors.js';
import { delay, pathWithSbin, run, runOk } from './exec.js';
import { guestAptSources, guestEtcHosts, type Mirrors } from './guest-config.js';
import { hostPaths, type Layout, namespaceName } from './naming.js';
import { childrenOf, isAlive, type ProcessId, processId, signalProcess, waitForExit } from './processes.js';

export interface GuestFiles {
  name: string;
  publicKey: string;
  resolvConf: string;
  mirrors: Mirrors;
}

/** Writes the host's own files into its overlay's upper dir, before the first boot. */
export async function prepareOverlay(l: Layout, files: GuestFiles): Promise<void> {
  const { upperDir } = hostPaths(l, files.name);
  const put = async (path: string, content: string, mode = 0o644) => {
    await writeFile(join(upperDir, path), content, { mode });
    await chmod(join(upperDir, path), mode);
  };
  // Directories in the upper dir give the merged directory its owner and mode: keep Debian's.
  for (const [dir, mode] of [
    ['', 0o755],
    ['etc', 0o755],
    ['etc/apt', 0o755],
    ['etc/ssh', 0o755],
    ['root', 0o700],
    ['root/.ssh', 0o700],
  ] as const) {
    await mkdir(join(upperDir, dir), { recursive: true });
    await chmod(join(upperDir, dir), mode);
  }
  await put('etc/hostname', `${files.name}\n`);
  await put('etc/hosts', guestEtcHosts(files.name));
  await put('etc/resolv.conf', files.resolvConf);
  await put('etc/apt/sources.list', guestAptSources(files.mirrors));
  await put('root/.ssh/authorized_keys', `${files.publicKey}\n`, 0o600);
  // e2scrub (e2fsprogs) checks ext4 filesystems on LVM: a container has none of its own, yet it sees
  // the build machine's block devices and its reaper can fail on them, which would leave the host
  // "degraded". Masked, as on any container.
  await mkdir(join(upperDir, 'etc/systemd/system'), { recursive: true });
  for (const unit of ['e2scrub_reap.service', 'e2scrub_all.timer']) {
    await symlink('/dev/null', join(upperDir, 'etc/systemd/system', unit)).catch((err) => {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    });
  }
  // Host keys of its own, as a real machine has (the image's would be shared by every host).
  await runOk('ssh-keygen', ['-A', '-f', upperDir]);
}

/**
 * The host's SSH host keys, read from its overlay, where `prepareOverlay` generated them: those the
 * host's sshd presents. Sorted by type, so the same host always gives the same list.
 */
export async function hostPublicKeys(l: Layout, name: string): Promise<PublicHostKey[]> {
  const sshDir = join(hostPaths(l, name).upperDir, 'etc', 'ssh');
  const files = (await readdir(sshDir).catch(() => [] as string[]))
    .filter((file) => /^ssh_host_\w+_key\.pub$/.test(file))
    .sort();
  const keys: PublicHostKey[] = [];
  for (const file of files) {
    const key = parsePublicKey(await readFile(join(sshDir, file), 'utf8'));
    if (key) keys.push(key);
  }
  return keys.sort((a, b) => a.type.localeCompare(b.type));
}

/** The boot command of TEST-HOSTS.md (see there why each option and variable is needed). */
export function nspawnCommand(l: Layout, name: string): { env: Record<string, string>; args: string[] } {
  const { upperDir } = hostPaths(l, name);
  return {
    env: { SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1', SYSTEMD_NSPAWN_API_VFS_WRITABLE: 'yes' },
    args: [
      '--keep-unit',
      '--register=no',
      `--directory=${l.baseDir}`,
      `--overlay=${l.baseDir}:${upperDir}:/`,
      `--machine=${name}`,
      '--boot',
      '--capability=all',
      '--system-call-filter=add_key keyctl request_key bpf',
      `--network-namespace-path=/run/netns/${namespaceName(name)}`,
    ],
  };
}

/** Starts systemd-nspawn in its own session, its console going to the host's log file. */
export async function startMachine(l: Layout, name: string): Promise<ProcessId> {
  const { logFile } = hostPaths(l, name);
  const { env, args } = nspawnCommand(l, name);
  const log = await open(logFile, 'a');
  try {
    const child = spawn('systemd-nspawn', args, {
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
      env: { ...process.env, ...env, PATH: pathWithSbin() },
    });
    const spawned = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', reject);
    });
    child.unref();
    const id = await processId(spawned);
    if (!id) throw new UserError(`systemd-nspawn for ${name} exited at once`, 1, `see ${logFile}`);
    return id;
  } finally {
    await log.close();
  }
}

/** The container's PID 1, a child of nspawn (undefined until nspawn has forked it). */
export async function findLeader(nspawn: ProcessId): Promise<ProcessId | undefined> {
  for (const pid of await childrenOf(nspawn.pid)) {
    const id = await processId(pid);
    if (id) return id;
  }
  return undefined;
}

export const SSH_OPTIONS = [
  '-o',
  'StrictHostKeyChecking=no',
  '-o',
  'UserKnownHostsFile=/dev/null',
  '-o',
  'BatchMode=yes',
  '-o',
  'LogLevel=ERROR',
];

export async function logTail(l: Layout, name: string, lines = 15): Promise<string> {
  const text = await readFile(hostPaths(l, name).logFile, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-lines).join('\n');
}

/**
 * Waits until sshd answers and systemd has finished booting (`running`, or `degraded` when some unit
 * failed). Fails early when nspawn exits, with the end of the console log.
 */
export async function waitUntilReady(
  l: Layout,
  host: { name: string; address: string; nspawn: ProcessId },
  key: string,
  timeoutMs: number,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'sshd did not answer';
  while (Date.now() < deadline) {
    if (!(await isAlive(host.nspawn))) {
      throw new UserError(
        `test host ${host.name} stopped while booting:\n${await logTail(l, host.name)}`,
        1,
        `console log: ${hostPaths(l, host.name).logFile}`,
      );
    }
    const remaining = Math.max(1000, deadline - Date.now());
    const result = await run(
      'ssh',
      [
        ...SSH_OPTIONS,
        '-o',
        'ConnectTimeout=2',
        '-i',
        key,
        `root@${host.address}`,
        'systemctl is-system-running --wait',
      ],
      { timeoutMs: remaining },
    );
    const systemState = result.stdout.trim();
    if (systemState === 'running' || systemState === 'degraded') return systemState;
    // 255: ssh itself failed (sshd not up yet); anything else: systemd answered something unexpected.
    lastProblem = result.code === 255 ? `ssh: ${result.stderr.trim()}` : `systemd is ${systemState || '?'}`;
    await delay(200);
  }
  throw new UserError(
    `test host ${host.name} (${host.address}) not ready after ${Math.round(timeoutMs / 1000)} s: ${lastProblem}`,
    1,
    `console log: ${hostPaths(l, host.name).logFile}`,
  );
}

/**
 * Powers the machine off: SIGTERM makes nspawn ask the container's systemd for an orderly poweroff;
 * when that takes too long, SIGKILL to the container's PID 1 ends every process of the host at once
 * (it is PID 1 of its own PID namespace), then nspawn.
 */
export async function stopMachine(
  nspawn: ProcessId | undefined,
  leader: ProcessId | undefined,
  graceMs = 15_000,
): Promise<void> {
  if (nspawn && (await signalProcess(nspawn, 'SIGTERM'))) {
    if (await waitForExit(nspawn, graceMs)) return;
  }
  if (leader) {
    await signalProcess(leader, 'SIGKILL');
    await waitForExit(leader, 5000);
  }
  if (nspawn) {
    await signalProcess(nspawn, 'SIGKILL');
    await waitForExit(nspawn, 5000);
  }
}
