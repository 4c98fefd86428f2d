/**
 * Reading what a probe printed. A probe prints lines that start with a marker (`verdandi-stat ...`,
 * `verdandi-apt ...`); the readers here take only those lines, so unrelated noise on stdout (a login
 * banner, a tool's chatter) is ignored.
 */
import { createHash } from 'node:crypto';
import type { ProbeResult } from '../engine/types.js';

/** Every line a probe prints for a parser starts with this. */
export const MARKER_PREFIX = 'verdandi-';

/**
 * The fields of every stdout line that starts with `marker` followed by a space (or is exactly `marker`),
 * split on single spaces, marker removed. Lines without the marker are noise and ignored.
 */
export function markedLines(stdout: string, marker: string): string[][] {
  const found: string[][] = [];
  for (const line of stdout.split('\n')) {
    const trimmed = line.replace(/\r$/, '');
    if (trimmed === marker) found.push([]);
    else if (trimmed.startsWith(`${marker} `)) found.push(trimmed.slice(marker.length + 1).split(' '));
  }
  return found;
}

/**
 * The rest of the first stdout line that starts with `marker ` (the whole rest, spaces included), or
 * undefined when there is none. For probe lines whose payload may hold spaces (passwd entries).
 */
export function markedRest(stdout: string, marker: string, key?: string): string | undefined {
  const prefix = key === undefined ? `${marker} ` : `${marker} ${key} `;
  for (const line of stdout.split('\n')) {
    const trimmed = line.replace(/\r$/, '');
    if (trimmed.startsWith(prefix)) return trimmed.slice(prefix.length);
    if (key !== undefined && trimmed === `${marker} ${key}`) return '';
  }
  return undefined;
}

export function decodeBase64(field: string | undefined): string | undefined {
  if (field === undefined || field === '-') return undefined;
  return Buffer.from(field, 'base64').toString('utf8');
}

/** Decodes base64 into UTF-8 text, or undefined when the bytes are not valid UTF-8 (a binary file). */
export function decodeBase64Text(field: string): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(field, 'base64'));
  } catch {
    return undefined;
  }
}

export function sha256Hex(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/** Joins reasons for Plan.reason. */
export function joinReasons(reasons: string[]): string | undefined {
  return reasons.length > 0 ? reasons.join(', ') : undefined;
}

/**
 * The error of a database client's probe (psql, mariadb) that failed: the server down, not installed...
 * The probe printed `<exitMarker> <code>` after the client's output; undefined when the code is 0.
 */
export function sqlClientFailure(
  result: ProbeResult,
  exitMarker: string,
  /** The server's name, its client's, and what the hint asks is installed and running. */
  server: { name: string; client: string; installed: string },
): string | undefined {
  const exitLine = result.stdout.split('\n').find((l) => l.startsWith(`${exitMarker} `));
  const code = exitLine?.split(' ')[1];
  if (code === '0') return undefined;
  const output = result.stdout
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith(MARKER_PREFIX))
    .slice(-3)
    .join(' ');
  return `cannot query ${server.name} on the host (${server.client} exit code ${code ?? result.exitCode}): ${output || 'no output'}; is ${server.installed} installed and running? Install and start it in earlier tasks`;
}
