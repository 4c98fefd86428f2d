/**
 * `verdandi check` resolves how every host is reached, without contacting any: an unknown jump host, a
 * cycle, a chain deeper than MAX_JUMP_HOPS and a ProxyJump of the ssh config naming nothing known are
 * errors naming the host and the line the jump was written on (inventory or ssh config); all are
 * reported at once, each once. A `Match exec` of the ssh config is a note.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { checkEnv } from '../../src/commands/check.js';
import { MAX_JUMP_HOPS } from '../../src/connection/route.js';
import { runCli } from '../helpers/cli.js';

// The user's own ~/.ssh/config must not change what is checked: an empty home of its own.
const home = mkdtempSync(join(tmpdir(), 'vd-check-jumps-home-'));
process.env.HOME = home;
const dirs: string[] = [home];
test.after.always(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function project(inventory: string[], sshConfig?: string[]): { dir: string; config?: string } {
  const dir = mkdtempSync(join(tmpdir(), 'vd-check-jumps-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'inventories'));
  writeFileSync(join(dir, 'inventories', 'prod.yml'), `${inventory.join('\n')}\n`);
  if (!sshConfig) return { dir };
  const config = join(dir, 'ssh_config');
  writeFileSync(config, `${sshConfig.join('\n')}\n`);
  return { dir, config };
}

/** h0 … hN, each behind the one before. */
function chainOf(n: number): string[] {
  return Array.from({ length: n + 1 }, (_, i) =>
    i === 0 ? '  h0: { address: 10.0.4.0 }' : `  h${i}: { address: 10.0.4.${i}, jump: h${i - 1} }`,
  );
}

test('every jump error at once, each naming the host and the line its jump was written on', async (t) => {
  const { dir, config } = project(
    [
      'hosts:',
      '  bastion: { address: 203.0.113.10 }',
      '  web1: { address: 10.0.1.11, jump: bastoin }',
      '  a: { address: 10.0.2.1, jump: b }',
      '  b: { address: 10.0.2.2, jump: a }',
      '  behind: { address: 10.0.3.1 }',
      ...chainOf(MAX_JUMP_HOPS + 1),
      'groups:',
      '  web:',
      '    hosts: [web1]',
    ],
    ['Host gateway', '  HostName 203.0.113.20', 'Host 10.0.3.*', '  ProxyJump gatway'],
  );
  const report = await checkEnv('prod', [], { sshConfig: config }, dir);
  t.false(report.ok);
  const messages = report.errors.map((e) => e.message);
  t.is(messages.length, 4, messages.join('\n'));
  t.true(
    messages.some((m) =>
      /^inventories\/prod\.yml:3:\d+: jump host "bastoin" of web1: not an inventory host \(did you mean "bastion"\?\)/.test(
        m,
      ),
    ),
    messages.join('\n'),
  );
  // The cycle is found from a (the first of its hosts), at the jump closing it (b's), once.
  t.true(
    messages.some((m) => /^inventories\/prod\.yml:5:\d+: jump hosts form a cycle: a → b → a$/.test(m)),
    messages.join('\n'),
  );
  t.true(
    messages.includes(
      `${config}:4: jump host "gatway" of behind: not an inventory host (did you mean "gateway"?), nor a Host of the ssh config, nor a name of /etc/hosts; write user@host:port for a machine outside the inventory`,
    ),
    messages.join('\n'),
  );
  const last = MAX_JUMP_HOPS + 1;
  const deep = messages.find((m) => m.includes('jump hosts ('));
  t.regex(
    deep ?? '',
    new RegExp(
      `^inventories/prod\\.yml:${7 + last}:\\d+: h${last} is behind ${last} jump hosts \\(h0 → h1 → .* → h${last}\\), more than ${MAX_JUMP_HOPS}$`,
    ),
  );
});

test('a chain of MAX_JUMP_HOPS hops, a known ProxyJump alias and a Match exec: ok, the exec a note', async (t) => {
  const { dir, config } = project(
    ['hosts:', '  behind: { address: 10.0.3.1 }', ...chainOf(MAX_JUMP_HOPS)],
    [
      'Match exec "false"',
      '  User never',
      'Host gateway',
      '  HostName 203.0.113.20',
      'Host 10.0.3.*',
      '  ProxyJump gateway, localhost',
    ],
  );
  const report = await checkEnv('prod', [], { sshConfig: config }, dir);
  t.deepEqual(report.errors, []);
  t.true(report.ok);
  t.deepEqual(report.notes, [
    `${config}:1: Match exec is not evaluated (Verdandi does not run local commands from the ssh config): the block under it is skipped`,
  ]);
});

test('--limit: only the selected hosts are checked; --ssh-config through the CLI, exit 1', async (t) => {
  const { dir, config } = project(
    ['hosts:', '  ok1: { address: 10.0.0.1 }', '  bad: { address: 10.0.3.1 }'],
    ['Host 10.0.3.*', '  ProxyJump nowhere'],
  );
  t.true((await checkEnv('prod', [], { sshConfig: config, limit: 'ok1' }, dir)).ok);
  const res = await runCli(['check', 'prod', '--ssh-config', config!], { cwd: dir, timeoutMs: 120_000 });
  t.is(res.code, 1, res.stdout + res.stderr);
  t.regex(res.stderr, new RegExp(`error: ${config}:2: jump host "nowhere" of bad: not an inventory host`));
  t.notRegex(res.stderr, /\n +at /);
});

test('a ProxyJump name a Host pattern with wildcards matches is known; one only Host * matches is not', async (t) => {
  const { dir, config } = project(
    ['hosts:', '  web1: { address: 10.0.3.1 }', '  web2: { address: 10.0.5.1 }'],
    [
      'Host 10.0.3.*',
      '  ProxyJump gate-1',
      'Host 10.0.5.*',
      '  ProxyJump gw',
      'Host gate-*',
      '  User jumper',
      'Host *',
      '  User ops',
    ],
  );
  const report = await checkEnv('prod', [], { sshConfig: config }, dir);
  t.deepEqual(
    report.errors.map((e) => e.message),
    [
      `${config}:4: jump host "gw" of web2: not an inventory host, nor a Host of the ssh config, nor a name of /etc/hosts; write user@host:port for a machine outside the inventory`,
    ],
  );
});
