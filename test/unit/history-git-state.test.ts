/**
 * The commit and dirtiness a recorded run keeps of its project (history/recorder.ts gitState), read
 * with one `git status` where it took `git rev-parse HEAD` and `git status`: the same answers.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { gitState } from '../../src/history/recorder.js';

const git = (dir: string, ...args: string[]) =>
  execFileSync('git', ['-C', dir, ...args], {
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@t',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@t',
    },
  }).trim();

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'verdandi-git-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('outside a git repository: no commit, dirtiness unknown', async (t) => {
  t.deepEqual(await gitState(tempDir(t)), { commit: null, dirty: null });
});

test('a repository without a commit yet: as outside one', async (t) => {
  const dir = tempDir(t);
  git(dir, 'init', '-q');
  writeFileSync(join(dir, 'a.txt'), 'a\n');
  git(dir, 'add', 'a.txt');
  t.deepEqual(await gitState(dir), { commit: null, dirty: null });
});

test('the commit of HEAD; dirty only when a tracked file changed', async (t) => {
  const dir = tempDir(t);
  git(dir, 'init', '-q');
  writeFileSync(join(dir, 'a.txt'), 'a\n');
  git(dir, 'add', 'a.txt');
  git(dir, 'commit', '-q', '-m', 'one');
  const head = git(dir, 'rev-parse', 'HEAD');
  t.deepEqual(await gitState(dir), { commit: head, dirty: false });
  writeFileSync(join(dir, 'new.txt'), 'untracked\n');
  t.deepEqual(await gitState(dir), { commit: head, dirty: false }, 'an untracked file is not a change');
  writeFileSync(join(dir, 'a.txt'), 'changed\n');
  t.deepEqual(await gitState(dir), { commit: head, dirty: true });
  git(dir, 'add', 'a.txt');
  t.deepEqual(await gitState(dir), { commit: head, dirty: true }, 'a staged change too');
});
