import { EventEmitter } from 'node:events';
import test from 'ava';
import { LocalConnection } from '../../src/connection/local.js';
import { RunStop } from '../../src/engine/interrupt.js';
import { Reporter } from '../../src/engine/report.js';
import { InterruptedError, runTasks } from '../../src/engine/run.js';
import type { HostInfo, Task } from '../../src/engine/types.js';

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
    source.emit(signal);
    t.true(stop.requested);
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
