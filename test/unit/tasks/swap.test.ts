import test from 'ava';
import type { ProbeResult, RunStep, WriteStep } from '../../../src/engine/types.js';
import { parseSize, swap } from '../../../src/tasks/swap.js';
import { UserError } from '../../../src/util/errors.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const BASE = 'UUID=abc / ext4 errors=remount-ro 0 1\n';
const LINE = '/swapfile none swap sw 0 0\n';
const MIB16 = 16 * 1024 * 1024;

function probed(opts: { file?: string; active?: number; container?: boolean; fstab?: string }): ProbeResult {
  const lines = [opts.file === undefined ? 'verdandi-swap absent' : `verdandi-swap file ${opts.file}`];
  if (opts.active !== undefined) lines.push(`verdandi-swap active ${opts.active}`);
  if (opts.container) lines.push('verdandi-swap container systemd-nspawn');
  lines.push(`verdandi-swap fstab 0 root 0 root 644 ${b64(opts.fstab ?? BASE)}`);
  return { stdout: lines.join('\n'), exitCode: 0 };
}

const commands = (plan: { steps: unknown[] }) =>
  plan.steps.map((step) =>
    (step as RunStep).kind === 'run'
      ? (step as RunStep).command.split('\n').at(-1)
      : `write ${(step as WriteStep).path}`,
  );

test('sizes are binary units', (t) => {
  t.is(parseSize('512M'), 512 * 1024 * 1024);
  t.is(parseSize('2G'), 2 * 1024 ** 3);
  t.is(parseSize('1024K'), 1024 * 1024);
  t.is(parseSize('1.5G'), undefined);
  t.is(parseSize('0M'), undefined);
});

test('a fresh host: file made beside its path (0600, mkswap), fstab line, swapon', (t) => {
  const task = swap({ path: '/swapfile', size: '16M' });
  t.is(task.name, 'swap /swapfile');
  t.regex(task.probe, /systemd-detect-virt --container/);
  const plan = task.plan(probed({}));
  t.deepEqual(commands(plan), [
    'mv -f /swapfile.verdandi /swapfile',
    'write /etc/fstab',
    '[ ! -d /run/systemd/system ] || systemctl daemon-reload',
    'swapon /swapfile',
  ]);
  const create = (plan.steps[0] as RunStep).command;
  t.regex(
    create,
    /fallocate -l 16777216 \/swapfile\.verdandi .*\|\| dd if=\/dev\/zero of=\/swapfile\.verdandi bs=1024 count=16384/,
  );
  t.regex(create, /chmod 0600 \/swapfile\.verdandi\nmkswap \/swapfile\.verdandi/);
  t.is((plan.steps[1] as WriteStep).content, BASE + LINE);
  t.is(plan.reason, 'the file is missing, /etc/fstab has no line for it, not in use');
});

test('converged: right size, signature, mode, line, in use: nothing', (t) => {
  const task = swap({ path: '/swapfile', size: '16M' });
  t.deepEqual(task.plan(probed({ file: `${MIB16} 600 0 0 swap`, active: -2, fstab: BASE + LINE })), {
    steps: [],
  });
});

test('another size while in use: switched off, made again, switched on', (t) => {
  const plan = swap({ path: '/swapfile', size: '32M' }).plan(
    probed({ file: `${MIB16} 600 0 0 swap`, active: -2, fstab: BASE + LINE }),
  );
  t.deepEqual(commands(plan), [
    'swapoff /swapfile',
    'mv -f /swapfile.verdandi /swapfile',
    'swapon /swapfile',
  ]);
  t.regex(plan.reason ?? '', /size is 16777216 bytes, not 33554432/);
});

test('a lost signature or a loose mode is repaired; a new priority switches it off and on', (t) => {
  const task = swap({ path: '/swapfile', size: '16M' });
  t.regex(
    task.plan(probed({ file: `${MIB16} 600 0 0 none`, fstab: BASE + LINE })).reason ?? '',
    /no swap signature/,
  );
  t.deepEqual(
    commands(task.plan(probed({ file: `${MIB16} 644 0 0 swap`, active: -2, fstab: BASE + LINE }))),
    ['chown 0:0 /swapfile && chmod 0600 /swapfile'],
  );
  const prio = swap({ path: '/swapfile', size: '16M', priority: 10 }).plan(
    probed({ file: `${MIB16} 600 0 0 swap`, active: -2, fstab: BASE + LINE }),
  );
  t.deepEqual(commands(prio), [
    'write /etc/fstab',
    '[ ! -d /run/systemd/system ] || systemctl daemon-reload',
    'swapoff /swapfile',
    'swapon -p 10 /swapfile',
  ]);
  t.is((prio.steps[0] as WriteStep).content, `${BASE}/swapfile none swap sw,pri=10 0 0\n`);
});

test('in a container: swapon is refused before anything changes; activate: false makes file and line only', (t) => {
  const plan = swap({ path: '/swapfile', size: '16M' }).plan(probed({ container: true }));
  t.deepEqual(plan.steps, []);
  t.is(
    plan.error,
    'swap /swapfile: the host is a container (systemd-nspawn): its kernel refuses swapon there; set activate: false to make the file and its /etc/fstab line only',
  );
  const task = swap({ path: '/swapfile', size: '16M', activate: false });
  t.deepEqual(commands(task.plan(probed({ container: true }))), [
    'mv -f /swapfile.verdandi /swapfile',
    'write /etc/fstab',
    '[ ! -d /run/systemd/system ] || systemctl daemon-reload',
  ]);
  t.deepEqual(task.plan(probed({ container: true, file: `${MIB16} 600 0 0 swap`, fstab: BASE + LINE })), {
    steps: [],
  });
});

test('absent: switched off, line removed, file removed', (t) => {
  const task = swap({ path: '/swapfile', state: 'absent' });
  const plan = task.plan(probed({ file: `${MIB16} 600 0 0 swap`, active: -2, fstab: BASE + LINE }));
  t.deepEqual(commands(plan), [
    'swapoff /swapfile',
    'write /etc/fstab',
    '[ ! -d /run/systemd/system ] || systemctl daemon-reload',
    'rm -f /swapfile',
  ]);
  t.is((plan.steps[1] as WriteStep).content, BASE);
  t.deepEqual(task.plan(probed({})), { steps: [] });
});

test('option errors: size missing or malformed, a path with spaces, a directory at the path', (t) => {
  t.throws(() => swap({ path: '/swapfile' }), {
    instanceOf: UserError,
    message: /size is required with state present/,
  });
  t.throws(() => swap({ path: '/swapfile', size: '512MB' }), {
    instanceOf: UserError,
    message: /size must be a number of K, M or G like "512M" or "2G", got "512MB"/,
  });
  t.throws(() => swap({ path: '/swapfile', size: '512K' }), {
    instanceOf: UserError,
    message: /at least 1M/,
  });
  t.throws(() => swap({ path: '/swap file', size: '1G' }), {
    instanceOf: UserError,
    message: /must not contain spaces/,
  });
  t.regex(
    swap({ path: '/swapfile', size: '1G' }).plan({
      stdout: `verdandi-swap not-a-file\nverdandi-swap fstab-absent`,
      exitCode: 0,
    }).error ?? '',
    /\/swapfile is not a regular file/,
  );
});
