import { createHash } from 'node:crypto';
import test from 'ava';
import type { FileState, ProbeResult, Task } from '../../../src/engine/types.js';
import { execStart, systemdTimer } from '../../../src/tasks/systemd-timer.js';
import { UserError } from '../../../src/util/errors.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const file = (content: string): FileState => ({
  type: 'file',
  uid: 0,
  user: 'root',
  gid: 0,
  group: 'root',
  mode: 0o644,
  sha256: sha(content),
});

/** The probe's output for a timer in these states, and these unit files. */
function probed(task: Task, systemd: string, states: FileState[]): ProbeResult {
  return {
    stdout: `verdandi-systemd-timer ${systemd}\n`,
    exitCode: 0,
    files: new Map((task.files ?? []).map(({ path }, index) => [path, states[index]])),
  };
}

const task = () =>
  systemdTimer({
    timer: 'backup',
    onCalendar: 'daily',
    command: 'backup --all > /var/log/backup.log 2>&1',
    user: 'backup',
  });

/** The contents the task writes (from a plan on a fresh host). */
function contents(job: Task): string[] {
  return job
    .plan(probed(job, 'inactive ', [{ type: 'absent' }, { type: 'absent' }]))
    .steps.flatMap((step) => (step.kind === 'write' ? [step.content] : []));
}

test('a fresh host: both units written, daemon-reload, the timer enabled and started', (t) => {
  const job = task();
  t.is(job.name, 'systemdTimer backup');
  const plan = job.plan(probed(job, 'inactive ', [{ type: 'absent' }, { type: 'absent' }]));
  t.deepEqual(
    plan.steps.map((step) => (step.kind === 'write' ? `write ${step.path}` : step.command)),
    [
      'write /etc/systemd/system/backup.service',
      'write /etc/systemd/system/backup.timer',
      'systemctl daemon-reload',
      'systemctl enable backup.timer',
      'systemctl restart backup.timer',
    ],
  );
  const [service, timer] = contents(job);
  t.regex(
    service,
    /\nType=oneshot\nUser=backup\nExecStart=\/bin\/sh -c "backup --all > \/var\/log\/backup\.log 2>&1"\n$/,
  );
  t.regex(timer, /\n\[Timer\]\nOnCalendar=daily\nPersistent=true\n\n\[Install\]\nWantedBy=timers\.target\n$/);
});

test('converged: same units, enabled and active: nothing', (t) => {
  const job = task();
  const [service, timer] = contents(job);
  t.deepEqual(job.plan(probed(job, 'active enabled ', [file(service), file(timer)])), { steps: [] });
});

test('stopped and disabled by hand: enabled and started again, no file written', (t) => {
  const job = task();
  const [service, timer] = contents(job);
  const plan = job.plan(probed(job, 'inactive disabled ', [file(service), file(timer)]));
  t.deepEqual(plan.steps, [
    { kind: 'run', command: 'systemctl enable backup.timer' },
    { kind: 'run', command: 'systemctl restart backup.timer' },
  ]);
});

test('a changed timer unit is rewritten, reloaded and the timer restarted; a changed service is not restarted', (t) => {
  const job = task();
  const [service, timer] = contents(job);
  const timerPlan = job.plan(probed(job, 'active enabled ', [file(service), file('old')]));
  t.deepEqual(
    timerPlan.steps.map((step) => (step.kind === 'write' ? 'write' : step.command)),
    ['write', 'systemctl daemon-reload', 'systemctl restart backup.timer'],
  );
  const servicePlan = job.plan(probed(job, 'active enabled ', [file('old'), file(timer)]));
  t.deepEqual(
    servicePlan.steps.map((step) => (step.kind === 'write' ? 'write' : step.command)),
    ['write', 'systemctl daemon-reload'],
  );
});

test('state absent stops, disables and removes the units', (t) => {
  const job = systemdTimer({ timer: 'backup', state: 'absent' });
  t.deepEqual(
    job
      .plan(probed(job, 'active enabled ', [file('s'), file('t')]))
      .steps.map((s) => s.kind === 'run' && s.command),
    [
      'systemctl disable --now backup.timer',
      'rm -f -- /etc/systemd/system/backup.service /etc/systemd/system/backup.timer',
      'systemctl daemon-reload',
    ],
  );
  t.deepEqual(job.plan(probed(job, 'inactive ', [{ type: 'absent' }, { type: 'absent' }])), { steps: [] });
});

test('ExecStart keeps the command as written: quotes, backslashes, % and $ escaped for systemd', (t) => {
  t.is(execStart(`echo "a b" 'c' \\n %d $HOME`), `/bin/sh -c "echo \\"a b\\" 'c' \\\\n %%d $$HOME"`);
});

test('wrong options are errors naming the option', (t) => {
  const error = (make: () => unknown, message: RegExp) => t.throws(make, { instanceOf: UserError, message });
  error(
    () => systemdTimer({ timer: 'backup', command: 'x' }),
    /give onCalendar, onBootSec or onUnitActiveSec/,
  );
  error(
    () => systemdTimer({ timer: 'backup', onCalendar: 'daily' }),
    /command is required with state present/,
  );
  error(() => systemdTimer({ timer: 'a/b', onCalendar: 'daily', command: 'x' }), /timer must be a unit name/);
  error(
    () => systemdTimer({ timer: 'b', onCalendar: 'daily', command: 'x\ny' }),
    /command must be one non-empty line/,
  );
});
