/**
 * The README's quick start, done twice, with host-key checking on: `testhost up --count 2`, `ping local`,
 * `testhost down`, again `up`, `ping`. Each `up` records the hosts' actual host keys in the project's
 * `.verdandi/known_hosts` (replacing stale ones for the same address) and each `down` removes them, so a
 * new machine at an address an earlier one had is not refused as a changed key. And a `down` of a host
 * that another process is still booting waits for it instead of pulling its directory away (which made
 * that `up` fail with ENOENT on the console log).
 *
 * Only this file's hosts are stopped (never `down --all`: other test files run hosts at the same time);
 * `down --all` goes through the same code (the hosts taken for stopping, the project files updated) with
 * every live host instead of the named ones.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import yaml from 'js-yaml';
import { knownHostsFile, parseKnownHosts } from '../../src/connection/known-hosts.js';
import { run } from '../../src/testhost/exec.js';
import { down, list } from '../../src/testhost/index.js';
import { SSH_OPTIONS } from '../../src/testhost/machine.js';
import { cacheDirFromEnv, hostPaths, layout } from '../../src/testhost/naming.js';
import { readState } from '../../src/testhost/state.js';
import { CLI_BIN, runCli } from '../helpers/cli.js';

type Context = import('ava').ExecutionContext;

const BASE = 'hyg-q';
const NAMES = [`${BASE}1`, `${BASE}2`];
const RACE = 'hyg-race';
const projectDir = mkdtempSync(join(tmpdir(), 'vd-quickstart-'));
const knownHosts = knownHostsFile(projectDir);

test.before(async () => {
  // A leftover of an earlier, killed run of this file (never anyone else's hosts).
  await down([...NAMES, RACE]);
});
test.after.always(async (t) => {
  t.timeout(5 * 60_000);
  await down([...NAMES, RACE]);
});

async function running(name: string) {
  const host = (await list()).find((h) => h.name === name && h.status === 'running');
  if (!host) throw new Error(`${name} is not running`);
  return host;
}

/** The public host keys the host's sshd presents, read on the host itself: `type base64` lines. */
async function actualKeys(name: string): Promise<string[]> {
  const host = await running(name);
  const res = await run('ssh', [
    ...SSH_OPTIONS,
    '-o',
    'ConnectTimeout=10',
    '-i',
    host.key,
    `root@${host.address}`,
    'cat /etc/ssh/ssh_host_*_key.pub',
  ]);
  if (res.code !== 0) throw new Error(`ssh ${name}: ${res.stderr}`);
  return res.stdout
    .trim()
    .split('\n')
    .map((line) => line.split(/\s+/).slice(0, 2).join(' '))
    .sort();
}

/** The keys the project's known_hosts has for an address: `type base64` lines. */
function recordedKeys(address: string): string[] {
  const text = existsSync(knownHosts) ? readFileSync(knownHosts, 'utf8') : '';
  return parseKnownHosts(text)
    .filter((e) => e.pattern === address)
    .map((e) => `${e.type} ${e.key}`)
    .sort();
}

function localInventoryHosts(): string[] {
  const doc = yaml.load(readFileSync(join(projectDir, 'inventories', 'local.yml'), 'utf8')) as {
    hosts: Record<string, unknown>;
  };
  return Object.keys(doc.hosts);
}

async function upAndCheckKeys(t: Context): Promise<Map<string, string>> {
  const res = await runCli(['testhost', 'up', BASE, '--count', '2'], { cwd: projectDir });
  t.is(res.code, 0, `${res.stdout}\n${res.stderr}`);
  const addresses = new Map<string, string>();
  for (const name of NAMES) {
    const { address } = await running(name);
    addresses.set(name, address);
    const actual = await actualKeys(name);
    t.true(actual.length >= 1, `${name} presents host keys`);
    t.deepEqual(recordedKeys(address), actual, `${name}: known_hosts holds exactly its actual keys`);
  }
  t.deepEqual(
    localInventoryHosts().filter((h) => NAMES.includes(h)),
    NAMES,
  );
  return addresses;
}

