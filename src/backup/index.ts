/**
 * PostgreSQL backup and restore over the hosts' SSH connections.
 *
 * `backup` runs `verdandi-pg-backup` (installed by the postgres role, the script its daily timer runs) on
 * every selected host that has the postgres role; the script prints the path of each new dump. With
 * `--download`, each dump is copied to `<dir>/<host>/<file>` (it travels base64-encoded on the SSH
 * channel, so it is held in memory once: fine for the databases of the teams Verdandi serves, not for
 * hundreds of gigabytes).
 *
 * `restore` sends a dump (or names one already on the host) and runs `pg_restore --clean --if-exists
 * --single-transaction --exit-on-error` as the postgres user: the database ends up with the dump's
 * content, or unchanged when anything fails. It asks for confirmation (type the database name) unless
 * `--yes`.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { CommonRunOptions } from '../cli/context.js';
import { connect } from '../connection/index.js';
import { type Connection, UnreachableError } from '../connection/types.js';
import { becomePasswordOf } from '../connection/open-host.js';
import { loadRunContext, type RunContext } from '../engine/session.js';
import type { InventoryHost } from '../inventory/types.js';
import { UserError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { quote, words } from '../util/shell.js';

/** Installed by the postgres role (roles/postgres): keep these in step with it. */
export const BACKUP_SCRIPT = '/usr/local/sbin/verdandi-pg-backup';
export const DEFAULT_BACKUP_DIR = '/var/backups/postgresql';
export const DEFAULT_PORT = 5432;

const DB_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export interface BackupOptions extends CommonRunOptions {
  db?: string[];
  download?: string;
}

export interface RestoreOptions extends CommonRunOptions {
  db: string;
  from: string;
  remote?: boolean;
  yes?: boolean;
}

interface DumpInfo {
  db: string;
  path: string;
  bytes: number;
  downloaded?: string;
}

function checkDbName(name: string, option: string): void {
  if (!DB_NAME.test(name)) {
    throw new UserError(
      `${option} "${name}" is not a database name Verdandi manages`,
      1,
      'use letters, digits, "_" or "-", starting with a letter or "_"',
    );
  }
}

/** The selected hosts that get the postgres role from their groups. */
function postgresHosts(ctx: RunContext): InventoryHost[] {
  const hosts = ctx.hosts.filter((h) => h.roles.includes('postgres'));
  if (hosts.length === 0) {
    throw new UserError(
      `no host of ${ctx.env}${ctx.hosts.length < ctx.inventory.hosts.size ? ' (after --limit)' : ''} has the postgres role`,
      1,
      `give a group roles: [postgres] in ${ctx.inventory.file}, or check --limit`,
    );
  }
  return hosts;
}

function hostVar<T>(ctx: RunContext, host: InventoryHost, key: string, fallback: T): T {
  const value = (ctx.vars.get(host.name) ?? host.vars)[key];
  return value === undefined ? fallback : (value as T);
}

async function open(ctx: RunContext, host: InventoryHost): Promise<Connection> {
  const vars = ctx.vars.get(host.name) ?? host.vars;
  return connect(host, {
    ...ctx.connectOptions,
    becomePassword: ctx.connectOptions.becomePassword ?? becomePasswordOf(vars),
  });
}

function say(json: boolean | undefined, line: string): void {
  if (!json) process.stdout.write(`${redact(line)}\n`);
}

function tail(text: string, lines = 5): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

export async function backup(env: string, opts: BackupOptions): Promise<number> {
  for (const db of opts.db ?? []) checkDbName(db, '--db');
  const ctx = await loadRunContext(env, opts);
  const hosts = postgresHosts(ctx);
  const report: Record<string, { ok: boolean; unreachable?: boolean; error?: string; dumps: DumpInfo[] }> =
    {};
  let exitCode = 0;

  for (const host of hosts) {
    const entry: (typeof report)[string] = { ok: false, dumps: [] };
    report[host.name] = entry;
    let conn: Connection | undefined;
    try {
      conn = await open(ctx, host);
      const run = await conn.exec(
        `if [ ! -x ${BACKUP_SCRIPT} ]; then echo "${BACKUP_SCRIPT} is missing" >&2; exit 127; fi; ${words(BACKUP_SCRIPT, ...(opts.db ?? []))}`,
      );
      const paths = run.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith('/') && l.endsWith('.dump'));
      for (const path of paths) {
        const size = await conn.exec(`stat -c %s ${quote(path)}`);
        entry.dumps.push({
          db: basename(path).replace(/-\d{8}T\d{6}Z\.dump$/, ''),
          path,
          bytes: Number(size.stdout.trim()),
        });
      }
      if (run.code !== 0) {
        entry.error =
          run.code === 127
            ? `${BACKUP_SCRIPT} is not installed: provision the host with the postgres role first (verdandi provision ${ctx.env})`
            : `the backup script exited ${run.code}: ${tail(run.stderr)}`;
        exitCode = 2;
      }
      if (opts.download) {
        const dir = resolve(opts.download, host.name);
        mkdirSync(dir, { recursive: true });
        for (const dump of entry.dumps) {
          const data = await conn.exec(`base64 -w0 ${quote(dump.path)}`);
          if (data.code !== 0) throw new Error(`reading ${dump.path} failed: ${tail(data.stderr)}`);
          const content = Buffer.from(data.stdout.trim(), 'base64');
          if (content.length !== dump.bytes) {
            throw new Error(
              `download of ${dump.path} is incomplete (${content.length} of ${dump.bytes} bytes)`,
            );
          }
          const local = join(dir, basename(dump.path));
          writeFileSync(local, content, { mode: 0o600 });
          dump.downloaded = local;
        }
      }
      entry.ok = entry.error === undefined;
      for (const d of entry.dumps) {
        say(
          opts.json,
          `${host.name}: ${d.db} → ${d.path} (${d.bytes} bytes)${d.downloaded ? `, saved as ${d.downloaded}` : ''}`,
        );
      }
      if (entry.error) process.stderr.write(`${host.name}: error: ${redact(entry.error)}\n`);
    } catch (err) {
      if (err instanceof UnreachableError) {
        entry.unreachable = true;
        entry.error = err.message;
        exitCode = Math.max(exitCode, 3);
      } else {
        entry.error = err instanceof Error ? err.message : String(err);
        exitCode = Math.max(exitCode, 2);
      }
      process.stderr.write(`${host.name}: error: ${redact(entry.error)}\n`);
    } finally {
      await conn?.close().catch(() => {});
    }
  }
  if (opts.json) process.stdout.write(`${redact(JSON.stringify({ hosts: report }))}\n`);
  return exitCode;
}

