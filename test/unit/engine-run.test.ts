/**
 * The run loop, on this machine through the local connection: batched probes, re-probe after a change,
 * handlers (also after a failure, and left pending when they could not run), check mode, round trips.
 */
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { LocalConnection } from '../../src/connection/local.js';
import { recordPath } from '../../src/engine/pending.js';
import { runTasks } from '../../src/engine/run.js';
import { type Task, taskBase } from '../../src/engine/types.js';
import { absent, copy, file } from '../../src/tasks/index.js';
import { quote } from '../../src/util/shell.js';
import { copyOf, localHost, quietReporter } from '../helpers/engine.js';

/** A minimal task: `path` holds exactly `content`. */
function fileHas(path: string, content: string, opts: { notify?: string; name?: string } = {}): Task {
  return {
    ...taskBase('test-file', opts.name ?? `file ${path}`, { notify: opts.notify }),
    probe: `cat ${quote(path)} 2>/dev/null || printf '<missing>'`,
    plan: (p) =>
      p.stdout === content
        ? { steps: [] }
        : {
            steps: [{ kind: 'write', path, content }],
            reason: 'content differs',
            diff: { path, after: content },
          },
  };
}

function failing(): Task {
  return {
    ...taskBase('test-fail', 'always fails'),
    probe: 'true',
    plan: () => ({ steps: [{ kind: 'run', command: 'echo boom >&2; exit 4' }] }),
  };
}

const host = localHost;

test('a converged list costs one round trip; changes re-probe what follows', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-run-'));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const tasks = [fileHas(a, 'hello'), copyOf(a, b)];
  const conn = new LocalConnection('local');
  const { reporter } = quietReporter();
  const first = await runTasks(conn, host, tasks, { check: false, diff: false, reporter });
  t.deepEqual(first, { ok: 0, changed: 2, failed: 0, skipped: 0, applied: true });
  t.is(readFileSync(b, 'utf8'), 'hello');
  const before = conn.roundTrips;
  const second = await runTasks(conn, host, tasks, { check: false, diff: false, reporter });
  t.deepEqual(second, { ok: 2, changed: 0, failed: 0, skipped: 0, applied: false });
  t.is(conn.roundTrips - before, 1);
});

test('file tasks see what earlier tasks did: their batched states are read after the last change', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-run-'));
  const p = join(dir, "the 'file'");
  const others = Array.from({ length: 12 }, (_, i) =>
    copy({ path: join(dir, `other-${i}`), content: `${i}` }),
  );
  // absent() is probed in the first batch, when p does not exist yet: only a fresh state sees p.
  const tasks = [
    copy({ path: p, content: 'A' }),
    ...others,
    absent({ path: p }),
    file({ path: p, mode: '0600' }),
    copy({ path: p, content: 'B' }),
  ];
  const conn = new LocalConnection('local');
  const { reporter } = quietReporter();
  const first = await runTasks(conn, host, tasks, { check: false, diff: false, reporter });
  t.deepEqual(first, { ok: 0, changed: 16, failed: 0, skipped: 0, applied: true });
  t.is(readFileSync(p, 'utf8'), 'B');
  t.is(statSync(p).mode & 0o777, 0o600, 'the copy kept the mode file() set just before');
  const second = await runTasks(conn, host, tasks, { check: false, diff: false, reporter });
  t.deepEqual(second, { ok: 12, changed: 4, failed: 0, skipped: 0, applied: true });
  const before = conn.roundTrips;
  const third = await runTasks(conn, host, others, { check: false, diff: false, reporter });
  t.deepEqual(third, { ok: 12, changed: 0, failed: 0, skipped: 0, applied: false });
  t.is(conn.roundTrips - before, 1);
});

