/**
 * What recording a run in the history costs a no-change run: the same playbook (one file already in
 * place, local connection, so only Verdandi itself is measured) run with the history and with
 * VERDANDI_HISTORY_URL=off, alternating, and the medians of the wall-clock times of the whole command.
 *
 *   npm run build && node --import tsx bench/history-overhead.ts [runs per mode, default 10]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../bin/verdandi.js', import.meta.url));
const runs = Number(process.argv[2] ?? 10);
const project = mkdtempSync(join(tmpdir(), 'vd-history-bench-'));
mkdirSync(join(project, 'inventories'));
writeFileSync(join(project, 'inventories', 'bench.yml'), 'hosts:\n  here: { connection: local }\n');
writeFileSync(
  join(project, 'site.ts'),
  `import { copy, definePlaybook } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [
  copy({ path: ${JSON.stringify(join(project, 'same.txt'))}, content: 'same\\n' }),
] }] });
`,
);

function once(history: boolean): number {
  const started = performance.now();
  const res = spawnSync(process.execPath, [CLI, 'run', 'bench', 'site.ts'], {
    cwd: project,
    env: { ...process.env, CI: 'true', ...(history ? {} : { VERDANDI_HISTORY_URL: 'off' }) },
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`run failed (${res.status}): ${res.stderr}`);
  return performance.now() - started;
}

const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const loadBefore = load();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
once(true); // converge, compile the playbook
const times = { on: [] as number[], off: [] as number[] };
for (let i = 0; i < runs; i++) {
  times.on.push(once(true));
  times.off.push(once(false));
}
const on = median(times.on);
const off = median(times.off);
process.stdout.write(
  `no-change run, ${runs} runs each, medians: with history ${on.toFixed(0)} ms, without ${off.toFixed(0)} ms, ` +
    `difference ${(on - off).toFixed(0)} ms\n` +
    `  with:    ${times.on.map((x) => x.toFixed(0)).join(', ')}\n` +
    `  without: ${times.off.map((x) => x.toFixed(0)).join(', ')}\n` +
    `load average (1, 5, 15 min) before: ${loadBefore}, after: ${load()}\n`,
);
