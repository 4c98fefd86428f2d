/**
 * The run history: where it is (config), its schema brought up to date on open, and the queries every
 * command uses (record one run, list runs, read one). One class for both databases: the SQL is the
 * same, the driver differs (drivers.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { registerSecret } from '../util/redact.js';
import { loadYaml } from '../util/yaml.js';
import { PostgresDriver, type Row, type SqlDriver, SqliteDriver, type SqlTx } from './drivers.js';
import { LATEST_VERSION, MIGRATIONS } from './schema.js';
import type {
  HostRecord,
  RecordedDeploy,
  RunFilter,
  RunRecord,
  RunSummary,
  SiteDeployRecord,
  TaskRecord,
} from './types.js';

/** Where a project's history is: off, a SQLite file, or a PostgreSQL URL. */
export type HistoryLocation =
  | { kind: 'off' }
  | { kind: 'sqlite'; file: string }
  | { kind: 'postgres'; url: string };

export const PROJECT_CONFIG = 'verdandi.yml';

/**
 * `VERDANDI_HISTORY_URL` (a postgres:// URL, or `off`), else `history: { url }` in the project's
 * verdandi.yml, else `.verdandi/history.sqlite` in the project.
 */
export function historyLocation(projectDir: string, env = process.env): HistoryLocation {
  const fromEnv = env.VERDANDI_HISTORY_URL?.trim();
  const configured = fromEnv || configuredUrl(projectDir);
  if (!configured) return { kind: 'sqlite', file: path.join(projectDir, '.verdandi', 'history.sqlite') };
  if (configured === 'off') return { kind: 'off' };
  if (/^postgres(ql)?:\/\//.test(configured)) {
    // The URL may carry a password: it never shows in output.
    try {
      const password = decodeURIComponent(new URL(configured).password);
      if (password) registerSecret(password);
    } catch {
      /* not a URL: pg reports it when connecting */
    }
    return { kind: 'postgres', url: configured };
  }
  if (configured.startsWith('sqlite:')) {
    return { kind: 'sqlite', file: path.resolve(projectDir, configured.slice('sqlite:'.length)) };
  }
  throw new UserError(
    `history url must be postgres://..., sqlite:<file> or off, got "${configured.replace(/:[^@/]*@/, ':***@')}"`,
    1,
    fromEnv ? 'fix VERDANDI_HISTORY_URL' : `fix history.url in ${PROJECT_CONFIG}`,
  );
}

function configuredUrl(projectDir: string): string | undefined {
  const file = path.join(projectDir, PROJECT_CONFIG);
  if (!existsSync(file)) return undefined;
  const doc = loadYaml(readFileSync(file, 'utf8'), { filename: PROJECT_CONFIG }) as {
    history?: { url?: unknown };
  } | null;
  const url = doc?.history?.url;
  if (url === undefined) return undefined;
  if (typeof url !== 'string') {
    throw new UserError(`${PROJECT_CONFIG}: history.url must be a string`, 1);
  }
  return url;
}

export class HistoryStore {
  private constructor(private readonly db: SqlDriver) {}

  get where(): string {
    return this.db.where;
  }

  /** Opens the history and brings its schema up to date. */
  static async open(location: Exclude<HistoryLocation, { kind: 'off' }>): Promise<HistoryStore> {
    const db =
      location.kind === 'sqlite'
        ? await SqliteDriver.open(location.file)
        : await PostgresDriver.open(location.url);
    const store = new HistoryStore(db);
    try {
      await store.migrate();
    } catch (err) {
      await db.close();
      throw err;
    }
    return store;
  }

  /** The schema version of this store (0: empty). */
  async version(): Promise<number> {
    return this.db.transaction((tx) => currentVersion(tx));
  }

