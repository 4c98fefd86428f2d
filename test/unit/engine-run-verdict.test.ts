/**
 * command and shell's changedWhen, failedWhen, retries, delay and until, through the run loop on this
 * machine (a LocalConnection): what the tasks report, how many tries ran, what `-v` shows, and what a
 * sensitive task keeps out of the events (the terminal, --json and the history are made from them).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { LocalConnection } from '../../src/connection/local.js';
import type { RunEvent, RunEventBody } from '../../src/engine/events.js';
import { JsonOutput } from '../../src/engine/json-output.js';
import { recordPath } from '../../src/engine/pending.js';
import { Reporter } from '../../src/engine/report.js';
import { InterruptedError, runTasks } from '../../src/engine/run.js';
import { type Task, taskBase } from '../../src/engine/types.js';
import { command, shell } from '../../src/tasks/command.js';
import { quote } from '../../src/util/shell.js';
import { localHost } from '../helpers/engine.js';

/** A verbose reporter: `text()` is what the terminal showed, `events` what --json and history get. */
function recorder() {
  const lines: string[] = [];
  const out = {
    write: (s: string) => {
      lines.push(s);
      return true;
    },
    isTTY: false,
  } as unknown as NodeJS.WritableStream;
  const reporter = new Reporter({ json: false, verbose: true, check: false, out });
  const events: RunEventBody[] = [];
  reporter.events.on((e) => {
    events.push(e as RunEventBody);
  });
  return { reporter, text: () => lines.join(''), events };
}

const run = (tasks: Task[], reporter: Reporter, extra: Partial<Parameters<typeof runTasks>[3]> = {}) =>
  runTasks(new LocalConnection('local'), localHost, tasks, { check: false, diff: false, reporter, ...extra });

const scratch = () => mkdtempSync(join(tmpdir(), 'vd-verdict-'));

test('changedWhen from stdout: changed when it did something, ok on the rerun', async (t) => {
  const flag = join(scratch(), 'flag');
  const task = shell({
    script: `if [ -e ${quote(flag)} ]; then echo exists; else touch ${quote(flag)}; echo created; fi`,
    changedWhen: ({ stdout }) => stdout.includes('created'),
  });
  const first = recorder();
  t.like(await run([task], first.reporter), { changed: 1, ok: 0, failed: 0 });
  const second = recorder();
  t.like(await run([task], second.reporter), { changed: 0, ok: 1, failed: 0 });
  t.regex(second.text(), /ok\s+local\s+.*ran; changedWhen says no change/);
  t.regex(second.text(), /changedWhen says no change/);
});

test('changedWhen: false never reports a change', async (t) => {
  const { reporter } = recorder();
  t.like(await run([command({ argv: ['true'], changedWhen: false })], reporter), { ok: 1, changed: 0 });
});

test('failedWhen: exit code 1 is ok, a matching stderr fails with the reason', async (t) => {
  const rules = {
    failedWhen: ({ rc, stderr }: { rc: number; stderr: string }) => rc > 1 || /FATAL/.test(stderr),
  };
  const { reporter } = recorder();
  t.like(await run([shell({ script: 'exit 1', ...rules })], reporter), { changed: 1, failed: 0 });
  const failing = recorder();
  const res = await run([shell({ script: 'echo FATAL: disk full >&2', ...rules })], failing.reporter);
  t.like(res, { failed: 1, changed: 0 });
  t.regex(failing.text(), /failedWhen is true \(exit code: 0\)/);
  t.regex(failing.text(), /FATAL: disk full/);
});

test('retries and until: tries until the result says so, each try in -v', async (t) => {
  const counter = join(scratch(), 'count');
  const task = shell({
    script: `n=$(($(cat ${quote(counter)} 2>/dev/null || echo 0) + 1)); echo $n > ${quote(counter)}; echo $n`,
    retries: 5,
    delay: 0,
    until: ({ stdout }) => stdout.trim() === '3',
    name: 'count to 3',
  });
  const { reporter, text } = recorder();
  t.like(await run([task], reporter), { changed: 1, failed: 0 });
  t.is(readFileSync(counter, 'utf8'), '3\n', 'three tries ran');
  t.regex(text(), /count to 3: try 1 of 6: exit code: 0, until is false; next try in 0 s/);
  t.regex(text(), /count to 3: try 2 of 6/);
  t.regex(text(), /ran .* \(try 3 of 6\)/);
  t.notRegex(text(), /try 4 of 6/);
});

test('retries without until: again while it fails; the last failure fails the task', async (t) => {
  const counter = join(scratch(), 'count');
  const task = shell({
    script: `echo x >> ${quote(counter)}; echo nope >&2; exit 3`,
    retries: 2,
    delay: 0,
  });
  const { reporter, text } = recorder();
  t.like(await run([task], reporter), { failed: 1, changed: 0 });
  t.is(readFileSync(counter, 'utf8'), 'x\nx\nx\n', 'one try and two retries');
  t.regex(text(), /exit code: 3, after 3 tries/);
});

test('until still false after the last try fails the task', async (t) => {
  const { reporter, text } = recorder();
  const task = command({
    argv: ['echo', 'starting'],
    retries: 1,
    delay: 0,
    until: (r) => r.stdout === 'up\n',
  });
  t.like(await run([task], reporter), { failed: 1 });
  t.regex(text(), /until was still false after 2 tries \(exit code: 0\)/);
});

