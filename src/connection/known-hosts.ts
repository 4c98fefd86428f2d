/**
 * Host key verification against a project-local known_hosts file (`.verdandi/known_hosts`).
 * First contact records the key (like OpenSSH's `StrictHostKeyChecking=accept-new`); a changed key is
 * refused, because that is what a man-in-the-middle looks like.
 */
import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The project's own known_hosts: `<project>/.verdandi/known_hosts`. */
export function knownHostsFile(projectDir: string): string {
  return join(projectDir, '.verdandi', 'known_hosts');
}

/** `[10.0.0.5]:2222` for a non-standard port, like OpenSSH. */
export function hostPattern(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

/** The key type is the first string of the SSH wire-format public key blob. */
export function keyType(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const len = key.readUInt32BE(0);
  return key.subarray(4, 4 + len).toString('ascii');
}

export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

export interface KnownHostEntry {
  pattern: string;
  type: string;
  key: string;
  line: number;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const [patterns, type, key] = line.split(/\s+/);
    if (!patterns || !type || !key) return;
    for (const pattern of patterns.split(',')) entries.push({ pattern, type, key, line: i + 1 });
  });
  return entries;
}

export type HostKeyVerdict = { kind: 'known' } | { kind: 'new' } | { kind: 'changed'; line: number };

/** Pure decision: is this key known, new, or different from the recorded one for the same type? */
export function checkHostKey(entries: KnownHostEntry[], pattern: string, key: Buffer): HostKeyVerdict {
  const type = keyType(key);
  const b64 = key.toString('base64');
  const mine = entries.filter((e) => e.pattern === pattern || matchesHashed(e.pattern, pattern));
  if (mine.some((e) => e.type === type && e.key === b64)) return { kind: 'known' };
  const clash = mine.find((e) => e.type === type);
  if (clash) return { kind: 'changed', line: clash.line };
  return { kind: 'new' };
}

/**
 * OpenSSH's hashed names (`HashKnownHosts yes`, common in a user's ~/.ssh/known_hosts):
 * `|1|salt|hash`, the hash an HMAC-SHA1 of the name keyed by the salt (both base64).
 */
export function matchesHashed(entry: string, pattern: string): boolean {
  if (!entry.startsWith('|1|')) return false;
  const [, , salt, hash] = entry.split('|');
  if (!salt || !hash) return false;
  return createHmac('sha1', Buffer.from(salt, 'base64')).update(pattern).digest('base64') === hash;
}

/**
 * Parsed known_hosts files, by path, with the size and mtime they were parsed at: a run connecting to
 * 1,000 hosts parses the file once, not once per host (which made the run's cost grow with the square
 * of the host count). Any change to the file (another process, `testhost up`) is seen by its stat.
 */
interface ParsedFile {
  size: number;
  mtimeMs: number;
  /** Newlines in the file: the number of the next appended line is one more. */
  newlines: number;
  entries: KnownHostEntry[];
}
const parsed = new Map<string, ParsedFile>();

export class KnownHosts {
  constructor(readonly file: string) {}

  private read(): KnownHostEntry[] {
    let stat: { size: number; mtimeMs: number };
    try {
      stat = statSync(this.file);
    } catch {
      return [];
    }
    const cached = parsed.get(this.file);
    if (cached && cached.size === stat.size && cached.mtimeMs === stat.mtimeMs) return cached.entries;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return [];
    }
    const entries = parseKnownHosts(text);
    const newlines = text.split('\n').length - 1;
    parsed.set(this.file, { size: stat.size, mtimeMs: stat.mtimeMs, newlines, entries });
    return entries;
  }

  /** Checks the key; a new one is recorded when `record` (accept-new), else only reported. */
  verify(address: string, port: number, key: Buffer, record = true): HostKeyVerdict {
    const pattern = hostPattern(address, port);
    const verdict = checkHostKey(this.read(), pattern, key);
    if (verdict.kind === 'new' && record) {
      const line = `${pattern} ${keyType(key)} ${key.toString('base64')}\n`;
      mkdirSync(dirname(this.file), { recursive: true });
      appendFileSync(this.file, line, { mode: 0o644 });
      // What was just appended joins the parsed entries: the next host does not parse the file again.
      const before = parsed.get(this.file);
      const stat = statSync(this.file);
      if (before && before.size + Buffer.byteLength(line) === stat.size) {
        const added = parseKnownHosts(line).map((e) => ({ ...e, line: before.newlines + 1 }));
        before.entries.push(...added);
        Object.assign(before, { size: stat.size, mtimeMs: stat.mtimeMs, newlines: before.newlines + 1 });
      }
    }
    return verdict;
  }
}

// ---- editing the file: what `verdandi testhost up/down` do for the hosts it starts and stops ----------

/** A public key as the `type base64` pair of a known_hosts line (an OpenSSH `.pub` file's first two words). */
export interface PublicHostKey {
  type: string;
  key: string;
}

/** Parses an OpenSSH public key file (`ssh-ed25519 AAAA... comment`); undefined when it is not one. */
export function parsePublicKey(text: string): PublicHostKey | undefined {
  const [type, key] = text.trim().split(/\s+/);
  if (!type || !key || !/^[A-Za-z0-9+/]+=*$/.test(key)) return undefined;
  return { type, key };
}

/**
 * The known_hosts text without any key for `pattern`. A line naming several hosts (`a,b type key`) only
 * loses that one name; every other line (comments, blank lines, other hosts) is kept as it was.
 */
export function withoutHost(text: string, pattern: string): string {
  const kept: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) {
      kept.push(raw);
      continue;
    }
    const [patterns, ...rest] = line.split(/\s+/);
    const names = patterns.split(',');
    if (!names.includes(pattern)) {
      kept.push(raw);
      continue;
    }
    const others = names.filter((name) => name !== pattern);
    if (others.length > 0) kept.push([others.join(','), ...rest].join(' '));
  }
  return kept.join('\n');
}

/** The known_hosts text with exactly `keys` for `pattern`: older keys of that host are replaced. */
export function withHostKeys(text: string, pattern: string, keys: readonly PublicHostKey[]): string {
  const rest = withoutHost(text, pattern).replace(/\n*$/, '');
  const added = keys.map((k) => `${pattern} ${k.type} ${k.key}`);
  const lines = rest === '' ? added : [rest, ...added];
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/**
 * Rewrites a known_hosts file through `edit` (atomically: a temporary file renamed over it, so a
 * concurrent reader sees the old or the new file, never half of one). A missing file reads as empty.
 */
export function editKnownHostsFile(file: string, edit: (text: string) => string): void {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const next = edit(text);
  if (next === text) return;
  mkdirSync(dirname(file), { recursive: true });
  const temp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  writeFileSync(temp, next, { mode: 0o644 });
  renameSync(temp, file);
}
