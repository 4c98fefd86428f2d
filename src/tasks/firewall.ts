/**
 * firewall({ allow, inputPolicy?, forwardPolicy?, allowSsh?, sshPort?, allowIcmp?, state? }): the ports
 * and sources the host accepts, as one nftables table, `inet verdandi` (what Ansible roles do with
 * community.general.ufw or ansible.posix.firewalld, on plain nftables: Debian's default firewall).
 *
 * The table is written to /etc/nftables.d/verdandi.nft, checked with `nft -c -f` before it replaces the
 * previous file, loaded with `nft -f` (one atomic transaction: the file deletes and recreates the table),
 * and included from /etc/nftables.conf with the nftables service enabled, so the same rules come back at
 * boot. Other tables (Docker's, the distribution's `inet filter`) are left alone; with several tables a
 * packet must be accepted by each of them.
 *
 * The input chain accepts established connections, loopback, ICMP (`allowIcmp`, default true: path MTU
 * discovery and IPv6 neighbour discovery need it), SSH (`allowSsh`, default true, on `sshPort`, 22), then
 * every `allow` entry; anything else meets `inputPolicy` (default drop).
 *
 * Rules that would cut the controller off are refused: at build time when SSH is neither allowed nor in
 * `allow` under a drop policy, and at plan time when the probe sees the SSH connection the run uses
 * (`$SSH_CONNECTION`: the controller's address and the server's port) and the rules would drop it.
 *
 * Drift: when the table is loaded, a record of the file's sha256 and of the loaded table as `nft list`
 * prints it is kept in /var/lib/verdandi/firewall.loaded; a table changed or deleted by hand no longer
 * matches it and is loaded again.
 */
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import type { FileQuery, Plan, ProbeResult, Step } from '../engine/types.js';
import { quote } from '../util/shell.js';
import { writeStep } from './copy.js';
import { defineTask, type PrepareContext } from './define.js';
import { flag, oneOf, presence, rule, says } from './options.js';
import { MARKER_PREFIX, markedLines, sha256Hex } from './probe-output.js';

const MARKER = `${MARKER_PREFIX}firewall`;
export const RULES_FILE = '/etc/nftables.d/verdandi.nft';
const MAIN_CONF = '/etc/nftables.conf';
const INCLUDE_LINE = `include "${RULES_FILE}"`;
const LOADED_RECORD = '/var/lib/verdandi/firewall.loaded';

const portMessage = says(
  (got) => `port must be a port number (1-65535), a range like "8000-8100", or a list of them, got ${got}`,
);
const portNumber = z.number(portMessage).int(portMessage).min(1, portMessage).max(65535, portMessage);
const portRange = z.string(portMessage).regex(/^\d{1,5}-\d{1,5}$/, portMessage);

/** An address or a network (`203.0.113.7`, `10.0.0.0/8`, `2001:db8::/32`). */
const source = z.string().superRefine(
  rule((value: string) => {
    const [address, prefix, extra] = value.split('/');
    const family = isIP(address);
    const max = family === 4 ? 32 : 128;
    if (
      family === 0 ||
      extra !== undefined ||
      (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= max))
    ) {
      return `from must hold IPv4/IPv6 addresses or networks (10.0.0.0/8), got ${JSON.stringify(value)}`;
    }
    return undefined;
  }),
);

const allowEntry = z.strictObject(
  {
    /** A port, a range ('8000-8100') or a list of them. */
    port: z.union([portNumber, portRange, z.array(z.union([portNumber, portRange])).min(1)], portMessage),
    protocol: oneOf('protocol', ['tcp', 'udp']).default('tcp'),
    /** Only from these addresses or networks (default: from anywhere). */
    from: z.union([source, z.array(source).min(1)]).optional(),
  },
  says((got) => `each allow entry must be { port, protocol?, from? }, got ${got}`),
);