test('a function that throws fails the task, named, with the error', async (t) => {
  const { reporter, text } = recorder();
  const task = command({
    argv: ['echo', '{'],
    name: 'parse output',
    changedWhen: ({ stdout }) => JSON.parse(stdout).changed,
  });
  t.like(await run([task], reporter), { failed: 1 });
  t.regex(text(), /failed\s+local\s+.*parse output/);
  t.regex(text(), /changedWhen threw: .*JSON/);
});

test('a sensitive task keeps its output out of every event, through failedWhen and a throwing function', async (t) => {
  const secret = 'hunter2-very-secret';
  const failing = shell({
    // The value comes in through env (never in a label or on a command line), as a secret would.
    script: 'echo "$TOKEN"; echo "$TOKEN-err" >&2',
    env: { TOKEN: secret },
    sensitive: true,
    failedWhen: ({ stdout }) => stdout.includes(secret),
  });
  const throwing = shell({
    script: 'echo "$TOKEN"',
    env: { TOKEN: secret },
    sensitive: true,
    ignoreErrors: true,
    changedWhen: ({ stdout }) => {
      throw new Error(`unexpected ${stdout}`);
    },
  });
  for (const task of [failing, throwing]) {
    const { reporter, text, events } = recorder();
    const res = await run([task], reporter);
    t.true(res.failed === 1 || events.some((e) => e.type === 'task' && e.status === 'failed'));
    t.false(text().includes(secret), text());
    t.false(JSON.stringify(events).includes(secret));
    t.regex(text(), /its output is hidden: sensitive task|its message is hidden: sensitive task/);
  }
});

test('a sensitive task with a secret in its script: no event names it, --json neither', async (t) => {
  const secret = 'hunter2-written-in-the-script';
  // The secret is written into the script itself (not passed through env): the default label, the
  // script's first line, would show it.
  const task = shell({ script: `echo ${secret} >/dev/null; echo ${secret}; exit 3`, sensitive: true });
  const { reporter, text, events } = recorder();
  t.like(await run([task], reporter), { failed: 1 });
  t.false(text().includes(secret), text());
  // The task event is what --json lists and the history records (its label, detail and failure).
  const taskEvents = events.filter((e) => e.type === 'task');
  t.deepEqual(
    taskEvents.map((e) => e.type === 'task' && [e.label, e.status]),
    [['tasks › shell (sensitive)', 'failed']],
  );
  const json: string[] = [];
  const output = new JsonOutput({ write: (s: string) => json.push(s) } as unknown as NodeJS.WritableStream);
  for (const e of events) output.handle({ ...e, at: 0 } as RunEvent);
  output.handle({
    type: 'run-ended',
    check: false,
    exitCode: 2,
    durationMs: 1,
    roundTrips: {},
    at: 0,
  } as RunEvent);
  t.regex(json.join(''), /"label": "tasks › shell \(sensitive\)"/);
  t.false(json.join('').includes(secret));
});

test('the functions see the bounded output: the tail, led by what was left out', async (t) => {
  let seen = '';
  const task = shell({
    script: 'yes line | head -n 20000; echo last',
    changedWhen: ({ stdout }) => {
      seen = stdout;
      return true;
    },
  });
  const { reporter } = recorder();
  await run([task], reporter);
  t.regex(seen, /^\[… [\d.]+ KB not shown\]\n/);
  t.true(seen.endsWith('line\nlast\n'));
  t.true(seen.length < 17 * 1024);
});

test('check mode: the command does not run and is reported as it would run', async (t) => {
  const flag = join(scratch(), 'flag');
  const out = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;
  const reporter = new Reporter({ json: false, verbose: false, check: true, out });
  const res = await runTasks(
    new LocalConnection('local'),
    localHost,
    [shell({ script: `touch ${quote(flag)}`, changedWhen: false, retries: 2 })],
    { check: true, diff: false, reporter },
  );
  t.like(res, { changed: 1 });
  t.false(existsSync(flag));
});

test('a stop request during the delay between tries ends the task at once', async (t) => {
  const controller = new AbortController();
  const stop = {
    get requested() {
      return controller.signal.aborted;
    },
    aborted: controller.signal,
  };
  const { reporter } = recorder();
  setTimeout(() => controller.abort(), 500);
  const started = Date.now();
  await t.throwsAsync(run([command({ argv: ['false'], retries: 3, delay: 60 })], reporter, { stop }), {
    instanceOf: InterruptedError,
  });
  t.true(Date.now() - started < 20_000);
});

test('changedWhen saying no change notifies no handler and leaves no record', async (t) => {
  const dir = scratch();
  const marker = join(dir, 'handler-ran');
  const handler: Task = {
    ...taskBase('test-run', 'handler'),
    probe: 'true',
    plan: () => ({ steps: [{ kind: 'run', command: `echo x >> ${quote(marker)}` }] }),
  };
  const unit = `unit-verdict-${Date.now()}`;
  const { reporter } = recorder();
  const notifying = (changed: boolean) =>
    command({ argv: ['true'], notify: 'h', changedWhen: () => changed });
  t.like(await run([notifying(false)], reporter, { unit, handlers: { h: () => handler } }), { ok: 1 });
  t.false(existsSync(marker), 'the handler did not run');
  t.false(existsSync(recordPath({ source: unit, unit, handler: 'h' })), 'no record left');
  t.like(await run([notifying(true)], reporter, { unit, handlers: { h: () => handler } }), { changed: 2 });
  t.is(readFileSync(marker, 'utf8'), 'x\n');
  writeFileSync(marker, '');
});
