/**
 * Pending-handler records (src/engine/pending.ts): one file per record, keyed by the file, unit and
 * handler; clearing one never touches another; records no unit of the run can replay are reported.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  clearPendingScript,
  LEGACY_PENDING_FILE,
  PENDING_DIR,
  PendingLedger,
  parsePending,
  pendingHandlersOf,
  readPendingProbe,
  recordPath,
  recordPendingScript,
  unclearedRecord,
} from '../../src/engine/pending.js';
import type { HostPlan } from '../../src/engine/plan.js';

/** Runs a script with the state directory moved into a fresh temporary directory. */
function inDir(dir: string) {
  return (script: string) =>
    execFileSync(
      'sh',
      [
        '-c',
        script
          .replaceAll(PENDING_DIR, join(dir, 'pending'))
          .replaceAll(LEGACY_PENDING_FILE, join(dir, 'legacy')),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    ).toString();
}

const siteA = { source: 'playbook a.ts', unit: 'play 1' };
const siteB = { source: 'playbook b.ts', unit: 'play 1' };

test('the same handler name in two playbooks makes two records; each clears its own', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-pending-'));
  const run = inDir(dir);
  run(recordPendingScript(siteA, ['restart', 'reload']));
  run(recordPendingScript(siteB, ['restart']));
  t.not(recordPath({ ...siteA, handler: 'restart' }), recordPath({ ...siteB, handler: 'restart' }));
  t.is(readdirSync(join(dir, 'pending')).length, 3, 'one file per record, no temporary file left');

  t.is(run(clearPendingScript(siteB, 'restart')), '');
  const pending = parsePending(run(readPendingProbe));
  t.deepEqual(pendingHandlersOf(pending, siteA).sort(), ['reload', 'restart']);
  t.deepEqual(pendingHandlersOf(pending, siteB), []);
  const file = recordPath({ ...siteA, handler: 'reload' }).replace(PENDING_DIR, join(dir, 'pending'));
  t.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { ...siteA, handler: 'reload' });
});

test('recording an existing record again keeps it; a record that cannot be written fails the script', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-pending-'));
  const run = inDir(dir);
  run(recordPendingScript(siteA, ['restart']));
  run(recordPendingScript(siteA, ['restart']));
  t.is(readdirSync(join(dir, 'pending')).length, 1);
  // The record directory is a file: nothing can be written there.
  const blocked = mkdtempSync(join(tmpdir(), 'vd-pending-'));
  execFileSync('touch', [join(blocked, 'pending')]);
  t.throws(() => inDir(blocked)(recordPendingScript(siteA, ['restart'])));
});

test('a record that could not be removed is named by the clear script', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-pending-'));
  const run = inDir(dir);
  run(recordPendingScript(siteA, ['restart']));
  const path = recordPath({ ...siteA, handler: 'restart' });
  // A directory in its place: `rm -f` cannot remove it.
  const out = inDir(dir)(`rm -f ${path} && mkdir ${path} && ${clearPendingScript(siteA, 'restart')}`);
  t.is(unclearedRecord(out), join(dir, 'pending', path.slice(PENDING_DIR.length + 1)));
  t.is(unclearedRecord('\n@@vd-x-probe 0\n'), undefined);
});

function plan(host: string, units: Array<{ definedBy: string; name: string; handlers: string[] }>): HostPlan {
  return {
    host: { name: host },
    units: units.map((u) => ({
      name: u.name,
      definedBy: u.definedBy,
      tags: [],
      tasks: [],
      handlers: Object.fromEntries(u.handlers.map((h) => [h, () => []])),
    })),
  } as unknown as HostPlan;
}

test('records no unit of the run can replay are reported once per host, naming their file; legacy records too', (t) => {
  const text = [
    `record\t${PENDING_DIR}/a.json\t${JSON.stringify({ ...siteA, handler: 'restart' })}`,
    `record\t${PENDING_DIR}/b.json\t${JSON.stringify({ ...siteB, handler: 'restart' })}`,
    `record\t${PENDING_DIR}/c.json\tnot json`,
    'legacy\tplay 1\trestart',
    '',
  ].join('\n');
  const pending = parsePending(text);
  const ledger = PendingLedger.of([
    plan('web1', [{ definedBy: 'playbook b.ts', name: 'play 1', handlers: ['restart'] }]),
  ]);
  t.true(ledger.unchecked('web1'));
  const warnings = ledger.unreplayable('web1', pending);
  t.is(warnings.length, 3);
  t.regex(
    warnings[0],
    /handler "restart" of playbook a\.ts, play 1 is pending .*\/a\.json.*run playbook a\.ts/,
  );
  t.regex(warnings[1], /c\.json is not a handler record/);
  t.regex(warnings[2], /pending-handlers holds .*play 1 › restart.*not run/);
  t.false(ledger.unchecked('web1'));
  t.deepEqual(ledger.unreplayable('web1', pending), [], 'once per host and command');
});
