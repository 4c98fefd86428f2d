/**
 * A change's continuation (continuation.ts), on this machine through the local connection: the rest of
 * the list and the notified handler run in the change's own round trip when their probes print what
 * they printed before; when a probe moved, the walk goes on from the new probes and still converges;
 * a stop request that reaches the host before the handler step leaves it recorded, not run.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { LocalConnection } from '../../src/connection/local.js';
import { parseContinuation } from '../../src/engine/continuation.js';
import { recordPath } from '../../src/engine/pending.js';
import { buildProbeBatch } from '../../src/engine/probe-batch.js';
import { InterruptedError, runTasks } from '../../src/engine/run.js';
import { type Task, taskBase } from '../../src/engine/types.js';
import { quote } from '../../src/util/shell.js';
import { copyOf, localHost, quietReporter } from '../helpers/engine.js';

/** `path` holds exactly `content`; `validate` runs before the write installs it. */
function fileHas(path: string, content: string, opts: { notify?: string; validate?: string } = {}): Task {
  return {
    ...taskBase('test-file', `file ${path}`, { notify: opts.notify }),
    probe: `cat ${quote(path)} 2>/dev/null || printf '<missing>'`,
    plan: (p) =>
      p.stdout === content
        ? { steps: [] }
        : { steps: [{ kind: 'write', path, content, validate: opts.validate }], reason: 'content differs' },
  };
}

/** A handler command: appends a line to `log` (a plain command: a continuation can run it). */
function appendTo(log: string): Task {
  return {
    ...taskBase('test-command', `append to ${log}`),
    probe: '',
    alwaysRuns: true,
    plan: () => ({ steps: [{ kind: 'run', command: `echo ran >> ${quote(log)}` }] }),
  };
}

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'vd-continuation-'));
  const log = join(dir, 'handler.log');
  const unit = `continuation ${dir}`;
  const owner = { source: unit, unit };
  return {
    dir,
    log,
    unit,
    handlers: { note: () => appendTo(log) },
    record: recordPath({ ...owner, handler: 'note' }),
    ran: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0),
  };
}

test('a change and its handler in two round trips: the rest of the list checked on the host, the record cleared', async (t) => {
  const s = setup();
  const a = join(s.dir, 'a');
  const b = join(s.dir, 'b');
  const conn = new LocalConnection('local');
  const { reporter, lines } = quietReporter();
  const list = (content: string) => [fileHas(a, content, { notify: 'note' }), fileHas(b, 'b')];
  const opts = { check: false, diff: false, reporter, unit: s.unit, handlers: s.handlers };
  await runTasks(conn, localHost, list('one'), opts);
  t.is(s.ran(), 1);
  const before = conn.roundTrips;
  const res = await runTasks(conn, localHost, list('two'), opts);
  t.is(conn.roundTrips - before, 2, 'the probes, then the change with the rest');
  t.deepEqual(res, { ok: 1, changed: 2, failed: 0, skipped: 0, applied: true });
  t.is(readFileSync(a, 'utf8'), 'two');
  t.is(s.ran(), 2, 'the handler ran once more');
  t.false(existsSync(s.record), 'its record was cleared with it');
  t.regex(lines.join(''), /handler: note › append to/);
  // Nothing to do: one round trip, the handler does not run.
  const again = conn.roundTrips;
  await runTasks(conn, localHost, list('two'), opts);
  t.is(conn.roundTrips - again, 1);
  t.is(s.ran(), 2);
});

test('a change that moves what a later task sees: the walk goes on from the new probes and converges', async (t) => {
  const s = setup();
  const a = join(s.dir, 'a');
  const b = join(s.dir, 'b');
  const conn = new LocalConnection('local');
  const { reporter } = quietReporter();
  // b copies a: a's change moves b's probe, which the host finds different from the first one.
  const list = (content: string) => [fileHas(a, content, { notify: 'note' }), copyOf(a, b)];
  const opts = { check: false, diff: false, reporter, unit: s.unit, handlers: s.handlers };
  await runTasks(conn, localHost, list('one'), opts);
  const before = conn.roundTrips;
  const res = await runTasks(conn, localHost, list('two'), opts);
  t.deepEqual(res, { ok: 0, changed: 3, failed: 0, skipped: 0, applied: true });
  t.is(readFileSync(b, 'utf8'), 'two', 'b planned from a probe taken after a changed');
  // The probes; a written, the rest probed again (moved); b written with the handler after it.
  t.is(conn.roundTrips - before, 3);
  t.is(s.ran(), 2, 'the handler ran once');
  t.false(existsSync(s.record));
});

test('a stop request that reaches the host before the handler step: the handler stays recorded, not run', async (t) => {
  const s = setup();
  const a = join(s.dir, 'a');
  const validating = join(s.dir, 'validating');
  const go = join(s.dir, 'go');
  const conn = new LocalConnection('local');
  const { reporter } = quietReporter();
  const hold = `touch ${quote(validating)}; while [ ! -e ${quote(go)} ]; do sleep 0.05; done; true`;
  const list = (content: string) => [fileHas(a, content, { notify: 'note', validate: hold })];
  const controller = new AbortController();
  const stop = {
    get requested() {
      return controller.signal.aborted;
    },
    aborted: controller.signal,
  };
  const opts = { check: false, diff: false, reporter, unit: s.unit, handlers: s.handlers, stop };
  writeFileSync(go, '');
  await runTasks(conn, localHost, list('one'), opts);
  t.is(s.ran(), 1);
  rmSync(go);
  rmSync(validating);
  const run = runTasks(conn, localHost, list('two'), opts);
  while (!existsSync(validating)) await new Promise((r) => setTimeout(r, 20));
  controller.abort();
  // The stop request is a file on the host: once it is there, the write may finish.
  const stops = () => readdirSync('/run/verdandi/tasks').filter((f) => f.endsWith('.stop'));
  while (stops().length === 0) await new Promise((r) => setTimeout(r, 20));
  writeFileSync(go, '');
  const err = await t.throwsAsync(run);
  t.true(err instanceof InterruptedError, String(err));
  t.regex(err?.message ?? '', /stopped before .*handler: note/);
  t.is(readFileSync(a, 'utf8'), 'two', 'the write in flight finished');
  t.is(s.ran(), 1, 'the handler did not start');
  t.true(existsSync(s.record), 'it stays recorded for the next run');
  // The next run runs it.
  const next = await runTasks(conn, localHost, list('two'), { ...opts, stop: undefined });
  t.is(next.failed, 0);
  t.is(s.ran(), 2);
  t.false(existsSync(s.record));
});

test('a continuation whose verdict is missing (the shell died) says nothing is known', (t) => {
  const c = {
    nonce: 'n1',
    verify: buildProbeBatch([], 'n1'),
    predicted: '',
    before: '',
    after: '',
  };
  t.deepEqual(parseContinuation('', c), { kind: 'lost' });
  t.like(parseContinuation('@@vd-n1-same\n', c), { kind: 'same', stopped: false, ran: undefined });
  const ran = parseContinuation(
    `@@vd-n1-same\n@@vd-n1-ran 3 4 20000\nout\n\n@@vd-n1-stderr\n${'e'.repeat(10)}\n@@vd-n1-done\n`,
    c,
  );
  t.like(ran, { kind: 'same', ran: { code: 3, stdout: 'out\n' } });
  // Bounded on the host: the size it printed names what was left out.
  t.regex(ran.kind === 'same' ? (ran.ran?.stderr ?? '') : '', /^\[… 20\.0 KB not shown\]\ne{10}$/);
});
