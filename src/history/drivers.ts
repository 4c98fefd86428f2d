/**
 * The two places a history lives: a SQLite file (the default, under `.verdandi/`) and a PostgreSQL
 * database shared by a team. Both answer the same small interface; the SQL is written once, with `?`
 * placeholders, in store.ts.
 */
import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Dialect, POSTGRES, SQLITE } from './schema.js';

export type Row = Record<string, unknown>;

export interface SqlTx {
  query(sql: string, params?: unknown[]): Promise<Row[]>;
}

export interface SqlDriver extends SqlTx {
  readonly dialect: Dialect;
  /** Where the history is, for messages (a file path, or the URL without its password). */
  readonly where: string;
  /**
   * Runs `fn` in one transaction, committed when it returns. `exclusive`: no other process runs an
   * exclusive transaction at the same time (schema migrations).
   */
  transaction<T>(fn: (tx: SqlTx) => Promise<T>, opts?: { exclusive?: boolean }): Promise<T>;
  close(): Promise<void>;
}

/**
 * How long a writer waits for another process holding the SQLite file, and when a lock is stale. A
 * transaction of the history holds the lock for milliseconds; a lock this old was left by a process
 * that was killed while holding it.
 */
const BUSY_WAIT_MS = 20_000;
const STALE_LOCK_MS = 30_000;

/**
 * SQLite through node-sqlite3-wasm (WebAssembly: nothing to compile, the file is read and written in
 * place). Its file system layer locks the database with a `<file>.lock` directory and answers "busy"
 * while another process holds it: every statement here retries until the lock is free, and removes a
 * lock left by a killed process.
 */
export class SqliteDriver implements SqlDriver {
  readonly dialect = SQLITE;
  private constructor(
    private readonly db: import('node-sqlite3-wasm').Database,
    readonly where: string,
  ) {}

  static async open(file: string): Promise<SqliteDriver> {
    mkdirSync(path.dirname(file), { recursive: true });
    const { default: sqlite } = await import('node-sqlite3-wasm');
    const db = new sqlite.Database(file);
    return new SqliteDriver(db, file);
  }

  private async retrying<T>(fn: () => T): Promise<T> {
    const deadline = Date.now() + BUSY_WAIT_MS;
    for (;;) {
      try {
        return fn();
      } catch (err) {
        if (!isBusy(err) || Date.now() > deadline) throw err;
        this.clearStaleLock();
        await sleep(5 + Math.random() * 40);
      }
    }
  }

  private clearStaleLock(): void {
    const lock = `${this.where}.lock`;
    try {
      if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) rmdirSync(lock);
    } catch {
      /* gone already, or another process removed it first */
    }
  }

  async query(sql: string, params: unknown[] = []): Promise<Row[]> {
    return this.retrying(() => this.db.all(sql, params as never) as Row[]);
  }

  async transaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    // BEGIN IMMEDIATE takes the write lock at once (or waits for it), so the transaction never has
    // to give up halfway; the whole file is locked either way (see above).
    await this.retrying(() => this.db.exec('BEGIN IMMEDIATE'));
    try {
      const tx: SqlTx = { query: async (sql, params = []) => this.db.all(sql, params as never) as Row[] };
      const out = await fn(tx);
      await this.retrying(() => this.db.exec('COMMIT'));
      return out;
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }
}

function isBusy(err: unknown): boolean {
  return err instanceof Error && /database is locked|SQLITE_BUSY|busy/i.test(err.message);
}

/** PostgreSQL through `pg`: one connection for the command's lifetime. */
export class PostgresDriver implements SqlDriver {
  readonly dialect = POSTGRES;
  private constructor(
    private readonly client: import('pg').Client,
    readonly where: string,
  ) {}

  static async open(url: string): Promise<PostgresDriver> {
    const { default: pg } = await import('pg');
    // BIGINT (ids, durations) as numbers: they stay far below 2^53.
    const client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: 10_000,
      types: {
        getTypeParser: (oid: number, format?: string) =>
          oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'),
      },
    });
    client.on('error', () => {
      /* a dropped connection surfaces as the next query's error */
    });
    await client.connect();
    return new PostgresDriver(client, withoutPassword(url));
  }

  async query(sql: string, params: unknown[] = []): Promise<Row[]> {
    return (await this.client.query(numbered(sql), params)).rows;
  }

  async transaction<T>(fn: (tx: SqlTx) => Promise<T>, opts: { exclusive?: boolean } = {}): Promise<T> {
    await this.client.query('BEGIN');
    try {
      // Any fixed number names the lock; this one spells "verdandi history".
      if (opts.exclusive) await this.client.query('SELECT pg_advisory_xact_lock(7665726468)');
      const out = await fn(this);
      await this.client.query('COMMIT');
      return out;
    } catch (err) {
      await this.client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }
}

/** `?` placeholders as PostgreSQL's `$1, $2...` (the history's SQL has no `?` in literals). */
export function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** The URL as messages may show it: the password replaced. */
export function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the PostgreSQL URL (unparseable)';
  }
}
