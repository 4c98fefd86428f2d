/**
 * Release names: `<UTC timestamp>-<short sha>` (`20261122T034500Z-3f2a9c1`), so `ls releases/` sorts
 * them by age and tells which commit each holds at a glance.
 */

const RELEASE_RE = /^(\d{8}T\d{6}Z)-([0-9a-f]{7,40})$/;

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

/** `20261122T034500Z`: compact ISO 8601 in UTC, sortable as text. */
export function timestamp(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

export function releaseName(date: Date, sha: string): string {
  return `${timestamp(date)}-${shortSha(sha)}`;
}

export function parseReleaseName(name: string): { time: string; sha: string } | undefined {
  const m = RELEASE_RE.exec(name);
  return m ? { time: m[1], sha: m[2] } : undefined;
}

/** Release names in the order they were made (oldest first); other entries are ignored. */
export function sortReleases(names: string[]): string[] {
  return names.filter((n) => RELEASE_RE.test(n)).sort();
}

/**
 * Which releases to delete so that `keep` remain: the oldest ones, never one that is in use
 * (the live release, the one being deployed).
 */
export function releasesToPrune(names: string[], keep: number, inUse: Array<string | undefined>): string[] {
  const sorted = sortReleases(names);
  const protectedSet = new Set(inUse.filter((n): n is string => !!n));
  const excess = sorted.length - keep;
  if (excess <= 0) return [];
  const out: string[] = [];
  for (const name of sorted) {
    if (out.length >= excess) break;
    if (!protectedSet.has(name)) out.push(name);
  }
  return out;
}

/** The release before `current` (for `rollback` without --to), or undefined when there is none. */
export function previousRelease(names: string[], current: string | undefined): string | undefined {
  const sorted = sortReleases(names);
  if (!current) return sorted.at(-1);
  const i = sorted.indexOf(current);
  if (i > 0) return sorted[i - 1];
  if (i < 0) return sorted.filter((n) => n < current).at(-1);
  return undefined;
}

/** What is recorded with each release (in the release and in the site's deploy log). */
export interface ReleaseRecord {
  release: string;
  site: string;
  commit: string;
  /** Branch, tag or sha the user asked for. */
  branch: string;
  /** ISO time of the deploy. */
  time: string;
  /** `user@machine` that deployed. */
  by: string;
}

export function parseReleaseRecord(text: string): ReleaseRecord | undefined {
  try {
    const v = JSON.parse(text);
    if (v && typeof v === 'object' && typeof v.commit === 'string' && typeof v.release === 'string') return v;
  } catch {
    // not a record
  }
  return undefined;
}
