/**
 * The walker every command that works on hosts shares: batches and `--forks`, the deploy lock and its
 * take-over, lost hosts, errors of one host among siblings, Ctrl-C, and the one exit-code rule. The
 * hosts are this machine (LocalConnection) with the lock in a temporary directory, or fakes.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { hostWalkOptions } from '../../src/cli/context.js';
import { LocalConnection } from '../../src/connection/local.js';
import { type Connection, UnreachableError } from '../../src/connection/types.js';
import { ConnectionPool } from '../../src/engine/connection-pool.js';
import { type RunEvent, RunEvents } from '../../src/engine/events.js';
import {
  deadHolder,
  LOCK_STALE_SECONDS,
  lockFileContent,
  newLockInfo,
  OPENING_DONE,
} from '../../src/engine/host-lock.js';
import {
  exitCodeOf,
  type HostWork,
  type LockOptions,
  type Target,
  Walker,
  type WalkOptions,
  type WorkResult,
} from '../../src/engine/walker.js';
import type { InventoryHost } from '../../src/inventory/types.js';

const host = (name: string): InventoryHost =>
  ({
    name,
    address: name,
    port: 22,
    user: 'root',
    become: false,
    groups: [],
    vars: {},
    varOrigins: {},
    roles: [],
  }) as unknown as InventoryHost;

function recorder() {
  const events: RunEvent[] = [];
  const lines: string[] = [];
  const listener = (e: RunEvent) => {
    events.push(e);
    if (e.type === 'lock' || e.type === 'message') lines.push(e.type === 'lock' ? e.message : e.text);
  };
  return { events, lines, listener };
}

async function lockDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const base = await mkdtemp(join(tmpdir(), 'vd-driver-'));
  return { dir: join(base, 'deploy.lock'), cleanup: () => rm(base, { recursive: true, force: true }) };
}

interface Options extends WalkOptions {
  open?: (h: InventoryHost) => Promise<Connection>;
  listener?: (e: RunEvent) => void;
  forks?: number;
}

/** One walk on a walker of its own (deploy & co's settings): its runs, exit code and signal. */
async function drive<T extends Target, R>(
  targets: T[],
  o: Options,
  work: (target: T, host: HostWork) => Promise<WorkResult<R>>,
) {
  const events = new RunEvents();
  if (o.listener) events.on(o.listener);
  const conns = new ConnectionPool(
    { projectDir: tmpdir() },
    Number.POSITIVE_INFINITY,
    o.open ?? (async (h) => new LocalConnection(h.name)),
  );
  const walker = new Walker(
    {
      command: 'test',
      env: 'test',
      check: false,
      events,
      conns,
      hostVars: new Map(),
      forks: o.forks ?? 20,
      onInterrupt: 'abort',
    },
    targets.map((x) => x.host.name),
  );
  try {
    const runs = await walker.walk(targets, o, work);
    const exitCode = await walker.finish();
    return { runs, exitCode, interrupted: walker.stop.signal };
  } finally {
    await walker.close();
    events.close();
  }
}

const lockOf = (dir: string, extra: Partial<LockOptions> = {}): LockOptions => ({
  reason: 'deploy test',
  by: 'me@here',
  dir,
  waitSeconds: 0,
  breakLock: false,
  ...extra,
});

test('the shared options are parsed by the command line, the same for every command', async (t) => {
  await t.throwsAsync(hostWalkOptions({ lockWait: 'abc' }), {
    message: /--lock-wait must be a number of seconds, got "abc"/,
  });
  await t.throwsAsync(hostWalkOptions({ lockWait: '' }), { message: /--lock-wait/ });
  await t.throwsAsync(hostWalkOptions({ serial: 'x' }), {
    message: /--serial must be a positive number or a percentage/,
  });
  await t.throwsAsync(hostWalkOptions({ serial: '0' }), { message: /--serial/ });
  t.deepEqual(await hostWalkOptions({ serial: '2', lockWait: '5', breakLock: true }), {
    serial: 2,
    lockWaitSeconds: 5,
    breakLock: true,
  });
  t.is((await hostWalkOptions({ serial: '50%' })).serial, '50%');
});

test('one exit-code rule: unreachable beats failed, an interruption says which signal', (t) => {
  t.is(exitCodeOf(['ok', 'failed', 'unreachable']), 3);
  t.is(exitCodeOf(['failed', 'ok', 'skipped']), 2);
  t.is(exitCodeOf(['ok', 'ok']), 0);
  t.is(exitCodeOf(['failed'], 'SIGINT'), 130);
  t.is(exitCodeOf(['ok'], 'SIGTERM'), 143);
});

