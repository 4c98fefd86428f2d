/**
 * The deploy commands' user errors, through the built CLI: they are caught before any host is contacted
 * (the inventory's address is never reached), exit 1, and name what is wrong and where.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';

// Never contacted (the errors come first); in the test network range all the same, where no host is.
const HOST = { address: '10.231.255.254', user: 'root' };

function inventory(sites: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'vd-deploy-cli-'));
  return writeInventory(dir, { hosts: { web1: { ...HOST, sites } } });
}

test('a wrong site field is a user error naming the host, the field and the file', async (t) => {
  const inv = inventory([{ name: 'Bad Name', repo: '/x' }]);
  const res = await runCli(['deploy', inv, '--branch', 'main']);
  t.is(res.code, 1, res.stderr);
  t.regex(
    res.stderr,
    /role sites, host web1: var sites\[0\]\.name: a site name is lowercase letters.*, got "Bad Name" \(set in .*test\.yml:\d+:\d+\)/,
  );
});

test('a misspelled site key is refused as provision refuses it: where, and what was meant', async (t) => {
  const inv = inventory([{ name: 'app', repo: '/x', brnach: 'main', healthcheck: { path: '/up' } }]);
  const res = await runCli(['deploy', inv, '--branch', 'main']);
  t.is(res.code, 1, res.stderr);
  t.regex(res.stderr, /role sites, host web1: 2 vars are invalid:/);
  t.regex(
    res.stderr,
    /unknown key "brnach" in sites\[0\] \(did you mean "branch"\?\) \(set in .*test\.yml:\d+:\d+\)/,
  );
  t.regex(
    res.stderr,
    /unknown key "healthcheck" in sites\[0\] \(did you mean "health"\?\) \(set in .*test\.yml:\d+:\d+\)/,
  );
});

test('an environment without sites says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-deploy-cli-'));
  const inv = writeInventory(dir, { hosts: { web1: HOST } });
  for (const cmd of ['deploy', 'rollback', 'status']) {
    const res = await runCli([cmd, inv]);
    t.is(res.code, 1, res.stderr);
    t.regex(res.stderr, /no host of test has sites/);
  }
});

test('a branch that is not in the repository is refused before any host is contacted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-deploy-cli-'));
  const { execFileSync } = await import('node:child_process');
  const repo = join(dir, 'repo');
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  execFileSync('git', [
    '-C',
    repo,
    '-c',
    'user.name=t',
    '-c',
    'user.email=t@t.invalid',
    'commit',
    '-q',
    '--allow-empty',
    '-m',
    'one',
  ]);
  const inv = writeInventory(dir, {
    hosts: { web1: { ...HOST, sites: [{ name: 'app', repo, process: { command: 'x' } }] } },
  });
  const res = await runCli(['deploy', inv, '--branch', 'nope']);
  t.is(res.code, 1, res.stderr);
  t.regex(res.stderr, /site app: "nope" is no branch, tag or commit of/);
});

test('--lock-wait and --serial are checked the same by deploy and rollback, before any host is contacted', async (t) => {
  const inv = inventory([{ name: 'app', repo: '/x', fetch: 'pull', process: { command: 'x' } }]);
  for (const cmd of ['deploy', 'rollback']) {
    const wait = await runCli([cmd, inv, '--lock-wait', 'abc'], { timeoutMs: 60_000 });
    t.is(wait.code, 1, `${cmd}: ${wait.stdout}${wait.stderr}`);
    t.regex(wait.stderr, /--lock-wait must be a number of seconds, got "abc"/);
    const serial = await runCli([cmd, inv, '--serial', 'two'], { timeoutMs: 60_000 });
    t.is(serial.code, 1, `${cmd}: ${serial.stdout}${serial.stderr}`);
    t.regex(serial.stderr, /--serial must be a positive number or a percentage, got "two"/);
  }
});

test("a site's missing secret is refused before any host is contacted (exit 1)", async (t) => {
  const inv = inventory([
    {
      name: 'app',
      repo: '/x',
      fetch: 'pull',
      process: { command: 'x' },
      env: { secrets: { DATABASE_URL: 'database_url' } },
    },
  ]);
  const res = await runCli(['deploy', inv, '--branch', 'main'], { timeoutMs: 60_000 });
  t.is(res.code, 1, res.stdout + res.stderr);
  t.regex(res.stderr, /site app: env\.secrets\.DATABASE_URL names the secret "database_url"/);
  t.notRegex(res.stdout + res.stderr, /unreachable|10\.231\.255\.254/);
});
