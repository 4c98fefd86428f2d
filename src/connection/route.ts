/**
 * How to reach each host over SSH: its inventory settings, the OpenSSH client configuration
 * (ssh-config.ts) for what the inventory does not say, then the defaults; and the jump hosts
 * (bastions) in front of it. What the inventory gives explicitly wins; the ssh config is looked up by
 * the host's address as written (its name when it has none), like `ssh <address>` would.
 *
 * A jump chain (`jump: a,b` in the inventory or `ProxyJump a,b`) is reached in order: `a` directly
 * (or through its own jump hosts), `b` through `a`, the host through `b`. A hop is an inventory host
 * (its own settings apply) or `[user@]host[:port]` (looked up in the ssh config like any host).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { didYouMean } from '../inventory/suggest.js';
import { formatOrigin, type InventoryHost, type Origin } from '../inventory/types.js';
import { UserError } from '../util/errors.js';
import { type ConfigSource, type ConfigValue, expandHostName, type SshConfig } from './ssh-config.js';

export type HostKeyChecking = 'yes' | 'accept-new' | 'off';

/** The settings `verdandi ping -v` explains, each with where its value came from. */
export type EndpointSetting =
  | 'address'
  | 'port'
  | 'user'
  | 'key'
  | 'jump'
  | 'known hosts'
  | 'host key checking'
  | 'connect timeout'
  | 'keepalive';

/** One SSH server to connect to: a host, or a jump host in front of one. */
export interface SshEndpoint {
  /** The inventory host name, or the hop as written (`admin@gate:2222`). */
  name: string;
  address: string;
  port: number;
  user: string;
  become: boolean;
  /** The inventory's private key (only that key is offered, as before). */
  key?: string;
  /** The ssh config's IdentityFile values, expanded, in order (missing files are skipped). */
  identityFiles: string[];
  /** IdentitiesOnly: offer the identity files only, not the ssh-agent's keys. */
  identitiesOnly: boolean;
  /** UserKnownHostsFile (else the project's known_hosts). */
  knownHostsFile?: string;
  hostKeyChecking?: HostKeyChecking;
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** The jump host this one is reached through (the last hop of its chain). */
  via?: SshEndpoint;
  /** Where each value came from: `inventory <file:line>`, `ssh config <file:line>`, `default`... */
  sources: Partial<Record<EndpointSetting, string>>;
}

/** One hop of a jump chain as written. */
export interface JumpHop {
  /** An inventory host name. */
  host?: string;
  /** Else an address, with the user and port written with it. */
  address?: string;
  user?: string;
  port?: number;
  text: string;
}

/**
 * The most jump hosts in front of one host. OpenSSH sets none; a chain longer than this is a mistake
 * (each hop is an SSH connection inside the previous one), and a clear error beats a slow timeout.
 */
export const MAX_JUMP_HOPS = 8;

/** Where a value was written, for messages. */
type Where = { origin: Origin } | { config: ConfigSource } | undefined;

function whereText(where: Where): string {
  if (!where) return '';
  return 'origin' in where
    ? `${formatOrigin(where.origin)}: `
    : `${where.config.file}:${where.config.line}: `;
}

/**
 * Parses `a,b` / `user@host:port` / `[::1]:22`. An unknown bare name (not an inventory host, no user,
 * port or dot, not a Host of the ssh config) is refused when `strict`: a typo, most likely.
 */
export function parseJump(
  text: string,
  inventoryHosts: ReadonlySet<string> | ReadonlyMap<string, unknown>,
  opts: {
    where?: Where;
    strict?: boolean;
    isAlias?: (name: string) => boolean;
    /** The Host names of the ssh config, for the did-you-mean of an unknown name. */
    aliases?: () => Iterable<string>;
    of?: string;
  } = {},
): JumpHop[] {
  const hops: JumpHop[] = [];
  for (const raw of text.split(',')) {
    const hop = raw.trim();
    const of = opts.of === undefined ? '' : ` of ${opts.of}`;
    const fail = (why: string): never => {
      throw new UserError(`${whereText(opts.where)}jump host ${JSON.stringify(hop)}${of}: ${why}`, 1);
    };
    if (hop === '') fail('empty name in the list (write hosts separated by commas: bastion or a,b)');
    if (inventoryHosts.has(hop)) {
      hops.push({ host: hop, text: hop });
      continue;
    }
    const m = /^(?:ssh:\/\/)?(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s[\]]+)(?::(\d+))?$/.exec(hop);
    if (!m) fail('expected an inventory host name or user@host:port');
    const [, user, hostPart, portText] = m as RegExpExecArray;
    const address = hostPart.replace(/^\[(.*)\]$/, '$1');
    let port: number | undefined;
    if (portText !== undefined) {
      port = Number(portText);
      if (port < 1 || port > 65535) fail(`port ${portText} is not from 1 to 65535`);
    }
    const bare = user === undefined && port === undefined && !/[.:]/.test(address);
    if (opts.strict && bare && !opts.isAlias?.(address)) {
      fail(
        `not an inventory host${didYouMean(address, [...inventoryHosts.keys(), ...(opts.aliases?.() ?? [])])}, nor a Host of the ssh config, ` +
          'nor a name of /etc/hosts; write user@host:port for a machine outside the inventory',
      );
    }
    hops.push({ address, user, port, text: hop });
  }
  return hops;
}

