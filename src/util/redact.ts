/**
 * Every value that came from the secrets is registered here once decrypted; everything Verdandi prints
 * (task lines, diffs, errors, --json, -v) goes through `redact`, which replaces them with `[secret]`.
 */
const secretValues = new Set<string>();

/** Short values (a 1-3 character secret) would redact ordinary text everywhere; they are still hidden in
 * diffs of sensitive tasks, but not matched in free text. */
const MIN_LENGTH = 4;

export function registerSecret(value: unknown): void {
  if (typeof value === 'string') {
    if (value.length >= MIN_LENGTH) secretValues.add(value);
  } else if (typeof value === 'number') {
    if (String(value).length >= MIN_LENGTH) secretValues.add(String(value));
  } else if (Array.isArray(value)) {
    for (const v of value) registerSecret(v);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) registerSecret(v);
  }
}

export function redact(text: string): string {
  if (secretValues.size === 0 || !text) return text;
  let out = text;
  // Longest first, so a secret containing another is replaced whole.
  for (const s of [...secretValues].sort((a, b) => b.length - a.length)) {
    if (out.includes(s)) out = out.split(s).join('[secret]');
  }
  return out;
}

/** For tests. */
export function clearSecrets(): void {
  secretValues.clear();
}
