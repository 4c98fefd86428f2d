/**
 * The harness's cross-process lock and slot claims: parallel test workers must never build the base
 * image twice or get the same 10.231.N slot. Uses a throwaway cache dir; no host is booted.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { acquireLock, withLock } from '../../src/testhost/lock.js';
import { layout } from '../../src/testhost/naming.js';
import { readAllStates } from '../../src/testhost/state.js';

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const tempDir = () => mkdtempSync(join(tmpdir(), 'vd-testhost-lock-'));

test('withLock runs callers one at a time', async (t) => {
  const lockDir = join(tempDir(), 'lock');
  let inside = 0;
  let most = 0;
  await Promise.all(
    Array.from({ length: 5 }, () =>
      withLock(lockDir, async () => {
        inside += 1;
        most = Math.max(most, inside);
        await new Promise((resolve) => setTimeout(resolve, 20));
        inside -= 1;
      }),
    ),
  );
  t.is(most, 1);
});

test('the lock is released when the function throws', async (t) => {
  const lockDir = join(tempDir(), 'lock');
  await t.throwsAsync(
    withLock(lockDir, async () => {
      throw new Error('boom');
    }),
    { message: 'boom' },
  );
  const release = await acquireLock(lockDir, { timeoutMs: 1000 });
  await release();
  t.pass();
});

test('a lock whose holder died is broken', async (t) => {
  const lockDir = join(tempDir(), 'lock');
  mkdirSync(lockDir);
  // pid 2^22+1 is above the kernel's pid_max: that process cannot exist.
  writeFileSync(join(lockDir, 'owner.json'), JSON.stringify({ pid: 4194305, start: '1' }));
  const release = await acquireLock(lockDir, { timeoutMs: 2000 });
  await release();
  t.pass();
});

test('an abandoned lock taken by many callers of one process at once: each gets it in turn', async (t) => {
  // What a killed test run leaves: the lock of a dead process. The harness then starts several hosts
  // at once in one process, each taking the lock: one breaks it, and none may lose its fresh lock to
  // another that saw the old one abandoned.
  for (let round = 0; round < 20; round++) {
    const lockDir = join(tempDir(), 'lock');
    mkdirSync(lockDir);
    writeFileSync(join(lockDir, 'owner.json'), JSON.stringify({ pid: 4194305, start: '1' }));
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 4 }, () =>
        withLock(
          lockDir,
          async () => {
            inside += 1;
            most = Math.max(most, inside);
            await new Promise((resolve) => setTimeout(resolve, 2));
            inside -= 1;
          },
          { timeoutMs: 5000 },
        ),
      ),
    );
    t.is(most, 1);
  }
});

test('a lock held by a live process makes others wait, up to their timeout', async (t) => {
  const lockDir = join(tempDir(), 'lock');
  const release = await acquireLock(lockDir);
  let waited = false;
  const err = await t.throwsAsync(acquireLock(lockDir, { timeoutMs: 300, onWait: () => (waited = true) }));
  t.regex(err.message, /timed out waiting for lock/);
  t.true(waited);
  await release();
});

test('processes claiming slots at the same time all get different ones', async (t) => {
  const cacheDir = tempDir();
  // Each child process claims a slot for its own host name under the harness lock, like `up` does.
  const script = `
    import { withLock } from './src/testhost/lock.ts';
    import { layout } from './src/testhost/naming.ts';
    import { claimSlot } from './src/testhost/state.ts';
    import { currentProcess } from './src/testhost/processes.ts';
    import { hostsLock } from './src/testhost/index.ts';
    const l = layout(process.env.CACHE);
    await withLock(hostsLock(l), async () => claimSlot(l, process.env.NAME, await currentProcess()));
  `;
  const names = ['race-a', 'race-b', 'race-c', 'race-d', 'race-e', 'race-f'];
  await Promise.all(
    names.map((name) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: PROJECT_ROOT,
        env: { ...process.env, CACHE: cacheDir, NAME: name },
      }),
    ),
  );
  const states = await readAllStates(layout(cacheDir));
  t.deepEqual(states.map((s) => s.name).sort(), names);
  t.deepEqual(
    states.map((s) => s.slot).sort((a, b) => a - b),
    [1, 2, 3, 4, 5, 6],
  );
});
