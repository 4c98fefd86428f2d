/**
 * PostgreSQL backup and restore over the hosts' SSH connections, walked by the walker like deploy.
 *
 * `backup` runs `verdandi-pg-backup` (installed by the postgres role, the script its daily timer runs) on
 * every selected host that has the postgres role, one host at a time; the script prints the path of each
 * new dump. With `--download`, each dump streams to `<dir>/<host>/<file>` (never held in memory), is
 * checked against the host's size and sha256, and only then takes its name.
 *
 * `restore` streams a dump to the host (or names one already there) and runs `pg_restore --clean
 * --if-exists --single-transaction --exit-on-error` as the postgres user, holding the host's deploy lock
 * (a deploy's migration and a restore must not meet): the database ends up with the dump's content, or
 * unchanged when anything fails, Ctrl-C included (the restore is stopped, its transaction rolled back).
 * It asks for confirmation (type the database name) unless `--yes`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { open as openFile, rename, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { z } from 'zod';
import type { Connection } from '../connection/types.js';
import { deployerName } from '../deploy/git.js';
import { parseSitesVars } from '../deploy/targets.js';
import { WebhookNotices } from '../deploy/webhook.js';
import { type ContextOptions, loadRunContext, type RunContext } from '../engine/context.js';
import type { RunEvents } from '../engine/events.js';
import { loadRole } from '../engine/loader.js';
import { runOutputs } from '../engine/outputs.js';
import { execStoppable } from '../engine/remote-process.js';
import {
  contextWalker,
  DEFAULT_LOCK_WAIT_SECONDS,
  type HostWalkOptions,
  type Walker,
} from '../engine/walker.js';
import { validateRoleVars, varsForRole } from '../inventory/index.js';
import type { InventoryHost } from '../inventory/types.js';
import { readLine } from '../secrets/tty.js';
import { UserError, UserErrors } from '../util/errors.js';
import { DEFAULT_FORKS } from '../util/pool.js';
import { quote, sh, words } from '../util/shell.js';

/** Installed by the postgres role (roles/postgres): keep these in step with it. */
export const BACKUP_SCRIPT = '/usr/local/sbin/verdandi-pg-backup';

const DB_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** What backup and restore read of the command line: the context's options, and --json. */
type RunOptions = ContextOptions & { json?: boolean };

export interface BackupOptions extends RunOptions {
  db?: string[];
  download?: string;
}

export interface RestoreOptions extends RunOptions, Partial<HostWalkOptions> {
  db: string;
  from: string;
  remote?: boolean;
  yes?: boolean;
}

interface DumpInfo {
  db: string;
  path: string;
  bytes: number;
  sha256?: string;
  downloaded?: string;
}

export function checkDbName(name: string, option: string): void {
  if (!DB_NAME.test(name)) {
    throw new UserError(
      `${option} "${name}" is not a database name Verdandi manages`,
      1,
      'use letters, digits, "_" or "-", starting with a letter or "_"',
    );
  }
}