const options = z.strictObject({
  /** What the host accepts besides SSH: `[{ port: 443 }, { port: 5432, from: '10.0.0.0/8' }]`. */
  allow: z
    .array(
      allowEntry,
      says((got) => `allow must be a list of { port, protocol?, from? }, got ${got}`),
    )
    .default([]),
  /** What happens to other incoming packets (default drop). */
  inputPolicy: oneOf('inputPolicy', ['drop', 'accept']).default('drop'),
  /** The policy of forwarded packets (default accept: containers' traffic is Docker's business). */
  forwardPolicy: oneOf('forwardPolicy', ['drop', 'accept']).default('accept'),
  /** Accept SSH on `sshPort` from anywhere (default true). */
  allowSsh: flag('allowSsh').default(true),
  sshPort: z
    .number(says((got) => `sshPort must be a port number, got ${got}`))
    .int()
    .min(1)
    .max(65535)
    .default(22),
  /** Accept ICMP and ICMPv6 (default true). */
  allowIcmp: flag('allowIcmp').default(true),
  /** absent: the table, its file and its include are removed. */
  state: presence.default('present'),
});

export type FirewallOptions = z.input<typeof options>;

interface Allow {
  ports: string[];
  protocol: 'tcp' | 'udp';
  from: string[];
}

interface FirewallSpec {
  label: string;
  state: 'present' | 'absent';
  /** The rules file's content. */
  content: string;
  /** The accepted traffic, to check that the controller's connection stays open. */
  allows: Allow[];
  inputPolicy: 'drop' | 'accept';
}

function portList(port: number | string | Array<number | string>): string[] {
  return (Array.isArray(port) ? port : [port]).map(String);
}

/** `{ a, b }` or `a`, as nft writes a set of values. */
function nftSet(values: string[]): string {
  return values.length === 1 ? values[0] : `{ ${values.join(', ')} }`;
}

function allowRules({ ports, protocol, from }: Allow): string[] {
  const match = `${protocol} dport ${nftSet(ports)} accept`;
  if (from.length === 0) return [match];
  const v4 = from.filter((address) => isIP(address.split('/')[0]) === 4);
  const v6 = from.filter((address) => isIP(address.split('/')[0]) === 6);
  return [
    ...(v4.length > 0 ? [`ip saddr ${nftSet(v4)} ${match}`] : []),
    ...(v6.length > 0 ? [`ip6 saddr ${nftSet(v6)} ${match}`] : []),
  ];
}

