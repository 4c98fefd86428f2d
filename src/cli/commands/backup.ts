/**
 * `verdandi backup <env>` and `verdandi restore <env>`: PostgreSQL dumps of the hosts that have the
 * `postgres` role, made with the same script the role's daily timer runs. The implementation is loaded
 * only when one of them runs.
 */
import type { Command } from 'commander';
import { contextOptions, hostWalkOptions, varsOptions } from '../context.js';
import { lockOptions } from './deploy.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** The options both commands share: which hosts, how to reach them, how to open the secrets. */
const connectionOptions = varsOptions;

export function register(program: Command): void {
  connectionOptions(
    program
      .command('backup')
      .description('dump the PostgreSQL databases of every host with the postgres role now (pg_dump -Fc)')
      .argument('<env>', 'environment name under inventories/, or an inventory file')
      .option(
        '--db <name>',
        'only this database (repeatable; default: every database the role manages)',
        collect,
        [],
      )
      .option('--download <dir>', 'also copy each new dump to <dir>/<host>/ on this machine'),
  ).action(async (env: string, opts) => {
    const { backup } = await import('../../backup/index.js');
    process.exitCode = await backup(env, await contextOptions(opts));
  });

  lockOptions(
    connectionOptions(
      program
        .command('restore')
        .description('restore a pg_dump -Fc file into a database (pg_restore --clean, in one transaction)')
        .argument('<env>', 'environment name under inventories/, or an inventory file')
        .requiredOption('--db <name>', 'database to restore into (it must exist; its content is replaced)')
        .requiredOption('--from <file>', 'dump file on this machine (or on the host with --remote)')
        .option('--remote', '--from is a path on the host (e.g. under /var/backups/postgresql)')
        .option('--yes', 'do not ask for confirmation'),
    ),
  ).action(async (env: string, opts) => {
    const { restore } = await import('../../backup/index.js');
    const o = await hostWalkOptions(await contextOptions(opts));
    process.exitCode = await restore(env, { ...o, db: opts.db, from: opts.from });
  });
}
