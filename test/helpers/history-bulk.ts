/**
 * Fills a SQLite history with many runs at once (one transaction), for the report's scale tests and
 * the history benchmark (bench/history-scale.ts).
 */
import { HistoryStore } from '../../src/history/store.js';
import { sampleRun } from './history.js';

const STATUSES = ['ok', 'changed', 'failed', 'unreachable', 'interrupted'] as const;

/**
 * `count` runs, then `detailed` full ones (sampleRun). The `count` runs are summaries only unless
 * `shape` gives each of them hosts (web0.., db1 last) with tasks, as a real history has.
 */
export async function fillHistory(
  file: string,
  count: number,
  detailed = 1,
  shape: { hosts: number; tasks: number } = { hosts: 0, tasks: 0 },
): Promise<void> {
  (await HistoryStore.open({ kind: 'sqlite', file })).close();
  const { default: wasm } = await import('node-sqlite3-wasm');
  const db = new wasm.Database(file);
  db.exec('BEGIN IMMEDIATE');
  const insert = db.prepare(
    `INSERT INTO runs (started_at, duration_ms, command, env, argv, user_name, machine, git_commit, git_dirty,
      status, exit_code, check_mode, error, verdandi_version, host_names, tasks_ok, tasks_changed, tasks_failed)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertHost = db.prepare(
    `INSERT INTO run_hosts (run_id, host, status, ok, changed, failed, skipped, round_trips, started_ms,
      duration_ms, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertTask = db.prepare(
    `INSERT INTO run_tasks (run_id, host, seq, label, status, detail, started_ms, duration_ms, round_trips, diff,
      failure) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
    // Its hosts and tasks after the run (their rows reference it).
    for (let h = 0; h < shape.hosts; h++) {
      const host = h === shape.hosts - 1 ? 'db1' : `web${(i + h) % 10}`;
      insertHost.run([i + 1, host, 'ok', shape.tasks, 0, 0, 0, 3, h * 10, 900, null]);
      for (let k = 0; k < shape.tasks; k++) {
        const changed = k === i % shape.tasks;
        insertTask.run([
          i + 1,
          host,
          k,
          `role${k % 5} › copy /etc/app/file-${k}.conf`,
          changed ? 'changed' : 'ok',
          changed ? 'content differs' : null,
          h * 10 + k * 40,
          40,
          k % 5 === 0 ? 1 : 0,
          changed
            ? `--- /etc/app/file-${k}.conf\n+++ /etc/app/file-${k}.conf\n@@ -1 +1 @@\n-a=${i}\n+a=${i + 1}\n`
            : null,
          null,
        ]);
      }
    }
  }
  insert.finalize();
  insertHost.finalize();
  insertTask.finalize();
  db.exec('COMMIT');
  db.close();
  const store = await HistoryStore.open({ kind: 'sqlite', file });
  for (let i = 0; i < detailed; i++) await store.record(sampleRun({ startedAt: new Date().toISOString() }));
  await store.close();
}
