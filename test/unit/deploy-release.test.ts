import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  parseReleaseName,
  previousRelease,
  releaseName,
  releasesToPrune,
  sortReleases,
  timestamp,
} from '../../src/deploy/release.js';
import {
  acquireLockScript,
  breakLockScript,
  describeHolder,
  LOCK_HELD,
  lockFileContent,
  newLockInfo,
  parseLockFile,
  releaseLockScript,
} from '../../src/engine/host-lock.js';

const sh = (script: string, stdin = '') =>
  new Promise<{ code: number; stdout: string }>((resolve) => {
    const child = execFile('sh', ['-c', script], (err, stdout) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout });
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(stdin);
  });

const SHA = '3f2a9c1d0e5b6a7988776655443322110fedcba9';

test('a release is named <UTC time>-<short sha>, sortable by age', (t) => {
  const date = new Date('2026-11-22T03:45:07.123Z');
  t.is(timestamp(date), '20261122T034507Z');
  t.is(releaseName(date, SHA), '20261122T034507Z-3f2a9c1');
  t.deepEqual(parseReleaseName('20261122T034507Z-3f2a9c1'), { time: '20261122T034507Z', sha: '3f2a9c1' });
  t.is(parseReleaseName('current'), undefined);
  t.deepEqual(sortReleases(['20261122T034507Z-bbbbbbb', 'junk', '20251122T034507Z-aaaaaaa']), [
    '20251122T034507Z-aaaaaaa',
    '20261122T034507Z-bbbbbbb',
  ]);
});

test('pruning keeps the newest N and never removes a release in use', (t) => {
  const r = [
    '20260101T000000Z-aaaaaaa',
    '20260102T000000Z-bbbbbbb',
    '20260103T000000Z-ccccccc',
    '20260104T000000Z-ddddddd',
  ];
  t.deepEqual(releasesToPrune(r, 2, []), [r[0], r[1]]);
  t.deepEqual(releasesToPrune(r, 2, [r[0]]), [r[1], r[2]]);
  t.deepEqual(releasesToPrune(r, 5, []), []);
});

test('the previous release is the one before the live one', (t) => {
  const r = ['20260101T000000Z-aaaaaaa', '20260102T000000Z-bbbbbbb', '20260103T000000Z-ccccccc'];
  t.is(previousRelease(r, r[2]), r[1]);
  t.is(previousRelease(r, r[0]), undefined);
  t.is(previousRelease(r, undefined), r[2]);
});

test('the lock file says who, since when and why, and parses back', (t) => {
  const info = newLockInfo('alice@laptop', 'deploy staging --branch main', new Date('2026-11-22T03:45:00Z'));
  const text = lockFileContent(info);
  t.regex(text, /^Locked by: alice@laptop$/m);
  t.regex(text, /^Since: 2026-11-22T03:45:00.000Z$/m);
  t.deepEqual(parseLockFile(text), info);
  t.is(describeHolder(text), 'alice@laptop since 2026-11-22T03:45:00.000Z (deploy staging --branch main)');
  t.regex(describeHolder(''), /unknown/);
});

test('the lock scripts: the first taker wins, the second sees the holder, only the owner releases', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vd-lock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const lock = join(dir, 'sub', 'deploy.lock');
  const alice = newLockInfo('alice@laptop', 'deploy a');
  const bob = newLockInfo('bob@ci', 'deploy b');

  // Both at once: mkdir is atomic, exactly one wins.
  const [a, b] = await Promise.all([
    sh(acquireLockScript(lock), lockFileContent(alice)),
    sh(acquireLockScript(lock), lockFileContent(bob)),
  ]);
  t.deepEqual([a.code, b.code].sort(), [0, LOCK_HELD]);
  const winner = a.code === 0 ? alice : bob;
  const loser = a.code === 0 ? b : a;
  t.is(parseLockFile(loser.stdout).by, winner.by);
  t.is(parseLockFile(await readFile(join(lock, 'info'), 'utf8')).token, winner.token);

  // The loser's release leaves the lock alone; the winner's removes it.
  const other = winner === alice ? bob : alice;
  await sh(releaseLockScript(other.token, lock));
  t.is((await sh(`test -d '${lock}'`)).code, 0);
  await sh(releaseLockScript(winner.token, lock));
  t.not((await sh(`test -d '${lock}'`)).code, 0);

  // --break-lock prints the holder and removes the lock.
  await sh(acquireLockScript(lock), lockFileContent(alice));
  const broken = await sh(breakLockScript(lock));
  t.is(parseLockFile(broken.stdout).by, 'alice@laptop');
  t.not((await sh(`test -d '${lock}'`)).code, 0);
});
