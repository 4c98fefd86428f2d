/**
 * Host key verification against a project-local known_hosts file (`.verdandi/known_hosts`).
 * First contact records the key (like OpenSSH's `StrictHostKeyChecking=accept-new`); a changed key is
 * refused, because that is what a man-in-the-middle looks like.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

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
  const mine = entries.filter((e) => e.pattern === pattern);
  if (mine.some((e) => e.type === type && e.key === b64)) return { kind: 'known' };
  const clash = mine.find((e) => e.type === type);
  if (clash) return { kind: 'changed', line: clash.line };
  return { kind: 'new' };
}

export class KnownHosts {
  constructor(readonly file: string) {}

  private read(): KnownHostEntry[] {
    try {
      return parseKnownHosts(readFileSync(this.file, 'utf8'));
    } catch {
      return [];
    }
  }

  verify(address: string, port: number, key: Buffer): HostKeyVerdict {
    const pattern = hostPattern(address, port);
    const verdict = checkHostKey(this.read(), pattern, key);
    if (verdict.kind === 'new') {
      mkdirSync(dirname(this.file), { recursive: true });
      appendFileSync(this.file, `${pattern} ${keyType(key)} ${key.toString('base64')}\n`, { mode: 0o644 });
    }
    return verdict;
  }
}
