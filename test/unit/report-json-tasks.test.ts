/** `--json` lists each host's tasks with their verdicts, in the order they ran (what a script compares). */
import { Writable } from 'node:stream';
import test from 'ava';
import { Reporter } from '../../src/engine/report.js';

test('the --json document has every task of each host with its verdict, ignored failures included', (t) => {
  const out = new Writable({ write: (_chunk, _enc, done) => done() });
  const reporter = new Reporter({ json: true, verbose: false, check: false, out });
  reporter.task('web1', 'copy /etc/a', 'changed', 'content differs');
  reporter.task('web1', 'service nginx', 'ok');
  reporter.ignoredFailure('web1', 'warm cache', 'step failed');
  reporter.task('web2', 'copy /etc/a', 'skipped', 'condition is false');
  let printed = '';
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => {
    printed += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    reporter.finish();
  } finally {
    process.stdout.write = write;
  }
  const doc = JSON.parse(printed) as { hosts: Record<string, { tasks: unknown }> };
  t.deepEqual(doc.hosts.web1.tasks, [
    { task: 'copy /etc/a', status: 'changed' },
    { task: 'service nginx', status: 'ok' },
    { task: 'warm cache', status: 'ignored' },
  ]);
  t.deepEqual(doc.hosts.web2.tasks, [{ task: 'copy /etc/a', status: 'skipped' }]);
});
