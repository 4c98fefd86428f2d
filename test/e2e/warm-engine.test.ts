/**
 * The spare engine of `--persist` (src/cli/warm/, issue 25: a run that starts warm), on a real host.
 * A run with --persist leaves a spare: a process with the command line and the engine loaded, which the
 * next command hands itself to. What is proven:
 * - the next run is served by it (the playbook, loaded in the process that runs it, writes its pid:
 *   not the pid of the process the test started), with the same output, files in order and exit codes
 *   as a run in a process of its own (`$VERDANDI_WARM=off`);
 * - Ctrl-C of the user's process stops the run in the spare as it stops a run (130, the host's
 *   command stopped); killing the user's process ends the spare's run too;
 * - a real terminal: colours, and the vault password typed at a hidden prompt (tmux);
 * - `verdandi disconnect` stops the spare; after the idle timeout no spare process or socket remain.
 *
 * This file has a keeper and spares of its own: XDG_RUNTIME_DIR points to a directory of this file.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { CLI_BIN, projectWithSecrets, removeProject, runCli, writeInventory } from '../helpers/cli.js';
import { pidsWithCommandLine, until } from '../helpers/local-processes.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { Terminal } from './day2-terminal.js';

const HOST = 'wm-a';
const hosts = useTestHosts(test, [HOST]);
const VAULT_PASSWORD = 'warm vault password quartz';
const SECRET = 'tok_warm_51c0e9a7';
const runtime = mkdtempSync(join(tmpdir(), 'vd-wm-rt-'));
const SPARE_DIR = join(runtime, 'verdandi');
const SPARE_SOCKET = join(SPARE_DIR, 'spare.sock');
const env = { XDG_RUNTIME_DIR: runtime };
const PID_FILE = join(runtime, 'playbook-pid');
let project = '';
let ready: Promise<void> | undefined;

async function setUp(): Promise<void> {
  project = await projectWithSecrets('vd-wm-', 'staging', VAULT_PASSWORD, { token: SECRET });
  const h = hosts.get(HOST);
  writeInventory(
    project,
    {
      hosts: { [HOST]: { address: h.address, user: h.user, key: h.key } },
      vars: { token: '{{ secrets.token }}' },
    },
    'staging',
  );
  // The playbook says which process loaded it.
  const header = `import { writeFileSync } from 'node:fs';
import { copy, definePlaybook, directory, shell } from 'verdandi';
writeFileSync(${JSON.stringify(PID_FILE)}, String(process.pid));
`;
  writeFileSync(
    join(project, 'site.ts'),
    `${header}export default definePlaybook({ plays: [{ hosts: 'all', tasks: (host) => [
  directory({ path: '/srv/warm' }),
  copy({ path: '/srv/warm/app.env', mode: '0600', content: 'TOKEN=' + String(host.vars.token) + '\\n' }),
] }] });
`,
  );
  writeFileSync(
    join(project, 'fails.ts'),
    `${header}export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [
  shell({ script: 'echo on-stderr >&2; exit 3' }),
] }] });
`,
  );
  writeFileSync(
    join(project, 'forever.ts'),
    `${header}export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [
  shell({ script: 'sleep 10009 & touch /root/wm-started; wait' }),
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
  rmSync(runtime, { recursive: true, force: true });
});

/** The pids of this file's spare processes (their command line names this file's directory). */
const sparePids = () => pidsWithCommandLine('spare.js', SPARE_DIR);

/** A spare serves this file's directory. */
const spareReady = () => until(() => existsSync(SPARE_SOCKET), 30_000, 'a spare serves the socket');

interface Started {
  child: ChildProcess;
  output: () => string;
  stdout: () => string;
  exited: Promise<number | null>;
}