test('with --serial 2, an error of one host never leaves its sibling mid-deploy; later batches are skipped', async (t) => {
  let siblingFinished = false;
  const res = await drive(
    [{ host: host('a') }, { host: host('b') }, { host: host('c') }],
    { serial: 2 },
    async ({ host: h }) => {
      if (h.name === 'a') throw new Error('boom');
      await new Promise((r) => setTimeout(r, 300));
      siblingFinished = true;
      return { ok: true, result: h.name };
    },
  );
  t.true(siblingFinished);
  t.deepEqual(
    res.runs.map((r) => [r.host, r.status]),
    [
      ['a', 'failed'],
      ['b', 'ok'],
      ['c', 'skipped'],
    ],
  );
  t.regex(res.runs[0].message ?? '', /boom/);
  t.is(res.exitCode, 2);
});

test('a connection lost mid-work is that host unreachable (exit 3 even beside a failure)', async (t) => {
  const res = await drive(
    [{ host: host('lost') }, { host: host('bad') }],
    { serial: 2, maxFailPercentage: 100 },
    async ({ host: h }) => {
      if (h.name === 'lost') throw new UnreachableError('lost', 'lost', 'lost connection: socket closed');
      return { ok: false, result: null };
    },
  );
  t.deepEqual(
    res.runs.map((r) => r.status),
    ['unreachable', 'failed'],
  );
  t.is(res.exitCode, 3);
});

test('the lock is taken, released, and waited for; a live holder on this machine is never taken over', async (t) => {
  const lock = await lockDir();
  t.teardown(lock.cleanup);
  const opts: Options = { lock: lockOf(lock.dir) };
  const inside = await drive([{ host: host('h') }], opts, async () => ({
    ok: true,
    result: await readFile(join(lock.dir, 'info'), 'utf8'),
  }));
  t.is(inside.exitCode, 0);
  t.regex(
    inside.runs[0].result ?? '',
    new RegExp(`^Controller: ${hostname()}$[\\s\\S]*^Pid: ${process.pid}$`, 'm'),
  );
  await t.throwsAsync(readFile(join(lock.dir, 'info'), 'utf8'));

  // Held by this very process (alive): the second run waits its --lock-wait, then fails naming it.
  const held = new LocalConnection('h');
  const info = newLockInfo('alice@laptop', 'deploy other');
  await drive(
    [{ host: host('h') }],
    { lock: lockOf(lock.dir, { reason: 'x', by: 'alice@laptop' }), open: async () => held },
    async () => {
      const blocked = await drive(
        [{ host: host('h') }],
        { lock: lockOf(lock.dir, { waitSeconds: 1 }) },
        async () => ({
          ok: true,
          result: '',
        }),
      );
      t.is(blocked.runs[0].status, 'failed');
      t.is(blocked.runs[0].step, 'lock');
      t.regex(blocked.runs[0].message ?? '', /another deploy holds the lock of h: alice@laptop since/);
      return { ok: true, result: info.token };
    },
  );
});

test('a lock opening rides with the lock: one round trip, and OPENING_DONE lets the lock go in it', async (t) => {
  const lock = await lockDir();
  t.teardown(lock.cleanup);
  const conn = new LocalConnection('h');
  const opening = (script: string) => () => ({ script });
  // Done: the work gets what the opening printed; the lock is already free; one exec in all.
  const done = await drive(
    [{ host: host('h') }],
    {
      lock: lockOf(lock.dir, { opening: opening(`echo looked; exit ${OPENING_DONE}`) }),
      open: async () => conn,
    },
    async (_t, h) => ({
      ok: true,
      result: { opened: h.opened, held: await readFile(join(lock.dir, 'info'), 'utf8').catch(() => '') },
    }),
  );
  t.is(done.exitCode, 0);
  t.deepEqual(done.runs[0].result?.opened, { stdout: 'looked\n', code: OPENING_DONE, released: true });
  t.is(done.runs[0].result?.held, '', 'the lock was free while the work ran');
  t.is(conn.roundTrips, 1);

  // Not done: the work runs holding the lock the script took; the walker releases it after.
  const more = new LocalConnection('h');
  const kept = await drive(
    [{ host: host('h') }],
    { lock: lockOf(lock.dir, { opening: opening('echo changed') }), open: async () => more },
    async (_t, h) => ({
      ok: true,
      result: { opened: h.opened, held: await readFile(join(lock.dir, 'info'), 'utf8') },
    }),
  );
  t.deepEqual(kept.runs[0].result?.opened, { stdout: 'changed\n', code: 0, released: false });
  t.regex(kept.runs[0].result?.held ?? '', new RegExp(`^Pid: ${process.pid}$`, 'm'));
  await t.throwsAsync(readFile(join(lock.dir, 'info'), 'utf8'));
  t.is(more.roundTrips, 2, 'the script, then the release');
});

