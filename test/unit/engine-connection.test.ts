/**
 * The connection protocol (src/connection/protocol.ts) on this machine's sh: the script and its payload
 * travel framed on stdin, a script cut short never runs, and the exec options (stdin as a stream, a stdout
 * sink, an abort signal) work through LocalConnection, which speaks the same protocol as SSH.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import test from 'ava';
import { NodeSSH } from 'node-ssh';
import { LocalConnection } from '../../src/connection/local.js';
import { BOOTSTRAP, frameHead, INCOMPLETE_SCRIPT_EXIT } from '../../src/connection/protocol.js';
import { exitCodeOf, readPrivateKey, SshConnection, skipHostKeysProof } from '../../src/connection/ssh.js';
import { AbortedError, UnreachableError } from '../../src/connection/types.js';

function boot(input: Buffer | string) {
  const res = spawnSync('sh', ['-c', BOOTSTRAP], { input });
  return { code: res.status, out: res.stdout.toString(), err: res.stderr.toString() };
}

test('the framed script runs and its payload follows on stdin', (t) => {
  const script = 'read -r first; echo "got:$first"; cat';
  const res = boot(Buffer.concat([frameHead(script), Buffer.from('line one\nrest\n')]));
  t.is(res.code, 0, res.err);
  t.is(res.out, 'got:line one\nrest\n');
});

test('a script cut short is never run, whatever the cut', (t) => {
  const script = 'touch /nonexistent-dir/never; echo ran';
  const whole = frameHead(script);
  for (const cut of [1, 3, whole.length - 2, whole.length - 1]) {
    const res = boot(whole.subarray(0, cut));
    t.is(res.code, INCOMPLETE_SCRIPT_EXIT, `cut at ${cut}`);
    t.false(res.out.includes('ran'));
    t.regex(res.err, /did not arrive whole/);
  }
});

test('multi-byte text, quotes and a large script pass intact', (t) => {
  const big = `echo 'ünïcödé "q" $x'\n${'# padding line\n'.repeat(20_000)}echo end`;
  const res = boot(frameHead(big));
  t.is(res.code, 0, res.err);
  t.is(res.out, 'ünïcödé "q" $x\nend\n');
});

test('LocalConnection: stdin as a stream, output into a sink', async (t) => {
  const conn = new LocalConnection('local');
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  const res = await conn.exec('wc -c; echo done', {
    stdin: Readable.from([Buffer.alloc(100_000, 'a'), Buffer.alloc(50_000, 'b')]),
    stdout: sink,
  });
  t.is(res.code, 0);
  t.is(res.stdout, '');
  t.is(Buffer.concat(chunks).toString(), '150000\ndone\n');
  t.is(conn.roundTrips, 1);
});

test('LocalConnection: an abort signal ends the command and rejects', async (t) => {
  const conn = new LocalConnection('local');
  const controller = new AbortController();
  const run = conn.exec('sleep 30', { signal: controller.signal });
  setTimeout(() => controller.abort(), 100);
  await t.throwsAsync(run, { instanceOf: AbortedError });
});

test('LocalConnection: exit codes and a command killed by a signal', async (t) => {
  const conn = new LocalConnection('local');
  t.is((await conn.exec('exit 7')).code, 7);
  t.is((await conn.exec('kill -TERM $$')).code, 143);
});

test('ssh exit statuses: a code, or 128 + the number of the signal that ended the command', (t) => {
  t.is(exitCodeOf(0), 0);
  t.is(exitCodeOf(66), 66);
  t.is(exitCodeOf(null, 'KILL'), 137);
  t.is(exitCodeOf(null, 'TERM'), 143);
  t.is(exitCodeOf(undefined), undefined, 'no status at all: the session ended under the command');
});

test("ssh: OpenSSH's host-keys announcement is acknowledged without the proof round trip; other requests keep ssh2's answer", async (t) => {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 1024,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  // Nothing listens on port 1: the client is made and fails to connect, which is all this needs.
  const ssh = new NodeSSH();
  const failed = t.throwsAsync(ssh.connect({ host: '127.0.0.1', port: 1, username: 'x', privateKey }));
  const client = ssh.connection as unknown as { _protocol: { _handlers: Record<string, unknown> } };
  t.is(
    typeof client._protocol._handlers.GLOBAL_REQUEST,
    'function',
    "ssh2's handler of global requests is where this expects it",
  );
  // ssh2's own handler answers through its connection: a stand-in records what reaches it.
  const reached: string[] = [];
  client._protocol._handlers.GLOBAL_REQUEST = (_proto: unknown, name: string) => reached.push(name);
  skipHostKeysProof(client);
  skipHostKeysProof(client);
  const handler = client._protocol._handlers.GLOBAL_REQUEST as (...args: unknown[]) => void;
  const answers: string[] = [];
  const proto = { requestSuccess: () => answers.push('success') };
  // Announced keys that are not even keys: ssh2 would parse them (and throw); here they are not read.
  handler(proto, 'hostkeys-00@openssh.com', false, [Buffer.from('not a key')]);
  handler(proto, 'hostkeys-00@openssh.com', true, []);
  handler(proto, 'keepalive@openssh.com', true, undefined);
  t.deepEqual(answers, ['success']);
  t.deepEqual(reached, ['keepalive@openssh.com']);
  await failed;
});

test('ssh: a private key that cannot be read is an auth failure naming the file, before any connection', async (t) => {
  const target = {
    name: 'web1',
    address: '127.0.0.1',
    port: 1,
    user: 'root',
    key: '/nonexistent/id_ed25519',
    become: false,
  };
  const err = await t.throwsAsync(
    SshConnection.open(target, {
      knownHostsFile: '/nonexistent/known_hosts',
      hostKeyChecking: 'off',
      connectTimeoutMs: 1000,
    }),
    { instanceOf: UnreachableError },
  );
  t.is(err?.reason, 'auth');
  t.regex(err?.message ?? '', /cannot read the private key \/nonexistent\/id_ed25519 \(ENOENT\)/);
});

test('ssh: a private key is read again once its file changed, and not before', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-key-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'id');
  writeFileSync(path, 'first key');
  const then = new Date('2026-01-01T00:00:00Z');
  utimesSync(path, then, then);
  t.is(await readPrivateKey('web1', path), 'first key');
  // Same size and modification time: the file is taken as unchanged, and not read again.
  writeFileSync(path, 'other key');
  utimesSync(path, then, then);
  t.is(await readPrivateKey('web2', path), 'first key');
  writeFileSync(path, 'the second key');
  t.is(await readPrivateKey('web1', path), 'the second key');
  rmSync(path);
  const err = await t.throwsAsync(readPrivateKey('web3', path), { instanceOf: UnreachableError });
  t.is(err?.host, 'web3');
  t.regex(err?.message ?? '', /cannot read the private key .*\(ENOENT\)/);
});
