/**
 * `--persist`: the connection keeper keeps a run's SSH connection for the next run (issue 25, "a run
 * right after another does not pay the handshake again"), on a real host. Handshakes are counted on
 * the host, from sshd's journal (`Accepted publickey ... port P`), not from timings:
 * - a run without --persist makes one handshake (the count works); the first run with it makes one; a
 *   second no-change run within the timeout makes none and costs 1 round trip (`--json`);
 * - the keeper's directory is 0700 and its socket 0600, both the user's; the secret the run sends is
 *   on no command line of the controller (the keeper's included);
 * - a host key changed in known_hosts is refused through the keeper as without it (same exit code,
 *   same message);
 * - Ctrl-C of a run through the keeper stops its command on the host, as without it;
 * - `verdandi disconnect` closes the connection and stops the keeper; after the idle timeout no keeper
 *   process, no socket and no session on the host remain.
 *
 * Each test file has a keeper of its own: XDG_RUNTIME_DIR points to a directory of this file.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { run } from '../../src/testhost/exec.js';
import { CLI_BIN, projectWithSecrets, removeProject, runCli, writeInventory } from '../helpers/cli.js';
import { commandLinesWith, pidsWithCommandLine, until } from '../helpers/local-processes.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'pc-a';
const hosts = useTestHosts(test, [HOST]);
const SECRET = 'tok_persist_7d1e93c0b2';
const VAULT_PASSWORD = 'persist vault password gravel';
const runtime = mkdtempSync(join(tmpdir(), 'vd-pc-rt-'));
const KEEPER_DIR = join(runtime, 'verdandi');
const SOCKET = join(KEEPER_DIR, 'keeper.sock');
const env = { XDG_RUNTIME_DIR: runtime };
const UID = process.getuid?.() ?? 0;

/** How many processes of the command run on the host (this command's own shell left out). */
const PROCESSES = 'ps -eww -o args= | grep -F "sleep 10007" | grep -vc grep';
let project = '';
let ready: Promise<void> | undefined;

async function setUp(): Promise<void> {
  project = await projectWithSecrets('vd-pc-', 'staging', VAULT_PASSWORD, { token: SECRET });
  const h = hosts.get(HOST);
  writeInventory(
    project,
    {
      hosts: { [HOST]: { address: h.address, user: h.user, key: h.key } },
      roles: ['pcapp'],
      vars: { token: '{{ secrets.token }}' },
    },
    'staging',
  );
  mkdirSync(join(project, 'roles', 'pcapp'), { recursive: true });
  writeFileSync(
    join(project, 'roles', 'pcapp', 'index.ts'),
    `import { copy, defineRole, directory, z } from 'verdandi';
export default defineRole({
  name: 'pcapp',
  vars: z.object({ token: z.string() }),
  tasks: (vars) => [
    directory({ path: '/srv/pcapp' }),
    copy({ path: '/srv/pcapp/app.env', mode: '0600', content: 'TOKEN=' + vars.token + '\\n' }),
  ],
});
`,
  );
  writeFileSync(
    join(project, 'forever.ts'),
    `import { definePlaybook, shell } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [
  shell({ script: 'sleep 10007 & touch /root/pc-started; wait' }),
  shell({ script: 'touch /root/pc-next' }),
] }] });
`,
  );
}

const prepared = () => {
  ready ??= setUp();
  return ready;
};

test.after.always(async () => {
  await runCli(['disconnect'], { env });
  if (project) removeProject(project);
});

function cli(args: string[]) {
  return runCli(args, { cwd: project, env, timeoutMs: 120_000 });
}

/**
 * The handshakes sshd accepted so far. The command waits for the journal line of its own connection
 * (its client port, from $SSH_CLIENT) first: every earlier line is there too. The count includes
 * that own line.
 */
async function acceptedSoFar(): Promise<number> {
  const script = [
    'port=$(echo "$SSH_CLIENT" | cut -d" " -f2)',
    'i=0',
    'until journalctl -u ssh --no-pager -o cat | grep -q "^Accepted .* port $port "; do',
    '  i=$((i+1)); [ $i -gt 200 ] && { echo "no journal line for port $port" >&2; exit 1; }; sleep 0.05',
    'done',
    'journalctl -u ssh --no-pager -o cat | grep -c "^Accepted "',
  ].join('\n');
  const res = await hosts.ssh(HOST, script, { timeoutMs: 60_000 });
  if (res.code !== 0) throw new Error(`counting sshd's handshakes failed: ${res.stderr}`);
  return Number(res.stdout.trim());
}

/** The handshakes `action` caused: the count after, minus the count before, minus the counting call. */
async function handshakesOf<T>(action: () => Promise<T>): Promise<{ result: T; handshakes: number }> {
  const before = await acceptedSoFar();
  const result = await action();
  const after = await acceptedSoFar();
  return { result, handshakes: after - before - 1 };
}

