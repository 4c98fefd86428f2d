/**
 * The VM of the slow VM tier and of `verdandi testhost box`, `testhost up --vm`, `testhost down --vm`: a
 * whole Debian VM with its own kernel, booted from a box built on this machine from Debian packages
 * (src/testhost/vm/box.sh), either under qemu directly (src/testhost/vm/vm.sh) or through Vagrant's libvirt provider
 * with the project's Vagrantfile. The two scripts ship with the package; this module runs them, and
 * holds what Vagrant and libvirt need: the box's name, the environment the Vagrantfile reads, and the
 * libvirt daemons, started when nothing runs them (build machines without systemd as PID 1).
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UserError } from '../util/errors.js';
import { socketAnswers } from '../util/unix-socket.js';
import { packageRoot } from '../util/user-code.js';
import { delay, run, runOk } from './exec.js';
import { cacheDirFromEnv, VM_ADDRESS, VM_MANAGEMENT_NETWORK, VM_SLOT } from './naming.js';
import { commandLine, isAlive, type ProcessId, processId, signalProcess, waitForExit } from './processes.js';

/** The user the box logs in as (sudo without password), as on Vagrant's usual boxes. */
export const VM_USER = 'vagrant';

export type VmScript = 'box.sh' | 'vm.sh';

/** The path of one of the VM scripts (they ship with the package: package.json `files`). */
export function vmScriptPath(script: VmScript, root: string = packageRoot()): string {
  return join(root, 'src', 'testhost', 'vm', script);
}

/** Everything VM-related lives here, beside the test hosts' cache. */
export function vmCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheDirFromEnv(env), 'vm');
}

/** The private key that logs in as vagrant: box.sh generates it there (its .pub is in the box), vm.sh uses it. */
export function vmKeyFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(vmCacheDir(env), 'vagrant_ed25519');
}

/** What vm.sh keeps while the VM runs (its disk, qemu's and dnsmasq's pid files); gone after `down`. */
export function vmRunDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(vmCacheDir(env), `run-${VM_SLOT}`);
}

/**
 * The name the box is registered under with Vagrant: it carries the box's revision (the `box-N`
 * directory), so a rebuilt box is added beside the old one instead of Vagrant reusing a stale copy.
 */
export function vagrantBoxName(boxDir: string): string {
  const match = /^box-(\d+)$/.exec(basename(boxDir));
  if (!match) throw new Error(`not a box directory of src/testhost/vm/box.sh: ${boxDir}`);
  return `verdandi/bookworm64-${match[1]}`;
}

/** Whether `vagrant box list` output holds that box. */
export function boxListed(boxList: string, name: string): boolean {
  return boxList.split('\n').some((line) => line.startsWith(`${name} `));
}

/**
 * Vagrant's home for the box: in the cache, not in root's home, because libvirt runs qemu as its own
 * user, which must read the box's kernel and initrd.
 */
export function vagrantHome(env: NodeJS.ProcessEnv = process.env): string {
  return join(vmCacheDir(env), 'vagrant.d');
}

/**
 * Whether libvirt can use KVM: /dev/kvm alone is not enough, the CPU must offer virtualisation (the
 * `vmx` or `svm` flag; build machines in VMs often do not). Otherwise qemu emulates (TCG).
 */
export function kvmUsable(cpuinfo: string, devKvmExists: boolean): boolean {
  return devKvmExists && /^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo);
}

export function kvmUsableHere(): boolean {
  try {
    return kvmUsable(readFileSync('/proc/cpuinfo', 'utf8'), existsSync('/dev/kvm'));
  } catch {
    return false;
  }
}

/**
 * What `vagrant up` of the project's Vagrantfile needs to boot the box: VAGRANT_HOME where the box is
 * registered, the box, the key Vagrant logs in with (the box has no insecure key; the Vagrantfile also
 * authorises yours) and, without usable KVM, qemu's emulation. The VM keeps the Vagrantfile's own
 * address (192.168.56.10), so the README's steps and inventories/test.yml work as they are.
 */
export function vagrantBoxEnv(opts: {
  boxName: string;
  kvm: boolean;
  env?: NodeJS.ProcessEnv;
}): NodeJS.ProcessEnv {
  const env = opts.env ?? process.env;
  return {
    ...env,
    VAGRANT_HOME: vagrantHome(env),
    VERDANDI_VM_BOX: opts.boxName,
    VERDANDI_VM_SSH_KEY: vmKeyFile(env),
    ...(opts.kvm ? {} : { VERDANDI_VM_LIBVIRT_DRIVER: 'qemu' }),
  };
}

