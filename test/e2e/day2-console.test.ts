/**
 * `verdandi console` on a real test host, through a real terminal (tmux): the python sample site of
 * `verdandi demo` (deploy-python's set-up), provisioned, then deployed. The shell opens as the app user
 * in the live release with its .env and virtualenv; the window size follows tmux's; Ctrl-C stops the
 * remote `sleep` and the shell goes on; the exit code is the remote one; nothing stays on the host.
 * Without a terminal, a command runs with its output streamed and its exit code carried; bad inputs
 * end with a clear message and exit 1.
 *
 * The tests run in order on one host: each starts from what the previous one left.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { demoInventory, makeSampleRepo } from '../../src/commands/demo.js';
import { runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { Terminal } from './day2-terminal.js';
import { onFirstUse, provisionOrThrow, waitFor } from './deploy-helpers.js';

const hosts = useTestHosts(test, ['dco-py']);
const dir = mkdtempSync(join(tmpdir(), 'vd-dco-console-'));
const repo = join(dir, 'sample-site');
let inventory = '';
const ssh = (cmd: string) => hosts.ssh('dco-py', cmd);
const terminals: Terminal[] = [];

// The site's own console command: the python of its virtualenv, with the release's environment.
const SITE_CONSOLE = `python -c 'import os, sys; print("site-console", os.environ["GREETING"], sys.prefix); sys.exit(5)'`;

const ready = onFirstUse(async (log) => {
  const host = hosts.get('dco-py');
  await makeSampleRepo(repo);
  const inv = demoInventory({ name: 'dco-py', address: host.address, key: host.key }, repo);
  inv.groups.web.vars.sites[0].console = SITE_CONSOLE;
  inventory = writeInventory(dir, inv, 'dco-py');
  await provisionOrThrow(inventory, { log });
  // Then a host that runs no site (never contacted: deploy skips it, the console refuses it first).
  (inv.hosts as Record<string, unknown>)['dco-other'] = { address: '10.231.250.2', user: 'root' };
  writeInventory(dir, inv, 'dco-py');
});

const deploy = () => runCli(['deploy', inventory, '--branch', 'main'], { timeoutMs: 10 * 60_000 });
const liveRelease = async () => (await ssh('readlink -f /srv/sample/current')).stdout.trim();

async function terminal(name: string, args: string[]): Promise<Terminal> {
  const term = await Terminal.start(name, args);
  terminals.push(term);
  return term;
}

test.after.always(async () => {
  for (const term of terminals) await term.close();
});

test.serial('a site with nothing deployed: exit 1, says to deploy first', async (t) => {
  await ready(t);
  const res = await runCli(['console', inventory, 'sample', '--', 'true']);
  t.is(res.code, 1, res.stdout + res.stderr);
  t.regex(res.stderr, /site sample on dco-py: nothing is deployed there yet/);
  t.regex(res.stderr, /verdandi deploy .* --site sample/);
  t.notRegex(res.stderr, /at .*\.js:\d+/);
});

test.serial(
  'bad inputs: unknown site, host not in the inventory or not of the site, no terminal',
  async (t) => {
    await ready(t);
    const deployed = await deploy();
    t.is(deployed.code, 0, deployed.stdout + deployed.stderr);

    const unknown = await runCli(['console', inventory, 'nosuch', '--', 'true']);
    t.is(unknown.code, 1);
    t.regex(unknown.stderr, /no host of this environment has a site named "nosuch"/);
    t.regex(unknown.stderr, /known sites: sample/);

    const noHost = await runCli(['console', inventory, 'sample', '--host', 'web9', '--', 'true']);
    t.is(noHost.code, 1);
    t.regex(noHost.stderr, /--host web9: no such host in the inventory/);
    t.regex(noHost.stderr, /the hosts of site sample: dco-py/);

    const notOfSite = await runCli(['console', inventory, 'sample', '--host', 'dco-other', '--', 'true']);
    t.is(notOfSite.code, 1);
    t.regex(notOfSite.stderr, /--host dco-other: not a host of site sample/);

    // runCli's stdin and stdout are pipes: no terminal, and no command to run without one.
    const noTty = await runCli(['console', inventory, 'sample']);
    t.is(noTty.code, 1);
    t.regex(noTty.stderr, /verdandi console needs a terminal/);
    t.regex(noTty.stderr, /-- <command>/);
  },
);

test.serial(
  'without a terminal: the command runs in the release, output streamed, exit code carried',
  async (t) => {
    await ready(t);
    const res = await runCli([
      'console',
      inventory,
      'sample',
      '--',
      'sh',
      '-c',
      'echo "greeting=$GREETING"; echo "cwd=$(pwd)"; echo "user=$(id -un)"; echo "venv=$VIRTUAL_ENV"; exit 4',
    ]);
    t.is(res.code, 4, res.stdout + res.stderr);
    const release = await liveRelease();
    t.regex(res.stdout, /greeting=Hello from Verdandi/);
    t.true(res.stdout.includes(`cwd=${release}\n`), res.stdout);
    t.regex(res.stdout, /user=sample/);
    t.true(res.stdout.includes(`venv=${release}/.venv`), res.stdout);
    t.regex(res.stderr, /console: sample on dco-py, release /);
    // The script's temporary directory went with it.
    t.is((await ssh('ls -d /tmp/verdandi-console.* 2>/dev/null | wc -l')).stdout.trim(), '0');
  },
);

test.serial(
  'through a terminal: env, cwd, window size, Ctrl-C to the remote program, exit code',
  async (t) => {
    await ready(t);
    const release = await liveRelease();
    const term = await terminal(`dco-console-${process.pid}`, ['console', inventory, 'sample', '--', 'bash']);
    await term.waitFor(/console: sample on dco-py/, 'the console to start');
    await term.type('echo "probe=[$GREETING] cwd=[$(pwd)] who=[$(id -un)]"');
    // `$` excluded: the line typed (echoed by the terminal) does not match, only the shell's answer.
    const probe = await term.waitFor(/probe=\[([^\]$]*)\] cwd=\[([^\]$]*)\] who=\[([^\]$]*)\]/, 'the probe');
    t.is(probe[1], 'Hello from Verdandi');
    t.is(probe[2], release);
    t.is(probe[3], 'sample');
    // A terminal: stdin is one on the host.
    await term.type('[ -t 0 ] && echo "tty=$((20+1))"');
    await term.waitFor(/tty=21/, 'the tty check');

    // The window size follows the local one.
    await term.resize(100, 30);
    const size = await term.paneSize();
    t.is(size.split(' ')[1], '100');
    await term.type('echo "size=[$(stty size)]"');
    const shown = await term.waitFor(/size=\[(\d+ \d+)\]/, 'stty size');
    t.is(shown[1], size);

    // Ctrl-C reaches the remote sleep (a byte in raw mode), not Verdandi: the shell goes on.
    await term.type('sleep 4242');
    await waitFor(async () => (await ssh('pgrep -f "sleep 4242"')).code === 0, 30_000, 'the remote sleep');
    await term.keys('C-c');
    await waitFor(async () => (await ssh('pgrep -f "sleep 4242"')).code !== 0, 30_000, 'the sleep to stop');
    await term.type('echo "still=$((40+2))"');
    await term.waitFor(/still=42/, 'the shell after Ctrl-C');
    t.notRegex(await term.screen(), /SIGINT: stopping/);

    // The remote exit code is Verdandi's; nothing of the console stays on the host.
    await term.type('exit 3');
    t.is(await term.exitCode(), 3);
    t.is((await ssh('pgrep -u sample -x bash')).code, 1, 'no shell of the app user left');
    t.is((await ssh('pgrep -f "sleep 4242"')).code, 1);
    t.is((await ssh('ls -d /tmp/verdandi-console.* 2>/dev/null | wc -l')).stdout.trim(), '0');
  },
);

test.serial("through a terminal, no command: the site's `console` runs in its virtualenv", async (t) => {
  await ready(t);
  const release = await liveRelease();
  const term = await terminal(`dco-console-site-${process.pid}`, ['console', inventory, 'sample']);
  const line = await term.waitFor(/site-console (Hello from Verdandi) (\S+)/, 'the site console');
  t.is(line[2], `${release}/.venv`);
  t.is(await term.exitCode(), 5);
});
