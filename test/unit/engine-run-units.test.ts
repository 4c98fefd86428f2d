/**
 * A host's units (its roles) on one connection: the first probes of every unit travel in ONE round trip,
 * so a no-change run costs one round trip per host whatever the number of roles; a unit that changes
 * the host makes the units after it probe again (together, in one round trip), so no unit plans from a
 * probe taken before a change.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { LocalConnection } from '../../src/connection/local.js';
import type { RunEvent } from '../../src/engine/events.js';
import { RunEvents } from '../../src/engine/events.js';
import { RunStop } from '../../src/engine/interrupt.js';
import type { HostPlan, PlannedUnit } from '../../src/engine/plan.js';
import { runUnits } from '../../src/engine/run-plan.js';
import type { InventoryHost } from '../../src/inventory/types.js';
import { copy } from '../../src/tasks/index.js';
import { copyOf, localHost } from '../helpers/engine.js';

const unit = (name: string, tasks: PlannedUnit['tasks']): PlannedUnit => ({
  kind: 'role',
  name,
  definedBy: `role ${name}`,
  tags: [],
  tasks,
  handlers: {},
});

async function runAll(conn: LocalConnection, units: PlannedUnit[], check = false) {
  const events = new RunEvents();
  const seen: RunEvent[] = [];
  events.on((e) => seen.push(e));
  const plan: HostPlan = { host: { name: 'local' } as InventoryHost, info: localHost, units };
  const before = conn.roundTrips;
  const res = await runUnits({ check })(plan, {
    conn,
    signal: new AbortController().signal,
    stop: new RunStop(),
    events,
  });
  events.close();
  const tasks = seen.flatMap((e) => (e.type === 'task' ? [e] : []));
  return {
    ok: res.ok,
    roundTrips: conn.roundTrips - before,
    changed: tasks.filter((e) => e.status === 'changed').map((e) => e.label),
    failed: tasks.filter((e) => e.status === 'failed').map((e) => `${e.label}: ${e.detail}`),
  };
}

/** Four roles of two files each; role c copies what role b wrote (it must see b's change). */
function roles(dir: string, content: string): PlannedUnit[] {
  const p = (n: string) => join(dir, n);
  return [
    unit('a', [copy({ path: p('a1'), content: 'a1' }), copy({ path: p('a2'), content: 'a2' })]),
    unit('b', [copy({ path: p('b1'), content }), copy({ path: p('b2'), content: 'b2' })]),
    unit('c', [copyOf(p('b1'), p('c1')), copy({ path: p('c2'), content: 'c2' })]),
    unit('d', [copy({ path: p('d1'), content: 'd1' }), copy({ path: p('d2'), content: 'd2' })]),
  ];
}

test('four converged roles: one round trip for the host', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-units-'));
  const conn = new LocalConnection('local');
  const first = await runAll(conn, roles(dir, 'one'));
  t.true(first.ok);
  t.is(first.changed.length, 8);
  const again = await runAll(conn, roles(dir, 'one'));
  t.deepEqual(again, { ok: true, roundTrips: 1, changed: [], failed: [] });
  // --check probes the same way: one round trip, nothing to change.
  t.is((await runAll(conn, roles(dir, 'one'), true)).roundTrips, 1);
});

test('a change in one role: the roles after it probe again, together, and see the change', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-units-'));
  const conn = new LocalConnection('local');
  await runAll(conn, roles(dir, 'one'));
  const res = await runAll(conn, roles(dir, 'two'));
  // b1 changed, and c1 (probed before the change in the first round trip) was probed again after it.
  t.deepEqual(res.changed, ['b › copy ' + join(dir, 'b1'), 'c › copy ' + join(dir, 'b1')].map(String));
  t.is(readFileSync(join(dir, 'c1'), 'utf8'), 'two');
  // All roles probed (1); b1 written, b2's probe checked on the host and c's and d's taken after it (1);
  // c1 written, c2's probe checked and d's taken again after it (1). See continuation.ts.
  t.is(res.roundTrips, 3);
});

test('the last role alone after a change probes for itself; a drift found by the first probe is repaired', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-units-'));
  const conn = new LocalConnection('local');
  await runAll(conn, roles(dir, 'one'));
  writeFileSync(join(dir, 'd2'), 'drift');
  writeFileSync(join(dir, 'a1'), 'drift');
  const res = await runAll(conn, roles(dir, 'one'));
  t.is(res.changed.length, 2);
  t.is(readFileSync(join(dir, 'd2'), 'utf8'), 'd2');
  t.is(readFileSync(join(dir, 'a1'), 'utf8'), 'a1');
  t.deepEqual(res.failed, []);
});