async function pingLocal(t: Context): Promise<void> {
  // local.yml lists every running host, other test files' too: ping only ours.
  const res = await runCli(['ping', 'local', '--limit', `${BASE}*`], {
    cwd: projectDir,
    timeoutMs: 120_000,
  });
  t.is(res.code, 0, `${res.stdout}\n${res.stderr}`);
  t.notRegex(`${res.stdout}${res.stderr}`, /changed|refusing/);
  for (const name of NAMES) t.regex(res.stdout, new RegExp(name));
}

async function downAndCheckKeys(t: Context, addresses: Map<string, string>) {
  const res = await runCli(['testhost', 'down', ...NAMES], { cwd: projectDir });
  t.is(res.code, 0, `${res.stdout}\n${res.stderr}`);
  t.regex(res.stdout, new RegExp(`stopped: ${NAMES.join(', ')}`));
  for (const [name, address] of addresses) {
    // Unless another file's host took the address in between (then it holds that host's keys).
    const now = (await list()).find((h) => h.address === address && h.status === 'running');
    if (!now) t.deepEqual(recordedKeys(address), [], `${name}: its keys left with it`);
  }
  t.false(
    localInventoryHosts().some((h) => NAMES.includes(h)),
    'local.yml no longer lists them',
  );
}

test.serial('the quick start twice: up, ping, down, up, ping, with host-key checking on', async (t) => {
  t.timeout(15 * 60_000);
  const first = await upAndCheckKeys(t);
  const firstKeys = new Map<string, string[]>();
  for (const [name, address] of first) firstKeys.set(name, recordedKeys(address));
  await pingLocal(t);
  await downAndCheckKeys(t, first);

  // The keys of the first machines are put back, as a project keeps them when the hosts were stopped
  // from another directory: the next `up` must replace them, not leave ping refusing a "changed" key.
  for (const [name, address] of first) {
    appendFileSync(
      knownHosts,
      firstKeys
        .get(name)
        ?.map((k) => `${address} ${k}\n`)
        .join('') ?? '',
    );
  }
  const second = await upAndCheckKeys(t);
  for (const [name, address] of second) {
    const keys = recordedKeys(address);
    for (const old of firstKeys.get(name) ?? []) t.false(keys.includes(old), `${name}: no stale key left`);
  }
  await pingLocal(t);
});

test.serial('a reused host gets its keys back over whatever stale lines its address has', async (t) => {
  t.timeout(10 * 60_000);
  for (const name of NAMES) {
    const { address } = await running(name);
    appendFileSync(knownHosts, `${address} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFORGEDFORGEDFORGED\n`);
  }
  const pidsBefore = (await list()).filter((h) => NAMES.includes(h.name)).map((h) => h.pid);
  const addresses = await upAndCheckKeys(t);
  const pidsAfter = (await list()).filter((h) => NAMES.includes(h.name)).map((h) => h.pid);
  t.deepEqual(pidsAfter, pidsBefore, 'the same machines, reused');
  t.false(readFileSync(knownHosts, 'utf8').includes('FORGED'));
  await pingLocal(t);
  await downAndCheckKeys(t, addresses);
});

test.serial('down of a host another process is booting waits for it, and both succeed', async (t) => {
  t.timeout(10 * 60_000);
  const l = layout(cacheDirFromEnv());
  const upRun = new Promise<{ code: number; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI_BIN, 'testhost', 'up', RACE], {
      cwd: projectDir,
      env: { ...process.env, CI: 'true' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
  // The marker: the host's state says `starting` (claimed, booting). Bounded wait, polled.
  const deadline = Date.now() + 120_000;
  let phase: string | undefined;
  while (Date.now() < deadline) {
    phase = (await readState(l, RACE))?.phase;
    if (phase) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.is(phase, 'starting', 'the down below hits the host while it boots');

  // In this process (no CLI start-up time), so it surely meets the host while it boots.
  const stopped = await down([RACE]);
  const booted = await upRun;
  t.is(booted.code, 0, booted.stderr);
  t.notRegex(booted.stderr, /ENOENT|internal error|stopped by another process/);
  t.deepEqual(stopped, [RACE], 'down stopped it once it had booted');
  t.false(
    (await list()).some((h) => h.name === RACE),
    'stopped once booted: nothing of it runs',
  );
  t.false(existsSync(hostPaths(l, RACE).dir), 'its directory is gone');
});
