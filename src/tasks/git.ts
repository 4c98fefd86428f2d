/**
 * git: a checkout of `repo` at `version` in `dest`; changed only when HEAD moves.
 *
 * The probe reads the checkout's HEAD and, unless `version` is a full commit sha, asks the remote which
 * commit the branch or tag points at (`git ls-remote`: it only reads, but it does reach the remote).
 * When HEAD is elsewhere, the plan fetches exactly that ref from `repo` and checks it out with
 * `--force` (local changes to tracked files are discarded: the checkout is a deployment, not a
 * workspace). A branch is checked out as a local branch of the same name; a tag or a sha detached.
 *
 * With `owner`, every git command (the probe's ls-remote too, so the owner's SSH keys are used) runs as
 * that user through runuser, and the parent of `dest` must be writable by them. Git refuses to read a
 * repository owned by another user ("dubious ownership"); Verdandi reads checkouts of any owner, so it
 * passes `-c safe.directory=*`.
 *
 * `force` and `update` are Ansible's: `force: true` also discards local changes to tracked files when
 * HEAD is where it should be (`git reset --hard`: a hand edit is drift, repaired); `force: false` refuses
 * to touch a checkout with local changes (the task fails naming them); not given, changes are discarded
 * when HEAD moves and left alone otherwise. `update: false` clones when `dest` is missing and never
 * touches an existing checkout.
 */
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep } from '../engine/types.js';
import { quote, sh, words } from '../util/shell.js';
import { runAs } from './command.js';
import { defineTask } from './define.js';
import { absolutePath, flag, integer, loginName, text } from './options.js';

const options = z.strictObject({
  /** Absolute path of the checkout. */
  dest: absolutePath('dest'),
  /** URL or absolute path of the repository. */
  repo: text('repo', /^(?!-)\S+$/, 'a repository URL or path'),
  /** A branch, a tag, a full ref (`refs/...`) or a commit sha. Default: the remote's default branch. */
  version: text('version', /^(?!-)[A-Za-z0-9._/+@-]+$/, 'a branch, tag or sha').optional(),
  /** Clone, fetch and check out as this user. */
  owner: loginName('owner').optional(),
  /** Shallow clone/fetch of this many commits. */
  depth: integer('depth', 1).optional(),
  /**
   * Ansible's `force`: true discards local changes to tracked files on every run, false refuses to
   * update a checkout that has some. Not given: discarded when HEAD moves, left alone otherwise.
   */
  force: flag('force').optional(),
  /** Ansible's `update`: false clones a missing checkout and never updates an existing one (default true). */
  update: flag('update').default(true),
});

export type GitOptions = z.input<typeof options>;
type Git = z.output<typeof options>;

const MARKER = 'verdandi-git';
const FULL_SHA = /^[0-9a-f]{40}$/;
const SHORT_SHA = /^[0-9a-f]{7,39}$/;

/** What `version` resolved to on the remote. */
type Target =
  | { kind: 'branch'; branch: string; sha: string }
  | { kind: 'ref'; ref: string; sha: string }
  | { kind: 'sha'; sha: string }
  | { kind: 'short-sha'; prefix: string };

/** What the probe and the steps of a checkout need. */
interface Checkout extends Git {
  /** `--upload-pack` for a repository on the host's own disk (see `uploadPack`), or undefined. */
  uploadPack?: string;
}

/**
 * A repository on the host's own disk owned by another user: git's upload-pack, run for the local
 * transport, refuses it ("dubious ownership") unless told otherwise; remote servers need nothing.
 */
function prepare(opts: Git): Checkout {
  const isLocalRepo = opts.repo.startsWith('/') || opts.repo.startsWith('file://');
  return {
    ...opts,
    uploadPack: isLocalRepo ? '--upload-pack=git -c safe.directory=* upload-pack' : undefined,
  };
}

function probe({ dest, repo, version, owner, uploadPack, force, update }: Checkout): string {
  const asksRemote = version === undefined || !FULL_SHA.test(version);
  const patterns = version === undefined ? ['HEAD'] : [version, `${version}^{}`];
  const inspect = (...args: string[]) => words('git', '-c', 'safe.directory=*', '-C', dest, ...args);
  return [
    sh`d=${dest}`,
    'if [ -e "$d/.git" ]; then',
    `  printf '${MARKER} head %s\\n' "$(${inspect('rev-parse', '--verify', '-q', 'HEAD')})"`,
    `  printf '${MARKER} url %s\\n' "$(${inspect('config', 'remote.origin.url')})"`,
    // Tracked files changed by hand: how many (`--no-optional-locks`: status must not write the index).
    ...(force !== undefined && update
      ? [
          `  printf '${MARKER} changed %s\\n' "$(${words('git', '--no-optional-locks', '-c', 'safe.directory=*', '-C', dest, 'status', '--porcelain', '--untracked-files=no')} | wc -l)"`,
        ]
      : []),
    'elif [ -e "$d" ] && { [ ! -d "$d" ] || [ -n "$(ls -A "$d")" ]; }; then',
    `  echo '${MARKER} dest notgit'`,
    'else',
    `  echo '${MARKER} dest absent'`,
    'fi',
    ...(asksRemote
      ? [
          // No prompt for a password: the probe has no terminal and must not wait.
          `out=$(GIT_TERMINAL_PROMPT=0 ${runAs(owner, words('git', 'ls-remote', '--symref', ...(uploadPack ? [uploadPack] : []), repo, ...patterns))} </dev/null 2>&1); code=$?`,
          `printf '%s\\n' "$out" | sed ${quote(`s/^/${MARKER} remote /`)}`,
          `echo "${MARKER} remote-exit $code"`,
        ]
      : []),
  ].join('\n');
}