/** The key of a connection that can be shared: same server, same way there. */
export function endpointKey(e: SshEndpoint): string {
  const own = `${e.user}@${e.address}:${e.port}${e.key ? ` key ${e.key}` : ''}`;
  return e.via ? `${own} via ${endpointKey(e.via)}` : own;
}

/** Jump hosts reached through one another; `members` for reporting each cycle once. */
export class JumpCycleError extends UserError {
  constructor(
    message: string,
    readonly members: string[],
  ) {
    super(message, 1, 'a host cannot be reached through itself: check the jump of each host in the cycle');
  }
}

/** `bastion → web1`: the hops in the order they are reached. */
export function describeChain(e: SshEndpoint): string[] {
  return e.via ? [...describeChain(e.via), e.name] : [e.name];
}

/**
 * Resolves and caches the endpoint of each host of an inventory. Errors (an unknown jump host, a
 * cycle, a bad value in the ssh config) are UserErrors naming the file and line.
 */
export class SshRouting {
  private readonly cache = new Map<string, SshEndpoint>();

  constructor(
    readonly config: SshConfig,
    readonly hosts: ReadonlyMap<string, InventoryHost>,
  ) {}

  endpointOf(host: InventoryHost): SshEndpoint {
    const cached = this.cache.get(host.name);
    if (cached) return cached;
    const endpoint = this.resolveHost(host, []);
    this.cache.set(host.name, endpoint);
    return endpoint;
  }

  private resolveHost(host: InventoryHost, trail: string[], via?: SshEndpoint | null): SshEndpoint {
    const explicit = host.settingOrigins ?? {};
    const fromInventory = (name: keyof typeof explicit) => {
      const origin = explicit[name];
      return origin ? `inventory ${formatOrigin(origin)}` : undefined;
    };
    const endpoint = this.build(host.name, host.address, {
      address: explicit.address ? { value: host.address, source: fromInventory('address')! } : undefined,
      port: explicit.port ? { value: host.port, source: fromInventory('port')! } : undefined,
      user: explicit.user ? { value: host.user, source: fromInventory('user')! } : undefined,
      key:
        host.key !== undefined ? { value: host.key, source: fromInventory('key') ?? 'inventory' } : undefined,
      become: explicit.become ? host.become : undefined,
    });
    if (via !== undefined) {
      if (via) endpoint.via = via;
      return endpoint;
    }
    const next = [...trail, host.name];
    if (host.jump !== undefined) {
      const where: Where = explicit.jump ? { origin: explicit.jump } : undefined;
      const hops = parseJump(host.jump, this.hosts, {
        where,
        strict: true,
        isAlias: this.isKnownName,
        aliases: () => this.config.aliases(),
        of: host.name,
      });
      endpoint.via = this.chain(hops, next, where);
      endpoint.sources.jump = `${host.jump}  (${fromInventory('jump') ?? 'inventory'})`;
    } else if (explicit.jump) {
      endpoint.sources.jump = `none  (${fromInventory('jump')})`;
    } else this.jumpFromConfig(endpoint, host.address, next, explicit.user ? host.user : undefined);
    return endpoint;
  }

  /**
   * A bare jump host name (no user, port or dot) must name something: an inventory host (checked by
   * parseJump), a Host of the ssh config, or a name of /etc/hosts. Anything else is most likely a typo,
   * refused before any connection rather than left to a DNS search.
   */
  private readonly isKnownName = (name: string) =>
    this.config.definesAlias(name) || etcHostsNames().has(name);

