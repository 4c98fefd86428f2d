/**
 * The network of the test hosts. Each host has its own network namespace `vd-<name>` with one veth pair:
 * `vdh<slot>` on the build machine (10.231.N.1/24) and `eth0` inside (10.231.N.2/24, default route via
 * .1). The build machine routes between the /24s, so hosts reach each other, and masquerades what leaves
 * 10.231.0.0/16, so hosts reach the Debian mirror. The global part (forwarding, iptables rules) is set up
 * with the first host and removed with the last one.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { delay, run, runOk } from './exec.js';
import {
  GUEST_INTERFACE,
  gatewayAddress,
  guestAddress,
  hostVethName,
  type Layout,
  nameOfNamespace,
  namespaceName,
  RULE_COMMENT,
  SUBNET,
  slotOfVeth,
} from './naming.js';

// ---- per host --------------------------------------------------------------------------------------

export async function createHostNetwork(name: string, slot: number): Promise<void> {
  const ns = namespaceName(name);
  const veth = hostVethName(slot);
  await runOk('ip', ['netns', 'add', ns]);
  // The guest end is created directly inside the namespace, so no `eth0` ever appears on the build machine.
  await runOk('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', GUEST_INTERFACE, 'netns', ns]);
  await runOk('ip', ['addr', 'add', `${gatewayAddress(slot)}/24`, 'dev', veth]);
  await runOk('ip', ['link', 'set', veth, 'up']);
  await runOk('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  await runOk('ip', ['-n', ns, 'addr', 'add', `${guestAddress(slot)}/24`, 'dev', GUEST_INTERFACE]);
  await runOk('ip', ['-n', ns, 'link', 'set', GUEST_INTERFACE, 'up']);
  await runOk('ip', ['-n', ns, 'route', 'add', 'default', 'via', gatewayAddress(slot)]);
}

/** Removes the namespace and the veth pair; whatever of them is already gone is fine. */
export async function removeHostNetwork(name: string, slot: number | undefined): Promise<void> {
  // Deleting the namespace destroys its end of the veth pair, which takes the other end with it.
  await removeNamespace(name);
  if (slot !== undefined) await removeVeth(slot);
}

export async function removeNamespace(name: string): Promise<void> {
  if (!(await listNamespaces()).includes(namespaceName(name))) return;
  const result = await run('ip', ['netns', 'delete', namespaceName(name)]);
  // Another process may have deleted it between our look and our delete: gone is what we want.
  if (result.code !== 0 && (await listNamespaces()).includes(namespaceName(name))) {
    throw new Error(`\`ip netns delete ${namespaceName(name)}\` failed: ${result.stderr.trim()}`);
  }
}

/**
 * Removes the host side of a veth pair and waits until it is gone: after its namespace is deleted the
 * kernel destroys the pair asynchronously, so it may linger (or vanish under our `ip link delete`).
 */
export async function removeVeth(slot: number): Promise<void> {
  const veth = hostVethName(slot);
  const deadline = Date.now() + 10_000;
  while ((await listOurVeths()).includes(veth)) {
    const result = await run('ip', ['link', 'delete', veth]);
    if (Date.now() > deadline) {
      throw new Error(
        `\`ip link delete ${veth}\` did not remove it: ${result.stderr.trim() || 'still there'}`,
      );
    }
    if (result.code !== 0) await delay(100);
  }
}

export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  // Lines look like `vd-web1 (id: 3)` or just `vd-web1`.
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0])
    .filter(Boolean);
}

/** Namespaces named like ours (`vd-<name>`), with the host name each was made for. */
export async function listOurNamespaces(): Promise<Array<{ namespace: string; name: string }>> {
  return (await listNamespaces()).flatMap((namespace) => {
    const name = nameOfNamespace(namespace);
    return name ? [{ namespace, name }] : [];
  });
}