/** A git command run as the owner; `-C dest` for commands on the checkout. */
function gitStep(
  { owner, dest }: Checkout,
  args: Array<string | number | false | undefined>,
  inCheckout = true,
): RunStep {
  return {
    kind: 'run',
    command: `GIT_TERMINAL_PROMPT=0 ${runAs(
      owner,
      words('git', '-c', 'safe.directory=*', ...(inCheckout ? ['-C', dest] : []), ...args),
    )}`,
  };
}

const depthFlag = ({ depth }: Checkout) => (depth !== undefined ? `--depth=${depth}` : undefined);

function plan(checkout: Checkout, result: ProbeResult): Plan {
  const { dest, repo, version, uploadPack } = checkout;
  const lines = markedRaw(result.stdout);
  const get = (key: string) => lines.find((l) => l.key === key)?.value;
  const head = get('head');
  const destState = get('dest');
  if (head === undefined && destState === undefined) {
    return { steps: [], error: `the git probe printed nothing (exit code ${result.exitCode})` };
  }
  if (destState === 'notgit') {
    return {
      steps: [],
      error: `${dest} exists and is not a git checkout: remove it (absent task) or choose another dest`,
    };
  }

  // update: false leaves an existing checkout as it is, whatever the remote says (or whether it answers).
  if (head !== undefined && !checkout.update) return { steps: [] };
  const changed = Number(get('changed') ?? '0');
  if (head !== undefined && checkout.force === false && changed > 0) {
    return {
      steps: [],
      error: `${dest} has local changes to ${changed} tracked file${changed === 1 ? '' : 's'} (force: false): commit or discard them on the host, or set force: true to discard them`,
    };
  }

  const target = resolveTarget(version, lines);
  if ('error' in target) return { steps: [], error: target.error };

  const wanted = target.kind === 'short-sha' ? target.prefix : target.sha;
  if (head !== undefined && head !== '' && head.startsWith(wanted)) {
    if (checkout.force && changed > 0) {
      return {
        steps: [gitStep(checkout, ['reset', '-q', '--hard', 'HEAD'])],
        reason: `local changes to ${changed} tracked file${changed === 1 ? '' : 's'} discarded (force)`,
      };
    }
    return { steps: [] };
  }

  const describe = describeTarget(target);
  if (head === undefined) {
    // A plain clone lands on a branch or tag by itself; anything else is fetched after the clone.
    if (target.kind === 'branch' || (target.kind === 'ref' && target.ref.startsWith('refs/tags/'))) {
      const name = target.kind === 'branch' ? target.branch : target.ref.slice('refs/tags/'.length);
      return {
        steps: [
          gitStep(checkout, ['clone', uploadPack, depthFlag(checkout), '--branch', name, repo, dest], false),
        ],
        reason: `not cloned: clone ${describe}`,
      };
    }
    return {
      steps: [
        gitStep(checkout, ['clone', uploadPack, '--no-checkout', depthFlag(checkout), repo, dest], false),
        ...moveHead(checkout, target),
      ],
      reason: `not cloned: clone ${describe}`,
    };
  }

  const steps: RunStep[] = [];
  const url = get('url') ?? '';
  if (url !== repo)
    steps.push(
      gitStep(
        checkout,
        url === '' ? ['remote', 'add', 'origin', repo] : ['remote', 'set-url', 'origin', repo],
      ),
    );
  steps.push(...moveHead(checkout, target));
  return { steps, reason: `HEAD ${head.slice(0, 12) || '(none)'} → ${describe}` };
}