  /** ProxyJump from the ssh config, for a host the inventory gives no `jump`. */
  private jumpFromConfig(endpoint: SshEndpoint, lookupName: string, trail: string[], user?: string): void {
    const proxy = this.config.lookup(lookupName, { user }).settings.proxyjump;
    if (!proxy || proxy.value.toLowerCase() === 'none') return;
    const where: Where = { config: proxy.source };
    const hops = parseJump(proxy.value, this.hosts, {
      where,
      strict: true,
      isAlias: this.isKnownName,
      aliases: () => this.config.aliases(),
      of: trail[trail.length - 1],
    });
    endpoint.via = this.chain(hops, trail, where);
    endpoint.sources.jump = `${proxy.value}  (ssh config ${sourceText(proxy.source)})`;
  }

  /** The endpoint of the last hop of a chain, each hop reached through the one before. */
  private chain(hops: JumpHop[], trail: string[], where: Where): SshEndpoint {
    let previous: SshEndpoint | undefined;
    for (const [index, hop] of hops.entries()) {
      const name = hop.host ?? hop.text;
      if (trail.includes(name)) {
        throw new JumpCycleError(
          `${whereText(where)}jump hosts form a cycle: ${[...trail, name].join(' → ')}`,
          trail.slice(trail.indexOf(name)),
        );
      }
      // The first hop is reached its own way (its own jump hosts); the next ones through the previous.
      const via = index === 0 ? undefined : (previous ?? null);
      if (hop.host) {
        const host = this.hosts.get(hop.host)!;
        previous = this.resolveHost(host, trail, via);
      } else {
        const endpoint = this.build(hop.text, hop.address!, {
          port: hop.port !== undefined ? { value: hop.port, source: `jump ${hop.text}` } : undefined,
          user: hop.user !== undefined ? { value: hop.user, source: `jump ${hop.text}` } : undefined,
        });
        if (via === undefined) this.jumpFromConfig(endpoint, hop.address!, [...trail, name], hop.user);
        else if (via) endpoint.via = via;
        previous = endpoint;
      }
    }
    const reached = describeChain(previous!);
    if (reached.length > MAX_JUMP_HOPS) {
      const host = trail[trail.length - 1];
      throw new UserError(
        `${whereText(where)}${host} is behind ${reached.length} jump hosts (${[...reached, host].join(' → ')}), more than ${MAX_JUMP_HOPS}`,
        1,
        'check the jump of each host of the chain: one of them most likely names the wrong host',
      );
    }
    return previous!;
  }

  /** An endpoint from the given values, then the ssh config for `lookupName`, then the defaults. */
  private build(
    name: string,
    lookupName: string,
    given: {
      address?: { value: string; source: string };
      port?: { value: number; source: string };
      user?: { value: string; source: string };
      key?: { value: string; source: string };
      become?: boolean;
    },
  ): SshEndpoint {
    const { settings, identityFiles } = this.config.lookup(lookupName, { user: given.user?.value });
    const sources: SshEndpoint['sources'] = {};
    const fromConfig = (v: ConfigValue) => `ssh config ${sourceText(v.source)}`;

    let address = lookupName;
    sources.address = 'default (the host name)';
    if (given.address) {
      address = given.address.value;
      sources.address = given.address.source;
    } else if (settings.hostname) {
      address = expandHostName(settings.hostname.value, lookupName);
      sources.address = fromConfig(settings.hostname);
    }

    let port = 22;
    sources.port = 'default';
    if (given.port) {
      port = given.port.value;
      sources.port = given.port.source;
    } else if (settings.port) {
      port = Number(settings.port.value);
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        configError(settings.port, 'Port must be a number from 1 to 65535');
      sources.port = fromConfig(settings.port);
    }

    let user = 'root';
    sources.user = 'default';
    if (given.user) {
      user = given.user.value;
      sources.user = given.user.source;
    } else if (settings.user) {
      user = settings.user.value;
      sources.user = fromConfig(settings.user);
    }

    const tokens = { h: address, n: lookupName, p: String(port), r: user };
    const endpoint: SshEndpoint = {
      name,
      address,
      port,
      user,
      become: given.become ?? user !== 'root',
      identityFiles: [],
      identitiesOnly: false,
      sources,
    };
    if (given.key) {
      endpoint.key = given.key.value;
      sources.key = `${given.key.value}  (${given.key.source})`;
    } else if (identityFiles.length > 0) {
      endpoint.identityFiles = identityFiles.map((f) => expandPath(f.value, tokens));
      const only = settings.identitiesonly;
      endpoint.identitiesOnly = !!only && yesNo(only, 'IdentitiesOnly');
      sources.key =
        `${endpoint.identityFiles.join(', ')}  (ssh config ${identityFiles.map((f) => sourceText(f.source)).join(', ')})` +
        (endpoint.identitiesOnly ? '' : ', and the ssh-agent');
    } else sources.key = 'ssh-agent  (default)';

    if (settings.userknownhostsfile) {
      const first = settings.userknownhostsfile.value.split(/\s+/)[0];
      endpoint.knownHostsFile = expandPath(first, tokens);
      sources['known hosts'] = `${endpoint.knownHostsFile}  (${fromConfig(settings.userknownhostsfile)})`;
    }
    if (settings.stricthostkeychecking) {
      endpoint.hostKeyChecking = hostKeyCheckingOf(settings.stricthostkeychecking);
      sources['host key checking'] =
        `${endpoint.hostKeyChecking}  (${fromConfig(settings.stricthostkeychecking)})`;
    }
    if (settings.connecttimeout) {
      endpoint.connectTimeoutMs = seconds(settings.connecttimeout, 'ConnectTimeout') * 1000;
      sources['connect timeout'] =
        `${endpoint.connectTimeoutMs / 1000} s  (${fromConfig(settings.connecttimeout)})`;
    }
    if (settings.serveraliveinterval) {
      endpoint.keepaliveIntervalMs = seconds(settings.serveraliveinterval, 'ServerAliveInterval') * 1000;
      sources.keepalive = `${endpoint.keepaliveIntervalMs / 1000} s  (${fromConfig(settings.serveraliveinterval)})`;
    }
    if (settings.serveralivecountmax) {
      endpoint.keepaliveCountMax = seconds(settings.serveralivecountmax, 'ServerAliveCountMax');
    }
    return endpoint;
  }
}

