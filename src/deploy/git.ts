/**
 * The local side of `fetch: push`: Verdandi keeps a bare mirror of each site's repository under
 * `<project>/.verdandi/git/<site>.git`, resolves the branch/tag/sha there, and sends the host only the
 * commits its repository lacks, as a git bundle over the SSH connection it already has. Servers never
 * need credentials for the git forge, and a deploy works from any repository the deployer can read.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { UserError } from '../util/errors.js';

const run = promisify(execFile);

async function git(args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await run('git', args, { cwd, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new GitError(`git ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}

export class GitError extends Error {
  override name = 'GitError';
}

export function localMirrorPath(projectDir: string, site: string): string {
  return join(projectDir, '.verdandi', 'git', `${site}.git`);
}

/**
 * Runs `fn` while holding the mirror's lock (a directory next to it), so two deploys started at once
 * from this machine do not fetch into the same repository together. Bounded wait; a lock older than
 * 10 minutes is a crashed run's and is taken over.
 */
export async function withMirrorLock<T>(mirror: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${mirror}.lock`;
  await mkdir(dirname(mirror), { recursive: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = await stat(lock).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > 600_000) await rm(lock, { recursive: true, force: true });
      else if (Date.now() > deadline)
        throw new UserError(
          `the local repository ${mirror} stays locked by another deploy`,
          1,
          `remove ${lock} if no deploy runs`,
        );
      else await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** Fetches every branch and tag of `repo` into the local mirror (created on first use). */
export async function updateMirror(mirror: string, repo: string): Promise<void> {
  await mkdir(mirror, { recursive: true });
  await git(['init', '--quiet', '--bare', mirror]);
  try {
    await git([
      '-C',
      mirror,
      'fetch',
      '--quiet',
      '--prune',
      '--force',
      repo,
      '+refs/heads/*:refs/heads/*',
      '+refs/tags/*:refs/tags/*',
    ]);
  } catch (err) {
    throw new UserError(
      `cannot fetch the site's repository ${repo}: ${(err as Error).message}`,
      1,
      'check the `repo` of the site and that this machine can read it',
    );
  }
}

export interface ResolvedRef {
  /** Full commit sha. */
  commit: string;
  /** What was asked, kept for the record: a branch, a tag or a sha. */
  ref: string;
  kind: 'branch' | 'tag' | 'commit';
}

/** Turns a branch, tag or (abbreviated) sha into a commit of the mirror. */
export async function resolveRef(mirror: string, ref: string): Promise<ResolvedRef | undefined> {
  const tryRev = async (rev: string) => {
    try {
      return (await git(['-C', mirror, 'rev-parse', '--verify', '--quiet', `${rev}^{commit}`])).trim();
    } catch {
      return undefined;
    }
  };
  const branch = await tryRev(`refs/heads/${ref}`);
  if (branch) return { commit: branch, ref, kind: 'branch' };
  const tag = await tryRev(`refs/tags/${ref}`);
  if (tag) return { commit: tag, ref, kind: 'tag' };
  if (/^[0-9a-f]{4,40}$/.test(ref)) {
    const sha = await tryRev(ref);
    if (sha) return { commit: sha, ref, kind: 'commit' };
  }
  return undefined;
}

/** A bundle file made for one host; sent as a stream, removed once sent. */
export interface Bundle {
  file: string;
  bytes: number;
  remove(): Promise<void>;
}

/**
 * A bundle holding `commit` (as `refs/verdandi/deploy`) and its history, minus what is reachable from
 * `hostHas` (the host's ref tips): the increment the host needs, as a temporary file (a repository of
 * any size travels as a stream, never whole in memory).
 */
export async function makeBundle(mirror: string, commit: string, hostHas: string[]): Promise<Bundle> {
  await git(['-C', mirror, 'update-ref', 'refs/verdandi/deploy', commit]);
  const known: string[] = [];
  for (const sha of hostHas) {
    if (!/^[0-9a-f]{40,64}$/.test(sha)) continue;
    try {
      await git(['-C', mirror, 'cat-file', '-e', `${sha}^{commit}`]);
      known.push(sha);
    } catch {
      // a commit the mirror does not know cannot be used as a base
    }
  }
  const dir = await mkdtemp(join(tmpdir(), 'verdandi-bundle-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const file = join(dir, 'deploy.bundle');
    await git([
      '-C',
      mirror,
      'bundle',
      'create',
      '--quiet',
      file,
      'refs/verdandi/deploy',
      ...known.map((s) => `^${s}`),
    ]);
    return { file, bytes: (await stat(file)).size, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}

/** `user@machine`, for the lock file and the deploy record. `VERDANDI_DEPLOYER` overrides it (CI). */
export async function deployerName(): Promise<string> {
  if (process.env.VERDANDI_DEPLOYER) return process.env.VERDANDI_DEPLOYER;
  const { userInfo, hostname } = await import('node:os');
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers)
  }
  return `${user}@${hostname()}`;
}
