import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'ava';
import type { Plan, RunStep } from '../../../src/engine/types.js';
import { service } from '../../../src/tasks/service.js';
import { UserError } from '../../../src/util/errors.js';

/** `systemctl show` output (property order as systemd prints it, not as asked). */
function show(props: { load?: string; active?: string; file?: string; reload?: string }) {
  const stdout = [
    `NeedDaemonReload=${props.reload ?? 'no'}`,
    `LoadState=${props.load ?? 'loaded'}`,
    `ActiveState=${props.active ?? 'active'}`,
    `UnitFileState=${props.file ?? 'enabled'}`,
  ].join('\n');
  return { stdout: `${stdout}\n`, exitCode: 0 };
}

const commands = (plan: Plan) => plan.steps.map((s) => (s as RunStep).command);

test('probe: one systemctl show of the unit, read by the drop-in check and printed; its exit code is the probe’s', (t) => {
  const probe = service({ unit: 'nginx', state: 'started' }).probe;
  t.true(
    probe.startsWith(
      'vd_show=$(systemctl show -p Id,DropInPaths,LoadState,ActiveState,UnitFileState,NeedDaemonReload -- nginx 2>&1); vd_show_rc=$?\n',
    ),
    probe,
  );
  t.is(probe.match(/systemctl show/g)?.length, 1, probe);
  t.regex(probe, /nginx\.service\.d\/\*\.conf/);
  t.true(probe.endsWith(`\nprintf '%s\\n' "$vd_show"\nexit "$vd_show_rc"`), probe);
  // With daemonReload, the drop-ins of every unit are read: the unit's own show comes last.
  const reloading = service({ unit: 'nginx', state: 'started', daemonReload: true }).probe;
  t.true(
    reloading.endsWith(
      '\nsystemctl show -p LoadState,ActiveState,UnitFileState,NeedDaemonReload -- nginx 2>&1',
    ),
  );
});

