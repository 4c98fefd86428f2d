/**
 * The run history's SQLite store: a run round-trips whole, lists filter and sort, the schema migrates
 * once and refuses a newer one, secrets never reach the file, two processes recording at the same
 * time both land, a stale lock of a killed writer is cleared, and a broken store is only a warning.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Recorder } from '../../src/history/recorder.js';
import { LATEST_VERSION, MIGRATIONS, SQLITE } from '../../src/history/schema.js';
import { importSpool, spoolTrouble } from '../../src/history/spool.js';
import { HistoryStore, historyLocation } from '../../src/history/store.js';
import { clearSecrets, registerSecret } from '../../src/util/redact.js';
import { recordConcurrently, sampleRun } from '../helpers/history.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'vd-history-'));
const sqlite = (file: string) => ({ kind: 'sqlite' as const, file });

test('a run round-trips whole: run, hosts, tasks, diffs, failures', async (t) => {
  const store = await HistoryStore.open(sqlite(join(tmp(), 'h.sqlite')));
  const run = sampleRun();
  const id = await store.record(run);
  const back = await store.get(id);
  t.deepEqual(back, { ...run, id });
  t.is(await store.get(id + 1), undefined);
  await store.close();
});

test('lists are newest first and filter by env, host, status and command', async (t) => {
  const store = await HistoryStore.open(sqlite(join(tmp(), 'h.sqlite')));
  const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
  const a = await store.record(sampleRun({ startedAt: at(1), env: 'staging' }));
  const b = await store.record(
    sampleRun({
      startedAt: at(2),
      env: 'production',
      command: 'deploy',
      status: 'ok',
      exitCode: 0,
      hosts: [],
    }),
  );
  const c = await store.record(
    sampleRun({ startedAt: at(3), env: 'staging', status: 'changed', exitCode: 0 }),
  );
  const ids = async (f = {}) => (await store.list(f)).map((r) => r.id);
  t.deepEqual(await ids(), [c, b, a]);
  t.deepEqual(await ids({ env: 'staging' }), [c, a]);
  t.deepEqual(await ids({ host: 'web1' }), [c, a]);
  t.deepEqual(await ids({ status: 'ok' }), [b]);
  t.deepEqual(await ids({ command: 'deploy' }), [b]);
  t.deepEqual(await ids({ last: 1 }), [c]);
  const [first] = await store.list({ last: 1 });
  t.deepEqual([first.hostNames, first.ok, first.changed, first.failed], [['web1', 'db1'], 1, 1, 1]);
  await store.close();
});

test('the schema is migrated once, versioned, and a newer one is refused', async (t) => {
  const file = join(tmp(), 'h.sqlite');
  const store = await HistoryStore.open(sqlite(file));
  t.is(await store.version(), LATEST_VERSION);
  await store.record(sampleRun());
  await store.close();
  // Opening again applies nothing twice (a second CREATE TABLE would throw) and keeps the runs.
  const again = await HistoryStore.open(sqlite(file));
  t.is((await again.list()).length, 1);
  await again.close();
  // A store a newer Verdandi migrated: refused, not damaged.
  const { default: wasm } = await import('node-sqlite3-wasm');
  const db = new wasm.Database(file);
  db.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [LATEST_VERSION + 1, 'later']);
  db.close();
  const err = await t.throwsAsync(() => HistoryStore.open(sqlite(file)));
  t.regex(err.message, new RegExp(`schema version ${LATEST_VERSION + 1}, newer than this Verdandi knows`));
});

test('the location: .verdandi/history.sqlite, VERDANDI_HISTORY_URL, verdandi.yml, off', (t) => {
  const dir = tmp();
  t.deepEqual(historyLocation(dir, {}), sqlite(join(dir, '.verdandi', 'history.sqlite')));
  t.deepEqual(historyLocation(dir, { VERDANDI_HISTORY_URL: 'off' }), { kind: 'off' });
  writeFileSync(join(dir, 'verdandi.yml'), 'history:\n  url: postgres://hist@db.example/verdandi\n');
  t.deepEqual(historyLocation(dir, {}), { kind: 'postgres', url: 'postgres://hist@db.example/verdandi' });
  t.deepEqual(historyLocation(dir, { VERDANDI_HISTORY_URL: 'sqlite:runs.db' }), sqlite(join(dir, 'runs.db')));
  const err = t.throws(() => historyLocation(dir, { VERDANDI_HISTORY_URL: 'mysql://u:pw@x/db' }));
  t.regex(err.message, /history url must be postgres:\/\/\.\.\., sqlite:<file> or off/);
  t.false(err.message.includes('pw'));
});

test('secrets never reach the file: the recorder redacts labels, details, diffs, failures and the command line', async (t) => {
  const SECRET = 'hunter2-Sup3r-S3cret';
  const KEY_LINE = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC';
  registerSecret(SECRET);
  registerSecret(`-----BEGIN PRIVATE KEY-----\n${KEY_LINE}\n-----END PRIVATE KEY-----`);
  t.teardown(clearSecrets);
  const dir = tmp();
  const file = join(dir, 'h.sqlite');
  const rec = new Recorder({
    command: 'run',
    env: 'staging',
    args: ['run', 'staging', 'site.ts', '--var', `token=${SECRET}`],
    projectDir: dir,
    verdandiVersion: 'test',
  });
  // Straight into the recorder (not through an emitter, which redacts too): it redacts on its own.
  rec.handle({ type: 'host-connected', host: 'web1', at: 0 });
  rec.handle({
    type: 'diff',
    host: 'web1',
    text: `--- /etc/app.env\n+++ /etc/app.env\n+TOKEN=${SECRET}\n+${KEY_LINE}\n`,
    at: 1,
  });
  rec.handle({
    type: 'task',
    host: 'web1',
    label: `play › template /etc/app.env`,
    status: 'changed',
    detail: `was ${SECRET}`,
    roundTrips: 1,
    at: 2,
  });
  rec.handle({
    type: 'task',
    host: 'web1',
    label: `play › shell curl -H 'X: ${SECRET}'`,
    status: 'failed',
    detail: 'step failed',
    failure: `command: curl -H 'X: ${SECRET}'\nexit code: 22\nstderr:\nbad token ${SECRET}`,
    roundTrips: 1,
    at: 3,
  });
  rec.handle({ type: 'run-ended', exitCode: 2, durationMs: 4, check: false, roundTrips: { web1: 2 }, at: 4 });
  const spooled = await rec.finish({ exitCode: 2, error: { message: `boom ${SECRET}`, internal: false } });
  t.truthy(spooled);
  t.false(readFileSync(spooled as string).includes(SECRET), 'the secret is not in the spooled run');
  t.is(await importSpool(dir, sqlite(file)), 1);
  t.false(existsSync(spooled as string), 'the imported run left the spool');
  const bytes = readFileSync(file);
  t.false(bytes.includes(SECRET), 'the secret is not in the SQLite file');
  t.false(bytes.includes(KEY_LINE), 'no line of the key is in the SQLite file');
  const store = await HistoryStore.open(sqlite(file));
  const run = await store.get(1);
  await store.close();
  t.truthy(run);
  t.regex(run?.argv ?? '', /token=\[secret\]/);
  const [diffTask, failedTask] = run?.hosts[0].tasks ?? [];
  t.regex(diffTask.diff ?? '', /\+TOKEN=\[secret\]/);
  t.is(diffTask.detail, 'was [secret]');
  t.regex(failedTask.failure ?? '', /bad token \[secret\]/);
  t.is(run?.status, 'failed');
  t.is(run?.hosts[0].roundTrips, 2);
});

test('a run whose exit code says Ctrl-C is recorded as interrupted, an internal error as crashed', async (t) => {
  const dir = tmp();
  const file = join(dir, 'h.sqlite');
  const start = {
    command: 'provision',
    env: 'x',
    args: [],
    projectDir: dir,
    verdandiVersion: 't',
  };
  const stopped = new Recorder(start);
  stopped.handle({ type: 'task', host: 'web1', label: 'a › b', status: 'ok', roundTrips: 0, at: 0 });
  stopped.handle({ type: 'host-interrupted', host: 'web1', detail: 'stopped before nginx', at: 1 });
  const crashed = new Recorder(start);
  await stopped.finish({ exitCode: 130 });
  await crashed.finish({ exitCode: 1, error: { message: 'x is not a function', internal: true } });
  t.is(await importSpool(dir, sqlite(file)), 2);
  const store = await HistoryStore.open(sqlite(file));
  const [b, a] = await store.list();
  t.deepEqual([a.status, b.status], ['interrupted', 'crashed']);
  const [stoppedRun] = await store.getMany([a.id]);
  await store.close();
  t.deepEqual(
    [stoppedRun.hosts[0].status, stoppedRun.hosts[0].detail],
    ['interrupted', 'stopped before nginx'],
  );
  t.is(b.error, 'x is not a function');
});

test('a broken store keeps the runs in the spool and warns at the end of the next run', async (t) => {
  const dir = tmp();
  // The history file's place is taken by a directory: it cannot be opened.
  const file = join(dir, 'h.sqlite');
  mkdirSync(file);
  const start = { command: 'provision', env: 'x', args: [], projectDir: dir, verdandiVersion: 't' };
  const stderr = captureStderr();
  await new Recorder(start).finish({ exitCode: 0 });
  t.deepEqual(stderr.lines, [], 'nothing is known to be wrong yet');
  const err = await t.throwsAsync(() => importSpool(dir, sqlite(file)));
  t.truthy(err.message);
  await new Recorder(start).finish({ exitCode: 2 });
  stderr.restore();
  t.is(stderr.lines.length, 1);
  t.regex(
    stderr.lines[0],
    /^warning: the run history cannot be written \(.+\); 1 run\(s\) wait in \.verdandi\/history-spool and are written once it works/,
  );
  // Once the store works, both runs land and the warning is gone.
  rmSync(file, { recursive: true });
  t.is(await importSpool(dir, sqlite(file)), 2);
  t.is(spoolTrouble(dir), undefined);
});

function captureStderr() {
  const lines: string[] = [];
  const original = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  return { lines, restore: () => (process.stderr.write = original) };
}

test('two processes recording at the same time both land, every run of each', async (t) => {
  t.timeout(5 * 60_000);
  const dir = tmp();
  const file = join(dir, 'h.sqlite');
  // Both start on a store that does not exist yet: they also race to create and migrate it.
  for (const r of await recordConcurrently(file, 15, ['A', 'B'])) t.is(r.code, 0, r.out);
  const store = await HistoryStore.open(sqlite(file));
  const runs = await store.list();
  await store.close();
  t.is(runs.length, 30);
  for (const tag of ['A', 'B']) {
    const mine = runs.filter((r) => r.argv.includes(`# ${tag} `)).map((r) => r.argv);
    t.is(new Set(mine).size, 15, `every run of writer ${tag} is there`);
  }
});

test('a lock left by a killed writer is cleared once it is stale', async (t) => {
  const file = join(tmp(), 'h.sqlite');
  const store = await HistoryStore.open(sqlite(file));
  await store.close();
  // What the SQLite file layer leaves when its process dies holding the lock: a `.lock` directory.
  mkdirSync(`${file}.lock`);
  const old = new Date(Date.now() - 60_000);
  utimesSync(`${file}.lock`, old, old);
  const again = await HistoryStore.open(sqlite(file));
  await again.record(sampleRun());
  t.is((await again.list()).length, 1);
  await again.close();
});

test('two importers at once write every spooled run exactly once', async (t) => {
  const dir = tmp();
  const file = join(dir, 'h.sqlite');
  const start = { command: 'provision', env: 'x', args: [], projectDir: dir, verdandiVersion: 't' };
  for (let i = 0; i < 12; i++) await new Recorder({ ...start, args: [`--n=${i}`] }).finish({ exitCode: 0 });
  const counts = await Promise.all([importSpool(dir, sqlite(file)), importSpool(dir, sqlite(file))]);
  t.is(counts[0] + counts[1], 12);
  const store = await HistoryStore.open(sqlite(file));
  const argv = (await store.list()).map((r) => r.argv).sort();
  await store.close();
  t.is(new Set(argv).size, 12);
  t.is(argv.length, 12);
});

test('a store of schema 1 is migrated to the latest, its runs kept (round trips per task: 0)', async (t) => {
  const file = join(tmp(), 'h.sqlite');
  const { default: wasm } = await import('node-sqlite3-wasm');
  // The store as the first schema made it, with one run recorded.
  const db = new wasm.Database(file);
  db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  for (const sql of MIGRATIONS[0].statements(SQLITE)) db.exec(sql);
  db.run('INSERT INTO schema_migrations (version, applied_at) VALUES (1, ?)', ['then']);
  db.run(
    `INSERT INTO runs (started_at, duration_ms, command, env, argv, user_name, machine, status, exit_code,
      check_mode, verdandi_version, host_names, tasks_ok, tasks_changed, tasks_failed)
     VALUES ('2026-01-01T00:00:00.000Z', 5, 'provision', 'old', 'verdandi provision old', 'ann', 'pc', 'ok', 0, 0,
      '0.1.0', 'web1', 1, 0, 0)`,
  );
  db.run(`INSERT INTO run_hosts VALUES (1, 'web1', 'ok', 1, 0, 0, 0, 2, 0, 5, NULL)`);
  db.run(`INSERT INTO run_tasks VALUES (1, 'web1', 0, 'a › b', 'ok', NULL, 0, 5, NULL, NULL)`);
  db.close();
  const store = await HistoryStore.open(sqlite(file));
  t.is(await store.version(), LATEST_VERSION);
  const old = await store.get(1);
  t.is(old?.hosts[0].tasks[0].roundTrips, 0);
  const id = await store.record(sampleRun());
  t.deepEqual(
    (await store.get(id))?.hosts[0].tasks.map((x) => x.roundTrips),
    [1, 1, 1],
  );
  await store.close();
});
