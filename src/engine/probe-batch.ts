/**
 * Batched probes: the probes of many tasks go to the host as ONE shell script; each runs in its own
 * subshell, its stdout framed by markers carrying a random nonce, so a probe printing anything cannot
 * confuse the parser. This is what makes a no-change run cost one round trip per role.
 */
import { randomBytes } from 'node:crypto';
import type { ProbeResult } from './types.js';

export interface ProbeBatch {
  script: string;
  nonce: string;
  ids: string[];
}

export function newNonce(): string {
  return randomBytes(6).toString('hex');
}

/** Builds the script probing each `[id, probe]` pair. Probes see no stdin and their stderr is dropped. */
export function buildProbeBatch(probes: Array<[id: string, probe: string]>, nonce = newNonce()): ProbeBatch {
  const parts = probes.map(
    ([id, probe]) =>
      `printf '%s\\n' '@@vd-${nonce}-begin-${id}'\n` +
      // An empty probe (a command without guards) must still be valid shell.
      `( ${probe.trim() === '' ? ':' : probe}\n) </dev/null 2>/dev/null\n` +
      `printf '\\n%s %s\\n' '@@vd-${nonce}-end-${id}' "$?"`,
  );
  return { script: parts.join('\n'), nonce, ids: probes.map(([id]) => id) };
}

/**
 * Splits a batch's output back into one ProbeResult per id. An id whose end marker is missing (the
 * shell died mid-batch) is absent from the map: the caller treats that as a failure of the batch.
 */
export function parseProbeBatch(output: string, nonce: string): Map<string, ProbeResult> {
  const results = new Map<string, ProbeResult>();
  const begin = `@@vd-${nonce}-begin-`;
  const end = `@@vd-${nonce}-end-`;
  let pos = 0;
  while (true) {
    const b = output.indexOf(begin, pos);
    if (b < 0) break;
    const idEnd = output.indexOf('\n', b);
    if (idEnd < 0) break;
    const id = output.slice(b + begin.length, idEnd);
    const marker = `\n${end}${id} `;
    const e = output.indexOf(marker, idEnd);
    if (e < 0) break;
    const lineEnd = output.indexOf('\n', e + marker.length);
    const code = Number.parseInt(output.slice(e + marker.length, lineEnd < 0 ? undefined : lineEnd), 10);
    results.set(id, { stdout: output.slice(idEnd + 1, e), exitCode: Number.isNaN(code) ? 255 : code });
    pos = lineEnd < 0 ? output.length : lineEnd;
  }
  return results;
}