  private async migrate(): Promise<void> {
    await this.db.transaction(
      async (tx) => {
        const version = await currentVersion(tx);
        if (version > LATEST_VERSION) {
          throw new UserError(
            `the run history at ${this.db.where} has schema version ${version}, newer than this Verdandi knows (${LATEST_VERSION})`,
            1,
            'upgrade Verdandi (a newer version recorded runs there)',
          );
        }
        for (const m of MIGRATIONS.filter((m) => m.version > version)) {
          for (const sql of m.statements(this.db.dialect)) await tx.query(sql);
          await tx.query('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [
            m.version,
            new Date().toISOString(),
          ]);
        }
      },
      { exclusive: true },
    );
  }

  /** Writes one run, its hosts and tasks in one transaction; returns its id. */
  async record(run: RunRecord): Promise<number> {
    const total = (k: 'ok' | 'changed' | 'failed') => run.hosts.reduce((n, h) => n + h[k], 0);
    return this.db.transaction(async (tx) => {
      const [row] = await tx.query(
        `INSERT INTO runs (started_at, duration_ms, command, env, argv, user_name, machine, git_commit,
          git_dirty, status, exit_code, check_mode, error, verdandi_version, host_names, tasks_ok,
          tasks_changed, tasks_failed)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
        [
          run.startedAt,
          run.durationMs,
          run.command,
          run.env,
          run.argv,
          run.user,
          run.machine,
          run.gitCommit,
          run.gitDirty === null ? null : run.gitDirty ? 1 : 0,
          run.status,
          run.exitCode,
          run.check ? 1 : 0,
          run.error,
          run.verdandiVersion,
          run.hosts.map((h) => h.name).join(','),
          total('ok'),
          total('changed'),
          total('failed'),
        ],
      );
      const id = Number(row.id);
      for (const h of run.hosts) {
        await tx.query(
          `INSERT INTO run_hosts (run_id, host, status, ok, changed, failed, skipped, round_trips, started_ms,
            duration_ms, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            id,
            h.name,
            h.status,
            h.ok,
            h.changed,
            h.failed,
            h.skipped,
            h.roundTrips,
            h.startedMs,
            h.durationMs,
            h.detail,
          ],
        );
        for (const t of h.tasks) {
          await tx.query(
            `INSERT INTO run_tasks (run_id, host, seq, label, status, detail, started_ms, duration_ms, round_trips,
              diff, failure) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            [
              id,
              h.name,
              t.seq,
              t.label,
              t.status,
              t.detail,
              t.startedMs,
              t.durationMs,
              // A run spooled by a Verdandi before schema 2 has no count.
              t.roundTrips ?? 0,
              t.diff,
              t.failure,
            ],
          );
        }
      }
      // A run spooled by a Verdandi before schema 2 has none.
      for (const [seq, d] of (run.deploys ?? []).entries()) {
        await tx.query(
          `INSERT INTO run_deploys (run_id, seq, host, site, action, release_name, at, deployed_by, outcome,
            commit_sha, branch, step, from_release) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            id,
            seq,
            d.host,
            d.site,
            d.action,
            d.release,
            d.time,
            d.by,
            d.outcome,
            d.commit,
            d.branch,
            d.step,
            d.from,
          ],
        );
      }
      return id;
    });
  }

  /** The deploys and rollbacks of sites the runs wrote, newest first (`last` at most). */
  async deploys(filter: { env?: string; last: number }): Promise<RecordedDeploy[]> {
    const rows = await this.db.query(
      `SELECT d.*, r.env FROM run_deploys d JOIN runs r ON r.id = d.run_id${filter.env ? ' WHERE r.env = ?' : ''}
       ORDER BY d.at DESC, d.run_id DESC, d.seq DESC LIMIT ${Math.max(1, Math.floor(filter.last))}`,
      filter.env ? [filter.env] : [],
    );
    return rows.map((r) => ({ ...deployOf(r), runId: Number(r.run_id), env: str(r.env) }));
  }

  /** Runs, newest first. */
  async list(filter: RunFilter = {}): Promise<RunSummary[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.env) {
      where.push('env = ?');
      params.push(filter.env);
    }
    if (filter.status) {
      where.push('status = ?');
      params.push(filter.status);
    }
    if (filter.command) {
      where.push('command = ?');
      params.push(filter.command);
    }
    if (filter.host) {
      where.push('id IN (SELECT run_id FROM run_hosts WHERE host = ?)');
      params.push(filter.host);
    }
    const limit = filter.last ? ` LIMIT ${Math.max(1, Math.floor(filter.last))}` : '';
    const rows = await this.db.query(
      `SELECT * FROM runs${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at DESC, id DESC${limit}`,
      params,
    );
    return rows.map(summaryOf);
  }

  async get(id: number): Promise<RunRecord | undefined> {
    return (await this.getMany([id]))[0];
  }

  /** Several runs with their hosts and tasks (the report's detail), in the order of `ids`. */
  async getMany(ids: number[]): Promise<RunRecord[]> {
    if (ids.length === 0) return [];
    const out: RunRecord[] = [];
    // Bounded IN lists: both databases take far more, but a report of thousands stays cheap.
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const marks = chunk.map(() => '?').join(', ');
      const runs = await this.db.query(`SELECT * FROM runs WHERE id IN (${marks})`, chunk);
      const hosts = await this.db.query(
        `SELECT * FROM run_hosts WHERE run_id IN (${marks}) ORDER BY run_id, started_ms, host`,
        chunk,
      );
      const tasks = await this.db.query(
        `SELECT * FROM run_tasks WHERE run_id IN (${marks}) ORDER BY run_id, host, seq`,
        chunk,
      );
      const byRun = new Map<number, RunSummary & Pick<RunRecord, 'hosts' | 'deploys'>>();
      for (const r of runs) byRun.set(Number(r.id), { ...summaryOf(r), hosts: [], deploys: [] });
      const hostOf = new Map<string, HostRecord>();
      for (const h of hosts) {
        const host = hostRecordOf(h);
        hostOf.set(`${h.run_id}\u0000${h.host}`, host);
        byRun.get(Number(h.run_id))?.hosts.push(host);
      }
      for (const t of tasks) hostOf.get(`${t.run_id}\u0000${t.host}`)?.tasks.push(taskOf(t));
      const deploys = await this.db.query(
        `SELECT * FROM run_deploys WHERE run_id IN (${marks}) ORDER BY run_id, seq`,
        chunk,
      );
      for (const d of deploys) byRun.get(Number(d.run_id))?.deploys.push(deployOf(d));
      for (const id of chunk) {
        const run = byRun.get(id);
        if (run) out.push(stripSummary(run));
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

async function currentVersion(tx: SqlTx): Promise<number> {
  await tx.query(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)',
  );
  const [row] = await tx.query('SELECT MAX(version) AS v FROM schema_migrations');
  return row?.v === null || row?.v === undefined ? 0 : Number(row.v);
}

const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function summaryOf(r: Row): RunSummary {
  return {
    id: Number(r.id),
    command: str(r.command),
    env: str(r.env),
    argv: str(r.argv),
    user: str(r.user_name),
    machine: str(r.machine),
    gitCommit: strOrNull(r.git_commit),
    gitDirty: r.git_dirty === null || r.git_dirty === undefined ? null : Number(r.git_dirty) === 1,
    startedAt: str(r.started_at),
    durationMs: Number(r.duration_ms),
    status: str(r.status) as RunSummary['status'],
    exitCode: Number(r.exit_code),
    check: Number(r.check_mode) === 1,
    error: strOrNull(r.error),
    verdandiVersion: str(r.verdandi_version),
    hostNames: str(r.host_names).split(',').filter(Boolean),
    ok: Number(r.tasks_ok),
    changed: Number(r.tasks_changed),
    failed: Number(r.tasks_failed),
  };
}

function stripSummary(run: RunSummary & Pick<RunRecord, 'hosts' | 'deploys'>): RunRecord {
  const { hostNames: _names, ok: _ok, changed: _changed, failed: _failed, ...record } = run;
  return record;
}

function hostRecordOf(h: Row): HostRecord {
  return {
    name: str(h.host),
    status: str(h.status) as HostRecord['status'],
    ok: Number(h.ok),
    changed: Number(h.changed),
    failed: Number(h.failed),
    skipped: Number(h.skipped),
    roundTrips: Number(h.round_trips),
    startedMs: Number(h.started_ms),
    durationMs: Number(h.duration_ms),
    detail: strOrNull(h.detail),
    tasks: [],
  };
}

function taskOf(t: Row): TaskRecord {
  return {
    seq: Number(t.seq),
    label: str(t.label),
    status: str(t.status) as TaskRecord['status'],
    detail: strOrNull(t.detail),
    startedMs: Number(t.started_ms),
    durationMs: Number(t.duration_ms),
    roundTrips: Number(t.round_trips),
    diff: strOrNull(t.diff),
    failure: strOrNull(t.failure),
  };
}

function deployOf(d: Row): SiteDeployRecord {
  return {
    host: str(d.host),
    site: str(d.site),
    action: str(d.action) === 'rollback' ? 'rollback' : 'deploy',
    release: str(d.release_name),
    time: str(d.at),
    by: str(d.deployed_by),
    outcome: str(d.outcome),
    commit: strOrNull(d.commit_sha),
    branch: strOrNull(d.branch),
    step: strOrNull(d.step),
    from: strOrNull(d.from_release),
  };
}
