/**
 * The scale benchmark's own logic, without a host: the copies role is what the figures claim (N copy
 * tasks, every file's content different in a new round), and the report's targets and per-host
 * figures are computed as RESULTS.md explains them.
 */
import test from 'ava';
import type { CopiesResult } from '../../bench/copies.js';
import { renderResults } from '../../bench/report.js';
import copies, { copyContent, vars } from '../../bench/roles/copies/index.js';
import type { Results } from '../../bench/run.js';
import { perHost, type SimFigure, type SimResult } from '../../bench/simulated.js';
import type { Task } from '../../src/engine/types.js';
import { hostInfo } from '../fixtures/roles/host-info.js';

test('the copies role is copies_count copy tasks, one file each', async (t) => {
  const list = await copies.tasks(vars.parse({ copies_count: 300, copies_round: 'r1' }), hostInfo('bench-1'));
  const tasks = list.flat().filter((task): task is Task => !!task);
  t.is(tasks.length, 300);
  t.true(tasks.every((task) => task.type === 'copy'));
  t.is(new Set(tasks.map((task) => task.name)).size, 300);
  t.is(tasks[299].name, 'copy /srv/bench-copies/file-300.conf');
});

test("a new round changes every file's content; the same round changes none", (t) => {
  for (let i = 1; i <= 1000; i++) {
    t.not(copyContent(i, 1000, 'r1'), copyContent(i, 1000, 'r2'));
    t.is(copyContent(i, 1000, 'r2'), copyContent(i, 1000, 'r2'));
  }
  const size = Buffer.byteLength(copyContent(1000, 1000, 'r12'));
  t.true(size > 900 && size < 1200, `about 1 KiB, got ${size}`);
});

test('a numeric round given as --var copies_round=3 is accepted', (t) => {
  t.is(vars.parse({ copies_round: 3 }).copies_round, '3');
});

test('per host: above the 1-host run, over the other hosts', (t) => {
  t.is(perHost([10_400, 10_600, 10_500], [400, 500, 600], 1001), 10);
  t.true(Number.isNaN(perHost([400], [400], 1)));
});

function simFigure(hosts: number, cpuMs: number, maxRssKb: number, reached = hosts): SimFigure {
  return {
    hosts,
    forks: 100,
    runs: [1000],
    cpu: [cpuMs],
    maxRssKb: [maxRssKb],
    reached: [reached],
    codes: [reached === hosts ? 0 : 3],
    roundTrips: 1,
    perBackend: [0, 1, 2, 3].map((i) => Math.floor(hosts / 4) + (i < hosts % 4 ? 1 : 0)),
    notes: [],
  };
}

/** A size's figures: its converge run (CPU per host `convergeMs` above 600 ms) and no-change runs. */
function withConverge(f: SimFigure, convergeMs: number, reached = f.hosts): SimFigure {
  const converge = simFigure(f.hosts, 600 + (f.hosts - 1) * convergeMs, 80_000, reached);
  converge.roundTrips = 2;
  return { ...f, converge };
}

function results(copiesResult: CopiesResult, simulated: SimResult): Results {
  return {
    command: 'npm run bench -- --scenarios copies,many-hosts --label scale',
    startedAt: '2026-01-01T00:00:00.000Z',
    machine: {
      nproc: '2',
      cpu: 'test',
      memory: '1 GiB',
      kernel: 'k',
      node: 'v20',
      ansible: 'a',
      openssh: 'o',
    },
    help: { medianMs: 80, runs: 30 },
    figures: [],
    copies: copiesResult,
    simulated,
    loadBefore: 0,
    loadAfter: 0,
    totalSeconds: 600,
    notes: [],
  };
}

const copiesResult = (first: number, allChanged: number, bigNoChange: number): CopiesResult => ({
  host: 'bench-1',
  notes: [],
  figures: [
    { kind: 'first', tasks: 300, runs: [first], inner: [], cpu: [], roundTrips: 301, notes: [] },
    { kind: 'all-changed', tasks: 300, runs: [allChanged], inner: [], cpu: [], roundTrips: 301, notes: [] },
    { kind: 'no-change', tasks: 300, runs: [600], inner: [], cpu: [], roundTrips: 1, notes: [] },
    { kind: 'no-change', tasks: 1000, runs: [bigNoChange], inner: [], cpu: [], roundTrips: 1, notes: [] },
  ],
});

