/**
 * The configuration files a test host gets, computed from the build machine's own files: which Debian
 * mirror apt uses, which nameservers answer, the host's name. Pure text in, text out, so it is tested
 * without a machine; `readMirror`/`readNameservers` are the only parts that read files.
 */
import { readFile } from 'node:fs/promises';
import { UserError } from '../util/errors.js';
import { SUITE } from './naming.js';

export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
}

/** Parses deb822 `.sources` text: stanzas separated by blank lines, `Field: value`, `#` comments. */
export function parseDeb822Sources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      if (/^\s/.test(line) && last) {
        fields.set(last, `${fields.get(last)} ${line.trim()}`); // continuation line
        continue;
      }
      const match = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (!match) continue;
      last = match[1].toLowerCase();
      fields.set(last, match[2].trim());
    }
    if (fields.get('enabled')?.toLowerCase() === 'no') continue;
    const list = (key: string) => (fields.get(key) ?? '').split(/\s+/).filter(Boolean);
    if (list('uris').length === 0) continue;
    sources.push({
      types: list('types'),
      uris: list('uris'),
      suites: list('suites'),
      components: list('components'),
    });
  }
  return sources;
}

/** Parses one-line `sources.list` text: `deb [options] URI SUITE COMPONENT...`. */
export function parseOneLineSources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine
      .replace(/#.*$/, '')
      .replace(/\[[^\]]*\]/, ' ')
      .trim();
    const [type, uri, suite, ...components] = line.split(/\s+/);
    if ((type !== 'deb' && type !== 'deb-src') || !uri || !suite) continue;
    sources.push({ types: [type], uris: [uri], suites: [suite], components });
  }
  return sources;
}

export interface Mirrors {
  /** Where `bookworm` and `bookworm-updates` come from. */
  main: string;
  /** Where `bookworm-security` comes from, when the build machine has one. */
  security?: string;
}

const isHttp = (uri: string) => /^https?:\/\//.test(uri);
const isSecuritySuite = (suite: string) => /-security$|\/updates$/.test(suite);

/** The mirrors of the first binary (`deb`) http(s) sources; undefined when there is none. */
export function mirrorsFrom(sources: AptSource[]): Mirrors | undefined {
  const binary = sources.filter((s) => s.types.includes('deb'));
  const main = binary.find((s) => !s.suites.every(isSecuritySuite))?.uris.find(isHttp);
  if (!main) return undefined;
  const security = binary.find((s) => s.suites.some(isSecuritySuite))?.uris.find(isHttp);
  return { main: main.replace(/\/+$/, ''), security: security?.replace(/\/+$/, '') };
}

export const DEB822_SOURCES_FILE = '/etc/apt/sources.list.d/debian.sources';
export const ONE_LINE_SOURCES_FILE = '/etc/apt/sources.list';

/**
 * The build machine's Debian mirror: `URIs:` of /etc/apt/sources.list.d/debian.sources, else the `deb`
 * lines of /etc/apt/sources.list. `VERDANDI_MIRROR` overrides both.
 */
export async function readMirrors(
  read: (path: string) => Promise<string> = (path) => readFile(path, 'utf8'),
  env: NodeJS.ProcessEnv = process.env,
): Promise<Mirrors> {
  if (env.VERDANDI_MIRROR) return { main: env.VERDANDI_MIRROR.replace(/\/+$/, '') };
  const attempts: Array<[string, (text: string) => AptSource[]]> = [
    [DEB822_SOURCES_FILE, parseDeb822Sources],
    [ONE_LINE_SOURCES_FILE, parseOneLineSources],
  ];
  for (const [path, parse] of attempts) {
    const text = await read(path).catch(() => '');
    const mirrors = mirrorsFrom(parse(text));
    if (mirrors) return mirrors;
  }
  throw new UserError(
    `no Debian mirror found in ${DEB822_SOURCES_FILE} (URIs:) nor ${ONE_LINE_SOURCES_FILE} (deb lines)`,
    1,
    'set VERDANDI_MIRROR to a Debian mirror URL (http://...) reachable from this machine',
  );
}

/** /etc/apt/sources.list of a test host. */
export function guestAptSources(mirrors: Mirrors): string {
  const lines = [
    '# Written by verdandi testhost: the same mirror as the machine the test hosts run on.',
    `deb ${mirrors.main} ${SUITE} main`,
    `deb ${mirrors.main} ${SUITE}-updates main`,
  ];
  if (mirrors.security) lines.push(`deb ${mirrors.security} ${SUITE}-security main`);
  return `${lines.join('\n')}\n`;
}

export function nameserversIn(resolvConf: string): string[] {
  return resolvConf
    .split('\n')
    .map((line) => /^\s*nameserver\s+(\S+)/.exec(line)?.[1])
    .filter((ns): ns is string => !!ns);
}

/** A stub resolver on the build machine (127.0.0.53 of systemd-resolved, ::1) is not reachable from a host. */
export function isLoopbackAddress(address: string): boolean {
  return /^127\./.test(address) || address === '::1';
}

/**
 * The guest's /etc/resolv.conf: the build machine's nameservers; when those are only a local stub
 * resolver, the upstream servers it forwards to (systemd-resolved lists them in
 * /run/systemd/resolve/resolv.conf). IPv4 first: test hosts have no IPv6 route.
 */
export function guestResolvConf(mainResolvConf: string, upstreamResolvConf = ''): string {
  let servers = nameserversIn(mainResolvConf).filter((ns) => !isLoopbackAddress(ns));
  if (servers.length === 0)
    servers = nameserversIn(upstreamResolvConf).filter((ns) => !isLoopbackAddress(ns));
  if (servers.length === 0) {
    throw new UserError(
      'no nameserver for test hosts: /etc/resolv.conf lists only a local stub resolver and /run/systemd/resolve/resolv.conf no upstream server',
      1,
      'add a `nameserver ADDRESS` line reachable from this machine to /etc/resolv.conf',
    );
  }
  const ipv4 = servers.filter((ns) => ns.includes('.'));
  const chosen = (ipv4.length > 0 ? ipv4 : servers).slice(0, 3);
  return `${chosen.map((ns) => `nameserver ${ns}`).join('\n')}\n`;
}

export async function readGuestResolvConf(
  read: (path: string) => Promise<string> = (path) => readFile(path, 'utf8'),
): Promise<string> {
  const main = await read('/etc/resolv.conf').catch(() => '');
  const upstream = await read('/run/systemd/resolve/resolv.conf').catch(() => '');
  return guestResolvConf(main, upstream);
}

/**
 * /etc/hosts: without `localhost` PostgreSQL cannot start; without the host's own name sudo complains on
 * every call (debootstrap writes no /etc/hosts at all).
 */
export function guestEtcHosts(name: string): string {
  return [
    '127.0.0.1\tlocalhost',
    `127.0.1.1\t${name}`,
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    '',
  ].join('\n');
}
