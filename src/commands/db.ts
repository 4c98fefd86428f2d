/**
 * `verdandi db <env> [--db name] [--host H] [-- psql args…]`: psql on a host of the postgres role,
 * interactive with a terminal (engine/interactive.ts), or one statement (`-- -c 'select 1'`) with its
 * result printed. psql runs as the `postgres` OS user and connects over the local socket with peer
 * authentication (the role's pg_hba): no password exists for this session, so none can reach a
 * command line, an environment or a log.
 */
import { checkDbName, postgresHosts, postgresVarsOf } from '../backup/index.js';
import { type ContextOptions, loadRunContext } from '../engine/context.js';
import { pickHost, requireTerminal, runInteractive } from '../engine/interactive.js';
import { runOutputs } from '../engine/outputs.js';
import { contextWalker } from '../engine/walker.js';
import { UserError } from '../util/errors.js';
import { DEFAULT_FORKS } from '../util/pool.js';
import { words } from '../util/shell.js';

export interface DbOptions extends ContextOptions {
  db?: string;
  host?: string;
  json?: boolean;
}

/**
 * The script that becomes psql as the postgres OS user on the role's port, in `db` when given, with
 * the user's arguments. HOME is the postgres user's own (psql's history and .psqlrc).
 */
export function psqlScript(port: number, db: string | undefined, args: string[]): string {
  return [
    'cd / || exit 1',
    `exec ${words('runuser', '-u', 'postgres', '--', 'env')} "HOME=$(getent passwd postgres | cut -d: -f6)" ${words('psql', '-p', String(port), ...(db ? ['-d', db] : []), ...args)}`,
  ].join('\n');
}

export async function db(env: string, args: string[], o: DbOptions): Promise<number> {
  if (o.json) throw new UserError("verdandi db has no --json: its output is psql's (psql --csv, -tA)", 1);
  requireTerminal('verdandi db', args.length > 0);
  if (o.db !== undefined) checkDbName(o.db, '--db');
  const ctx = await loadRunContext(env, o);
  const hosts = postgresHosts(ctx);
  const picked = pickHost(
    hosts.map((h) => h.name),
    'the postgres role',
    [...ctx.inventory.hosts.keys()],
    o.host,
  );
  const host = hosts.find((h) => h.name === picked.host)!;
  const port = (await postgresVarsOf(ctx, [host])).get(host.name)?.postgres_port ?? 5432;
  const events = await runOutputs({ json: false, verbose: false, check: false, warnsToStderr: true });
  const walker = contextWalker(ctx, { command: 'db', events, forks: 1, connections: DEFAULT_FORKS }, [
    host.name,
  ]);
  try {
    if (picked.note) events.emit({ type: 'message', level: 'warn', text: picked.note });
    const runs = await walker.walk(
      [{ host }],
      { maxFailPercentage: 100 },
      async (_t, { conn, signal }): Promise<{ ok: boolean; result: number | UserError }> => {
        events.emit({
          type: 'message',
          level: 'warn',
          text: `db: psql on ${host.name}${o.db ? `, database ${o.db}` : ''}`,
        });
        try {
          const code = await runInteractive(conn, psqlScript(port, o.db, args), signal);
          return { ok: !signal.aborted, result: code };
        } catch (err) {
          if (err instanceof UserError) return { ok: true, result: err };
          throw err;
        }
      },
    );
    const exitCode = await walker.finish();
    const run = runs[0];
    if (run.status !== 'ok' || run.result === undefined) return exitCode;
    if (run.result instanceof UserError) throw run.result;
    return run.result;
  } finally {
    await walker.close();
    events.close();
  }
}