function sourceText(s: ConfigSource): string {
  return `${s.file}:${s.line}`;
}

function configError(v: ConfigValue, what: string): never {
  throw new UserError(`${sourceText(v.source)}: ${what}, got ${JSON.stringify(v.value)}`, 1);
}

function yesNo(v: ConfigValue, name: string): boolean {
  const value = v.value.toLowerCase();
  if (value === 'yes' || value === 'true') return true;
  if (value === 'no' || value === 'false') return false;
  return configError(v, `${name} must be yes or no`);
}

function seconds(v: ConfigValue, name: string): number {
  const n = Number(v.value);
  if (!/^\d+$/.test(v.value) || !Number.isSafeInteger(n)) configError(v, `${name} must be a whole number`);
  return n;
}

/** OpenSSH's values; `ask` is `yes` (Verdandi never prompts): an unknown host key is refused. */
function hostKeyCheckingOf(v: ConfigValue): HostKeyChecking {
  const value = v.value.toLowerCase();
  if (value === 'yes' || value === 'ask' || value === 'true') return 'yes';
  if (value === 'accept-new') return 'accept-new';
  if (value === 'no' || value === 'off' || value === 'false') return 'off';
  return configError(v, 'StrictHostKeyChecking must be yes, accept-new, no or ask');
}

/** `~` and the tokens OpenSSH expands in file names (%d home, %h host, %n alias, %p, %r, %u, %%). */
export function expandPath(value: string, tokens: { h: string; n: string; p: string; r: string }): string {
  const home = process.env.HOME || os.homedir();
  const expanded = value.replace(/%([%dhnpru])/g, (_, t: string) => {
    if (t === '%') return '%';
    if (t === 'd') return home;
    if (t === 'u') return os.userInfo().username;
    return tokens[t as 'h' | 'n' | 'p' | 'r'];
  });
  if (expanded === '~') return home;
  if (expanded.startsWith('~/')) return path.join(home, expanded.slice(2));
  return path.resolve(home, '.ssh', expanded);
}

let etcHosts: Set<string> | undefined;

/** The names of /etc/hosts (read once; none when it cannot be read). */
function etcHostsNames(): Set<string> {
  if (etcHosts) return etcHosts;
  etcHosts = new Set();
  let text = '';
  try {
    text = readFileSync('/etc/hosts', 'utf8');
  } catch {
    return etcHosts;
  }
  for (const line of text.split('\n')) {
    const words = line.replace(/#.*/, '').trim().split(/\s+/);
    for (const name of words.slice(1)) etcHosts.add(name);
  }
  return etcHosts;
}
