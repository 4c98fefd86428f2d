/**
 * Every value that came from the secrets is registered here once decrypted; everything Verdandi prints
 * (task lines, diffs, errors, --json, -v) goes through `redact`, which replaces them with `[secret]`.
 *
 * What is matched, for each secret value:
 * - the whole value;
 * - each line of a multi-line value (a TLS or SSH key, a certificate chain) on its own: output shows a
 *   multi-line value cut into lines, never in one piece (a diff prints `+MIIEvQ...` per line, a failed
 *   command's output tail starts at some line, a wrapped message splits it);
 * - each of those as it reads inside a JSON string (`--json` escapes quotes, backslashes and newlines),
 *   and, when it holds a `'`, as it reads in a shell command (`-v` shows commands).
 */
import { quote } from './shell.js';

const secretValues = new Set<string>();
/** The patterns, longest first, so a secret containing another is replaced whole. Rebuilt on change. */
let longestFirst: string[] = [];

/**
 * A value is matched in output from this length on. Shorter ones ("1", "wrong", a port number) would
 * redact ordinary words everywhere; `shortSecretKeys` names them so the user is warned. (A `sensitive`
 * task hides its content and diff whatever the values.)
 */
export const MIN_SECRET_LENGTH = 6;
/**
 * A line of a multi-line value is matched on its own from this length (leading and trailing blanks
 * aside). Shorter lines (`}`, `-----`, an empty line) are not secret by themselves and would redact
 * ordinary text everywhere; every line of a key's body is far longer.
 */
export const MIN_LINE_LENGTH = 8;

/** The strings that stand for one secret value in output (see the top of this file). */
export function patternsOf(value: string): string[] {
  const patterns = value.length >= MIN_SECRET_LENGTH ? [value] : [];
  const lines = value.split(/\r?\n/);
  if (lines.length > 1) {
    for (const line of lines) {
      const trimmed = line.trim();
      if (trimmed.length >= MIN_LINE_LENGTH) patterns.push(trimmed);
    }
  }
  const asJson = patterns.map((p) => JSON.stringify(p).slice(1, -1)).filter((p) => !patterns.includes(p));
  // A command shows a value with a `'` as the shell quotes it (`'it'\''s'`, see util/shell.ts).
  const shellQuoted = patterns.filter((p) => p.includes("'")).map((p) => quote(p).slice(1, -1));
  return [...patterns, ...asJson, ...shellQuoted];
}

function addSecret(value: string): void {
  let added = false;
  for (const pattern of patternsOf(value)) {
    if (secretValues.has(pattern)) continue;
    secretValues.add(pattern);
    added = true;
  }
  if (added) longestFirst = [...secretValues].sort((a, b) => b.length - a.length);
}

export function registerSecret(value: unknown): void {
  if (typeof value === 'string') {
    addSecret(value);
  } else if (typeof value === 'number') {
    addSecret(String(value));
  } else if (Array.isArray(value)) {
    for (const v of value) registerSecret(v);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) registerSecret(v);
  }
}

/**
 * The keys (dotted paths into nested maps, `[i]` into lists) of the values that are too short to be
 * matched in output: a non-empty string or a number under MIN_SECRET_LENGTH characters.
 */
export function shortSecretKeys(value: unknown, path = ''): string[] {
  if (typeof value === 'string' || typeof value === 'number') {
    const text = String(value);
    return text.length > 0 && text.length < MIN_SECRET_LENGTH ? [path] : [];
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => shortSecretKeys(v, `${path}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => shortSecretKeys(v, path ? `${path}.${k}` : k));
  }
  return [];
}

/** True when `text` holds a registered secret value: output of it must hide the secrets' old values too. */
export function holdsSecret(text: string): boolean {
  return longestFirst.some((s) => text.includes(s));
}

export function redact(text: string): string {
  if (longestFirst.length === 0 || !text) return text;
  let out = text;
  for (const s of longestFirst) {
    if (out.includes(s)) out = out.split(s).join('[secret]');
  }
  return out;
}

/** For tests. */
export function clearSecrets(): void {
  secretValues.clear();
  longestFirst = [];
}
