/**
 * A process that records runs into a history, for the concurrent-writers tests (started by
 * `recordConcurrently` in history.ts): `node --import tsx history-writer.ts <sqlite file | postgres url>
 * <count> <tag>`. Once loaded it prints `ready` and waits for the file named by $GO (when set), so that
 * the writers start together.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { HistoryStore } from '../../src/history/store.js';
import { sampleRun } from './history.js';

const [where, count, tag] = process.argv.slice(2);
const location = where.startsWith('postgres')
  ? { kind: 'postgres' as const, url: where }
  : { kind: 'sqlite' as const, file: where };
if (process.env.GO) {
  process.stdout.write('ready\n');
  while (!existsSync(process.env.GO)) await sleep(5);
}
for (let i = 0; i < Number(count); i++) {
  // One store per run, as every verdandi command opens its own.
  const store = await HistoryStore.open(location);
  await store.record(sampleRun({ argv: `verdandi provision staging # ${tag} ${i}` }));
  await store.close();
}
process.stdout.write('done\n');
