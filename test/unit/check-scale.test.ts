/**
 * `verdandi check` (inventory resolution, var layering, planning) is linear in hosts. Guarded in two
 * ways that hold on a loaded machine: what is shared between hosts is shared (no per-host copy of the
 * whole inventory), and the time of 8,000 hosts against 1,000 hosts (8× the hosts) stays far from the
 * 64× of a quadratic walk. The absolute figures are in bench/RESULTS.md (the check-scale block).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { PlanContext } from '../../src/engine/context.js';
import { ErrorCollector, planHosts, type Unit } from '../../src/engine/plan.js';
import { loadInventory } from '../../src/inventory/index.js';
import { copy } from '../../src/tasks/index.js';
import { runCli } from '../helpers/cli.js';

const cache = mkdtempSync(join(tmpdir(), 'vd-check-scale-cache-'));

const ROLE = [
  "import { copy, defineRole, z } from 'verdandi';",
  '',
  'export default defineRole({',
  "  name: 'one',",
  "  vars: z.object({ one_content: z.string().default('x') }),",
  "  tasks: (vars) => [copy({ path: '/etc/one', content: vars.one_content })],",
  '});',
  '',
].join('\n');

/** A project of `n` hosts in one group with one role of one copy task (the shape that was quadratic). */
function project(n: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'vd-check-scale-'));
  mkdirSync(join(dir, 'roles', 'one'), { recursive: true });
  mkdirSync(join(dir, 'inventories'));
  writeFileSync(join(dir, 'roles', 'one', 'index.ts'), ROLE);
  const names = Array.from({ length: n }, (_, i) => `h${i + 1}`);
  const lines = ['hosts:'];
  for (const [i, name] of names.entries()) lines.push(`  ${name}: { address: 10.9.${i >> 8}.${i & 255} }`);
  lines.push('groups:', '  fleet:', `    hosts: [${names.join(', ')}]`, '    roles: [one]', '');
  writeFileSync(join(dir, 'inventories', 'big.yml'), lines.join('\n'));
  return dir;
}

test('every host of a plan sees one shared, frozen view of the inventory (not a copy per host)', async (t) => {
  const dir = project(50);
  const inventory = await loadInventory('big', { cwd: dir });
  const hosts = [...inventory.hosts.values()];
  const ctx: PlanContext = {
    env: 'big',
    projectDir: dir,
    inventory,
    hosts,
    secrets: {},
    vars: new Map(hosts.map((h) => [h.name, h.vars])),
    sensitive: new Map(),
    extraVars: {},
  };
  const unit: Unit = {
    kind: 'role',
    name: 'u',
    label: 'role u',
    definedBy: 'role u',
    tags: [],
    gatherFacts: false,
    tasks: (info) => [copy({ path: '/etc/peers', content: String(info.inventory.hosts.length) })],
    handlers: () => ({}),
  };
  const errors = new ErrorCollector();
  const plans = await planHosts(
    ctx,
    hosts.map((host) => ({ host, units: [unit] })),
    errors,
    { facts: new Map() },
  );
  t.is(errors.errors.length, 0);
  t.is(plans.length, 50);
  const view = plans[0].info.inventory;
  t.is(view.hosts.length, 50);
  t.true(plans.every((p) => p.info.inventory === view));
  t.true(Object.isFrozen(view.hosts));
  t.deepEqual(view.hosts[7].groups, ['all', 'fleet']);
  // One host's role cannot change what the next host's role sees.
  t.throws(() => (view.hosts as unknown[]).push({}));
});

/**
 * The best of `runs` checks of the project through the built CLI (`npm run build` first): the check's
 * own `durationMs`, without Node's start-up and with the role already compiled.
 */
async function bestCheckMs(dir: string, hosts: number, runs: number): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < runs; i++) {
    const res = await runCli(['check', 'big', '--json'], {
      cwd: dir,
      env: { VERDANDI_TS_CACHE: cache },
      timeoutMs: 180_000,
    });
    const report = JSON.parse(res.stdout || '{}') as { ok?: boolean; tasks?: number; durationMs?: number };
    if (res.code !== 0 || !report.ok || report.tasks !== hosts || report.durationMs === undefined)
      throw new Error(
        `check of ${hosts} hosts: exit ${res.code}: ${(res.stdout + res.stderr).slice(0, 500)}`,
      );
    best = Math.min(best, report.durationMs);
  }
  return best;
}

test('check of 8,000 hosts costs about 8 times 1,000 hosts, not 64 times', async (t) => {
  const small = project(1000);
  const big = project(8000);
  await bestCheckMs(small, 1000, 1); // compiles the role, warms the JIT
  const smallMs = await bestCheckMs(small, 1000, 3);
  const bigMs = await bestCheckMs(big, 8000, 2);
  const ratio = bigMs / smallMs;
  t.log(
    `1,000 hosts: ${smallMs.toFixed(0)} ms; 8,000 hosts: ${bigMs.toFixed(0)} ms; ratio ${ratio.toFixed(1)}`,
  );
  // Linear is 8; quadratic 64. 24 leaves room for a loaded machine and the garbage collector.
  t.true(ratio < 24, `8× the hosts took ${ratio.toFixed(1)}× the time`);
});

test('a role that does not load is one error, not one per host', async (t) => {
  const dir = project(200);
  writeFileSync(
    join(dir, 'roles', 'one', 'index.ts'),
    "import { defineRole } from 'verdandi';\nexport default defineRole({ name: 'one', tasks: () => [ );\n",
  );
  const res = await runCli(['check', 'big'], { cwd: dir, env: { VERDANDI_TS_CACHE: cache } });
  t.is(res.code, 1, res.stderr);
  t.is(res.stderr.match(/Unexpected "\)"/g)?.length, 1, res.stderr);
  t.regex(res.stdout, /checked 200 hosts, .*: 1 error\n/);
});
