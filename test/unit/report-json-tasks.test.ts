/** `--json` lists each host's tasks with their verdicts, in the order they ran (what a script compares). */
import { Writable } from 'node:stream';
import test from 'ava';
import { RunEvents } from '../../src/engine/events.js';
import { JsonOutput } from '../../src/engine/json-output.js';
import { Reporter } from '../../src/engine/report.js';

test('the --json document has every task of each host with its verdict, ignored failures included', (t) => {
  let printed = '';
  const out = new Writable({
    write: (chunk, _enc, done) => {
      printed += String(chunk);
      done();
    },
  });
  const events = new RunEvents().on(new JsonOutput(out).handle);
  const reporter = new Reporter({ json: true, verbose: false, check: false }, events);
  reporter.task('web1', 'copy /etc/a', 'changed', 'content differs');
  reporter.task('web1', 'service nginx', 'ok');
  reporter.ignoredFailure('web1', 'warm cache', 'step failed');
  reporter.task('web2', 'copy /etc/a', 'skipped', 'condition is false');
  events.emit({ type: 'run-ended', check: false, exitCode: 0, durationMs: 1, roundTrips: {} });
  events.close();
  const doc = JSON.parse(printed) as { hosts: Record<string, { tasks: unknown; ignored: number }> };
  t.deepEqual(doc.hosts.web1.tasks, [
    { task: 'copy /etc/a', status: 'changed' },
    { task: 'service nginx', status: 'ok' },
    { task: 'warm cache', status: 'ignored' },
  ]);
  t.is(doc.hosts.web1.ignored, 1);
  t.deepEqual(doc.hosts.web2.tasks, [{ task: 'copy /etc/a', status: 'skipped' }]);
});
