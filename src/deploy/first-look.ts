/**
 * `deploy --if-changed` in one round trip per host. What a deploy first needs of each site (its state,
 * the wanted commit in the host's repository, whether the live release runs it) goes to the host as
 * ONE script, sent by the walker with the deploy lock's first try (the lock's opening, host-lock.ts
 * lockedScript): the lock, the leftovers' stop and this script cost one exec together.
 *
 * For each site of the host, in order, the script (firstLookScript) composes the deploy's own command
 * builders, each in a frame of its own (probe-batch.ts `framed`):
 *   - `state`: the site's state (state.ts stateScript);
 *   - `fetch` (`fetch: pull` only): the host fetches the repository (commands.ts pullFetch);
 *   - `commit`: the wanted commit as the host knows it, and whether the live release runs it
 *     (commands.ts wantedCommit: hostHasCommit of the commit the controller resolved, or resolveOnHost).
 * When every site's live release runs its commit, the script exits OPENING_DONE and the lock is
 * released in the same script: the deploy reports "unchanged" from what it printed. Otherwise the lock
 * stays held and the deploy goes on from there (firstLooks, lookVerdict): no state read again, no
 * second fetch, the lock never let go in between.
 */
import { OPENING_DONE } from '../engine/host-lock.js';
import { framed, framedSections, newNonce } from '../engine/probe-batch.js';
import { COMMIT_NOT_LIVE, pullFetch, wantedCommit } from './commands.js';
import type { Site } from './site.js';
import type { SitePaths } from './site-base.js';
import { parseState, type SiteState, stateScript } from './state.js';

/** A site of the host and the commit its deploy wants. */
export interface SiteWant {
  site: Site;
  paths: SitePaths;
  /** The branch, tag or sha asked for. */
  ref: string;
  /** `fetch: push`: the commit the controller resolved; undefined when the host fetches (`pull`). */
  pushed?: string;
}

export interface FirstLookScript {
  script: string;
  nonce: string;
  sites: SiteWant[];
}

/** Frames: no stdin; a read's stderr dropped; a fetch's kept with its output (a failure shows it). */
const READ_IO = '</dev/null 2>/dev/null';
const FETCH_IO = '</dev/null 2>&1';

/** The script of one host's sites (see the top of this file); it exits OPENING_DONE when all are unchanged. */
export function firstLookScript(sites: SiteWant[], nonce = newNonce()): FirstLookScript {
  const lines = ['vd_keep=0'];
  sites.forEach((w, i) => {
    const commit = [
      framed(`commit-${i}`, wantedCommit(w.paths, w.ref, w.pushed), nonce, READ_IO),
      'if [ "$vd_rc" != 0 ]; then vd_keep=1; fi',
    ];
    lines.push(framed(`state-${i}`, stateScript(w.site, w.paths), nonce, READ_IO));
    if (w.pushed) lines.push(...commit);
    else
      lines.push(
        framed(`fetch-${i}`, pullFetch(w.site, w.paths), nonce, FETCH_IO),
        'if [ "$vd_rc" = 0 ]; then',
        ...commit,
        'else vd_keep=1; fi',
      );
  });
  lines.push(`if [ "$vd_keep" = 0 ]; then exit ${OPENING_DONE}; fi`, 'exit 0');
  return { script: lines.join('\n'), nonce, sites };
}

/** What the first look found of one site. */
export interface SiteLook {
  /** The site and the commit its deploy wants, as the script asked the host. */
  want: SiteWant;
  state: SiteState;
  /** `fetch: pull`: how the host's fetch ended (its output with its errors). */
  fetch?: { code: number; output: string };
  /** How wantedCommit ended (absent when it did not run: the fetch failed) and the commit it printed. */
  commit?: { code: number; sha?: string };
}

/**
 * Each site's look, by site name. A site whose frames are missing (the script was cut short) has none:
 * its deploy reads the host itself, as without --if-changed.
 */
export function firstLooks(stdout: string, look: FirstLookScript): Map<string, SiteLook> {
  const frames = framedSections(stdout, look.nonce);
  const looks = new Map<string, SiteLook>();
  look.sites.forEach((w, i) => {
    const state = frames.get(`state-${i}`);
    const fetch = frames.get(`fetch-${i}`);
    const commit = frames.get(`commit-${i}`);
    if (!state || (!w.pushed && !fetch) || ((w.pushed || fetch?.exitCode === 0) && !commit)) return;
    looks.set(w.site.name, {
      want: w,
      state: parseState(w.paths, state.stdout),
      fetch: fetch && { code: fetch.exitCode, output: fetch.stdout },
      commit: commit && { code: commit.exitCode, sha: commit.stdout.trim() || undefined },
    });
  });
  return looks;
}

/** What the deploy of a site does after its first look. */
export type LookVerdict =
  | { kind: 'not-provisioned' }
  /** `fetch: pull`: the host's fetch failed. */
  | { kind: 'fetch-failed'; code: number; output: string }
  /** `fetch: pull`: the ref is no branch, tag or commit of the repository the host fetched. */
  | { kind: 'unknown-ref' }
  /** The live release runs the commit: nothing to do. */
  | { kind: 'unchanged'; commit: string }
  /** A real deploy of `commit`; `hostLacks`: its commits are to be sent first (`fetch: push`). */
  | { kind: 'deploy'; commit: string; hostLacks: boolean };

export function lookVerdict(look: SiteLook): LookVerdict {
  const { want } = look;
  if (!look.state.provisioned) return { kind: 'not-provisioned' };
  if (look.fetch && look.fetch.code !== 0)
    return { kind: 'fetch-failed', code: look.fetch.code, output: look.fetch.output };
  const c = look.commit;
  const sha = want.pushed ?? c?.sha;
  if (c && sha && (c.code === 0 || c.code === COMMIT_NOT_LIVE)) {
    return c.code === 0
      ? { kind: 'unchanged', commit: sha }
      : { kind: 'deploy', commit: sha, hostLacks: false };
  }
  if (want.pushed) return { kind: 'deploy', commit: want.pushed, hostLacks: true };
  return { kind: 'unknown-ref' };
}