test('a lock opening behind a held lock: refused naming the holder, the opening never runs', async (t) => {
  const lock = await lockDir();
  t.teardown(lock.cleanup);
  const marker = join(lock.dir, '..', 'opened');
  const held = new LocalConnection('h');
  await drive(
    [{ host: host('h') }],
    { lock: lockOf(lock.dir, { by: 'alice@laptop' }), open: async () => held },
    async () => {
      const blocked = await drive(
        [{ host: host('h') }],
        {
          lock: lockOf(lock.dir, { opening: () => ({ script: `touch '${marker}'; exit ${OPENING_DONE}` }) }),
        },
        async () => ({ ok: true, result: '' }),
      );
      t.is(blocked.runs[0].status, 'failed');
      t.is(blocked.runs[0].step, 'lock');
      t.regex(blocked.runs[0].message ?? '', /another deploy holds the lock of h: alice@laptop since/);
      await t.throwsAsync(readFile(marker, 'utf8'));
      t.regex(
        await readFile(join(lock.dir, 'info'), 'utf8'),
        /^Locked by: alice@laptop$/m,
        'the holder keeps it',
      );
      return { ok: true, result: '' };
    },
  );
});

test('the lock of a dead holder is taken over with a message: its process gone here, or not refreshed for too long', async (t) => {
  const lock = await lockDir();
  t.teardown(lock.cleanup);
  const rec = recorder();
  const opts: Options = { lock: lockOf(lock.dir), listener: rec.listener };
  // A holder on this machine whose process is gone (pid above any pid_max).
  const dead = { ...newLockInfo('bob@here', 'deploy killed'), pid: 99_999_999 };
  await new LocalConnection('h').exec(`mkdir -p '${lock.dir}' && cat > '${lock.dir}/info'`, {
    stdin: lockFileContent(dead),
  });
  const res = await drive([{ host: host('h') }], opts, async () => ({ ok: true, result: null }));
  t.is(res.exitCode, 0);
  t.true(
    rec.lines.some((l) =>
      /taking over the deploy lock held by bob@here .*: its process 99999999 on .* is gone/.test(l),
    ),
  );

  // With an opening: taken over, then the opening follows in one more script.
  await new LocalConnection('h').exec(`mkdir -p '${lock.dir}' && cat > '${lock.dir}/info'`, {
    stdin: lockFileContent(dead),
  });
  const opened = await drive(
    [{ host: host('h') }],
    { lock: lockOf(lock.dir, { opening: () => ({ script: `echo looked; exit ${OPENING_DONE}` }) }) },
    async (_t, h) => ({ ok: true, result: h.opened }),
  );
  t.deepEqual(opened.runs[0].result, { stdout: 'looked\n', code: OPENING_DONE, released: true });
  await t.throwsAsync(readFile(join(lock.dir, 'info'), 'utf8'));

  // The judgement itself: another machine's holder only by age; a reused pid by its start time.
  const here = { controller: 'ci', processStart: (pid: number) => (pid === 7 ? '100' : undefined) };
  t.is(deadHolder({ controller: 'laptop', pid: 1, idleSeconds: 30 }, here), undefined);
  t.regex(
    deadHolder({ controller: 'laptop', pid: 1, idleSeconds: LOCK_STALE_SECONDS + 1 }, here) ?? '',
    /last refreshed/,
  );
  t.regex(deadHolder({ controller: 'ci', pid: 8 }, here) ?? '', /process 8 on ci is gone/);
  t.regex(deadHolder({ controller: 'ci', pid: 7, pidStart: '99' }, here) ?? '', /another process/);
  t.is(deadHolder({ controller: 'ci', pid: 7, pidStart: '100', idleSeconds: 5 }, here), undefined);
});

// Serial: ava runs serial tests before the others, so the emitted SIGINT reaches this driver only.
test.serial(
  'Ctrl-C: the work sees its signal, no later host starts, the lock is released, exit 130',
  async (t) => {
    const lock = await lockDir();
    t.teardown(lock.cleanup);
    const rec = recorder();
    let started = 0;
    const listeners = process.listenerCount('SIGINT');
    const res = await drive(
      [{ host: host('a') }, { host: host('b') }],
      { serial: 1, lock: lockOf(lock.dir), listener: rec.listener },
      async (_t, { signal }) => {
        started++;
        setTimeout(() => process.emit('SIGINT', 'SIGINT'), 50);
        await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
        return { ok: false, result: null };
      },
    );
    t.is(started, 1);
    t.deepEqual(
      res.runs.map((r) => r.status),
      ['interrupted', 'skipped'],
    );
    t.is(res.exitCode, 130);
    t.is(res.interrupted, 'SIGINT');
    await t.throwsAsync(readFile(join(lock.dir, 'info'), 'utf8'));
    t.is(process.listenerCount('SIGINT'), listeners);
  },
);