/** The selected hosts that get the postgres role from their groups. */
export function postgresHosts(ctx: RunContext): InventoryHost[] {
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

/** What backup and restore read of the postgres role's vars. */
export interface PostgresSettings {
  postgres_port: number;
}

/**
 * Each host's postgres vars read through the postgres role's schema, as a run of the role reads them:
 * defaults applied, types checked, unknown `postgres_*` vars refused, every host's errors reported at
 * once (exit 1) with the var and where it was set.
 */
export function postgresVars(
  ctx: Pick<RunContext, 'vars' | 'extraVars' | 'sensitive'>,
  hosts: InventoryHost[],
  schema: z.ZodObject<any>,
): Map<string, PostgresSettings> {
  const errors: UserError[] = [];
  const out = new Map<string, PostgresSettings>();
  for (const host of hosts) {
    const merged = varsForRole(host, 'postgres', {
      hostVars: ctx.vars.get(host.name),
      extraVars: ctx.extraVars,
    });
    try {
      const vars = validateRoleVars(
        schema,
        { ...merged.vars, ...ctx.extraVars },
        {
          role: 'postgres',
          host: host.name,
          origins: merged.origins,
          sensitive: ctx.sensitive.get(host.name),
        },
      );
      // A project's own postgres role replaces the built-in one: it must still say which port.
      if (typeof vars.postgres_port !== 'number')
        throw new UserError(
          `role postgres, host ${host.name}: the role's vars have no postgres_port (a number), which backup and restore connect to`,
          1,
          "declare postgres_port in the role's vars schema (the built-in role has it, default 5432)",
        );
      out.set(host.name, { postgres_port: vars.postgres_port });
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      errors.push(err);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new UserErrors(errors);
  return out;
}

/** The postgres hosts' vars, through the schema of the postgres role the project uses. */
export async function postgresVarsOf(
  ctx: RunContext,
  hosts: InventoryHost[],
): Promise<Map<string, PostgresSettings>> {
  const role = await loadRole('postgres', ctx.projectDir);
  return postgresVars(ctx, hosts, role.vars);
}

/** What backup and restore say: steps per host and database, warnings (events, engine/events.ts). */
const output = (events: RunEvents) => ({
  step: (host: string, step: string, detail: string) =>
    events.emit({ type: 'step', host, site: 'postgres', step, status: 'ok', detail, roundTrips: 0 }),
  failed: (host: string, step: string, detail: string, output?: string) =>
    events.emit({
      type: 'step',
      host,
      site: 'postgres',
      step,
      status: 'failed',
      detail,
      output,
      roundTrips: 0,
    }),
  /** The host's fields of the --json document. */
  result: (host: string, data: Record<string, unknown>) => events.emit({ type: 'result', host, data }),
});

function tail(text: string, lines = 5): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/** The walk of backup or restore: its events shown on the terminal (or --json), one host at a time. */
async function walker(
  ctx: RunContext,
  command: string,
  hosts: InventoryHost[],
  json?: boolean,
): Promise<Walker> {
  const events = await runOutputs({ json: !!json, verbose: false, check: false, warnsToStderr: true });
  return contextWalker(
    ctx,
    { command, events, forks: 1, connections: DEFAULT_FORKS },
    hosts.map((h) => h.name),
  );
}

/** Streams a file of the host to `local`: written as `<local>.part`, renamed once size and sha256 match. */
async function download(conn: Connection, dump: DumpInfo, local: string, signal: AbortSignal): Promise<void> {
  const part = `${local}.part`;
  const hash = createHash('sha256');
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  const file = createWriteStream(part, { mode: 0o600 });
  const written = pipeline(counter, file);
  try {
    const res = await conn.exec(sh`cat ${dump.path}`, { stdout: counter, signal });
    counter.end();
    await written;
    if (res.code !== 0) throw new UserError(`reading ${dump.path} failed: ${tail(res.stderr)}`, 2);
    const digest = hash.digest('hex');
    if (bytes !== dump.bytes || (dump.sha256 && digest !== dump.sha256))
      throw new UserError(
        `download of ${dump.path} is incomplete or corrupt (${bytes} of ${dump.bytes} bytes)`,
        2,
      );
    await rename(part, local);
  } catch (err) {
    counter.destroy();
    await written.catch(() => undefined);
    await rm(part, { force: true });
    throw err;
  }
}

export async function backup(env: string, opts: BackupOptions): Promise<number> {
  for (const db of opts.db ?? []) checkDbName(db, '--db');
  const ctx = await loadRunContext(env, opts);
  const hosts = postgresHosts(ctx);
  // Vars a run of the role would refuse are refused here too, before any host is contacted.
  await postgresVarsOf(ctx, hosts);
  const report: Record<string, { ok: boolean; unreachable?: boolean; error?: string; dumps: DumpInfo[] }> =
    {};
  const walk = await walker(ctx, 'backup', hosts, opts.json);
  const out = output(walk.events);
  try {
    const runs = await walk.walk(
      hosts.map((host) => ({ host })),
      { maxFailPercentage: 100 },
      async ({ host }, { conn, signal }) => {
        const entry: (typeof report)[string] = { ok: false, dumps: [] };
        report[host.name] = entry;
        const run = await execStoppable(
          conn,
          `if [ ! -x ${BACKUP_SCRIPT} ]; then echo "${BACKUP_SCRIPT} is missing" >&2; exit 127; fi; ${words(BACKUP_SCRIPT, ...(opts.db ?? []))}`,
          {},
          signal,
        );
        const paths = run.stdout
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l.startsWith('/') && l.endsWith('.dump'));
        for (const path of paths) {
          const info = await conn.exec(sh`stat -c %s ${path} && sha256sum ${path}`);
          const [size, sum] = info.stdout.trim().split('\n');
          entry.dumps.push({
            db: basename(path).replace(/-\d{8}T\d{6}Z\.dump$/, ''),
            path,
            bytes: Number(size),
            sha256: sum?.split(' ')[0],
          });
        }
        if (run.code !== 0) {
          entry.error = run.stopped
            ? 'interrupted'
            : run.code === 127
              ? `${BACKUP_SCRIPT} is not installed: provision the host with the postgres role first (verdandi provision ${ctx.env})`
              : `the backup script exited ${run.code}: ${tail(run.stderr)}`;
        }
        if (opts.download && !signal.aborted) {
          const dir = resolve(opts.download, host.name);
          mkdirSync(dir, { recursive: true });
          for (const dump of entry.dumps) {
            const local = join(dir, basename(dump.path));
            await download(conn, dump, local, signal);
            dump.downloaded = local;
          }
        }
        entry.ok = entry.error === undefined;
        for (const d of entry.dumps) {
          out.step(
            host.name,
            `backup ${d.db}`,
            `${d.db} → ${d.path} (${d.bytes} bytes)${d.downloaded ? `, saved as ${d.downloaded}` : ''}`,
          );
        }
        if (entry.error) out.failed(host.name, 'backup', `error: ${entry.error}`);
        return { ok: entry.ok, result: entry };
      },
    );
    for (const run of runs) {
      if (!run.result)
        report[run.host] = {
          ok: false,
          unreachable: run.status === 'unreachable' || undefined,
          error: run.message ?? run.status,
          dumps: report[run.host]?.dumps ?? [],
        };
      out.result(run.host, { ...report[run.host] });
    }
    return await walk.finish();
  } finally {
    await walk.close();
    walk.events.close();
  }
}

/** The sites of the host that have a webhook (none when its sites are not valid: deploy says why). */
function siteWebhooks(ctx: RunContext, host: InventoryHost): { name: string; webhook: string }[] {
  try {
    const { sites } = parseSitesVars(
      host,
      ctx.vars.get(host.name) ?? host.vars,
      ctx.sensitive.get(host.name),
    );
    return sites.flatMap((site) => (site.webhook ? [{ name: site.name, webhook: site.webhook }] : []));
  } catch {
    return [];
  }
}

/** The first bytes of a local file. */
async function head(file: string, n: number): Promise<Buffer> {
  const fh = await openFile(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * Receives the dump on stdin into a private temporary file readable by postgres only, checks it
 * arrived whole (a cut transfer restores nothing), then restores it.
 */
export function receiveAndRestoreScript(bytes: number, restoreCommand: (file: string) => string): string {
  return [
    'tmp=$(mktemp /tmp/verdandi-restore.XXXXXX) || exit 1',
    `trap 'rm -f "$tmp"' EXIT`,
    'cat > "$tmp" || exit 1',
    `if [ "$(stat -c %s "$tmp")" != ${bytes} ]; then echo "the dump arrived incomplete ($(stat -c %s "$tmp") of ${bytes} bytes): nothing restored" >&2; exit 1; fi`,
    'chown postgres "$tmp" || exit 1',
    restoreCommand('"$tmp"'),
  ].join('\n');
}

export async function restore(env: string, opts: RestoreOptions): Promise<number> {
  checkDbName(opts.db, '--db');
  let localDump: { file: string; bytes: number } | undefined;
  if (!opts.remote) {
    const file = resolve(opts.from);
    if (!existsSync(file) || !statSync(file).isFile()) {
      throw new UserError(
        `--from ${opts.from}: no such file on this machine`,
        1,
        'give a dump made by `verdandi backup --download`, or add --remote for a path on the host',
      );
    }
    // pg_dump -Fc files start with "PGDMP": refuse anything else before touching the host.
    if ((await head(file, 5)).toString('latin1') !== 'PGDMP') {
      throw new UserError(
        `--from ${opts.from} is not a pg_dump custom-format file (made with pg_dump -Fc)`,
        1,
      );
    }
    localDump = { file, bytes: statSync(file).size };
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
  const port = (await postgresVarsOf(ctx, [host])).get(host.name)!.postgres_port;

  if (!opts.yes) {
    if (!process.stdin.isTTY || process.env.CI) {
      throw new UserError(
        'restore replaces the content of the database and needs a confirmation',
        1,
        'add --yes',
      );
    }
    const answer = await readLine(
      `Restore ${opts.from} into database "${opts.db}" on ${host.name}? Its current content is replaced.\nType the database name to confirm: `,
      { echo: true },
    );
    if (answer.trim() !== opts.db) {
      process.stderr.write('restore cancelled: nothing changed\n');
      return 1;
    }
  }

  const restoreCommand = (file: string) =>
    `${words(
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
    )} ${file}`;
  const by = await deployerName();
  const walk = await walker(ctx, 'restore', [host], opts.json);
  const out = output(walk.events);
  // A refused lock is posted to the webhooks of the host's sites, as for deploy and rollback.
  const notices = new WebhookNotices(walk.events, {
    action: 'restore',
    env: ctx.env,
    by,
    targets: () =>
      siteWebhooks(ctx, host).map((site) => ({ site: site.name, url: site.webhook, ref: opts.db })),
  });
  walk.events.on(notices.handle);
  try {
    const [run] = await walk.walk(
      [{ host }],
      {
        lock: {
          reason: `restore ${ctx.env} --db ${opts.db}`,
          by,
          waitSeconds: opts.lockWaitSeconds ?? DEFAULT_LOCK_WAIT_SECONDS,
          breakLock: !!opts.breakLock,
        },
      },
      async (_t, { conn, signal }) => {
        const exists = await conn.exec(
          `runuser -u postgres -- psql -p ${quote(port)} -tAc ${quote(`SELECT 1 FROM pg_database WHERE datname = '${opts.db}'`)}`,
        );
        if (exists.code !== 0) throw new UserError(`cannot query PostgreSQL: ${tail(exists.stderr)}`, 2);
        if (exists.stdout.trim() !== '1') {
          throw new UserError(
            `database "${opts.db}" does not exist: list it in postgres_databases and run verdandi provision ${ctx.env} first (it creates it empty)`,
            1,
          );
        }
        const result = localDump
          ? await execStoppable(
              conn,
              receiveAndRestoreScript(localDump.bytes, restoreCommand),
              { stdin: createReadStream(localDump.file) },
              signal,
            )
          : await execStoppable(
              conn,
              `test -f ${quote(opts.from)} || { echo ${quote(`${opts.from}: no such file on the host`)} >&2; exit 66; }\n` +
                `runuser -u postgres -- test -r ${quote(opts.from)} || { echo ${quote(`${opts.from}: the postgres user cannot read it`)} >&2; exit 66; }\n` +
                restoreCommand(quote(opts.from)),
              {},
              signal,
            );
        if (result.code !== 0) {
          out.failed(
            host.name,
            `restore ${opts.db}`,
            `error: restore of ${opts.db} ${result.stopped ? 'interrupted' : `failed (exit ${result.code})`}, the database is unchanged:`,
            tail(result.stderr, 10),
          );
          return { ok: false, result: false };
        }
        out.step(host.name, `restore ${opts.db}`, `restored ${opts.from} into ${opts.db}`);
        return { ok: true, result: true };
      },
    );
    const ok = run.status === 'ok';
    out.result(host.name, ok ? { ok, db: opts.db, from: opts.from } : { ok });
    await notices.settled();
    return await walk.finish();
  } finally {
    await walk.close();
    walk.events.close();
  }
}
