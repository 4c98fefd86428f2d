// Where the time of one `verdandi run <inventory> bench/work.ts` goes, phase by phase, in one process
// (plain JavaScript on the built engine, so that nothing but the engine registers TypeScript hooks):
//
//   npm run build && node bench/profile.mjs <inventory> [--preload] [--repeat N]
//
// --preload imports the public API (dist/src/index.js) before the playbook, to show what loading the
// engine's own modules through the TypeScript hooks costs. Prints one line per phase, in milliseconds.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { preload: { type: 'boolean', default: false }, repeat: { type: 'string', default: '1' } },
});
const inventory = positionals[0];
if (!inventory) {
  process.stderr.write('usage: node bench/profile.mjs <inventory> [--preload] [--repeat N]\n');
  process.exit(1);
}
const playbook = new URL('./work.ts', import.meta.url).pathname;
const marks = [['node started', performance.now()]];
const mark = (name) => marks.push([name, performance.now()]);

const { loadRunContext } = await import('../dist/src/engine/context.js');
const { ConnectionPool } = await import('../dist/src/engine/connection-pool.js');
const { hostInfo } = await import('../dist/src/engine/plan.js');
const { Reporter } = await import('../dist/src/engine/report.js');
const { runTasks } = await import('../dist/src/engine/run.js');
mark('engine imported');
if (values.preload) {
  await import('../dist/src/index.js');
  mark('public API imported (before hooks)');
}
const { loadPlaybook } = await import('../dist/src/engine/loader.js');
const pb = await loadPlaybook(playbook);
mark('playbook loaded (tsx + hooks)');
const ctx = await loadRunContext(inventory, { hostKeyChecking: 'off', var: ['bench_message=hello'] });
mark('inventory loaded');
const host = ctx.hosts[0];
const pool = new ConnectionPool(ctx.connectOptions);
for (let i = 0; i < Number(values.repeat); i++) {
  const conn = await pool.acquire(host);
  if (i === 0) mark('ssh connected');
  const info = hostInfo(ctx, host);
  const play = pb.plays[0];
  const tasks = await play.tasks(info);
  const handlers = Object.fromEntries(
    Object.entries(play.handlers ?? {}).map(([n, fn]) => [n, () => fn(info)]),
  );
  const reporter = new Reporter({ json: true, verbose: false, check: false });
  const res = await runTasks(conn, info, tasks, {
    check: false,
    diff: false,
    reporter,
    unit: 'bench',
    handlers,
  });
  mark(`tasks run #${i + 1} (ok ${res.ok}, changed ${res.changed}, round trips ${conn.roundTrips})`);
}
await pool.closeAll();
mark('closed');

let previous = 0;
for (const [name, at] of marks) {
  process.stdout.write(
    `${at.toFixed(0).padStart(6)} ms  +${(at - previous).toFixed(0).padStart(5)}  ${name}\n`,
  );
  previous = at;
}
