/**
 * What `verdandi testhost up|down|list|box` do; the options are declared in src/cli/commands/testhost.ts.
 */
import { existsSync } from 'node:fs';
import { UserError } from '../util/errors.js';
import { commandExists } from './exec.js';
import { down, list, up } from './index.js';
import { LOCAL_INVENTORY } from './inventory.js';
import { VM_ADDRESS, validateHostName } from './naming.js';
import { checkMachine, realMachine, VM_TOOLS } from './preflight.js';
import { terminalProgress } from './progress.js';
import {
  buildBox,
  kvmUsableHere,
  registerVagrantBox,
  runVmScript,
  VM_USER,
  vagrantBoxEnv,
  vagrantEnvWords,
  vmKeyFile,
  vmRunDir,
} from './vm.js';

/** Most hosts one `up` boots: each is a whole Debian system. */
export const MAX_COUNT = 50;

/**
 * The names `up` boots: the names given; or with --count N, NAME1..NAMEN (NAME: the one name given,
 * default `test`); with neither, `test1`.
 */
export function namesForUp(names: readonly string[] = [], count?: string): string[] {
  if (count === undefined) {
    const chosen = names.length > 0 ? [...names] : ['test1'];
    chosen.forEach(validateHostName);
    return chosen;
  }
  if (!/^\d+$/.test(count) || Number(count) < 1 || Number(count) > MAX_COUNT) {
    throw new UserError(
      `--count must be a whole number from 1 to ${MAX_COUNT}, not ${JSON.stringify(count)}`,
    );
  }
  if (names.length > 1) {
    throw new UserError(
      `--count takes one base name (it boots NAME1..NAME${count}), not ${names.length} names: drop --count or give one name`,
    );
  }
  const base = names[0] ?? 'test';
  const chosen = Array.from({ length: Number(count) }, (_, i) => `${base}${i + 1}`);
  chosen.forEach(validateHostName);
  return chosen;
}

/** What `down` stops: the names given, or 'all' with --all; one of them is required. */
export function targetsForDown(names: readonly string[] = [], all = false): string[] | 'all' {
  if (all && names.length > 0) {
    throw new UserError('give either host names or --all, not both');
  }
  if (all) return 'all';
  if (names.length === 0) {
    throw new UserError(
      'which test hosts? give their names (`verdandi testhost down web1`) or --all (see `verdandi testhost list`)',
    );
  }
  names.forEach(validateHostName);
  return [...names];
}

/** There is one VM: `up --vm` and `down --vm` take no host names, --count or --all. */
export function checkVmArguments(
  names: readonly string[] = [],
  options: { count?: string; all?: boolean } = {},
): void {
  const extra = [
    ...(names.length > 0 ? [`host names (${names.join(', ')})`] : []),
    ...(options.count !== undefined ? ['--count'] : []),
    ...(options.all ? ['--all'] : []),
  ];
  if (extra.length > 0) {
    throw new UserError(
      `--vm is the one VM at ${VM_ADDRESS}: drop ${extra.join(' and ')}, or drop --vm for systemd-nspawn test hosts`,
    );
  }
}

export async function upCommand(
  names: string[] | undefined,
  options: { count?: string; vm?: boolean },
): Promise<void> {
  if (options.vm) {
    checkVmArguments(names, options);
    await checkMachine(realMachine, VM_TOOLS);
    const address = await runVmScript('vm.sh', ['up'], { showProgress: true });
    process.stdout.write(`vm  ${address}  ssh -i ${vmKeyFile()} ${VM_USER}@${address}\n`);
    process.stdout.write('stop it: verdandi testhost down --vm\n');
    return;
  }
  const chosen = namesForUp(names, options.count);
  const projectDir = process.cwd();
  const hosts = await up(chosen, { progress: await terminalProgress(), projectDir });
  const width = Math.max(...hosts.map((h) => h.name.length));
  for (const h of hosts) {
    process.stdout.write(`${h.name.padEnd(width)}  ${h.address}  ssh -i ${h.key} ${h.user}@${h.address}\n`);
  }
  process.stdout.write(`inventory: ${LOCAL_INVENTORY} (try: verdandi ping local)\n`);
}

export async function downCommand(
  names: string[] | undefined,
  options: { all?: boolean; vm?: boolean },
): Promise<void> {
  if (options.vm) {
    checkVmArguments(names, options);
    await checkMachine(realMachine, VM_TOOLS);
    const running = existsSync(vmRunDir());
    // Also when nothing seems to run: it clears what a killed `up --vm` left (tap interface, rules).
    await runVmScript('vm.sh', ['down'], { showProgress: true });
    process.stdout.write(running ? 'stopped: vm\n' : 'the VM was not running\n');
    return;
  }
  const targets = targetsForDown(names, options.all === true);
  const stopped = await down(targets, { progress: await terminalProgress(), projectDir: process.cwd() });
  if (targets !== 'all') {
    for (const name of targets.filter((n) => !stopped.includes(n))) {
      process.stderr.write(`${name} was not running\n`);
    }
  }
  process.stdout.write(
    stopped.length > 0 ? `stopped: ${stopped.join(', ')}\n` : 'no test host was running\n',
  );
}

export async function listCommand(options: { json?: boolean }): Promise<void> {
  const hosts = await list();
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ hosts }, null, 2)}\n`);
    return;
  }
  if (hosts.length === 0) {
    process.stdout.write('no test hosts (start one with `verdandi testhost up`)\n');
    return;
  }
  const width = Math.max(4, ...hosts.map((h) => h.name.length));
  process.stdout.write(`${'NAME'.padEnd(width)}  ${'ADDRESS'.padEnd(12)}  STATUS\n`);
  for (const h of hosts) {
    process.stdout.write(`${h.name.padEnd(width)}  ${h.address.padEnd(12)}  ${h.status}\n`);
  }
}

/**
 * `testhost box`: the VM's image, built once from Debian packages, and registered as a Vagrant box when
 * Vagrant is installed; says how to boot it with the project's Vagrantfile.
 */
export async function boxCommand(): Promise<void> {
  await checkMachine(realMachine, VM_TOOLS);
  const boxDir = await buildBox({ showProgress: true });
  process.stdout.write(`box: ${boxDir} (boot it under qemu: verdandi testhost up --vm)\n`);
  if (!(await commandExists('vagrant'))) {
    process.stdout.write(
      'not registered with Vagrant (vagrant not found): apt-get install -y vagrant vagrant-libvirt libvirt-daemon-system, then run this again\n',
    );
    return;
  }
  const boxName = await registerVagrantBox(boxDir);
  process.stdout.write(`vagrant box: ${boxName}\n`);
  process.stdout.write(
    "boot it with the project's Vagrantfile (at 192.168.56.10, as inventories/test.yml says), libvirtd and virtlogd running:\n" +
      `  export ${vagrantEnvWords(vagrantBoxEnv({ boxName, kvm: kvmUsableHere() }), process.env).join(' ')}\n` +
      '  vagrant up --provider=libvirt\n',
  );
}
