import test from 'ava';
import type { ProbeResult, RunStep, WriteStep } from '../../../src/engine/types.js';
import { editFstab, escapeField, formatEntry, parseEntry, unescapeField } from '../../../src/tasks/fstab.js';
import { mount } from '../../../src/tasks/mount.js';
import { UserError } from '../../../src/util/errors.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const BASE = '# /etc/fstab: static file system information.\nUUID=abc / ext4 errors=remount-ro 0 1\n';

function probed(fstab: string | undefined, mounted: boolean, dir = true): ProbeResult {
  return {
    stdout: [
      fstab === undefined
        ? 'verdandi-mount fstab-absent'
        : `verdandi-mount fstab 0 root 0 root 644 ${b64(fstab)}`,
      `verdandi-mount mounted ${mounted ? 'yes' : 'no'}`,
      `verdandi-mount dir ${dir ? 'yes' : 'no'}`,
    ].join('\n'),
    exitCode: 0,
  };
}

const commands = (steps: unknown[]) =>
  steps.map((step) =>
    (step as RunStep).kind === 'run' ? (step as RunStep).command : `write ${(step as WriteStep).path}`,
  );

const tmpfs = { path: '/mnt/cache', src: 'tmpfs', fstype: 'tmpfs', opts: 'size=16m,mode=0755' };

test('fstab fields: spaces escaped as \\040 and read back', (t) => {
  t.is(escapeField('/srv/my data'), '/srv/my\\040data');
  t.is(unescapeField('/srv/my\\040data'), '/srv/my data');
  const entry = parseEntry('/srv/my\\040data  /mnt/x none bind');
  t.deepEqual(entry, {
    src: '/srv/my data',
    path: '/mnt/x',
    fstype: 'none',
    opts: ['bind'],
    dump: 0,
    passno: 0,
  });
  t.is(formatEntry(entry as never), '/srv/my\\040data /mnt/x none bind 0 0');
  t.is(parseEntry('# comment'), undefined);
});

test('a fresh host: the line appended, the mount point created, mounted', (t) => {
  const task = mount(tmpfs);
  t.is(task.name, 'mount /mnt/cache');
  const plan = task.plan(probed(BASE, false, false));
  t.deepEqual(commands(plan.steps), [
    'write /etc/fstab',
    '[ ! -d /run/systemd/system ] || systemctl daemon-reload',
    'mkdir -p /mnt/cache',
    'mount /mnt/cache',
  ]);
  t.is((plan.steps[0] as WriteStep).content, `${BASE}tmpfs /mnt/cache tmpfs size=16m,mode=0755 0 0\n`);
  t.is((plan.steps[0] as WriteStep).mode, '0644');
  t.is(plan.reason, '/etc/fstab has no line for /mnt/cache, not mounted');
  t.is(plan.diff?.path, '/etc/fstab');
});

test('converged: options in another order are the same set; nothing to do', (t) => {
  const fstab = `${BASE}tmpfs   /mnt/cache  tmpfs  mode=0755,size=16m  0  0\n`;
  t.deepEqual(mount(tmpfs).plan(probed(fstab, true)), { steps: [] });
});

test('changed options while mounted: only that line rewritten, then remounted', (t) => {
  const fstab = `${BASE}tmpfs /mnt/cache tmpfs size=8m 0 0\n/dev/sdb1 /data ext4 defaults 0 2\n`;
  const plan = mount(tmpfs).plan(probed(fstab, true));
  t.is(
    (plan.steps[0] as WriteStep).content,
    `${BASE}tmpfs /mnt/cache tmpfs size=16m,mode=0755 0 0\n/dev/sdb1 /data ext4 defaults 0 2\n`,
  );
  t.is(commands(plan.steps).at(-1), 'mount -o remount /mnt/cache');
  t.is(plan.reason, '/etc/fstab line differs, options changed: remounted');
});

