/** Helpers for messages that list what exists and guess what was meant. */

/** Damerau-Levenshtein distance (a swap of two neighbours counts as one edit). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The known name closest to `name`, when close enough to be a likely typo: a few edits away
 * (`brnach` → `branch`), or else a longer or shorter spelling of it (`healthcheck` → `health`,
 * `env_vars` → `env`; the shorter of the two at least 3 characters).
 */
export function closest(name: string, known: Iterable<string>): string | undefined {
  const lower = name.toLowerCase();
  const candidates = [...known];
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  const limit = name.length <= 4 ? 1 : 2;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance && distance <= limit) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best !== undefined) return best;
  // The longest known name that `name` starts with, or the shortest one that starts with `name`.
  const extensions = candidates.filter((c) => {
    const other = c.toLowerCase();
    const [shorter, longer] = other.length < lower.length ? [other, lower] : [lower, other];
    return shorter.length >= 3 && shorter !== longer && longer.startsWith(shorter);
  });
  return extensions.sort((a, b) => Math.abs(a.length - name.length) - Math.abs(b.length - name.length))[0];
}

/** `a, b, c` — or `none` — capped so a big inventory does not flood the terminal. */
export function listNames(names: Iterable<string>, max = 30): string {
  const all = [...names];
  if (all.length === 0) return 'none';
  if (all.length <= max) return all.join(', ');
  return `${all.slice(0, max).join(', ')} and ${all.length - max} more`;
}

/** ` (did you mean "x"?)` or nothing. */
export function didYouMean(name: string, known: Iterable<string>): string {
  const guess = closest(name, known);
  return guess ? ` (did you mean "${guess}"?)` : '';
}
