/** Fills a SQLite history with many runs at once (one transaction), for the report's scale tests. */
import { HistoryStore } from '../../src/history/store.js';
import { sampleRun } from './history.js';

const STATUSES = ['ok', 'changed', 'failed', 'unreachable', 'interrupted'] as const;

/** `count` summary-only runs (no hosts rows: the list is what scales), then `detailed` full ones. */
export async function fillHistory(file: string, count: number, detailed = 1): Promise<void> {
  (await HistoryStore.open({ kind: 'sqlite', file })).close();
  const { default: wasm } = await import('node-sqlite3-wasm');
  const db = new wasm.Database(file);
  db.exec('BEGIN IMMEDIATE');
  const insert = db.prepare(
    `INSERT INTO runs (started_at, duration_ms, command, env, argv, user_name, machine, git_commit, git_dirty,
      status, exit_code, check_mode, error, verdandi_version, host_names, tasks_ok, tasks_changed, tasks_failed)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const t0 = Date.UTC(2026, 0, 1);
  for (let i = 0; i < count; i++) {
    insert.run([
      new Date(t0 + i * 60_000).toISOString(),
      1000 + (i % 5000),
      i % 7 === 0 ? 'deploy' : 'provision',
      i % 2 ? 'staging' : 'production',
      `verdandi provision ${i % 2 ? 'staging' : 'production'}`,
      'ci',
      'runner',
      'abcdef0123456789abcdef0123456789abcdef01',
      0,
      STATUSES[i % STATUSES.length],
      0,
      0,
      null,
      '0.1.0',
      `web${i % 10},web${(i + 1) % 10},db1`,
      40,
      i % 3,
      i % 5 === 2 ? 1 : 0,
    ]);
  }
  insert.finalize();
  db.exec('COMMIT');
  db.close();
  const store = await HistoryStore.open({ kind: 'sqlite', file });
  for (let i = 0; i < detailed; i++) await store.record(sampleRun({ startedAt: new Date().toISOString() }));
  await store.close();
}
