/**
 * What a build machine needs before the harness touches anything: Linux, root, and a few tools. The
 * checks are injectable so their messages are tested without changing the machine.
 */
import { UserError } from '../util/errors.js';
import { commandExists } from './exec.js';

/** Each tool the harness runs and the Debian package that provides it. */
export const REQUIRED_TOOLS: ReadonlyArray<{ command: string; pkg: string }> = [
  { command: 'debootstrap', pkg: 'debootstrap' },
  { command: 'systemd-nspawn', pkg: 'systemd-container' },
  { command: 'iptables', pkg: 'iptables' },
  { command: 'ip', pkg: 'iproute2' },
  { command: 'ssh', pkg: 'openssh-client' },
  { command: 'ssh-keygen', pkg: 'openssh-client' },
];

/**
 * What the VM (`testhost box`, `testhost up --vm`) needs on top: the box starts from the test hosts' base
 * image, becomes an ext4 qcow2 disk, and boots under qemu on a tap interface whose DHCP is dnsmasq's.
 */
export const VM_TOOLS: ReadonlyArray<{ command: string; pkg: string }> = [
  ...REQUIRED_TOOLS,
  { command: 'mkfs.ext4', pkg: 'e2fsprogs' },
  { command: 'qemu-img', pkg: 'qemu-utils' },
  { command: 'qemu-system-x86_64', pkg: 'qemu-system-x86' },
  { command: 'dnsmasq', pkg: 'dnsmasq-base' },
];

export interface MachineChecks {
  platform: string;
  isRoot: () => boolean;
  hasCommand: (command: string) => Promise<boolean>;
}

export const realMachine: MachineChecks = {
  platform: process.platform,
  isRoot: () => process.getuid?.() === 0,
  hasCommand: commandExists,
};

/** Throws a one-line UserError saying what to do when the machine cannot run test hosts. */
export async function checkMachine(
  checks: MachineChecks = realMachine,
  tools: ReadonlyArray<{ command: string; pkg: string }> = REQUIRED_TOOLS,
): Promise<void> {
  if (checks.platform !== 'linux') {
    throw new UserError(
      `test hosts need Linux (systemd-nspawn and network namespaces); this is ${checks.platform}: use the Vagrant VM (inventories/test.yml) instead`,
    );
  }
  if (!checks.isRoot()) {
    throw new UserError(
      'test hosts need root (they create network namespaces, iptables rules and containers): run `sudo npx verdandi testhost ...`',
    );
  }
  const missingCommands: string[] = [];
  const missingPackages: string[] = [];
  for (const { command, pkg } of tools) {
    if (await checks.hasCommand(command)) continue;
    missingCommands.push(command);
    if (!missingPackages.includes(pkg)) missingPackages.push(pkg);
  }
  if (missingCommands.length > 0) {
    throw new UserError(
      `test hosts need ${missingCommands.join(', ')}, not found on this machine: run \`apt-get install -y ${missingPackages.join(' ')}\``,
    );
  }
}