/** The pids of this file's keeper processes (their command line names this file's directory). */
const keeperPids = () => pidsWithCommandLine('keeper.js', KEEPER_DIR);

/** The host's established SSH sessions from the controller, the one asking excluded. */
async function sessionsOnHost(): Promise<number> {
  const res = await hosts.ssh(
    HOST,
    `own=$(echo "$SSH_CLIENT" | cut -d" " -f2); ss -tnH state established '( sport = :22 )' | awk -v own="$own" '{ n = split($4, a, ":"); if (a[n] != own) print }' | wc -l`,
  );
  return Number(res.stdout.trim());
}

test.serial(
  'a second run within the timeout makes no handshake and costs one round trip; socket 0600 in a 0700 dir',
  async (t) => {
    await prepared();
    const direct = await handshakesOf(() => cli(['provision', 'staging']));
    t.is(direct.result.code, 0, direct.result.stdout + direct.result.stderr);
    t.is(direct.handshakes, 1, 'a run without --persist makes one handshake');

    const first = await handshakesOf(() => cli(['provision', 'staging', '--persist', '60']));
    t.is(first.result.code, 0, first.result.stdout + first.result.stderr);
    t.is(first.handshakes, 1, 'the first run through the keeper opens the connection');

    const dirStat = statSync(KEEPER_DIR);
    t.is(dirStat.mode & 0o777, 0o700);
    t.is(dirStat.uid, UID);
    const socketStat = statSync(SOCKET);
    t.true(socketStat.isSocket());
    t.is(socketStat.mode & 0o777, 0o600);
    t.is(socketStat.uid, UID);
    t.is(keeperPids().length, 1, 'one keeper runs');

    const second = await handshakesOf(() => cli(['provision', 'staging', '--persist', '60', '--json']));
    t.is(second.result.code, 0, second.result.stdout + second.result.stderr);
    t.is(second.handshakes, 0, 'the second run made no handshake');
    const doc = JSON.parse(second.result.stdout) as {
      hosts: Record<string, { roundTrips: number; changed: number }>;
    };
    t.is(doc.hosts[HOST].roundTrips, 1);
    t.is(doc.hosts[HOST].changed, 0);
    t.is((await hosts.ssh(HOST, 'cat /srv/pcapp/app.env')).stdout, `TOKEN=${SECRET}\n`);

    // $VERDANDI_PERSIST does what --persist does.
    const byEnv = await handshakesOf(() =>
      runCli(['provision', 'staging'], { cwd: project, env: { ...env, VERDANDI_PERSIST: '60' } }),
    );
    t.is(byEnv.result.code, 0, byEnv.result.stdout + byEnv.result.stderr);
    t.is(byEnv.handshakes, 0);

    // A change that travels through the keeper: the secret in a file, never on a command line.
    await hosts.ssh(HOST, 'rm -f /srv/pcapp/app.env');
    const changed = cli(['provision', 'staging', '--persist', '60']);
    const seen: string[] = [];
    while (!(await Promise.race([changed.then(() => true), new Promise((r) => setTimeout(r, 20, false))])))
      seen.push(...commandLinesWith(SECRET));
    const res = await changed;
    t.is(res.code, 0, res.stdout + res.stderr);
    t.deepEqual(seen, [], 'the secret is on no command line of the controller');
    t.is((await hosts.ssh(HOST, 'cat /srv/pcapp/app.env')).stdout, `TOKEN=${SECRET}\n`);
    for (const pid of keeperPids()) {
      t.false(readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(SECRET));
      t.false(readFileSync(`/proc/${pid}/environ`, 'utf8').includes(SECRET));
    }
    t.false(res.stdout.includes(SECRET));
  },
);

test.serial('a host key changed in known_hosts is refused through the keeper as without it', async (t) => {
  await prepared();
  const warm = await cli(['provision', 'staging', '--persist', '60']);
  t.is(warm.code, 0, warm.stdout + warm.stderr);
  const knownHosts = join(project, '.verdandi', 'known_hosts');
  const original = readFileSync(knownHosts, 'utf8');
  // Another ed25519 key in the host's line: what the file says now is not what the host holds.
  const keyDir = mkdtempSync(join(tmpdir(), 'vd-pc-key-'));
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keyDir, 'k')]);
  const other = readFileSync(join(keyDir, 'k.pub'), 'utf8').split(' ')[1];
  const address = hosts.get(HOST).address;
  const tampered = original
    .split('\n')
    .map((line) => (line.startsWith(`${address} ssh-ed25519 `) ? `${address} ssh-ed25519 ${other}` : line))
    .join('\n');
  t.not(tampered, original, 'the host has an ed25519 key line');
  writeFileSync(knownHosts, tampered);
  try {
    const kept = await cli(['provision', 'staging', '--persist', '60']);
    const plain = await cli(['provision', 'staging']);
    t.is(kept.code, 3, kept.stdout + kept.stderr);
    t.is(plain.code, 3, plain.stdout + plain.stderr);
    const reason = (out: string) =>
      /the host key of \S+ changed \(now SHA256:\S+\); refusing to connect[^\n]*/.exec(out)?.[0];
    const keptReason = reason(kept.stdout + kept.stderr);
    t.truthy(keptReason, kept.stdout + kept.stderr);
    t.is(keptReason, reason(plain.stdout + plain.stderr), 'the same message with and without the keeper');
  } finally {
    writeFileSync(knownHosts, original);
  }
  // The refused connection was closed: the next run makes a new one, its key checked again.
  const again = await handshakesOf(() => cli(['provision', 'staging', '--persist', '60']));
  t.is(again.result.code, 0, again.result.stdout + again.result.stderr);
  t.is(again.handshakes, 1);
});