test('check mode reports the change and changes nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-run-'));
  const a = join(dir, 'a');
  writeFileSync(a, 'old');
  const { reporter, lines } = quietReporter(true);
  const res = await runTasks(new LocalConnection('local'), host, [fileHas(a, 'new')], {
    check: true,
    diff: true,
    reporter,
  });
  t.is(res.changed, 1);
  t.is(readFileSync(a, 'utf8'), 'old');
  const text = lines.join('');
  t.regex(text, /would change/);
  t.regex(text, /-old/);
  t.regex(text, /\+new/);
});

test('a handler runs after a later task failed, once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-run-'));
  const marker = join(dir, 'handler-ran');
  const handlerTask: Task = {
    ...taskBase('test-run', 'handler'),
    probe: 'true',
    plan: () => ({ steps: [{ kind: 'run', command: `echo x >> ${quote(marker)}` }] }),
  };
  const { reporter } = quietReporter();
  const res = await runTasks(
    new LocalConnection('local'),
    host,
    [fileHas(join(dir, 'a'), '1', { notify: 'h' }), fileHas(join(dir, 'b'), '2', { notify: 'h' }), failing()],
    { check: false, diff: false, reporter, unit: `unit-${Date.now()}`, handlers: { h: () => handlerTask } },
  );
  t.is(res.failed, 1);
  t.is(readFileSync(marker, 'utf8'), 'x\n');
});

test('notifying an unknown handler is a user error naming the known ones', async (t) => {
  const { reporter } = quietReporter();
  await t.throwsAsync(
    runTasks(new LocalConnection('local'), host, [fileHas('/nonexistent/x', 'y', { notify: 'nope' })], {
      check: true,
      diff: false,
      reporter,
      unit: 'web',
      handlers: { 'reload nginx': () => [] },
    }),
    { message: /notifies handler "nope"/ },
  );
});

test('a failing step reports the command, exit code and stderr', async (t) => {
  const { reporter, lines } = quietReporter();
  const res = await runTasks(new LocalConnection('local'), host, [failing()], {
    check: false,
    diff: false,
    reporter,
  });
  t.is(res.failed, 1);
  const text = lines.join('');
  t.regex(text, /exit code: 4/);
  t.regex(text, /boom/);
  t.false(existsSync('/nonexistent'));
});

test('a notifying command that fails still runs its handler (the record was made before it); a write refused by validate does not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-run-'));
  const marker = join(dir, 'handler-ran');
  const handlerTask: Task = {
    ...taskBase('test-run', 'handler'),
    probe: 'true',
    plan: () => ({ steps: [{ kind: 'run', command: `echo x >> ${quote(marker)}` }] }),
  };
  const failingNotifier: Task = {
    ...taskBase('test-fail', 'fails part way', { notify: 'h' }),
    probe: 'true',
    plan: () => ({ steps: [{ kind: 'run', command: `touch ${quote(join(dir, 'half'))}; exit 4` }] }),
  };
  const unit = `unit-fail-${Date.now()}`;
  const { reporter } = quietReporter();
  const res = await runTasks(new LocalConnection('local'), host, [failingNotifier], {
    check: false,
    diff: false,
    reporter,
    unit,
    handlers: { h: () => handlerTask },
  });
  t.is(res.failed, 1);
  t.is(readFileSync(marker, 'utf8'), 'x\n');
  t.false(existsSync(recordPath({ source: unit, unit, handler: 'h' })), 'record cleared');

  const refused: Task = {
    ...taskBase('test-file', 'refused write', { notify: 'h' }),
    probe: 'true',
    plan: () => ({ steps: [{ kind: 'write', path: join(dir, 'conf'), content: 'bad', validate: 'false' }] }),
  };
  const res2 = await runTasks(new LocalConnection('local'), host, [refused], {
    check: false,
    diff: false,
    reporter,
    unit,
    handlers: { h: () => handlerTask },
  });
  t.is(res2.failed, 1);
  t.is(readFileSync(marker, 'utf8'), 'x\n', 'the handler did not run again');
  t.false(existsSync(join(dir, 'conf')));
});
