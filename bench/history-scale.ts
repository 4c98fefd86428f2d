/**
 * The run history with 10,000 recorded runs, each with 3 hosts of 20 tasks (600,000 task rows, a diff
 * on one task per host): the wall-clock time of `verdandi history` (the default list, and filtered by
 * host and status), `verdandi history show`, and `verdandi report` (the whole command: Node start-up,
 * opening the store, reading, writing the page), medians; the sizes of the SQLite file and the page.
 *
 *   npm run build && node --import tsx bench/history-scale.ts [runs, default 10000] [repeats, default 5]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fillHistory } from '../test/helpers/history-bulk.js';

const CLI = fileURLToPath(new URL('../bin/verdandi.js', import.meta.url));
const count = Number(process.argv[2] ?? 10_000);
const repeats = Number(process.argv[3] ?? 5);
const project = mkdtempSync(join(tmpdir(), 'vd-history-scale-'));
const file = join(project, '.verdandi', 'history.sqlite');

const loadBefore = loadavg();
const started = performance.now();
await fillHistory(file, count, 1, { hosts: 3, tasks: 20 });
const fillMs = performance.now() - started;

function timed(args: string[]): number {
  const t0 = performance.now();
  const res = spawnSync(process.execPath, [CLI, ...args], {
    cwd: project,
    env: { ...process.env, CI: 'true' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.status !== 0) throw new Error(`verdandi ${args.join(' ')} failed (${res.status}): ${res.stderr}`);
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cases: Array<[string, string[]]> = [
  ['history (last 20)', ['history']],
  ['history --host web3 --status failed', ['history', '--host', 'web3', '--status', 'failed']],
  ['history --last 10000 --json', ['history', '--last', '10000', '--json']],
  ['history show <id> (60 tasks)', ['history', 'show', String(Math.floor(count / 2))]],
  ['report (300 runs in detail)', ['report']],
  ['--version (Node start-up alone)', ['--version']],
];
const results: string[] = [];
for (const [name, args] of cases) {
  timed(args); // warm the file cache
  const times = Array.from({ length: repeats }, () => timed(args));
  results.push(
    `${name.padEnd(38)} median ${median(times).toFixed(0).padStart(5)} ms  (${times.map((x) => x.toFixed(0)).join(', ')})`,
  );
}
process.stdout.write(
  [
    `${count} runs + 1 (3 hosts × 20 tasks each) filled in ${(fillMs / 1000).toFixed(1)} s; ` +
      `SQLite file ${(statSync(file).size / 1e6).toFixed(0)} MB; ` +
      `report ${(statSync(join(project, '.verdandi', 'report.html')).size / 1e6).toFixed(1)} MB`,
    ...results,
    `load average (1, 5, 15 min) before: ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
    '',
  ].join('\n'),
);
