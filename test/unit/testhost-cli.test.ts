/**
 * `verdandi testhost` argument handling through the real command line (the built CLI): bad arguments
 * are one-line errors with exit 1, before anything on the machine is touched.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli } from '../helpers/cli.js';

// An empty cache dir: whatever these commands would touch is not the machine's real one.
const env = { VERDANDI_CACHE: mkdtempSync(join(tmpdir(), 'vd-testhost-cli-')) };

test('testhost --help lists up, down and list', async (t) => {
  const res = await runCli(['testhost', '--help'], { env });
  t.is(res.code, 0);
  for (const sub of ['up', 'down', 'list']) t.regex(res.stdout, new RegExp(`^\\s+${sub}\\b`, 'm'));
});

test('testhost up --help shows --count', async (t) => {
  const res = await runCli(['testhost', 'up', '--help'], { env });
  t.is(res.code, 0);
  t.regex(res.stdout, /--count <n>/);
});

test('testhost up --count 0: exit 1, one line', async (t) => {
  const res = await runCli(['testhost', 'up', '--count', '0'], { env });
  t.is(res.code, 1);
  t.regex(res.stderr, /^error: --count must be a whole number from 1 to 50, not "0"\n$/);
});

test('testhost up with an invalid name: exit 1', async (t) => {
  const res = await runCli(['testhost', 'up', 'Bad_Name'], { env });
  t.is(res.code, 1);
  t.regex(res.stderr, /invalid test host name "Bad_Name"/);
});

test('testhost down without names or --all: exit 1 saying what to give', async (t) => {
  const res = await runCli(['testhost', 'down'], { env });
  t.is(res.code, 1);
  t.regex(res.stderr, /which test hosts\? give their names .* or --all/);
});

test('testhost down with names and --all: exit 1', async (t) => {
  const res = await runCli(['testhost', 'down', 'web1', '--all'], { env });
  t.is(res.code, 1);
  t.regex(res.stderr, /either host names or --all, not both/);
});

test('testhost list with no hosts says so', async (t) => {
  const res = await runCli(['testhost', 'list'], { env });
  t.is(res.code, 0, res.stderr);
  t.regex(res.stdout, /no test hosts/);
  const json = await runCli(['testhost', 'list', '--json'], { env });
  t.deepEqual(JSON.parse(json.stdout), { hosts: [] });
});

test('an unknown testhost subcommand: exit 1', async (t) => {
  const res = await runCli(['testhost', 'reboot'], { env });
  t.is(res.code, 1);
});

test('testhost --help lists box; up and down --help show --vm', async (t) => {
  const help = await runCli(['testhost', '--help'], { env });
  t.regex(help.stdout, /^\s+box\b/m);
  t.regex(help.stdout, /testhost up --vm/);
  for (const sub of ['up', 'down']) {
    const res = await runCli(['testhost', sub, '--help'], { env });
    t.is(res.code, 0);
    t.regex(res.stdout, /--vm\b/);
  }
});

test('testhost up --vm with a host name or --count, down --vm with --all: exit 1 before touching anything', async (t) => {
  for (const args of [
    ['up', '--vm', 'web1'],
    ['up', '--vm', '--count', '2'],
    ['down', '--vm', '--all'],
  ]) {
    const res = await runCli(['testhost', ...args], { env });
    t.is(res.code, 1, args.join(' '));
    t.regex(res.stderr, /^error: --vm is the one VM at 10\.231\.253\.2: drop /, args.join(' '));
  }
});
