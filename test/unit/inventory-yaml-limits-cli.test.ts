/**
 * A 330-byte YAML alias bomb handed to the command line wherever it reads YAML (an inventory, a
 * group_vars file, an Ansible YAML inventory, a `--var @file`, the plaintext for `secrets encrypt`, an
 * encrypted secrets file): exit 1, one line naming the file, line and column, and no more than a second
 * of CPU beyond what the same command takes to fail on an ordinary error. Runs the built CLI
 * (`npm run build`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { aliasBomb } from '../fixtures/inventory/alias-bomb.js';
import { CLI_BIN, type CliResult } from '../helpers/cli.js';

const BOMB_MESSAGE = 'aliases (*name) expand this document to more than 100000 repeated values';
const PASSWORD = 'yaml-limits-password';

/** A project: `ok` (a fine inventory), `broken` (a YAML syntax error), and the bombs. */
function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vd-yaml-limits-cli-'));
  const inventories = join(dir, 'inventories');
  mkdirSync(join(inventories, 'vars-bomb', 'group_vars'), { recursive: true });
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(inventories, 'ok.yml'), 'hosts:\n  web1: {address: 10.231.254.2}\n');
  writeFileSync(join(inventories, 'broken.yml'), 'hosts:\n  web1: {address: [10.231.254.2}\n');
  writeFileSync(join(inventories, 'bomb.yml'), `vars:\n${aliasBomb(7, '  ')}hosts:\n  web1: {}\n`);
  writeFileSync(join(inventories, 'vars-bomb', 'hosts.yml'), 'hosts:\n  web1: {}\n');
  writeFileSync(join(inventories, 'vars-bomb', 'group_vars', 'all.yml'), aliasBomb(7));
  writeFileSync(
    join(inventories, 'ansible.yml'),
    `all:\n  hosts:\n    web1:\n  vars:\n${aliasBomb(7, '    ')}`,
  );
  writeFileSync(join(dir, 'bomb.yml'), aliasBomb(7));
  writeFileSync(join(dir, 'secrets', 'ok.vault-password'), `${PASSWORD}\n`, { mode: 0o600 });
  return dir;
}

/** Encrypts `file` to PASSWORD with gpg into `out`. */
function gpgEncrypt(t: import('ava').ExecutionContext, file: string, out: string): void {
  const home = mkdtempSync(join(tmpdir(), 'vd-yaml-limits-gpg-'));
  const args = [
    '--homedir',
    home,
    '--batch',
    '--yes',
    '--pinentry-mode',
    'loopback',
    '--passphrase',
    PASSWORD,
  ];
  const gpg = spawnSync('gpg', [...args, '--symmetric', '--armor', '-o', out, file], { encoding: 'utf8' });
  t.is(gpg.status, 0, gpg.stderr);
}

interface Timed extends CliResult {
  /** CPU time (user + system) the CLI process used. */
  cpuMs: number;
  wallMs: number;
}

/**
 * Runs the CLI as `runCli` does, under bash, whose `times` prints the CPU time its children used. CPU
 * time, not wall time, is what the bound is about: it does not grow when the machine running the
 * tests is busy with other work (wall time there varies by seconds).
 */
function timed(args: string[], cwd: string): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(
      'bash',
      ['-c', '"$@"; code=$?; times >&2; exit $code', 'bash', process.execPath, CLI_BIN, ...args],
      { cwd, env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      // The last line of `times`: the children's user and system time, like `0m0.338s 0m0.038s`.
      const lines = stderr.trimEnd().split('\n');
      const seconds = [...(lines.at(-1) ?? '').matchAll(/(\d+)m([\d.]+)s/g)].map(
        (m) => Number(m[1]) * 60 + Number(m[2]),
      );
      resolve({
        stdout,
        stderr: lines.slice(0, -2).join('\n'),
        code: code ?? 124,
        cpuMs: (seconds[0] + seconds[1]) * 1000,
        wallMs: performance.now() - started,
      });
    });
  });
}

/** How long the CLI takes to fail on an ordinary inventory error: the baseline of "within a second". */
async function baseline(t: import('ava').ExecutionContext, cwd: string): Promise<number> {
  const broken = await timed(['ping', 'broken'], cwd);
  t.is(broken.code, 1, broken.stderr);
  t.regex(broken.stderr, /^error: inventories\/broken\.yml:2:\d+: YAML syntax error/);
  return broken.cpuMs;
}

function assertRefused(
  t: import('ava').ExecutionContext,
  result: Timed,
  where: RegExp,
  ordinaryCpuMs: number,
): void {
  t.is(result.code, 1, `${result.stdout}\n${result.stderr}`);
  const [first] = result.stderr.split('\n');
  t.regex(first, where);
  t.true(first.includes(BOMB_MESSAGE), first);
  t.notRegex(result.stderr, /internal error|heap|at .*\.js:\d+/);
  t.true(
    result.cpuMs < ordinaryCpuMs + 1000,
    `${Math.round(result.cpuMs)} ms of CPU, an ordinary error ${Math.round(ordinaryCpuMs)} ms`,
  );
  // Wall time only loosely (the machine may be busy): before the bound, one run took minutes.
  t.true(result.wallMs < 30_000, `${Math.round(result.wallMs)} ms`);
}

test.serial('inventories: Verdandi YAML, a group_vars file, Ansible YAML', async (t) => {
  const dir = project();
  const ordinary = await baseline(t, dir);
  assertRefused(t, await timed(['ping', 'bomb'], dir), /^error: inventories\/bomb\.yml:3:12: /, ordinary);
  assertRefused(
    t,
    await timed(['ping', 'inventories/vars-bomb/hosts.yml'], dir),
    /^error: inventories\/vars-bomb\/group_vars\/all\.yml:2:10: /,
    ordinary,
  );
  assertRefused(
    t,
    await timed(['ping', 'ansible'], dir),
    /^error: inventories\/ansible\.yml:6:14: /,
    ordinary,
  );
});

test.serial('--var @file', async (t) => {
  const dir = project();
  const ordinary = await baseline(t, dir);
  assertRefused(
    t,
    await timed(['provision', 'ok', '--check', '--var', '@bomb.yml'], dir),
    /^error: --var @bomb\.yml, line 2, column 10: /,
    ordinary,
  );
});

test.serial('secrets: the plaintext given to `secrets encrypt`, and an encrypted secrets file', async (t) => {
  const dir = project();
  const ordinary = await baseline(t, dir);
  assertRefused(
    t,
    await timed(['secrets', 'encrypt', 'ok', 'bomb.yml'], dir),
    /^error: bomb\.yml:2:10: invalid secrets YAML: /,
    ordinary,
  );
  // Encrypted with gpg itself (as a teammate's older tool could have), so Verdandi meets it on load.
  // Decrypting costs time of its own: the baseline is a secrets file with an ordinary YAML error.
  writeFileSync(join(dir, 'broken-secrets.yml'), 'a: [1\n');
  gpgEncrypt(t, join(dir, 'broken-secrets.yml'), join(dir, 'secrets', 'ok.yml.asc'));
  const broken = await timed(['provision', 'ok', '--check'], dir);
  t.is(broken.code, 1, broken.stderr);
  t.regex(broken.stderr, /^error: secrets\/ok\.yml\.asc:2:1: invalid secrets YAML/);
  gpgEncrypt(t, join(dir, 'bomb.yml'), join(dir, 'secrets', 'ok.yml.asc'));
  assertRefused(
    t,
    await timed(['provision', 'ok', '--check'], dir),
    /^error: secrets\/ok\.yml\.asc:2:10: invalid secrets YAML: /,
    broken.cpuMs,
  );
});