/** The rules file: it replaces the whole table in one transaction when loaded. */
export function rulesFile(opts: {
  allows: Allow[];
  inputPolicy: string;
  forwardPolicy: string;
  allowIcmp: boolean;
}): string {
  const input = [
    `type filter hook input priority filter; policy ${opts.inputPolicy};`,
    'ct state established,related accept',
    'ct state invalid drop',
    'iif "lo" accept',
    ...(opts.allowIcmp ? ['meta l4proto { icmp, ipv6-icmp } accept'] : []),
    ...opts.allows.flatMap(allowRules),
  ];
  return [
    '#!/usr/sbin/nft -f',
    '# Written by Verdandi (the firewall task): changes made here are replaced on the next run.',
    // Declaring the table first makes the delete succeed on a host where it does not exist yet.
    'table inet verdandi',
    'delete table inet verdandi',
    'table inet verdandi {',
    '  chain input {',
    ...input.map((line) => `    ${line}`),
    '  }',
    '  chain forward {',
    `    type filter hook forward priority filter; policy ${opts.forwardPolicy};`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Whether the rules accept a TCP connection from `address` to `port`. */
export function acceptsTcp(allows: Allow[], inputPolicy: string, address: string, port: number): boolean {
  if (inputPolicy === 'accept') return true;
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  return allows.some((allow) => {
    if (allow.protocol !== 'tcp') return false;
    const inRange = allow.ports.some((p) => {
      const [low, high = low] = p.split('-').map(Number);
      return port >= low && port <= high;
    });
    if (!inRange) return false;
    if (allow.from.length === 0) return true;
    const list = new BlockList();
    for (const network of allow.from) {
      const [net, prefix] = network.split('/');
      const netFamily = isIP(net) === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) list.addAddress(net, netFamily);
      else list.addSubnet(net, Number(prefix), netFamily);
    }
    return list.check(address, family);
  });
}

function prepare(opts: z.output<typeof options>, { fail, label }: PrepareContext): FirewallSpec {
  const allows: Allow[] = [
    ...(opts.allowSsh ? [{ ports: [String(opts.sshPort)], protocol: 'tcp' as const, from: [] }] : []),
    ...opts.allow.map((entry) => ({
      ports: portList(entry.port),
      protocol: entry.protocol,
      from: entry.from === undefined ? [] : Array.isArray(entry.from) ? entry.from : [entry.from],
    })),
  ];
  for (const allow of allows) {
    for (const port of allow.ports) {
      const [low, high] = port.split('-').map(Number);
      if (high !== undefined && !(low >= 1 && high <= 65535 && low < high)) {
        fail('allow', `the port range ${port} must go from a lower to a higher port within 1-65535`);
      }
    }
  }
  const sshReachable = allows.some(
    (allow) =>
      allow.protocol === 'tcp' &&
      allow.ports.some((p) => {
        const [low, high = low] = p.split('-').map(Number);
        return opts.sshPort >= low && opts.sshPort <= high;
      }),
  );
  if (opts.state === 'present' && opts.inputPolicy === 'drop' && !sshReachable) {
    fail(
      'allowSsh',
      `these rules drop SSH (port ${opts.sshPort}): Verdandi could not reach the host again to change them`,
      "keep allowSsh: true, or allow the SSH port from the controller's address in allow",
    );
  }
  return {
    label,
    state: opts.state,
    content: rulesFile({ ...opts, allows }),
    allows,
    inputPolicy: opts.inputPolicy,
  };
}

function probe(): string {
  return [
    `command -v nft >/dev/null 2>&1 || { echo ${quote(`${MARKER} no-nft`)}; exit 0; }`,
    // The connection this run uses: "client-address client-port server-address server-port".
    `[ -n "\${SSH_CONNECTION:-}" ] && printf '%s %s\\n' ${quote(`${MARKER} connection`)} "$SSH_CONNECTION"`,
    `if nft list table inet verdandi >/dev/null 2>&1; then printf '%s %s\\n' ${quote(`${MARKER} live`)} "$(nft list table inet verdandi | sha256sum | cut -d' ' -f1)"; else echo ${quote(`${MARKER} live -`)}; fi`,
    `if [ -f ${LOADED_RECORD} ]; then printf '%s %s\\n' ${quote(`${MARKER} record`)} "$(head -n 2 ${LOADED_RECORD} | tr '\\n' ' ')"; fi`,
    `grep -qxF ${quote(INCLUDE_LINE)} ${MAIN_CONF} 2>/dev/null && echo ${quote(`${MARKER} included`)}`,
    `printf '%s %s\\n' ${quote(`${MARKER} service`)} "$(systemctl is-enabled nftables 2>/dev/null || echo unknown)"`,
    'true',
  ].join('\n');
}

function files(): FileQuery[] {
  return [{ path: RULES_FILE, checksum: true }];
}

/** The step loading the rules file and recording what was loaded. */
function loadStep(fileSha: string): Step {
  return {
    kind: 'run',
    command: [
      `nft -f ${RULES_FILE}`,
      `mkdir -p ${quote(LOADED_RECORD.replace(/\/[^/]+$/, ''))}`,
      `{ echo ${fileSha}; nft list table inet verdandi | sha256sum | cut -d' ' -f1; } > ${LOADED_RECORD}`,
    ].join(' && '),
    description: `nft -f ${RULES_FILE}`,
  };
}

function plan(spec: FirewallSpec, result: ProbeResult): Plan {
  const { label } = spec;
  const fields = markedLines(result.stdout, MARKER);
  const field = (name: string) => fields.find(([first]) => first === name);
  if (field('no-nft')) {
    return {
      steps: [],
      error: `${label}: nft is not installed on the host: install it first with apt({ packages: 'nftables' })`,
    };
  }
  const file = result.files?.get(RULES_FILE);
  const live = field('live')?.[1];
  const service = field('service')?.[1];
  if (!file || live === undefined || service === undefined) {
    return {
      steps: [],
      error: `${label}: could not read the firewall's state (exit code ${result.exitCode})`,
    };
  }
  const [recordedFile, recordedLive] = field('record')?.slice(1) ?? [];
  const included = field('included') !== undefined;

  if (spec.state === 'absent') {
    const steps: Step[] = [];
    const reasons: string[] = [];
    if (live !== '-') {
      steps.push({ kind: 'run', command: 'nft delete table inet verdandi' });
      reasons.push('the table is loaded');
    }
    if (file.type !== 'absent' || recordedFile !== undefined) {
      steps.push({ kind: 'run', command: `rm -f ${RULES_FILE} ${LOADED_RECORD}` });
      reasons.push(`${RULES_FILE} exists`);
    }
    if (included) {
      steps.push({ kind: 'run', command: `sed -i ${quote(`\\#^${INCLUDE_LINE}$#d`)} ${MAIN_CONF}` });
      reasons.push(`${MAIN_CONF} includes it`);
    }
    return steps.length === 0 ? { steps } : { steps, reason: reasons.join(', ') };
  }

  const connection = field('connection');
  if (connection !== undefined) {
    const [, client, , , serverPort] = connection;
    if (isIP(client ?? '') !== 0 && /^\d+$/.test(serverPort ?? '')) {
      if (!acceptsTcp(spec.allows, spec.inputPolicy, client, Number(serverPort))) {
        return {
          steps: [],
          error: `${label}: refusing rules that would drop this run's own SSH connection (from ${client} to port ${serverPort}): Verdandi could not reach the host again. Allow port ${serverPort} from ${client}, or keep allowSsh: true with sshPort: ${serverPort}`,
        };
      }
    }
  }

  const wantedSha = sha256Hex(spec.content);
  const steps: Step[] = [];
  const reasons: string[] = [];
  const fileDiffers = file.type !== 'file' || file.sha256 !== wantedSha;
  if (fileDiffers) {
    steps.push(
      { kind: 'run', command: 'mkdir -p /etc/nftables.d' },
      writeStep({
        path: RULES_FILE,
        content: spec.content,
        mode: '0644',
        owner: 'root',
        group: 'root',
        validate: 'nft -c -f %s',
      }),
    );
    reasons.push(file.type === 'absent' ? `${RULES_FILE} is missing` : 'the rules differ');
  }
  if (fileDiffers || live === '-' || recordedFile !== wantedSha || recordedLive !== live) {
    steps.push(loadStep(wantedSha));
    if (!fileDiffers) reasons.push(live === '-' ? 'the table is not loaded' : 'the loaded table differs');
  }
  if (!included) {
    steps.push({
      kind: 'run',
      command: `{ [ -f ${MAIN_CONF} ] || echo '#!/usr/sbin/nft -f' > ${MAIN_CONF}; } && printf '%s\\n' ${quote(INCLUDE_LINE)} >> ${MAIN_CONF}`,
      description: `include ${RULES_FILE} from ${MAIN_CONF}`,
    });
    reasons.push(`${MAIN_CONF} does not include it`);
  }
  if (service !== 'enabled') {
    steps.push({ kind: 'run', command: 'systemctl enable nftables' });
    reasons.push('nftables is not enabled at boot');
  }
  if (steps.length === 0) return { steps };
  return {
    steps,
    reason: reasons.join(', '),
    diff: fileDiffers ? { path: RULES_FILE, after: spec.content } : undefined,
  };
}

export const firewall = defineTask({
  type: 'firewall',
  becomeUser: { refuse: 'only root may change the firewall rules' },
  options,
  // The table's name is fixed: the label names it.
  subject: 'state',
  label: () => 'firewall inet verdandi',
  prepare,
  probe,
  files,
  plan,
});
