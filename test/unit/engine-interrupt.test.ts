import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import test from 'ava';
import { LocalConnection } from '../../src/connection/local.js';
import { RunStop } from '../../src/engine/interrupt.js';
import { Reporter } from '../../src/engine/report.js';
import { InterruptedError, runTasks } from '../../src/engine/run.js';
import type { HostInfo, Task } from '../../src/engine/types.js';
import { shell } from '../../src/tasks/command.js';
import { localHost, quietReporter } from '../helpers/engine.js';

test('the first signal requests a stop (exit 130/143), the second one aborts', (t) => {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    const source = new EventEmitter();
    const seen: string[] = [];
    const stop = new RunStop().listen(
      (s) => seen.push(`first ${s}`),
      (s) => seen.push(`second ${s}`),
      source,
    );
    t.false(stop.requested);
    t.is(stop.exitCode, undefined);
    t.false(stop.aborted.aborted);
    source.emit(signal);
    t.true(stop.requested);
    t.true(stop.aborted.aborted, 'the first signal stops the commands in flight');
    t.is(stop.exitCode, code);
    source.emit('SIGINT');
    t.deepEqual(seen, [`first ${signal}`, 'second SIGINT']);
    stop.dispose();
    t.is(source.listenerCount('SIGINT') + source.listenerCount('SIGTERM'), 0);
  }
});

const host: HostInfo = {
  name: 'local',
  address: 'localhost',
  groups: [],
  vars: {},
  secrets: {},
  env: 't',
  inventory: { hosts: [] },
};

function touchTask(path: string): Task {
  return {
    type: 'test',
    name: `touch ${path}`,
    probe: `test -e ${path} && echo yes || echo no`,
    plan: (p) =>
      p.stdout.trim() === 'yes' ? { steps: [] } : { steps: [{ kind: 'run', command: `touch ${path}` }] },
    notify: [],
    tags: [],
    when: true,
    sensitive: false,
    ignoreErrors: false,
  };
}

test('a stop request starts no new command: runTasks stops before the next step', async (t) => {
  const reporter = new Reporter({ json: true, verbose: false, check: false });
  const stop = { requested: true };
  const err = await t.throwsAsync(
    runTasks(new LocalConnection('local'), host, [touchTask('/nonexistent-dir/x')], {
      check: false,
      diff: false,
      reporter,
      stop,
    }),
    { instanceOf: InterruptedError },
  );
  t.regex(err?.message ?? '', /stopped before probing tasks/);
});

/** Whether a process of that pid still runs (a zombie waiting for its reaper does not). */
function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitForFile(path: string, ms = 10_000): Promise<string> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
    try {
      const text = readFileSync(path, 'utf8');
      if (text.endsWith('\n')) return text.trim();
    } catch {
      /* not yet */
    }
  }
  throw new Error(`${path} did not appear`);
}

test('a stop request stops the command in flight with everything it started', async (t) => {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(`${tmpdir()}/vd-stop-`);
  const controller = new AbortController();
  const stop = {
    get requested() {
      return controller.signal.aborted;
    },
    aborted: controller.signal,
  };
  const { reporter } = quietReporter();
  const running = runTasks(
    new LocalConnection('local'),
    localHost,
    [shell({ script: `sleep 1000 & echo $! > ${dir}/child; wait` })],
    { check: false, diff: false, reporter, stop },
  );
  const child = Number(await waitForFile(`${dir}/child`));
  t.true(alive(child));
  const started = Date.now();
  controller.abort('SIGINT');
  const err = await t.throwsAsync(running, { instanceOf: InterruptedError });
  t.regex(
    err?.message ?? '',
    /stopped during tasks › shell sleep 1000 .*: its command was stopped on the host/,
  );
  t.true(Date.now() - started < 5000, `${Date.now() - started} ms`);
  t.false(alive(child), 'the command started by the script outlived the stop');
});

test('timeout: the command fails with a clear message and nothing it started remains', async (t) => {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(`${tmpdir()}/vd-timeout-`);
  const { reporter, lines } = quietReporter();
  const started = Date.now();
  const res = await runTasks(
    new LocalConnection('local'),
    localHost,
    [shell({ script: `sleep 1000 & echo $! > ${dir}/child; wait`, timeout: 1 })],
    { check: false, diff: false, reporter },
  );
  t.is(res.failed, 1);
  t.true(Date.now() - started < 5000, `${Date.now() - started} ms`);
  t.regex(lines.join(''), /timed out after 1 s: stopped with its whole process group/);
  t.false(alive(Number(await waitForFile(`${dir}/child`))));
  // The run's default applies to a task without its own timeout.
  const byDefault = await runTasks(
    new LocalConnection('local'),
    localHost,
    [shell({ script: 'sleep 1000' })],
    {
      check: false,
      diff: false,
      reporter,
      taskTimeout: 1,
    },
  );
  t.is(byDefault.failed, 1);
});