/**
 * The VM tier's environment for `vagrant up` and `destroy`: the box under qemu's emulation (no usable
 * KVM on build machines), at VM_ADDRESS with libvirt's management network in VM_MANAGEMENT_NETWORK,
 * both inside the test hosts' 10.231.0.0/16, and Vagrant's record of the machine (VAGRANT_DOTFILE_PATH)
 * in the cache, out of the project, where the next run finds a machine a killed run left behind.
 * `projectDir` (the Vagrantfile's folder) becomes VAGRANT_CWD.
 */
export function vagrantEnv(opts: {
  boxName: string;
  projectDir?: string;
  env?: NodeJS.ProcessEnv;
}): NodeJS.ProcessEnv {
  const env = opts.env ?? process.env;
  return {
    ...vagrantBoxEnv({ boxName: opts.boxName, kvm: false, env }),
    ...(opts.projectDir ? { VAGRANT_CWD: opts.projectDir } : {}),
    VAGRANT_DOTFILE_PATH: join(vmCacheDir(env), 'vagrant-machine'),
    VERDANDI_VM_IP: VM_ADDRESS,
    VERDANDI_VM_MANAGEMENT_NETWORK: VM_MANAGEMENT_NETWORK,
  };
}

/** The variables of vagrantEnv or vagrantBoxEnv that differ from `env`, as `NAME=value` words for a shell line. */
export function vagrantEnvWords(vagrant: NodeJS.ProcessEnv, env: NodeJS.ProcessEnv = {}): string[] {
  return Object.entries(vagrant)
    .filter(([name, value]) => /^(VAGRANT_|VERDANDI_VM_)/.test(name) && value !== env[name])
    .map(([name, value]) => `${name}=${value}`);
}

/** How box.sh and vm.sh mark the line that carries their result (a directory, an address). */
export const SCRIPT_RESULT_PREFIX = 'verdandi-result: ';

/**
 * The result of a VM script: the value of its last `verdandi-result: ` line. The rest of its stdout is
 * whatever the tools it ran printed there (mkfs's "Creating regular file ..."), never the result.
 */
export function scriptResult(script: string, stdout: string): string {
  const line = stdout
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.startsWith(SCRIPT_RESULT_PREFIX))
    .at(-1);
  const value = line?.slice(SCRIPT_RESULT_PREFIX.length).trim();
  if (!value) {
    const tail = stdout.trim().split('\n').slice(-3).join(' | ');
    throw new UserError(
      `${script} ended without its result line ("${SCRIPT_RESULT_PREFIX}..." on stdout)${tail ? `; its stdout ended with: ${tail}` : ''}`,
      1,
      `run src/testhost/vm/${script} by hand (as root) to see where it stopped`,
    );
  }
  return value;
}

/**
 * Runs one of the VM scripts as root. With `showProgress`, its stderr (what it is doing, a few minutes
 * for a box) goes to ours; its result line's value (a directory, an address) is returned.
 */
export async function runVmScript(
  script: VmScript,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; showProgress?: boolean; timeoutMs?: number } = {},
): Promise<string> {
  const result = await run(vmScriptPath(script), args, {
    env: { ...(opts.env ?? process.env), VERDANDI_VM_SLOT: String(VM_SLOT) },
    echoStderr: opts.showProgress,
    timeoutMs: opts.timeoutMs,
  });
  if (result.code === 0) return scriptResult(script, result.stdout);
  // With progress shown, its last lines are already on the terminal.
  const shown = opts.showProgress ? '' : result.stderr.trim().split('\n').slice(-10).join('\n');
  throw new UserError(
    `${script} ${args.join(' ')} failed (${result.code === 124 ? 'timed out' : `exit ${result.code}`})${shown ? `:\n${shown}` : ''}`,
    1,
    opts.showProgress ? 'what it printed above says where it stopped' : undefined,
  );
}

/** Builds the box once (then reuses it) and returns its directory. */
export function buildBox(opts: { env?: NodeJS.ProcessEnv; showProgress?: boolean } = {}): Promise<string> {
  return runVmScript('box.sh', [], { ...opts, timeoutMs: 60 * 60_000 });
}