/** `verdandi <args>` in the project, its output collected; the process itself, for its pid and signals. */
function start(args: string[], extraEnv: Record<string, string> = {}): Started {
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    cwd: project,
    env: { ...process.env, CI: 'true', ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let stdout = '';
  child.stdout?.on('data', (d) => {
    output += d;
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, output: () => output, stdout: () => stdout, exited };
}

/** Runs `args` to its end: its exit code, output, and the pid of the process that loaded the playbook. */
async function runToEnd(args: string[], extraEnv: Record<string, string> = {}) {
  rmSync(PID_FILE, { force: true });
  const started = start(args, extraEnv);
  const timer = setTimeout(() => started.child.kill('SIGKILL'), 120_000);
  const code = await started.exited;
  clearTimeout(timer);
  const loadedBy = existsSync(PID_FILE) ? Number(readFileSync(PID_FILE, 'utf8')) : undefined;
  return { code, output: started.output(), stdout: started.stdout(), pid: started.child.pid, loadedBy };
}

/** The output without its timings, to compare two runs. */
const steady = (text: string) => text.replace(/done in [\d.]+ s/g, 'done in T s');

test.serial(
  'the run after a --persist run is served by the spare: same output, files and exit codes',
  async (t) => {
    await prepared();
    const cold = await runToEnd(['run', 'staging', 'site.ts', '--persist', '60']);
    t.is(cold.code, 0, cold.output);
    t.is(cold.loadedBy, cold.pid, 'no spare yet: the run is its own process');
    await spareReady();

    const warm = await runToEnd(['run', 'staging', 'site.ts', '--persist', '60']);
    t.is(warm.code, 0, warm.output);
    t.truthy(warm.loadedBy);
    t.not(warm.loadedBy, warm.pid, 'a spare loaded the playbook');
    t.is((await hosts.ssh(HOST, 'cat /srv/warm/app.env')).stdout, `TOKEN=${SECRET}\n`);
    t.false(warm.output.includes(SECRET));

    // The same command in a process of its own prints the same.
    const own = await runToEnd(['run', 'staging', 'site.ts', '--persist', '60'], { VERDANDI_WARM: 'off' });
    t.is(own.loadedBy, own.pid);
    await spareReady();
    const again = await runToEnd(['run', 'staging', 'site.ts', '--persist', '60']);
    t.not(again.loadedBy, again.pid);
    t.is(steady(again.output), steady(own.output));

    // --json: one round trip, nothing changed.
    await spareReady();
    const json = await runToEnd(['run', 'staging', 'site.ts', '--persist', '60', '--json']);
    t.not(json.loadedBy, json.pid);
    const doc = JSON.parse(json.stdout) as { hosts: Record<string, { roundTrips: number; changed: number }> };
    t.is(doc.hosts[HOST].changed, 0);
    t.is(doc.hosts[HOST].roundTrips, 1);

    // A failing task: exit code 2 and its message, as in a process of its own.
    await spareReady();
    const failed = await runToEnd(['run', 'staging', 'fails.ts', '--persist', '60']);
    t.not(failed.loadedBy, failed.pid);
    const failedOwn = await runToEnd(['run', 'staging', 'fails.ts', '--persist', '60'], {
      VERDANDI_WARM: 'off',
    });
    t.is(failed.code, 2, failed.output);
    t.is(failedOwn.code, 2, failedOwn.output);
    t.regex(failed.output, /on-stderr/);
    t.is(steady(failed.output), steady(failedOwn.output));

    // The output goes where the user's process writes: a file shared with the commands around it.
    await spareReady();
    const log = join(runtime, 'log.txt');
    const quoted = [process.execPath, CLI_BIN, 'run', 'staging', 'site.ts', '--persist', '60'].map(
      (w) => `'${w}'`,
    );
    const shell = spawn(
      'sh',
      ['-c', `{ echo first; ${quoted.join(' ')}; echo "last $?"; } > '${log}' 2>&1`],
      {
        cwd: project,
        env: { ...process.env, CI: 'true', ...env },
        stdio: 'ignore',
      },
    );
    t.is(await new Promise((resolve) => shell.on('close', resolve)), 0);
    const lines = readFileSync(log, 'utf8').trimEnd().split('\n');
    t.is(lines[0], 'first');
    t.is(lines.at(-1), 'last 0');
    t.regex(lines.at(-2) ?? '', /^done in /);
    t.is(lines.filter((line) => line.startsWith('ok ')).length, 2, lines.join('\n'));
  },
);

test.serial(
  'Ctrl-C reaches the run in the spare; a killed user process ends it too; a killed spare is reported',
  async (t) => {
    await prepared();
    const PROCESSES = 'ps -eww -o args= | grep -F "sleep 10009" | grep -vc grep';
    for (const how of ['SIGINT', 'SIGKILL', 'spare killed'] as const) {
      await runToEnd(['run', 'staging', 'site.ts', '--persist', '60']);
      await spareReady();
      const [spare] = sparePids();
      t.truthy(spare, 'a spare waits');
      await hosts.ssh(HOST, 'rm -f /root/wm-started');
      rmSync(PID_FILE, { force: true });
      const run = start(['run', 'staging', 'forever.ts', '--persist', '60']);
      const started = await hosts.ssh(
        HOST,
        'i=0; while [ ! -e /root/wm-started ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; test -e /root/wm-started',
        { timeoutMs: 90_000 },
      );
      t.is(started.code, 0, `the command never started: ${run.output()}`);
      t.is(Number(readFileSync(PID_FILE, 'utf8')), spare, 'the spare runs it');
      if (how === 'spare killed') process.kill(spare, 'SIGKILL');
      else run.child.kill(how);
      const timer = setTimeout(() => run.child.kill('SIGKILL'), 30_000);
      const code = await run.exited;
      clearTimeout(timer);
      if (how === 'SIGINT') {
        t.is(code, 130, run.output());
        t.regex(run.output(), /its command was stopped on the host/);
        t.is((await hosts.ssh(HOST, PROCESSES)).stdout.trim(), '0', 'no process remains on the host');
      } else if (how === 'spare killed') {
        // The user's process does not wait forever for a spare that died: it says so, exit 1.
        t.is(code, 1, run.output());
        t.regex(run.output(), /the warm engine running this command \(process \d+\) was stopped/);
      }
      // The spare that ran it is gone (after a kill: by the hang-up of the user's process).
      await until(() => !existsSync(`/proc/${spare}`), 30_000, `the spare ${spare} ends`);
      await hosts.ssh(HOST, 'pkill -f "sleep 10009" || true');
    }
  },
);

test.serial(
  'two commands at once: one spare serves one of them, the other runs in its own process',
  async (t) => {
    await prepared();
    await runToEnd(['run', 'staging', 'site.ts', '--persist', '60']);
    await spareReady();
    const [spare] = sparePids();
    const both = await Promise.all(
      [0, 1].map(async () => {
        const started = start(['run', 'staging', 'site.ts', '--persist', '60', '--json']);
        return { code: await started.exited, stdout: started.stdout(), output: started.output() };
      }),
    );
    for (const res of both) {
      t.is(res.code, 0, res.output);
      t.is((JSON.parse(res.stdout) as { hosts: Record<string, { changed: number }> }).hosts[HOST].changed, 0);
    }
    // It ends right after its command (the user's process ends at its exit code, a moment before).
    await until(() => !existsSync(`/proc/${spare}`), 10_000, 'the spare served one and ended with it');
    t.pass();
  },
);

test.serial('a terminal: colours, and the vault password typed at the hidden prompt', async (t) => {
  await prepared();
  const passwordFile = join(project, 'secrets', 'staging.vault-password');
  const kept = readFileSync(passwordFile);
  await runToEnd(['run', 'staging', 'site.ts', '--persist', '60']);
  await spareReady();
  const [spare] = sparePids();
  rmSync(passwordFile);
  await hosts.ssh(HOST, 'rm -f /srv/warm/app.env');
  const terminal = await Terminal.start('vd-wm-term', ['run', 'staging', 'site.ts', '--persist', '60'], {
    cwd: project,
    env,
    unset: ['CI', 'VERDANDI_VAULT_PASSWORD'],
  });
  try {
    await terminal.waitFor(/Vault password for staging: /, 'the hidden prompt');
    await terminal.type(VAULT_PASSWORD);
    t.is(await terminal.exitCode(), 0, await terminal.screen());
    const screen = await terminal.screen();
    t.false(screen.includes(VAULT_PASSWORD), 'the password is not echoed');
    t.regex(screen, /changed\s+wm-a/);
    // Coloured as on a terminal: the spare's standard output is one, as the user's is.
    t.regex(await terminal.screen(true), /\u001b\[\d+m(ok|changed)/);
    t.is(Number(readFileSync(PID_FILE, 'utf8')), spare, 'the spare ran it');
    t.is((await hosts.ssh(HOST, 'cat /srv/warm/app.env')).stdout, `TOKEN=${SECRET}\n`);
  } finally {
    await terminal.close();
    writeFileSync(passwordFile, kept, { mode: 0o600 });
  }
});

test.serial('disconnect stops the spare; after its idle timeout none remains', async (t) => {
  await prepared();
  await runToEnd(['run', 'staging', 'site.ts', '--persist', '60']);
  await spareReady();
  t.is(sparePids().length, 1, 'one spare waits');
  const stop = await runCli(['disconnect'], { env });
  t.is(stop.code, 0, stop.stderr);
  t.regex(stop.stdout, /the spare engine stopped/);
  await until(() => sparePids().length === 0, 10_000, 'the spare exits');
  t.false(existsSync(SPARE_SOCKET));

  const short = await runToEnd(['run', 'staging', 'site.ts', '--persist', '3']);
  t.is(short.code, 0, short.output);
  await spareReady();
  const ended = Date.now();
  await until(
    () => sparePids().length === 0 && !existsSync(SPARE_SOCKET),
    30_000,
    'the spare exits when idle',
  );
  t.true(Date.now() - ended >= 2_000, `not long before its timeout (${Date.now() - ended} ms)`);
  // Nothing of a spare is left in the directory: no socket, no loading marker.
  t.deepEqual(
    readdirSync(SPARE_DIR).filter((name) => name.startsWith('spare')),
    [],
  );
});
