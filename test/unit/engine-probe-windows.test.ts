/**
 * Re-probing in windows: the probe work of a run is linear in its tasks and changes, round trips stay
 * few, and no task is ever planned from a probe taken before a change (chains of tasks that depend on
 * the one before prove it).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { LocalConnection } from '../../src/connection/local.js';
import type { Connection, ExecOptions, ExecResult } from '../../src/connection/types.js';
import { ProbeWindows, RIDE_ALONG } from '../../src/engine/probe-windows.js';
import { runTasks } from '../../src/engine/run.js';
import { type Task, taskBase } from '../../src/engine/types.js';
import { quote } from '../../src/util/shell.js';
import { copyOf, localHost, quietReporter } from '../helpers/engine.js';

/** Runs scripts on this machine and counts what the engine asked: round trips and probes. */
class CountingConnection implements Connection {
  readonly host = 'counting';
  private readonly local = new LocalConnection('counting');
  probes = 0;
  get roundTrips() {
    return this.local.roundTrips;
  }
  exec(script: string, opts?: ExecOptions): Promise<ExecResult> {
    this.probes += script.match(/@@vd-[0-9a-f]+-begin-\d+'/g)?.length ?? 0;
    return this.local.exec(script, opts);
  }
  async close() {}
}

function fileHas(path: string, content: string): Task {
  return {
    ...taskBase('test-file', `file ${path}`),
    probe: `cat ${quote(path)} 2>/dev/null || printf '<missing>'`,
    plan: (p) =>
      p.stdout === content ? { steps: [] } : { steps: [{ kind: 'write', path, content }], reason: 'differs' },
  };
}

const host = localHost;

const run = (conn: Connection, tasks: Task[]) =>
  runTasks(conn, host, tasks, { check: false, diff: false, reporter: quietReporter().reporter });

test('windows: ride-along is bounded, later windows double, any step makes every result stale', (t) => {
  const w = new ProbeWindows(Array.from({ length: 100 }, (_, i) => i));
  t.is(w.all().length, 100);
  w.record(new Map([['5', { stdout: 'x', exitCode: 0 }]]), [5]);
  t.deepEqual(w.fresh(5), { stdout: 'x', exitCode: 0 });
  t.false(w.stale(5));
  w.stepApplied();
  t.is(w.fresh(5), undefined);
  t.true(w.stale(5));
  t.false(w.stale(6), 'never probed: not stale, missing (the batch did not complete)');
  t.deepEqual(w.rideAlong(6), [6, 7, 8, 9, 10, 11, 12, 13].slice(0, RIDE_ALONG));
  t.is(w.nextWindow(14).length, RIDE_ALONG * 2);
  t.is(w.nextWindow(30).length, RIDE_ALONG * 4);
  w.stepApplied();
  t.is(w.nextWindow(60).length, RIDE_ALONG * 2);
  t.deepEqual(w.nextWindow(95), [95, 96, 97, 98, 99]);
});

test('windows skip tasks that have no probe (when: false)', (t) => {
  const w = new ProbeWindows([0, 2, 4, 6]);
  t.deepEqual(w.rideAlong(1), [2, 4, 6]);
});

test('a chain where every task depends on the one before: all changed, linear probes, right content', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-win-'));
  const n = 150;
  const tasks = [fileHas(join(dir, 'f0'), 'v1')];
  for (let i = 1; i < n; i++) tasks.push(copyOf(join(dir, `f${i - 1}`), join(dir, `f${i}`)));
  const conn = new CountingConnection();
  const res = await run(conn, tasks);
  t.deepEqual(res, { ok: 0, changed: n, failed: 0, skipped: 0, applied: true });
  for (let i = 0; i < n; i++) t.is(readFileSync(join(dir, `f${i}`), 'utf8'), 'v1');
  // One round trip to probe, one per change (its probes ride along).
  t.is(conn.roundTrips, 1 + n);
  // Re-probing every remaining task would be n²/2 = 11,250 probes. The windows cost at most n + RIDE_ALONG
  // per change; the continuations' re-probes on the host (continuation.ts) as much again, by their budget.
  t.true(conn.probes <= 2 * (n + RIDE_ALONG * n), `${conn.probes} probes`);

  // No change: one round trip, one probe per task.
  const again = new CountingConnection();
  t.deepEqual(await run(again, tasks), { ok: n, changed: 0, failed: 0, skipped: 0, applied: false });
  t.is(again.roundTrips, 1);
  t.is(again.probes, n);
});

test('a change seen far beyond the ride-along window: the stale probe is refreshed, not used', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-win-'));
  const src = join(dir, 'src');
  const tasks: Task[] = [fileHas(src, 'new')];
  // Converged tasks in between, more than the ride-along window.
  for (let i = 0; i < RIDE_ALONG * 5; i++) {
    writeFileSync(join(dir, `same${i}`), 'same');
    tasks.push(fileHas(join(dir, `same${i}`), 'same'));
  }
  writeFileSync(src, 'old');
  writeFileSync(join(dir, 'dest'), 'old');
  tasks.push(copyOf(src, join(dir, 'dest'))); // probed first when src still said "old": converged then
  const conn = new CountingConnection();
  const res = await run(conn, tasks);
  t.deepEqual(res, { ok: RIDE_ALONG * 5, changed: 2, failed: 0, skipped: 0, applied: true });
  t.is(readFileSync(join(dir, 'dest'), 'utf8'), 'new');
  // Probe; the change, whose script probes the rest of the list again on the host (continuation.ts):
  // the copy's probe moved, so those fresh probes come back and the walk plans from them; the copy's
  // change: 3 round trips (the windows alone took 5: probe, change, windows of 16 and 32, change).
  t.is(conn.roundTrips, 3);
  t.true(conn.probes <= 2 * tasks.length + RIDE_ALONG, `${conn.probes} probes`);
});

test('mixed: a change every 25 tasks costs few round trips and linear probes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-win-'));
  const n = 200;
  const tasks: Task[] = [];
  for (let i = 0; i < n; i++) {
    const path = join(dir, `m${i}`);
    if (i % 25 !== 0) writeFileSync(path, 'same');
    tasks.push(fileHas(path, 'same'));
  }
  const conn = new CountingConnection();
  const res = await run(conn, tasks);
  t.is(res.changed, n / 25);
  t.is(res.ok, n - n / 25);
  // Per change: its own round trip and at most two windows (16, then 32 reach the next change).
  t.true(conn.roundTrips <= 1 + (n / 25) * 3, `${conn.roundTrips} round trips`);
  // Re-probing everything after each change would be about n²/25 = 1,600 here; windows stay within 4n.
  t.true(conn.probes <= 4 * n, `${conn.probes} probes`);
});