async function confirm(question: string, expected: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const answer = await new Promise<string>((res) => rl.question(question, res));
  rl.close();
  return answer.trim() === expected;
}

export async function restore(env: string, opts: RestoreOptions): Promise<number> {
  checkDbName(opts.db, '--db');
  let localDump: Buffer | undefined;
  if (!opts.remote) {
    const file = resolve(opts.from);
    if (!existsSync(file) || !statSync(file).isFile()) {
      throw new UserError(
        `--from ${opts.from}: no such file on this machine`,
        1,
        'give a dump made by `verdandi backup --download`, or add --remote for a path on the host',
      );
    }
    localDump = readFileSync(file);
    // pg_dump -Fc files start with "PGDMP": refuse anything else before touching the host.
    if (localDump.subarray(0, 5).toString('latin1') !== 'PGDMP') {
      throw new UserError(
        `--from ${opts.from} is not a pg_dump custom-format file (made with pg_dump -Fc)`,
        1,
      );
    }
  }
  const ctx = await loadRunContext(env, opts);
  const hosts = postgresHosts(ctx);
  if (hosts.length > 1) {
    throw new UserError(
      `${hosts.length} hosts of ${ctx.env} have the postgres role (${hosts.map((h) => h.name).join(', ')}): restore goes to one`,
      1,
      'choose it with --limit <host>',
    );
  }
  const host = hosts[0];
  const port = hostVar(ctx, host, 'postgres_port', DEFAULT_PORT);

  if (!opts.yes) {
    if (!process.stdin.isTTY || process.env.CI) {
      throw new UserError(
        'restore replaces the content of the database and needs a confirmation',
        1,
        'add --yes',
      );
    }
    const ok = await confirm(
      `Restore ${opts.from} into database "${opts.db}" on ${host.name}? Its current content is replaced.\nType the database name to confirm: `,
      opts.db,
    );
    if (!ok) {
      process.stderr.write('restore cancelled: nothing changed\n');
      return 1;
    }
  }

  let conn: Connection | undefined;
  try {
    conn = await open(ctx, host);
    const exists = await conn.exec(
      `runuser -u postgres -- psql -p ${quote(port)} -tAc ${quote(`SELECT 1 FROM pg_database WHERE datname = '${opts.db}'`)}`,
    );
    if (exists.code !== 0) {
      throw new UserError(`${host.name}: cannot query PostgreSQL: ${tail(exists.stderr)}`, 2);
    }
    if (exists.stdout.trim() !== '1') {
      throw new UserError(
        `${host.name}: database "${opts.db}" does not exist`,
        1,
        `list it in postgres_databases and run verdandi provision ${ctx.env} first: it creates it empty`,
      );
    }
    const restoreCommand = (file: string) =>
      words(
        'runuser',
        '-u',
        'postgres',
        '--',
        'pg_restore',
        '-p',
        port,
        '--clean',
        '--if-exists',
        '--single-transaction',
        '--exit-on-error',
        '-d',
        opts.db,
      ) + ` ${file}`;
    let result: { stdout: string; stderr: string; code: number };
    if (localDump) {
      // The dump arrives base64-encoded on stdin into a private temporary file readable by postgres only.
      const script = [
        'set -e',
        'tmp=$(mktemp /tmp/verdandi-restore.XXXXXX)',
        `trap 'rm -f "$tmp"' EXIT`,
        'base64 -d > "$tmp"',
        'chown postgres "$tmp"',
        restoreCommand('"$tmp"'),
      ].join('\n');
      result = await conn.exec(script, { stdin: localDump.toString('base64') });
    } else {
      result = await conn.exec(
        `test -f ${quote(opts.from)} || { echo ${quote(`${opts.from}: no such file on the host`)} >&2; exit 66; }\n` +
          `runuser -u postgres -- test -r ${quote(opts.from)} || { echo ${quote(`${opts.from}: the postgres user cannot read it`)} >&2; exit 66; }\n` +
          restoreCommand(quote(opts.from)),
      );
    }
    if (result.code !== 0) {
      process.stderr.write(
        `${host.name}: error: restore of ${opts.db} failed (exit ${result.code}), the database is unchanged:\n${redact(tail(result.stderr, 10))}\n`,
      );
      if (opts.json) process.stdout.write(`${JSON.stringify({ hosts: { [host.name]: { ok: false } } })}\n`);
      return 2;
    }
    say(opts.json, `${host.name}: restored ${opts.from} into ${opts.db}`);
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ hosts: { [host.name]: { ok: true, db: opts.db, from: opts.from } } })}\n`,
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof UnreachableError) {
      process.stderr.write(`${host.name}: unreachable: ${redact(err.message)}\n`);
      return 3;
    }
    throw err;
  } finally {
    await conn?.close().catch(() => {});
  }
}