test.serial('Ctrl-C of a run through the keeper stops its command on the host', async (t) => {
  await prepared();
  const warm = await cli(['provision', 'staging', '--persist', '60']);
  t.is(warm.code, 0, warm.stdout + warm.stderr);
  await hosts.ssh(HOST, 'rm -f /root/pc-started /root/pc-next');
  const child = spawn(process.execPath, [CLI_BIN, 'run', 'staging', 'forever.ts', '--persist', '60'], {
    cwd: project,
    env: { ...process.env, ...env, CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const started = await hosts.ssh(
    HOST,
    'i=0; while [ ! -e /root/pc-started ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; test -e /root/pc-started',
    { timeoutMs: 90_000 },
  );
  t.is(started.code, 0, `the command never started: ${output}`);
  const running = await hosts.ssh(HOST, PROCESSES);
  t.not(running.stdout.trim(), '0', 'the command runs');
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await exited;
  clearTimeout(timer);
  t.is(code, 130, output);
  t.regex(output, /its command was stopped on the host/);
  t.is((await hosts.ssh(HOST, PROCESSES)).stdout.trim(), '0', 'no process remains');
  t.is((await hosts.ssh(HOST, 'test -e /root/pc-next')).code, 1, 'no new step started');
  t.is(keeperPids().length, 1, 'the keeper goes on for the next run');
});

test.serial(
  'disconnect stops the keeper; after the idle timeout no keeper, no socket, no session remain',
  async (t) => {
    await prepared();
    const warm = await cli(['provision', 'staging', '--persist', '60']);
    t.is(warm.code, 0, warm.stdout + warm.stderr);
    t.is(keeperPids().length, 1);
    const stop = await runCli(['disconnect'], { env });
    t.is(stop.code, 0, stop.stderr);
    t.regex(stop.stdout, /closed 1 kept connection; the connection keeper stopped/);
    await until(() => keeperPids().length === 0, 10_000, 'the keeper exits');
    t.throws(() => statSync(SOCKET), { code: 'ENOENT' });
    t.is(await sessionsOnHost(), 0, 'the kept session is closed on the host');
    const none = await runCli(['disconnect'], { env });
    t.regex(none.stdout, /no connection keeper runs/);

    // A short timeout: the keeper closes everything and exits by itself.
    const short = await cli(['provision', 'staging', '--persist', '10']);
    t.is(short.code, 0, short.stdout + short.stderr);
    const ended = Date.now();
    t.is(keeperPids().length, 1);
    const kept = await sessionsOnHost();
    t.true(Date.now() - ended < 9_000, 'the session was counted within the timeout');
    t.is(kept, 1, 'the connection is kept');
    await until(() => keeperPids().length === 0, 30_000, 'the keeper exits after its idle timeout');
    t.true(Date.now() - ended >= 9_000, `not before its timeout (${Date.now() - ended} ms)`);
    t.throws(() => statSync(SOCKET), { code: 'ENOENT' });
    await until(async () => (await sessionsOnHost()) === 0, 10_000, 'the session ends on the host');
  },
);

test.serial('a keeper directory open to others is refused before any host is contacted', async (t) => {
  await prepared();
  const loose = mkdtempSync(join(tmpdir(), 'vd-pc-loose-'));
  mkdirSync(join(loose, 'verdandi'), { mode: 0o777 });
  const { chmodSync } = await import('node:fs');
  chmodSync(join(loose, 'verdandi'), 0o777);
  const res = await handshakesOf(() =>
    runCli(['provision', 'staging', '--persist', '60'], { cwd: project, env: { XDG_RUNTIME_DIR: loose } }),
  );
  t.is(res.result.code, 1, res.result.stdout + res.result.stderr);
  t.regex(
    res.result.stderr,
    /refusing the connection keeper's directory \S+\/verdandi: its mode is 0777, not 0700/,
  );
  t.notRegex(res.result.stderr, /\n\s+at /, 'no stack trace');
  t.is(res.handshakes, 0);
});