/** Host-side veth interfaces named like ours (`vdh<slot>`). */
export async function listOurVeths(): Promise<string[]> {
  const { stdout } = await run('ip', ['-o', 'link', 'show']);
  // `12: vdh3@if2: <BROADCAST,...` → `vdh3`
  return stdout
    .split('\n')
    .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1])
    .filter((n): n is string => !!n && slotOfVeth(n) !== undefined);
}

// ---- global ----------------------------------------------------------------------------------------

/** The iptables rules of the harness, as arguments after `-t TABLE -A/-C/-D`. */
export const GLOBAL_RULES: ReadonlyArray<{ table: string; chain: string; rule: string[] }> = [
  // Traffic leaving the test network (apt to the mirror, DNS) looks like the build machine's own;
  // traffic between test hosts keeps its real source address.
  {
    table: 'nat',
    chain: 'POSTROUTING',
    rule: ['-s', SUBNET, '!', '-d', SUBNET, '-m', 'comment', '--comment', RULE_COMMENT, '-j', 'MASQUERADE'],
  },
  // Accepted first, even where FORWARD drops by default (e.g. a machine with docker installed).
  {
    table: 'filter',
    chain: 'FORWARD',
    rule: ['-s', SUBNET, '-m', 'comment', '--comment', RULE_COMMENT, '-j', 'ACCEPT'],
  },
  {
    table: 'filter',
    chain: 'FORWARD',
    rule: ['-d', SUBNET, '-m', 'comment', '--comment', RULE_COMMENT, '-j', 'ACCEPT'],
  },
];

async function ruleExists(table: string, chain: string, rule: string[]): Promise<boolean> {
  return (await run('iptables', ['-w', '-t', table, '-C', chain, ...rule])).code === 0;
}

const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

/**
 * Every booted systemd takes inotify instances from one per-user pool (128 by default): past a few
 * dozen hosts, new ones fail to boot with "Too many open files". Raise the limits, never lower them.
 */
const INOTIFY_LIMITS: Array<[path: string, atLeast: number]> = [
  ['/proc/sys/fs/inotify/max_user_instances', 8192],
  ['/proc/sys/fs/inotify/max_user_watches', 524288],
];

async function raiseInotifyLimits(): Promise<void> {
  for (const [path, atLeast] of INOTIFY_LIMITS) {
    const current = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    if (!(current >= atLeast)) await writeFile(path, String(atLeast));
  }
}

/** Forwarding on and the iptables rules in place. Idempotent; callers hold the harness lock. */
export async function ensureGlobalNetwork(l: Layout): Promise<void> {
  await raiseInotifyLimits();
  const forwarding = (await readFile(IP_FORWARD, 'utf8')).trim();
  if (forwarding !== '1') {
    // Remember what the machine had, to put it back when the last host stops.
    await writeFile(l.ipForwardBeforeFile, forwarding);
    await writeFile(IP_FORWARD, '1');
  }
  for (const { table, chain, rule } of GLOBAL_RULES) {
    if (!(await ruleExists(table, chain, rule))) {
      await runOk('iptables', ['-w', '-t', table, '-I', chain, '1', ...rule]);
    }
  }
}

/** Removes every rule of the harness (duplicates too) and restores ip_forward. Callers hold the lock. */
export async function removeGlobalNetwork(l: Layout): Promise<void> {
  for (const { table, chain, rule } of GLOBAL_RULES) {
    while (await ruleExists(table, chain, rule)) {
      await runOk('iptables', ['-w', '-t', table, '-D', chain, ...rule]);
    }
  }
  const before = await readFile(l.ipForwardBeforeFile, 'utf8').catch(() => undefined);
  if (before !== undefined) {
    await writeFile(IP_FORWARD, before.trim());
    await rm(l.ipForwardBeforeFile, { force: true });
  }
}

/** Whether any rule of the harness is in place (for tests and `list`). */
export async function globalRulesPresent(): Promise<boolean> {
  for (const { table, chain, rule } of GLOBAL_RULES) if (await ruleExists(table, chain, rule)) return true;
  return false;
}
