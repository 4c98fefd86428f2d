/**
 * `verdandi console` (a terminal in a site's live release) and `verdandi db` (psql on the postgres
 * host). The implementations are loaded only when one of them runs.
 */
import type { Command } from 'commander';
import { contextOptions, hostWalkOptions, varsOptions } from '../context.js';

export function register(program: Command): void {
  const verbose = () => program.opts().verbose === true;

  varsOptions(
    program
      .command('console')
      .description(
        "a terminal in a site's live release: its directory, .env and virtualenv as the app user, or its container",
      )
      .argument('<env>', 'environment name under inventories/, or an inventory file')
      .argument('<site>', 'the site (its name in the inventory)')
      .argument('[command...]', "after --: the command to run (default: the site's `console`, else a shell)")
      .option(
        '--host <name>',
        'the host to open it on (default: the first host of the site; swarm: the first node that runs a web task)',
      )
      .addHelpText(
        'after',
        `
Without a terminal (stdin or stdout redirected), give the command after --: it runs without one,
its output streamed. The exit code is the remote command's.

Examples:
  verdandi console prod catalogage
  verdandi console prod catalogage --host web2 -- python manage.py dbshell
  verdandi console prod catalogage -- env | grep ^DJANGO_`,
      ),
  ).action(async (env: string, site: string, command: string[], opts) => {
    const { consoleCommand } = await import('../../deploy/console.js');
    process.exitCode = await consoleCommand(env, site, command, {
      ...(await hostWalkOptions(await contextOptions(opts))),
      verbose: verbose(),
    });
  });

  varsOptions(
    program
      .command('db')
      .description('psql on the host of the postgres role, as the postgres user (peer authentication)')
      .argument('<env>', 'environment name under inventories/, or an inventory file')
      .argument('[psql-args...]', "after --: psql's arguments (-c 'select 1', -f, -l...)")
      .option('--db <name>', 'the database to connect to (default: postgres)')
      .option('--host <name>', 'the host to open it on (default: the first host with the postgres role)')
      .addHelpText(
        'after',
        `
Without a terminal (stdin or stdout redirected), give psql's arguments after --. The exit code is
psql's.

Examples:
  verdandi db prod --db catalogage
  verdandi db prod --db catalogage -- -c 'select count(*) from visits'`,
      ),
  ).action(async (env: string, args: string[], opts) => {
    const { db } = await import('../../commands/db.js');
    process.exitCode = await db(env, args, await contextOptions(opts));
  });
}
