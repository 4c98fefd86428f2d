/**
 * Values read from another host during the run (RunStep.stdinFrom): the reader runs the command on the
 * other host over a connection of its own, registers the value as a secret, and closes the connection;
 * the run sends the value on the step's stdin, never in its script, and a failed read fails the task
 * with the reason, redacted.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { LocalConnection } from '../../src/connection/local.js';
import type { Connection, ExecOptions } from '../../src/connection/types.js';
import { PeerReader } from '../../src/engine/peer-read.js';
import { runTasks } from '../../src/engine/run.js';
import { type HostInfo, type PeerRead, type Task, taskBase } from '../../src/engine/types.js';
import type { InventoryHost } from '../../src/inventory/types.js';
import { redact } from '../../src/util/redact.js';
import { quote } from '../../src/util/shell.js';
import { localHost, quietReporter } from '../helpers/engine.js';

/** The host whose run reads from its peers (the worker of a swarm). */
const host: HostInfo = { ...localHost, name: 'worker' };

/** Writes what the step reads on its first stdin line to `path`, and records the script it ran. */
function joinLike(path: string, read: PeerRead): Task {
  return {
    ...taskBase('test-join', 'join'),
    sensitive: true,
    probe: `test -e ${quote(path)} && echo joined || echo no`,
    plan: (p) =>
      p.stdout.trim() === 'joined'
        ? { steps: [] }
        : {
            steps: [
              { kind: 'run', command: `IFS= read -r v; printf '%s' "$v" > ${quote(path)}`, stdinFrom: read },
            ],
          },
  };
}

function fakeConnection(name: string, stdout: string, code = 0, stderr = '') {
  const seen = { scripts: [] as string[], closed: false };
  const conn = {
    host: name,
    roundTrips: 0,
    exec: async (script: string, _opts?: ExecOptions) => {
      seen.scripts.push(script);
      return { stdout, stderr, code };
    },
    close: async () => {
      seen.closed = true;
    },
  } as unknown as Connection;
  return { conn, seen };
}

const manager = { name: 'manager', address: '10.0.0.10', vars: {} } as unknown as InventoryHost;

test('the value read on the other host reaches the step on stdin, registered as a secret', async (t) => {
  const value = 'SWMTKN-1-peer-read-test-value';
  const { conn, seen } = fakeConnection('manager', `${value}\n`);
  const connected: string[] = [];
  const peers = new PeerReader(new Map([['manager', manager]]), new Map(), {} as never, async (h) => {
    connected.push(h.name);
    return conn;
  });
  const dir = mkdtempSync(join(tmpdir(), 'vd-peer-'));
  const out = join(dir, 'token');
  const { reporter } = quietReporter();
  const local = new LocalConnection('worker');
  const scripts: string[] = [];
  const exec = local.exec.bind(local);
  local.exec = (script: string, opts?: ExecOptions) => {
    scripts.push(script);
    return exec(script, opts);
  };
  const res = await runTasks(
    local,
    host,
    [joinLike(out, { host: 'manager', command: 'print-token', what: 'the token' })],
    {
      check: false,
      diff: false,
      reporter,
      readPeer: (r) => peers.read(r),
    },
  );
  t.is(res.changed, 1);
  t.is(readFileSync(out, 'utf8'), value);
  t.deepEqual(connected, ['manager']);
  t.deepEqual(seen.scripts, ['print-token']);
  t.true(seen.closed, 'the read closes its own connection');
  t.false(
    scripts.some((s) => s.includes(value)),
    'the value is in no script',
  );
  t.is(redact(`token: ${value}`), 'token: [secret]');
});

test('a failed read fails the task with the reason, and runs nothing', async (t) => {
  const { conn } = fakeConnection('manager', '', 1, 'no active swarm manager here after 600 s');
  const peers = new PeerReader(new Map([['manager', manager]]), new Map(), {} as never, async () => conn);
  const dir = mkdtempSync(join(tmpdir(), 'vd-peer-'));
  const out = join(dir, 'token');
  const { reporter, lines } = quietReporter();
  const read = { host: 'manager', command: 'print-token', what: 'the token' };
  const res = await runTasks(new LocalConnection('worker'), host, [joinLike(out, read)], {
    check: false,
    diff: false,
    reporter,
    readPeer: (r) => peers.read(r),
  });
  t.is(res.failed, 1);
  t.false(existsSync(out), 'the step did not run');
  t.regex(
    lines.join(''),
    /could not read the token from manager: the command failed there \(exit code 1\): no active swarm manager/,
  );
  await t.throwsAsync(peers.read({ ...read, host: 'nobody' }), { message: /no host named "nobody"/ });
  const { conn: empty } = fakeConnection('manager', '\n');
  const silent = new PeerReader(new Map([['manager', manager]]), new Map(), {} as never, async () => empty);
  await t.throwsAsync(silent.read(read), { message: /printed nothing/ });
});

test('without a reader (a run that reads nothing from other hosts), such a step fails clearly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-peer-'));
  const { reporter, lines } = quietReporter();
  const res = await runTasks(
    new LocalConnection('worker'),
    host,
    [joinLike(join(dir, 'x'), { host: 'manager', command: 'x', what: 'the token' })],
    { check: false, diff: false, reporter },
  );
  t.is(res.failed, 1);
  t.regex(lines.join(''), /this run reads nothing from other hosts/);
});

test('closeAll cuts the reads in flight (a second Ctrl-C does not wait for the manager)', async (t) => {
  let cut: (err: Error) => void = () => {};
  const conn = {
    host: 'manager',
    roundTrips: 0,
    exec: () =>
      new Promise((_resolve, reject) => {
        cut = reject;
      }),
    close: async () => cut(new Error('connection closed')),
  } as unknown as Connection;
  let connected!: () => void;
  const opened = new Promise<void>((resolve) => {
    connected = resolve;
  });
  const peers = new PeerReader(new Map([['manager', manager]]), new Map(), {} as never, async () => {
    connected();
    return conn;
  });
  const reading = peers.read({ host: 'manager', command: 'wait-forever', what: 'the token' });
  await opened;
  await new Promise((resolve) => setImmediate(resolve));
  await peers.closeAll();
  await t.throwsAsync(reading, { message: /connection closed/ });
});
