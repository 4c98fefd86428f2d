/**
 * `verdandi exec` on a real host:
 * - each host's output in one block (stderr marked, control sequences escaped), the exit codes, exit 0;
 *   a non-zero exit on the host = that host failed → 2; `--json` gives each host's exit code and output;
 *   `--stream` prefixes each line with the host; an unreachable host → 3;
 * - a secret in the command is shown `[secret]`, never on the host's process list, and the run is in
 *   the history;
 * - Ctrl-C stops the command on the host with everything it started: exit 130, no process left;
 * - bad input (no command, a --limit matching nothing) is a usage error, exit 1, before any host.
 */
import test from 'ava';
import { projectWithSecrets, runCli, writeInventory } from '../helpers/cli.js';
import { interrupt, processesOnHost, startVerdandi, waitOnHost } from '../helpers/faults.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'dex-exec';
const hosts = useTestHosts(test, [HOST]);
const SECRET = 'dex_exec_token_81f3c2';
const VAULT_PASSWORD = 'dex exec vault password';
let project: string;

// Not a test.before: the hosts' own before hook must have booted the host first.
async function setUp(): Promise<void> {
  if (project) return;
  project = await projectWithSecrets('vd-day2-exec-', 'prod', VAULT_PASSWORD, { api_token: SECRET });
  const h = hosts.get(HOST);
  writeInventory(
    project,
    {
      hosts: {
        web: { address: h.address, user: h.user, key: h.key },
        // Nothing listens on port 1 of loopback: refused at once.
        gone: { address: '127.0.0.1', port: 1, user: 'root', key: h.key },
      },
      vars: { api_token: '{{ secrets.api_token }}' },
    },
    'prod',
  );
}

async function cli(args: string[], timeoutMs = 120_000) {
  await setUp();
  return runCli(args, { cwd: project, timeoutMs, env: { CI: 'true' } });
}

const processes = (pattern: string) => processesOnHost(hosts, HOST, pattern);

test.serial(
  'one block per host, the exit codes; a failing command is exit 2; --json; --stream',
  async (t) => {
    const ok = await cli([
      'exec',
      'prod',
      '--limit',
      'web',
      '--host-key-checking=off',
      '--',
      'echo hello from $(hostname); echo oops >&2; printf "\\033[2Jcleared\\n"; touch /root/dex-ran',
    ]);
    t.is(ok.code, 0, ok.stdout + ok.stderr);
    t.regex(ok.stdout, /── web: exit 0\nhello from /);
    t.regex(ok.stdout, /stderr\| oops/);
    t.true(ok.stdout.includes('\\x1b[2Jcleared'), ok.stdout);
    t.false(ok.stdout.includes('\x1b[2J'), 'a raw escape sequence reached the terminal');
    t.regex(ok.stdout, /exit codes: web 0/);
    t.is((await hosts.ssh(HOST, 'test -e /root/dex-ran')).code, 0, 'the command ran on the host');

    const failed = await cli([
      'exec',
      'prod',
      '--limit',
      'web',
      '--host-key-checking=off',
      '--',
      'echo partial; exit 3',
    ]);
    t.is(failed.code, 2, failed.stdout + failed.stderr);
    t.regex(failed.stdout, /── web: exit 3\npartial/);
    t.regex(failed.stdout, /exit codes: web 3/);

    const json = await cli([
      'exec',
      'prod',
      '--limit',
      'web',
      '--json',
      '--host-key-checking=off',
      '--',
      'echo out; echo err >&2; exit 4',
    ]);
    t.is(json.code, 2, json.stderr);
    const doc = JSON.parse(json.stdout);
    t.is(doc.command, 'exec');
    t.is(doc.exitCode, 2);
    t.is(doc.hosts.web.exitCode, 4);
    t.is(doc.hosts.web.stdout, 'out\n');
    t.is(doc.hosts.web.stderr, 'err\n');

    const stream = await cli([
      'exec',
      'prod',
      '--limit',
      'web',
      '--stream',
      '--host-key-checking=off',
      '--',
      'echo first; echo second >&2',
    ]);
    t.is(stream.code, 0, stream.stdout + stream.stderr);
    t.regex(stream.stdout, /^web \| first\nweb \| second$/m);
  },
);

test.serial('an unreachable host is exit 3; the reachable one still runs', async (t) => {
  const res = await cli([
    'exec',
    'prod',
    '--connect-timeout',
    '3',
    '--host-key-checking=off',
    '--',
    'echo alive',
  ]);
  t.is(res.code, 3, res.stdout + res.stderr);
  t.regex(res.stdout, /── web: exit 0\nalive/);
  t.regex(res.stdout, /exit codes: .*gone unreachable/);
});

test.serial(
  'a secret in the command: [secret] in output and history, never in ps; Ctrl-C stops it',
  async (t) => {
    await setUp();
    await hosts.ssh(HOST, 'rm -f /root/dex-started');
    const v = startVerdandi(
      [
        'exec',
        'prod',
        '--limit',
        'web',
        '--host-key-checking=off',
        '--',
        `echo token=${SECRET}; sleep 10007 & touch /root/dex-started; wait`,
      ],
      { cwd: project },
    );
    await waitOnHost(hosts, HOST, 'test -e /root/dex-started');
    t.not(await processes('sleep 10007'), '', 'the command runs');
    t.is(await processes(SECRET), '', 'the secret is on the host process list');
    const { exitCode, output, afterSignalMs } = await interrupt(v);
    t.is(exitCode, 130, output);
    t.true(afterSignalMs < 15_000, `exited ${afterSignalMs} ms after SIGINT`);
    t.is(await processes('sleep 10007'), '', 'a process of the command outlived the run');
    t.false(output.includes(SECRET), output);
    t.regex(output, /token=\[secret\]/);

    const history = await cli(['history', '--json', '--last', '1']);
    t.is(history.code, 0, history.stderr);
    t.false(history.stdout.includes(SECRET));
    t.regex(history.stdout, /"command": "exec"/);
    t.regex(history.stdout, /"status": "interrupted"/);

    const done = await cli([
      'exec',
      'prod',
      '--limit',
      'web',
      '--host-key-checking=off',
      '--',
      `echo ${SECRET} | wc -c`,
    ]);
    t.is(done.code, 0, done.stdout + done.stderr);
    const last = JSON.parse((await cli(['history', '--json', '--last', '1'])).stdout).runs[0];
    t.is(last.command, 'exec');
    const shown = await cli(['history', 'show', String(last.id)]);
    t.is(shown.code, 0, shown.stdout + shown.stderr);
    t.regex(shown.stdout, /exec: echo \[secret\] \| wc -c/);
    t.false(shown.stdout.includes(SECRET));
  },
);

test.serial('bad input is exit 1 before any host: no command, a --limit that matches nothing', async (t) => {
  const none = await cli(['exec', 'prod', '--']);
  t.is(none.code, 1, none.stdout + none.stderr);
  t.regex(none.stderr, /missing required argument 'command'|exec needs a command/);
  const blank = await cli(['exec', 'prod', '--', '  ']);
  t.is(blank.code, 1, blank.stdout + blank.stderr);
  t.regex(blank.stderr, /exec needs a command/);
  const nomatch = await cli(['exec', 'prod', '--limit', 'nosuchhost', '--', 'true']);
  t.is(nomatch.code, 1, nomatch.stdout + nomatch.stderr);
  t.regex(nomatch.stderr, /nosuchhost/);
  t.false(nomatch.stderr.includes('    at '), 'a stack trace');
});