/** Fetch what the target names from `repo` and check it out. */
function moveHead(checkout: Checkout, target: Target): RunStep[] {
  const { repo, uploadPack } = checkout;
  const depth = depthFlag(checkout);
  switch (target.kind) {
    case 'branch':
      return [
        gitStep(checkout, ['fetch', uploadPack, depth, repo, `refs/heads/${target.branch}`]),
        gitStep(checkout, ['checkout', '--force', '-B', target.branch, 'FETCH_HEAD']),
      ];
    case 'ref':
      return [
        gitStep(checkout, ['fetch', uploadPack, depth, repo, target.ref]),
        gitStep(checkout, ['checkout', '--force', '--detach', 'FETCH_HEAD']),
      ];
    case 'sha': {
      // Fetch only when the commit is not here yet (fetching a sha works on protocol v2 servers).
      const has = gitStep(checkout, ['cat-file', '-e', `${target.sha}^{commit}`]).command;
      const fetch = gitStep(checkout, ['fetch', uploadPack, depth, repo, target.sha]).command;
      return [
        { kind: 'run', command: `${has} 2>/dev/null || ${fetch}`, description: `git fetch ${target.sha}` },
        gitStep(checkout, ['checkout', '--force', '--detach', target.sha]),
      ];
    }
    case 'short-sha':
      return [
        gitStep(checkout, ['fetch', uploadPack, 'origin']),
        gitStep(checkout, ['checkout', '--force', '--detach', target.prefix]),
      ];
  }
}

export const git = defineTask({
  type: 'git',
  becomeUser: { sameAs: 'owner' },
  options,
  subject: 'dest',
  label: (dest) => `git ${dest}`,
  prepare,
  probe,
  plan,
});

function describeTarget(target: Target): string {
  switch (target.kind) {
    case 'branch':
      return `${target.sha.slice(0, 12)} (branch ${target.branch})`;
    case 'ref':
      return `${target.sha.slice(0, 12)} (${target.ref})`;
    case 'sha':
      return target.sha.slice(0, 12);
    case 'short-sha':
      return target.prefix;
  }
}

/** `verdandi-git <key> <value>` lines, value taken whole (ls-remote lines hold a tab). */
function markedRaw(stdout: string): Array<{ key: string; value: string }> {
  const found: Array<{ key: string; value: string }> = [];
  for (const line of stdout.split('\n')) {
    const match = line.replace(/\r$/, '').match(/^verdandi-git (\S+)(?: (.*))?$/);
    if (match) found.push({ key: match[1], value: match[2] ?? '' });
  }
  return found;
}

/** Which commit `version` names, from the ls-remote lines of the probe. */
function resolveTarget(
  version: string | undefined,
  lines: Array<{ key: string; value: string }>,
): Target | { error: string } {
  if (version !== undefined && FULL_SHA.test(version)) return { kind: 'sha', sha: version };
  const exit = lines.find((l) => l.key === 'remote-exit')?.value;
  const remote = lines.filter((l) => l.key === 'remote').map((l) => l.value);
  if (exit !== '0') {
    // git's first lines say what went wrong ("does not appear to be a git repository"); the rest is advice.
    const message = remote
      .filter((l) => l.trim() !== '')
      .slice(0, 2)
      .join(' ');
    return { error: `git ls-remote failed (exit code ${exit ?? 'unknown'}): ${message || 'no output'}` };
  }
  const refs = new Map<string, string>();
  let headBranch: string | undefined;
  for (const line of remote) {
    const symref = line.match(/^ref: refs\/heads\/(\S+)\tHEAD$/);
    if (symref) headBranch = symref[1];
    const ref = line.match(/^([0-9a-f]{40})\t(\S+)$/);
    if (ref) refs.set(ref[2], ref[1]);
  }
  if (version === undefined) {
    const sha = refs.get('HEAD');
    if (sha === undefined) return { error: 'the remote has no HEAD (an empty repository?): give a version' };
    return headBranch !== undefined
      ? { kind: 'branch', branch: headBranch, sha }
      : { kind: 'ref', ref: 'HEAD', sha };
  }
  if (version.startsWith('refs/')) {
    const sha = refs.get(`${version}^{}`) ?? refs.get(version);
    if (sha !== undefined) {
      return version.startsWith('refs/heads/')
        ? { kind: 'branch', branch: version.slice('refs/heads/'.length), sha }
        : { kind: 'ref', ref: version, sha };
    }
  } else {
    const branch = refs.get(`refs/heads/${version}`);
    if (branch !== undefined) return { kind: 'branch', branch: version, sha: branch };
    // An annotated tag shows twice: the tag object, and `^{}` the commit it points at.
    const tag = refs.get(`refs/tags/${version}^{}`) ?? refs.get(`refs/tags/${version}`);
    if (tag !== undefined) return { kind: 'ref', ref: `refs/tags/${version}`, sha: tag };
    if (SHORT_SHA.test(version)) return { kind: 'short-sha', prefix: version };
  }
  return {
    error: `version ${version} is neither a branch nor a tag of the repository (git ls-remote found no such ref): check the name, or give a full 40-character commit sha`,
  };
}