/** Registers the box with Vagrant (in vagrantHome) unless it already is; returns its name. */
export async function registerVagrantBox(
  boxDir: string,
  baseEnv: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const name = vagrantBoxName(boxDir);
  const env = { ...baseEnv, VAGRANT_HOME: vagrantHome(baseEnv) };
  const { stdout } = await runOk('vagrant', ['box', 'list'], { env });
  if (!boxListed(stdout, name)) {
    await runOk('vagrant', ['box', 'add', '--name', name, join(boxDir, 'verdandi-bookworm.box')], {
      env,
      timeoutMs: 20 * 60_000,
    });
  }
  return name;
}

/** A libvirt daemon: the socket it answers on, and where `-d` (daemon mode, as root) writes its pid. */
export interface LibvirtDaemon {
  command: 'virtlogd' | 'libvirtd';
  socket: string;
  pidFile: string;
}

/** virtlogd first: libvirtd hands each VM's console log to it, and a VM does not start without it. */
export const LIBVIRT_DAEMONS: readonly LibvirtDaemon[] = [
  { command: 'virtlogd', socket: '/run/libvirt/virtlogd-sock', pidFile: '/run/virtlogd.pid' },
  { command: 'libvirtd', socket: '/run/libvirt/libvirt-sock', pidFile: '/run/libvirtd.pid' },
];

export interface LibvirtDeps {
  daemons?: readonly LibvirtDaemon[];
  answers?: (socket: string) => Promise<boolean>;
  start?: (command: string) => Promise<void>;
  pidOf?: (daemon: LibvirtDaemon) => Promise<ProcessId | undefined>;
  stop?: (started: readonly ProcessId[]) => Promise<void>;
  timeoutMs?: number;
}

async function startDaemon(command: string): Promise<void> {
  const result = await run(command, ['-d'], { timeoutMs: 60_000 });
  if (result.code !== 0) {
    throw new UserError(
      `\`${command} -d\` failed (exit ${result.code}): ${(result.stderr || result.stdout).trim().split('\n').slice(-3).join(' ')}`,
      1,
      `install libvirt-daemon-system, or start ${command} yourself (systemctl start ${command})`,
    );
  }
}

/** The daemon of that pid file, if it runs and is the program we mean (a reused pid is someone else's). */
async function daemonPid(daemon: LibvirtDaemon): Promise<ProcessId | undefined> {
  let pid: number;
  try {
    pid = Number((await readFile(daemon.pidFile, 'utf8')).trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const argv = await commandLine(pid);
  if (!argv[0] || basename(argv[0]) !== daemon.command) return undefined;
  return processId(pid);
}

/**
 * Starts virtlogd and libvirtd where nothing answers on their sockets (no systemd to start them) and
 * waits until they do. Returns the daemons it started, for stopLibvirt: one already running (systemd's,
 * or a user's) is left alone.
 */
export async function ensureLibvirt(deps: LibvirtDeps = {}): Promise<ProcessId[]> {
  const answers = deps.answers ?? socketAnswers;
  const started: ProcessId[] = [];
  try {
    for (const daemon of deps.daemons ?? LIBVIRT_DAEMONS) {
      if (await answers(daemon.socket)) continue;
      await (deps.start ?? startDaemon)(daemon.command);
      const deadline = Date.now() + (deps.timeoutMs ?? 60_000);
      while (!(await answers(daemon.socket))) {
        if (Date.now() >= deadline) {
          throw new UserError(
            `${daemon.command} started but nothing answers on ${daemon.socket} after ${Math.round((deps.timeoutMs ?? 60_000) / 1000)} s`,
            1,
            `see its log (journalctl or /var/log/libvirt), then run \`${daemon.command} -d\` by hand to see why`,
          );
        }
        await delay(200);
      }
      const id = await (deps.pidOf ?? daemonPid)(daemon);
      if (id) started.push(id);
    }
  } catch (err) {
    // virtlogd started for a libvirtd that then failed: nothing is left running for nothing.
    await (deps.stop ?? stopLibvirt)(started);
    throw err;
  }
  return started;
}

/** Stops the daemons ensureLibvirt started, libvirtd before the virtlogd it logs through. */
export async function stopLibvirt(started: readonly ProcessId[]): Promise<void> {
  for (const id of [...started].reverse()) {
    if (!(await isAlive(id))) continue;
    await signalProcess(id, 'SIGTERM');
    if (!(await waitForExit(id, 30_000))) await signalProcess(id, 'SIGKILL');
  }
}
