/**
 * Names and addresses of test hosts, and where their files live. Everything the harness creates on the
 * build machine carries one of these names, so a later run can recognise (and clear) what a crashed run
 * left behind: namespaces `vd-<name>`, host-side veth interfaces `vdh<slot>`, iptables rules commented
 * `verdandi-testhost`, directories under the cache dir.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';

/** The Debian release of the test hosts. */
export const SUITE = 'bookworm';

/** Packages on top of debootstrap's minbase: what a provisioning target needs to be reached and managed. */
export const BASE_PACKAGES: readonly string[] = [
  'openssh-server',
  'sudo',
  'python3',
  'systemd-sysv',
  'iproute2',
  'ca-certificates',
  'curl',
  'git',
];

/** Bump when what image.ts does to a fresh image changes: machines then build a new one. */
const IMAGE_REVISION = 1;

/**
 * The base image's directory carries a hash of what goes into it, so a change (a package added) builds
 * a new image beside the old one, instead of hosts silently booting a stale cached one.
 */
export function baseImageId(suite = SUITE, packages = BASE_PACKAGES, revision = IMAGE_REVISION): string {
  return createHash('sha256')
    .update(JSON.stringify({ suite, packages, revision }))
    .digest('hex')
    .slice(0, 10);
}

/** Names of base image directories in the cache dir (current and outdated ones). */
export const BASE_DIR_PATTERN = /^base(-[0-9a-f]+)?$/;

/** All test hosts live in this /16; host N gets 10.231.N.0/24. */
export const SUBNET = '10.231.0.0/16';
/**
 * Slots handed out to hosts. 251-254 stay free: tests use 10.231.254.x as addresses nobody answers on,
 * and the VM tier takes 252 and 253 (VM_SLOT below).
 */
export const FIRST_SLOT = 1;
export const LAST_SLOT = 250;

/** Comment on every iptables rule the harness adds, to find (and remove) exactly those. */
export const RULE_COMMENT = 'verdandi-testhost';

/** Name of the guest side of the veth pair, inside the host's namespace. */
export const GUEST_INTERFACE = 'eth0';

const NAMESPACE_PREFIX = 'vd-';
const VETH_PREFIX = 'vdh';
/** Linux limits interface names to 15 characters (IFNAMSIZ - 1). */
export const MAX_INTERFACE_NAME = 15;

/** The address the guest has (and that tests connect to). */
export function guestAddress(slot: number): string {
  return `10.231.${slot}.2`;
}

/** The build machine's side of the host's /24: the guest's default gateway. */
export function gatewayAddress(slot: number): string {
  return `10.231.${slot}.1`;
}

export function namespaceName(name: string): string {
  return `${NAMESPACE_PREFIX}${name}`;
}

/** The host name a namespace was made for, or undefined when it is not one of ours. */
export function nameOfNamespace(namespace: string): string | undefined {
  return namespace.startsWith(NAMESPACE_PREFIX) ? namespace.slice(NAMESPACE_PREFIX.length) : undefined;
}

/** Host side of the veth pair. Derived from the slot (not the name) so it always fits in 15 characters. */
export function hostVethName(slot: number): string {
  return `${VETH_PREFIX}${slot}`;
}

/** The slot a host-side veth was made for, or undefined when it is not one of ours. */
export function slotOfVeth(interfaceName: string): number | undefined {
  const match = /^vdh(\d{1,3})$/.exec(interfaceName);
  return match ? Number(match[1]) : undefined;
}

/**
 * Host names become the machine's hostname, part of a namespace name and of file names: lowercase
 * letters, digits and inner dashes, at most 40 characters.
 */
export function validateHostName(name: string): string {
  if (!/^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/.test(name)) {
    throw new UserError(
      `invalid test host name ${JSON.stringify(name)}: use lowercase letters, digits and inner dashes (at most 40 characters), e.g. web1`,
    );
  }
  return name;
}

/** The lowest free slot. Callers hold the harness lock, so two processes never pick the same one. */
export function pickFreeSlot(used: Iterable<number>, first = FIRST_SLOT, last = LAST_SLOT): number {
  const taken = new Set(used);
  for (let slot = first; slot <= last; slot++) {
    if (!taken.has(slot)) return slot;
  }
  throw new UserError(
    `no free test host slot: all ${last - first + 1} addresses 10.231.${first}-${last}.2 are taken; stop some with \`verdandi testhost down NAME\` (or \`verdandi testhost down --all\`)`,
  );
}

/** Where everything lives under the cache dir. */
export interface Layout {
  cacheDir: string;
  /** The debootstrapped Debian tree every host is an overlay on: `base-<id>`. */
  baseDir: string;
  /** debootstrap writes here first; renamed to baseDir once complete. */
  baseBuildDir: string;
  baseBuildLog: string;
  /** The harness's SSH key pair (private key; `.pub` beside it). */
  keyFile: string;
  hostsDir: string;
  locksDir: string;
  leasesDir: string;
  /** ip_forward before the harness turned it on, restored when the last host stops. */
  ipForwardBeforeFile: string;
}

export function cacheDirFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.VERDANDI_CACHE || '/var/cache/verdandi';
}

export function layout(cacheDir: string = cacheDirFromEnv()): Layout {
  return {
    cacheDir,
    baseDir: join(cacheDir, `base-${baseImageId()}`),
    baseBuildDir: join(cacheDir, 'base.build'),
    baseBuildLog: join(cacheDir, 'base.build.log'),
    keyFile: join(cacheDir, 'id_ed25519'),
    hostsDir: join(cacheDir, 'hosts'),
    locksDir: join(cacheDir, 'locks'),
    leasesDir: join(cacheDir, 'leases'),
    ipForwardBeforeFile: join(cacheDir, 'ip_forward.before'),
  };
}

/** One directory per host: its state file, the overlay's upper dir and the console log. */
export function hostPaths(l: Layout, name: string) {
  const dir = join(l.hostsDir, name);
  return {
    dir,
    stateFile: join(dir, 'state.json'),
    upperDir: join(dir, 'upper'),
    logFile: join(dir, 'console.log'),
  };
}

/**
 * The slow VM tier (test/vm/) puts its VM at 10.231.253.2 and libvirt's management network (when booted
 * through Vagrant) in 10.231.252.0/24: slots nspawn hosts never get (they stop at LAST_SLOT), and not
 * the 10.231.254.x that tests use as addresses nobody answers on.
 */
export const VM_SLOT = 253;
export const VM_MANAGEMENT_SLOT = 252;
/** Where the VM answers, whichever way it booted (qemu directly, or Vagrant's libvirt provider). */
export const VM_ADDRESS = guestAddress(VM_SLOT);
/** libvirt's management network when the VM boots through Vagrant (its default 192.168.121.0/24 is not ours). */
export const VM_MANAGEMENT_NETWORK = `10.231.${VM_MANAGEMENT_SLOT}.0/24`;