test('a new source while mounted: unmounted and mounted again; duplicate lines removed', (t) => {
  const fstab = `${BASE}/srv/old /mnt/cache none bind 0 0\ntmpfs /mnt/cache tmpfs size=1m 0 0\n`;
  const plan = mount(tmpfs).plan(probed(fstab, true));
  t.is((plan.steps[0] as WriteStep).content, `${BASE}tmpfs /mnt/cache tmpfs size=16m,mode=0755 0 0\n`);
  t.is(commands(plan.steps).at(-1), 'umount /mnt/cache && mount /mnt/cache');
});

test('present writes the line only; unmounted unmounts only; absent does both', (t) => {
  const line = 'tmpfs /mnt/cache tmpfs size=16m,mode=0755 0 0\n';
  t.deepEqual(commands(mount({ ...tmpfs, state: 'present' }).plan(probed(BASE, false)).steps), [
    'write /etc/fstab',
    '[ ! -d /run/systemd/system ] || systemctl daemon-reload',
  ]);
  t.deepEqual(
    commands(mount({ path: '/mnt/cache', state: 'unmounted' }).plan(probed(BASE + line, true)).steps),
    ['umount /mnt/cache'],
  );
  t.deepEqual(mount({ path: '/mnt/cache', state: 'unmounted' }).plan(probed(BASE + line, false)), {
    steps: [],
  });
  const absent = mount({ path: '/mnt/cache', state: 'absent' }).plan(probed(BASE + line, true));
  t.deepEqual(commands(absent.steps), [
    'umount /mnt/cache',
    'write /etc/fstab',
    '[ ! -d /run/systemd/system ] || systemctl daemon-reload',
  ]);
  t.is((absent.steps[1] as WriteStep).content, BASE);
  t.deepEqual(mount({ path: '/mnt/cache', state: 'absent' }).plan(probed(BASE, false)), { steps: [] });
});

test('remounted is an action on every run; another fstab is named to mount', (t) => {
  const task = mount({ path: '/mnt/cache', state: 'remounted' });
  t.true(task.alwaysRuns);
  t.deepEqual(commands(task.plan(probed(BASE, true)).steps), ['mount -o remount /mnt/cache']);
  t.regex(task.plan(probed(BASE, false)).error ?? '', /\/mnt\/cache is not mounted: nothing to remount/);
  const other = mount({ ...tmpfs, fstab: '/srv/chroot/etc/fstab' }).plan(probed(undefined, false));
  t.is(commands(other.steps).at(-1), 'mount -T /srv/chroot/etc/fstab /mnt/cache');
  t.is((other.steps[0] as WriteStep).path, '/srv/chroot/etc/fstab');
});

test('editFstab keeps comments and other lines byte for byte', (t) => {
  const lines = ['# x', 'a /b ext4 defaults 0 0', '  ', 'c /d ext4 rw 0 0'];
  const edited = editFstab(lines, (entry) => entry.path === '/d', undefined);
  t.deepEqual(edited.lines, ['# x', 'a /b ext4 defaults 0 0', '  ']);
  t.true(edited.changed);
});

test('option errors: src and fstype required to mount, bad options, unmounting /', (t) => {
  t.throws(() => mount({ path: '/mnt/x', fstype: 'tmpfs' }), {
    instanceOf: UserError,
    message: /mount \/mnt\/x: src is required with state mounted/,
  });
  t.throws(() => mount({ path: '/mnt/x', src: 'tmpfs' }), {
    instanceOf: UserError,
    message: /fstype is required/,
  });
  t.throws(() => mount({ ...tmpfs, opts: 'size=1m, ro' }), {
    instanceOf: UserError,
    message: /opts must be mount options/,
  });
  t.throws(() => mount({ ...tmpfs, state: 'gone' as never }), {
    instanceOf: UserError,
    message: /state must be mounted, present, unmounted, absent or remounted/,
  });
  t.throws(() => mount({ path: '/', state: 'absent' }), {
    instanceOf: UserError,
    message: /refusing to unmount \//,
  });
  t.truthy(mount(tmpfs).plan({ stdout: '', exitCode: 255 }).error);
});
