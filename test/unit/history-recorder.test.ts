/**
 * The run history is a consumer of the run's typed events: what the engine's Reporter and deploy's
 * DeployOutput emit reaches a registered recorder, attributed to the right host and task, with timings
 * and the round trips each task cost (counted by the connections); nothing reaches it once it is
 * unregistered. No printed text is read: a step fails because its event says so.
 */
import test from 'ava';
import { LocalConnection } from '../../src/connection/local.js';
import { DeployOutput } from '../../src/deploy/output.js';
import { listenToRuns, RunEvents } from '../../src/engine/events.js';
import { Reporter } from '../../src/engine/report.js';
import { Recorder } from '../../src/history/recorder.js';

const recorder = () =>
  new Recorder({
    command: 'provision',
    env: 'staging',
    args: ['provision', 'staging'],
    projectDir: '/nonexistent',
    verdandiVersion: 't',
  });

/** An engine reporter on an event stream nobody shows. */
const reporterOf = (events = new RunEvents()) =>
  new Reporter({ json: false, verbose: false, check: false }, events);

test.serial(
  'a provision: tasks per host in order, the diff on its task, the failure on the failed one',
  async (t) => {
    const rec = recorder();
    const stop = listenToRuns(rec.handle);
    const events = new RunEvents();
    const reporter = reporterOf(events);
    events.emit({ type: 'host-connected', host: 'web1' });
    events.emit({ type: 'host-connected', host: 'web2' });
    reporter.task('web1', 'nginx › apt nginx', 'ok');
    reporter.diff('web2', '--- /etc/nginx/nginx.conf\n+worker_processes 4;\n');
    reporter.task(
      'web1',
      'nginx › service nginx',
      'failed',
      'step failed',
      'command: systemctl start nginx\nexit code: 1',
    );
    reporter.task('web2', 'nginx › template /etc/nginx/nginx.conf', 'changed', 'content differs');
    reporter.unreachable('db1', 'timeout: no answer');
    events.emit({ type: 'run-ended', exitCode: 3, durationMs: 1, check: false, roundTrips: { web1: 2 } });
    stop();
    reporter.task('web1', 'after › the end', 'ok'); // not recorded: unregistered
    events.close();
    const run = await rec.toRecord({ exitCode: 2 });
    t.is(run.status, 'failed');
    t.deepEqual(
      run.hosts.map((h) => [h.name, h.status, h.roundTrips, h.tasks.map((x) => [x.label, x.status])]),
      [
        [
          'web1',
          'failed',
          2,
          [
            ['nginx › apt nginx', 'ok'],
            ['nginx › service nginx', 'failed'],
          ],
        ],
        ['web2', 'changed', 0, [['nginx › template /etc/nginx/nginx.conf', 'changed']]],
        ['db1', 'unreachable', 0, []],
      ],
    );
    const [web1, web2, db1] = run.hosts;
    t.is(web1.tasks[1].failure, 'command: systemctl start nginx\nexit code: 1');
    t.is(web1.tasks[0].diff, null);
    t.regex(web2.tasks[0].diff ?? '', /worker_processes 4/);
    t.is(db1.detail, 'timeout: no answer');
    for (const h of run.hosts)
      for (const task of h.tasks) t.true(task.startedMs >= h.startedMs && task.durationMs >= 0);
    t.is(run.argv, 'verdandi provision staging');
  },
);

test.serial('a deploy: each step a task of its site, failed steps failed with their report', async (t) => {
  const rec = recorder();
  const stop = listenToRuns(rec.handle);
  const events = new RunEvents();
  const out = new DeployOutput(events, { verbose: false });
  out.step('web1', 'shop', 'fetch', 'ok (0.4 s)');
  out.failed(
    'web1',
    'shop',
    'health check',
    'command: curl -fsS http://127.0.0.1:8001/health\nexit code: 22',
  );
  // A detail that reads "FAILED" does not make a step failed: its status does.
  out.step('web1', 'shop', 'outcome', 'FAILED-looking text, but a note');
  out.step('web2', 'shop', 'skipped', 'an earlier host failed: not deployed', 'skipped');
  stop();
  events.close();
  const run = await rec.toRecord({ exitCode: 2 });
  t.deepEqual(
    run.hosts.map((h) => h.tasks.map((x) => [x.label, x.status, x.failure])),
    [
      [
        ['shop › fetch', 'ok', null],
        ['shop › health check', 'failed', 'command: curl -fsS http://127.0.0.1:8001/health\nexit code: 22'],
        ['shop › outcome', 'ok', null],
      ],
      [['shop › skipped', 'skipped', null]],
    ],
  );
});

test.serial('round trips: each task gets the commands sent since the host’s previous task', async (t) => {
  const rec = recorder();
  const stop = listenToRuns(rec.handle);
  const web1 = new LocalConnection('web1');
  const events = new RunEvents();
  const reporter = reporterOf(events);
  // A role's probe and a step: two commands, reported on the first task.
  await web1.exec('true');
  await web1.exec('true');
  reporter.task('web1', 'app › copy /etc/a', 'changed', 'content differs');
  reporter.task('web1', 'app › copy /etc/b', 'ok');
  await web1.exec('true');
  reporter.task('web1', 'app › service app', 'changed', 'restarted');
  const counted = await rec.toRecord({ exitCode: 0 });
  t.deepEqual(
    counted.hosts[0].tasks.map((x) => x.roundTrips),
    [2, 0, 1],
  );
  t.is(counted.hosts[0].roundTrips, 3, 'before the run ends, the commands seen');
  // The run's end gives the host's total (its connection's own count).
  events.emit({ type: 'run-ended', exitCode: 0, durationMs: 1, check: false, roundTrips: { web1: 4 } });
  stop();
  events.close();
  t.is((await rec.toRecord({ exitCode: 0 })).hosts[0].roundTrips, 4);
});

test.serial(
  'an ignored failure is recorded as ignored: in the task list, not a failed host nor a failed run',
  async (t) => {
    const rec = recorder();
    const stop = listenToRuns(rec.handle);
    const events = new RunEvents();
    const reporter = reporterOf(events);
    events.emit({ type: 'host-connected', host: 'web1' });
    reporter.ignoredFailure('web1', 'app › command false', 'step failed', 'command: false\nexit code: 1');
    reporter.task('web1', 'app › copy /etc/app.conf', 'changed', 'content differs');
    stop();
    events.close();
    const run = await rec.toRecord({ exitCode: 0 });
    t.is(run.status, 'changed');
    const [host] = run.hosts;
    t.is(host.status, 'changed');
    t.deepEqual([host.ok, host.changed, host.failed], [0, 1, 0]);
    t.deepEqual(
      host.tasks.map((x) => [x.label, x.status, x.failure]),
      [
        ['app › command false', 'ignored', 'command: false\nexit code: 1'],
        ['app › copy /etc/app.conf', 'changed', null],
      ],
    );
  },
);