test('the probe run by sh: a failing systemctl show is the probe’s exit code, its message in the output', (t) => {
  const probe = service({ unit: 'nginx', state: 'started' }).probe;
  const root = mkdtempSync(join(tmpdir(), 'vd-service-fail-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'bin'));
  writeFileSync(join(root, 'bin', 'systemctl'), '#!/bin/sh\necho "Failed to connect to bus" >&2\nexit 3\n', {
    mode: 0o755,
  });
  const result = spawnSync('sh', ['-c', `( ${probe}\n)`], {
    env: { PATH: `${join(root, 'bin')}:/usr/bin:/bin` },
    encoding: 'utf8',
  });
  t.is(result.status, 3);
  const plan = service({ unit: 'nginx', state: 'started' }).plan({ stdout: result.stdout, exitCode: 3 });
  t.regex(plan.error ?? '', /systemctl show nginx failed \(exit code 3\): Failed to connect to bus/);
});

test('started + enabled when inactive and disabled: start, then enable', (t) => {
  const plan = service({ unit: 'nginx', state: 'started', enabled: true }).plan(
    show({ active: 'inactive', file: 'disabled' }),
  );
  t.deepEqual(commands(plan), ['systemctl start nginx', 'systemctl enable nginx']);
  t.is(plan.reason, 'inactive → started, disabled → enabled');
});

test('started + enabled when active and enabled: converged', (t) => {
  const plan = service({ unit: 'nginx', state: 'started', enabled: true }).plan(show({}));
  t.deepEqual(plan.steps, []);
  t.is(plan.error, undefined);
});

test('failed unit with state started is started again', (t) => {
  t.deepEqual(commands(service({ unit: 'app', state: 'started' }).plan(show({ active: 'failed' }))), [
    'systemctl start app',
  ]);
});

test('NeedDaemonReload=yes: daemon-reload comes first, even when nothing else changes', (t) => {
  const plan = service({ unit: 'app', state: 'started' }).plan(show({ reload: 'yes' }));
  t.deepEqual(commands(plan), ['systemctl daemon-reload']);
  t.is(plan.reason, 'unit file changed on disk: daemon-reload');
  const plan2 = service({ unit: 'app', state: 'started' }).plan(show({ reload: 'yes', active: 'inactive' }));
  t.deepEqual(commands(plan2), ['systemctl daemon-reload', 'systemctl start app']);
});

test('stopped: active is stopped; inactive and failed are converged', (t) => {
  const task = service({ unit: 'app', state: 'stopped' });
  t.deepEqual(commands(task.plan(show({ active: 'active' }))), ['systemctl stop app']);
  t.deepEqual(task.plan(show({ active: 'inactive' })).steps, []);
  t.deepEqual(task.plan(show({ active: 'failed' })).steps, []);
});

test('restarted always restarts (handler style), whatever the state', (t) => {
  const task = service({ unit: 'nginx', state: 'restarted' });
  t.deepEqual(commands(task.plan(show({ active: 'active' }))), ['systemctl restart nginx']);
  t.deepEqual(commands(task.plan(show({ active: 'inactive' }))), ['systemctl restart nginx']);
});

test('reloaded reloads a running unit and starts a stopped one', (t) => {
  const task = service({ unit: 'nginx', state: 'reloaded' });
  t.deepEqual(commands(task.plan(show({ active: 'active' }))), ['systemctl reload nginx']);
  t.deepEqual(commands(task.plan(show({ active: 'inactive' }))), ['systemctl start nginx']);
});

test('enabled: false disables an enabled unit; static units need nothing either way', (t) => {
  t.deepEqual(commands(service({ unit: 'app', enabled: false }).plan(show({ file: 'enabled' }))), [
    'systemctl disable app',
  ]);
  t.deepEqual(service({ unit: 'app', enabled: false }).plan(show({ file: 'disabled' })).steps, []);
  t.deepEqual(service({ unit: 'app', enabled: true }).plan(show({ file: 'static' })).steps, []);
  t.deepEqual(service({ unit: 'app', enabled: false }).plan(show({ file: 'static' })).steps, []);
});

test('enabled: true on a unit with no UnitFileState (generated) or a linked one', (t) => {
  t.deepEqual(service({ unit: 'app', enabled: true }).plan(show({ file: 'generated' })).steps, []);
  t.deepEqual(commands(service({ unit: 'app', enabled: true }).plan(show({ file: 'linked' }))), [
    'systemctl enable app',
  ]);
});

test('unknown unit: a plan error that says so and what to do', (t) => {
  const plan = service({ unit: 'ngnix', state: 'started' }).plan(
    show({ load: 'not-found', active: 'inactive', file: '' }),
  );
  t.deepEqual(plan.steps, []);
  t.regex(plan.error ?? '', /unit ngnix not found on the host \(systemd reports LoadState=not-found\)/);
  t.regex(plan.error ?? '', /install the package that provides it/);
});

test('masked unit asked to start: error naming systemctl unmask; stopping it is fine', (t) => {
  const masked = show({ load: 'masked', active: 'inactive', file: 'masked' });
  t.regex(
    service({ unit: 'app', state: 'started' }).plan(masked).error ?? '',
    /is masked.*systemctl unmask app/,
  );
  t.regex(service({ unit: 'app', enabled: true }).plan(masked).error ?? '', /is masked/);
  t.deepEqual(service({ unit: 'app', state: 'stopped' }).plan(masked), { steps: [] });
});

test('systemctl failing (no systemd) is an error with its output', (t) => {
  const plan = service({ unit: 'nginx', state: 'started' }).plan({
    stdout:
      "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n",
    exitCode: 1,
  });
  t.regex(plan.error ?? '', /systemctl show nginx failed \(exit code 1\): System has not been booted/);
});

test('no state and no enabled: only daemon-reload can happen', (t) => {
  t.deepEqual(service({ unit: 'app' }).plan(show({ active: 'inactive', file: 'disabled' })).steps, []);
});

test('label and validation', (t) => {
  const task = service({ unit: 'nginx', state: 'started', notify: 'x' });
  t.is(task.name, 'service nginx');
  t.is(task.type, 'service');
  t.throws(() => service({ unit: 'nginx; reboot' }), { instanceOf: UserError });
  t.throws(() => service({ unit: '--all' }), { instanceOf: UserError });
  t.throws(() => service({ unit: 'nginx', state: 'running' as 'started' }), { instanceOf: UserError });
  t.notThrows(() => service({ unit: 'getty@tty1.service' }));
});

test('masked: true masks an unmasked unit (stopping it too when asked), nothing when masked', (t) => {
  const task = service({ unit: 'app', masked: true, state: 'stopped' });
  const plan = task.plan(show({ active: 'active', file: 'enabled' }));
  t.deepEqual(commands(plan), ['systemctl mask app', 'systemctl stop app']);
  t.is(plan.reason, 'masked, active → stopped');
  t.deepEqual(task.plan(show({ load: 'masked', active: 'inactive', file: 'masked' })), { steps: [] });
  // A unit not installed can be masked (a later install will not start it).
  t.deepEqual(
    commands(
      service({ unit: 'app', masked: true }).plan(show({ load: 'not-found', active: 'inactive', file: '' })),
    ),
    ['systemctl mask app'],
  );
});

test('masked: false unmasks before starting and enabling; an unmasked unit needs nothing', (t) => {
  const task = service({ unit: 'app', masked: false, state: 'started', enabled: true });
  const plan = task.plan(show({ load: 'masked', active: 'inactive', file: 'masked' }));
  t.is(plan.error, undefined);
  t.deepEqual(commands(plan), ['systemctl unmask app', 'systemctl start app', 'systemctl enable app']);
  t.is(plan.reason, 'unmasked, inactive → started, masked → enabled');
  t.deepEqual(service({ unit: 'app', masked: false }).plan(show({ file: 'disabled' })), { steps: [] });
});

test('masked: true with a running or enabled state is an option error', (t) => {
  t.throws(() => service({ unit: 'app', masked: true, state: 'started' }), {
    instanceOf: UserError,
    message: /service app: a masked unit cannot be started/,
  });
  t.throws(() => service({ unit: 'app', masked: true, enabled: true }), { message: /cannot be enabled/ });
  t.throws(() => service({ unit: 'app', masked: 'yes' as unknown as boolean }), {
    message: /masked must be true or false/,
  });
});

test('daemonReload alone: daemon-reload only when a loaded unit changed on disk, named in the reason', (t) => {
  const task = service({ daemonReload: true });
  t.is(task.name, 'service daemon-reload');
  t.regex(task.probe, /systemctl show '\*' -p Id,NeedDaemonReload/);
  t.notRegex(task.probe, /LoadState/, 'no unit: no systemctl show of one');
  const changed = task.plan({
    stdout: 'verdandi-daemon-reload app.service\nverdandi-daemon-reload srv-data.mount\n',
    exitCode: 0,
  });
  t.deepEqual(changed, {
    steps: [{ kind: 'run', command: 'systemctl daemon-reload' }],
    reason: 'changed on disk: app.service, srv-data.mount: daemon-reload',
  });
  t.deepEqual(task.plan({ stdout: '', exitCode: 0 }), { steps: [] }, 'nothing changed on disk: no reload');
});

test('daemonReload with a unit: one reload when another unit changed, before starting this one', (t) => {
  const task = service({ unit: 'app', state: 'started', daemonReload: true });
  const plan = task.plan({
    stdout: `verdandi-daemon-reload other.service\n${show({ active: 'inactive', reload: 'yes' }).stdout}`,
    exitCode: 0,
  });
  t.deepEqual(commands(plan), ['systemctl daemon-reload', 'systemctl start app']);
});

test('daemonReload: a unit is required otherwise, and state/enabled/masked need one', (t) => {
  t.throws(() => service({} as never), { instanceOf: UserError, message: /service: unit is required/ });
  t.throws(() => service({ daemonReload: true, state: 'started' }), {
    instanceOf: UserError,
    message: /state needs a unit/,
  });
});

test('daemonReload alone with a name: the name is the label, not the old spelling of the unit', (t) => {
  const task = service({ name: 'reload units', daemonReload: true });
  t.is(task.name, 'reload units');
  t.notRegex(task.probe, /LoadState/);
});

/**
 * Runs a service probe on this machine against drop-in folders under a temporary root and a stand-in
 * `systemctl` printing `shown` (what systemd would answer): the probe's stdout.
 */
function probeLocally(probe: string, files: Record<string, string>, shown: string): string {
  const root = mkdtempSync(join(tmpdir(), 'vd-service-dropins-'));
  try {
    mkdirSync(join(root, 'bin'));
    writeFileSync(join(root, 'bin', 'systemctl'), `#!/bin/sh\ncat <<'EOF'\n${shown}\nEOF\n`, { mode: 0o755 });
    for (const [path, target] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      if (target === '/dev/null') symlinkSync('/dev/null', join(root, path));
      else writeFileSync(join(root, path), target);
    }
    const script = probe.replaceAll(/\/(etc|run|usr\/lib)\/systemd\/system\//g, `${root}/$1/systemd/system/`);
    return execFileSync('sh', ['-c', script], {
      env: { PATH: `${join(root, 'bin')}:/usr/bin:/bin` },
    }).toString();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('a drop-in systemd has not read (its folder is new: NeedDaemonReload stays no) reloads before the unit', (t) => {
  const task = service({ unit: 'app', state: 'started' });
  const stdout = probeLocally(
    task.probe,
    { '/etc/systemd/system/app.service.d/limits.conf': '[Service]\n' },
    'Id=app.service\nDropInPaths=\nNeedDaemonReload=no\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled',
  );
  const plan = task.plan({ stdout, exitCode: 0 });
  t.deepEqual(commands(plan), ['systemctl daemon-reload']);
  t.is(plan.reason, 'new drop-in on disk: daemon-reload');
});

test('drop-ins systemd has read, shadowed by /etc or masked by /dev/null: nothing to reload', (t) => {
  const task = service({ unit: 'app.service', state: 'started' });
  const stdout = probeLocally(
    task.probe,
    {
      '/etc/systemd/system/app.service.d/a.conf': '[Service]\n',
      '/usr/lib/systemd/system/app.service.d/a.conf': '[Service]\n',
      '/etc/systemd/system/app.service.d/b.conf': '/dev/null',
      '/usr/lib/systemd/system/app.service.d/b.conf': '[Service]\n',
      '/etc/systemd/system/other.service.d/c.conf': '[Service]\n',
    },
    'Id=app.service\nDropInPaths=/etc/systemd/system/app.service.d/a.conf /etc/systemd/system/app.service.d/b.conf\nNeedDaemonReload=no\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled',
  );
  t.deepEqual(task.plan({ stdout, exitCode: 0 }), { steps: [] });
});

test('daemonReload alone: a loaded unit with an unread drop-in is named; a unit systemd has not loaded is not', (t) => {
  const task = service({ daemonReload: true });
  const stdout = probeLocally(
    task.probe,
    {
      '/etc/systemd/system/app.service.d/new.conf': '[Service]\n',
      '/run/systemd/system/idle.service.d/x.conf': '[Service]\n',
    },
    'Id=app.service\nDropInPaths=\n\nId=web.service\nDropInPaths=',
  );
  const plan = task.plan({ stdout, exitCode: 0 });
  t.deepEqual(commands(plan), ['systemctl daemon-reload']);
  t.is(plan.reason, 'changed on disk: app.service: daemon-reload');
});

test('no drop-in file on disk: the probe runs no awk, and the plan reads the unit as usual', (t) => {
  const task = service({ unit: 'app', state: 'started' });
  const root = mkdtempSync(join(tmpdir(), 'vd-service-noawk-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'bin'));
  const shown =
    'Id=app.service\nDropInPaths=\nNeedDaemonReload=no\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled';
  writeFileSync(join(root, 'bin', 'systemctl'), `#!/bin/sh\ncat <<'EOF'\n${shown}\nEOF\n`, { mode: 0o755 });
  writeFileSync(join(root, 'bin', 'awk'), `#!/bin/sh\ntouch ${root}/awk-ran\nexit 1\n`, { mode: 0o755 });
  const script = task.probe.replaceAll(
    /\/(etc|run|usr\/lib)\/systemd\/system\//g,
    `${root}/$1/systemd/system/`,
  );
  const stdout = execFileSync('sh', ['-c', script], {
    env: { PATH: `${join(root, 'bin')}:/usr/bin:/bin` },
  }).toString();
  t.false(existsSync(join(root, 'awk-ran')), 'awk ran');
  t.deepEqual(task.plan({ stdout, exitCode: 0 }), { steps: [] });
});