test('the targets of the scale run: met and missed ones', (t) => {
  const sim: SimResult = {
    backends: ['bench-1', 'bench-2', 'bench-3', 'bench-4'],
    forks: 100,
    baseline: withConverge(simFigure(1, 400, 70_000), 0),
    // 200 hosts: 2 ms CPU and 0.5 MiB per host; 1,000 hosts: 12 ms and 2 MiB, one host unreachable.
    // Converge: 5 ms per host at 200, 9 ms at 1,000, every host reached.
    figures: [
      withConverge(simFigure(200, 400 + 199 * 2, 70_000 + 199 * 512), 5),
      withConverge(simFigure(1000, 400 + 999 * 12, 70_000 + 999 * 2048, 999), 9),
    ],
    knownHostsLines: 1000,
    notes: [],
  };
  const text = renderResults(results(copiesResult(10_000, 12_000, 1500), sim), 'scale');
  t.true(text.includes('| 300 copy tasks: all-changed run ≤ 1.5× the first run | 1.20× | yes |'));
  t.true(text.includes('| 1000 copy tasks, no-change: one round trip | 1 | yes |'));
  t.true(text.includes('| 1000 copy tasks, no-change: < 2 s (the whole command) | 1.50 s | yes |'));
  t.true(
    text.includes(
      '| 200 simulated hosts, --forks 100, no-change: all reached (every run) | 200 / 200 | yes |',
    ),
  );
  t.true(
    text.includes(
      '| 1000 simulated hosts, --forks 100, no-change: all reached (every run) | 999 / 1000 | **no** |',
    ),
  );
  t.true(
    text.includes(
      '| 1000 simulated hosts, --forks 100, converge: all reached (every run) | 1000 / 1000 | yes |',
    ),
  );
  // CPU per host at the biggest size against the smallest, each kind above its own 1-host run.
  t.true(text.includes('| converge: CPU per host at 1000 simulated hosts ≤ 2× that at 200 | 1.80× | yes |'));
  t.true(
    text.includes(
      '| no-change: CPU per host at 1000 simulated hosts ≤ 2× that at 200 | 6.00× (not every host reached: not comparable) | **no** |',
    ),
  );
  t.true(text.includes('| converge | 5.0 | 9.0 | 1.80× |'));
  t.true(text.includes('| no-change | 2.0 | 12.0 | 6.00× |'));
  t.true(
    text.includes('| 1000 | converge | 250 + 250 + 250 + 250 | 1 | 1000 / 1000 | 1.00 | 9.59 | 78 | 9.0 |'),
  );
  t.true(text.includes('| 1000 simulated hosts: controller CPU ≤ 10 ms per host | 12.0 ms | **no** |'));
  t.true(text.includes('| 1000 simulated hosts: controller memory ≤ 1 MB per host | 2.10 MB | **no** |'));
  t.true(
    text.includes(
      '| 200 | no-change | 50 + 50 + 50 + 50 | 1 | 200 / 200 | 1.00 | 0.80 | 168 | 2.0 | 0.52 | 1 |',
    ),
  );
  t.false(text.includes('Ansible / Verdandi ≥ 10'), 'no comparison target without a comparison run');
});

test('a copies run that could not converge says so instead of a ratio', (t) => {
  const failed = copiesResult(10_000, 12_000, 1500);
  for (const f of failed.figures.slice(1)) f.runs = [];
  failed.figures[0].runs = [];
  failed.figures[0].notes.push('run 1: exit 2, failed=1: Argument list too long');
  const sim: SimResult = {
    backends: [],
    forks: 100,
    baseline: simFigure(1, 1, 1),
    figures: [],
    knownHostsLines: 0,
    notes: [],
  };
  const text = renderResults(results(failed, sim), 'scale');
  t.true(
    text.includes(
      '| 300 copy tasks: all-changed run ≤ 1.5× the first run | not measured (see the notes) | **no** |',
    ),
  );
  t.true(text.includes('- first, 300 tasks: run 1: exit 2, failed=1: Argument list too long'));
});