test.serial(
  'Ctrl-C during a lock opening: the script is stopped with what it started, the lock released, exit 130',
  async (t) => {
    const lock = await lockDir();
    t.teardown(lock.cleanup);
    const pidFile = join(lock.dir, '..', 'sleep.pid');
    let opened: unknown = 'not worked';
    const running = drive(
      [{ host: host('a') }],
      {
        lock: lockOf(lock.dir, {
          opening: () => ({ script: `sleep 30 & echo $! > '${pidFile}'; wait; exit ${OPENING_DONE}` }),
        }),
      },
      async (_t, h) => {
        opened = h.opened;
        return { ok: false, result: null };
      },
    );
    // Ctrl-C once the opening's command runs (the lock is then taken).
    for (let i = 0; i < 100 && !(await readFile(pidFile, 'utf8').catch(() => '')); i++)
      await new Promise((r) => setTimeout(r, 50));
    process.emit('SIGINT', 'SIGINT');
    const res = await running;
    t.is(res.exitCode, 130);
    t.is(opened, undefined, 'the opening did not run to its end');
    await t.throwsAsync(readFile(join(lock.dir, 'info'), 'utf8'));
    const pid = (await readFile(pidFile, 'utf8')).trim();
    // Gone, or a zombie nobody reaped yet (a container's pid 1 may not).
    const state = await new LocalConnection('a').exec(`awk '{print $3}' /proc/${pid}/stat 2>/dev/null`);
    t.true(['', 'Z'].includes(state.stdout.trim()), "the opening's command was stopped");
  },
);

test('an unreachable host is reported at connect, without a lock or work', async (t) => {
  let worked = false;
  const res = await drive(
    [{ host: host('down') }],
    {
      open: async (): Promise<Connection> => {
        throw new UnreachableError('down', 'timeout', 'root@down:22: connection timed out');
      },
    },
    async () => {
      worked = true;
      return { ok: true, result: null };
    },
  );
  t.false(worked);
  t.is(res.runs[0].status, 'unreachable');
  t.is(res.runs[0].step, 'connect');
  t.is(res.exitCode, 3);
});

test('at most --forks hosts at once; a batch over maxFailPercentage stops the later ones, said as an event', async (t) => {
  const rec = recorder();
  let running = 0;
  let most = 0;
  const res = await drive(
    ['a', 'b', 'c', 'd', 'e', 'f'].map((name) => ({ host: host(name) })),
    { serial: 4, maxFailPercentage: 20, forks: 2, listener: rec.listener },
    async ({ host: h }) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 50));
      running--;
      return { ok: h.name !== 'a', result: null };
    },
  );
  t.is(most, 2);
  t.deepEqual(
    res.runs.map((r) => r.status),
    ['failed', 'ok', 'ok', 'ok', 'skipped', 'skipped'],
  );
  t.is(res.exitCode, 2);
  t.like(
    rec.events.find((e) => e.type === 'batch-stopped'),
    { bad: 1, of: 4, maxFailPercentage: 20, notStarted: 2 },
  );
  // One event stream: started, connected, the end with its exit code.
  t.like(rec.events[0], { type: 'run-started', hosts: ['a', 'b', 'c', 'd', 'e', 'f'] });
  t.like(rec.events.at(-1), { type: 'run-ended', exitCode: 2 });
});

test('a refused lock is an event naming the holder, and the host fails at its lock step', async (t) => {
  const lock = await lockDir();
  t.teardown(lock.cleanup);
  const other = { ...newLockInfo('alice@laptop', 'deploy other'), controller: 'elsewhere' };
  await new LocalConnection('h').exec(`mkdir -p '${lock.dir}' && cat > '${lock.dir}/info'`, {
    stdin: lockFileContent(other),
  });
  const rec = recorder();
  const res = await drive(
    [{ host: host('h') }],
    { lock: lockOf(lock.dir), listener: rec.listener },
    async () => ({
      ok: true,
      result: null,
    }),
  );
  t.like(res.runs[0], { status: 'failed', step: 'lock' });
  t.like(
    rec.events.find((e) => e.type === 'lock'),
    { host: 'h', state: 'refused' },
  );
  const refused = rec.events.find((e) => e.type === 'lock' && e.state === 'refused');
  t.regex(
    refused?.type === 'lock' ? refused.message : '',
    /another deploy holds the lock of h: alice@laptop/,
  );
  t.is(res.exitCode, 2);
});
