/**
 * The pure parts of `verdandi exec` and `verdandi lock`: the command text, the script that carries it
 * (never on a process's command line), a host's output block (escaped), a lock's status as read from a
 * host, what `--json` shows of it (never its token), the release question, and the history's record of
 * a released lock.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import test from 'ava';
import { commandText, execScript, formatBlock } from '../../src/commands/exec.js';
import { lockData, releaseQuestion } from '../../src/commands/lock.js';
import { RunEvents } from '../../src/engine/events.js';
import { eventsSchema } from '../../src/engine/events-schema.js';
import { describeLockStatus, lockFileContent, parseLockStatus } from '../../src/engine/host-lock.js';
import { Recorder } from '../../src/history/recorder.js';
import { UserError } from '../../src/util/errors.js';

test('the command: words after -- joined; none is a usage error (exit 1)', (t) => {
  t.is(commandText(['systemctl', 'is-active', 'nginx']), 'systemctl is-active nginx');
  t.is(commandText(['echo a; echo b']), 'echo a; echo b');
  const err = t.throws(() => commandText(['  ']), { instanceOf: UserError });
  t.is(err?.exitCode, 1);
  t.regex(err?.message ?? '', /exec needs a command/);
});

test('the script carries the command in a here-document, not on the sh -c line', (t) => {
  const script = execScript('echo token=s3cr3t-value');
  const [first, ...rest] = script.split('\n');
  t.false(first.includes('s3cr3t'), first);
  t.regex(first, /^sh -c 'vd_s=\$\(cat <&3\); exec 3<&-; eval "\$vd_s"' 3<<'VD_[0-9a-f]{16}'$/);
  t.is(rest[0], 'echo token=s3cr3t-value');
  t.regex(execScript('x', true).split('\n')[0], / 2>&1 3<</);
});

test('a host block: exit code, stdout, stderr marked, control sequences escaped', (t) => {
  t.is(
    formatBlock('web1', { exitCode: 3, stdout: 'one\n\u001b[2Jtwo\n', stderr: 'bad\n', stopped: false }),
    '── web1: exit 3\none\n\\x1b[2Jtwo\nstderr| bad',
  );
  t.is(formatBlock('web2', { exitCode: 143, stdout: '', stderr: '', stopped: true }), '── web2: stopped');
});

const HERE = { controller: 'laptop', processStart: (pid: number) => (pid === 42 ? '777' : undefined) };
const file = (pid: number) =>
  `Held: yes\n${lockFileContent({ by: 'alice@laptop', since: '2026-12-01T10:00:00.000Z', reason: 'deploy prod --branch main', controller: 'laptop', pid, pidStart: '777', token: 'abcd1234' })}Idle: 12\n`;

test('lock status: free, held by a live holder, held by a dead one', (t) => {
  t.deepEqual(parseLockStatus('Held: no\n', HERE), { held: false });
  t.is(describeLockStatus(parseLockStatus('Held: no\n', HERE)), 'free');
  const alive = parseLockStatus(file(42), HERE);
  t.true(alive.held);
  t.is(alive.dead, undefined);
  t.is(
    describeLockStatus(alive),
    'held by alice@laptop since 2026-12-01T10:00:00.000Z, command: deploy prod --branch main, on laptop pid 42, heartbeat 12 s ago (alive)',
  );
  const dead = parseLockStatus(file(43), HERE);
  t.regex(describeLockStatus(dead), /\(dead: its process 43 on laptop is gone\)$/);
});

test('lock --json: who, since, why, alive; never the token', (t) => {
  t.deepEqual(lockData(parseLockStatus('Held: no\n', HERE)), { lock: { held: false } });
  const data = lockData(parseLockStatus(file(42), HERE)) as { lock: Record<string, unknown> };
  t.like(data.lock, {
    held: true,
    by: 'alice@laptop',
    reason: 'deploy prod --branch main',
    pid: 42,
    idleSeconds: 12,
    alive: true,
  });
  t.false('token' in data.lock);
  t.false(JSON.stringify(data).includes('abcd1234'));
});

test('the release question says how many locks and how many holders may be alive', (t) => {
  const alive = parseLockStatus(file(42), HERE);
  const dead = parseLockStatus(file(43), HERE);
  t.is(releaseQuestion([{ host: 'a', status: dead }]), 'release this lock? [y/N] ');
  t.is(
    releaseQuestion([
      { host: 'a', status: dead },
      { host: 'b', status: alive },
    ]),
    'release these 2 locks (1 of a holder that may still be running)? [y/N] ',
  );
});

test('a released lock is an event valid against the schema, and a task in the history', async (t) => {
  const events = new RunEvents();
  const seen: unknown[] = [];
  const rec = new Recorder({
    command: 'lock release',
    env: 'prod',
    args: ['lock', 'release', 'prod'],
    projectDir: '/nonexistent',
    verdandiVersion: 't',
  });
  events.on((e) => seen.push(e)).on(rec.handle);
  events.emit({ type: 'run-started', command: 'lock release', env: 'prod', hosts: ['web1'], check: false });
  events.emit({ type: 'host-connected', host: 'web1' });
  events.emit({
    type: 'lock',
    host: 'web1',
    state: 'released',
    holder: 'alice@laptop',
    message: 'released the deploy lock held by alice@laptop',
  });
  events.emit({ type: 'run-ended', exitCode: 0, durationMs: 1, check: false, roundTrips: { web1: 2 } });
  events.close();
  const ajv = new Ajv2020({ strict: false });
  const schema = eventsSchema() as { $defs: Record<string, object> };
  ajv.addSchema({ ...schema, $id: 'events' });
  const validate = ajv.getSchema('events#/$defs/lock')!;
  t.true(validate(seen[2]), JSON.stringify(validate.errors));
  const run = await rec.toRecord({ exitCode: 0 });
  t.is(run.command, 'lock release');
  t.deepEqual(
    run.hosts[0].tasks.map((x) => [x.label, x.status, x.detail]),
    [['deploy lock', 'changed', 'released the deploy lock held by alice@laptop']],
  );
});
