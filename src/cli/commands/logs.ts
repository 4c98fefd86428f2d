/** `verdandi logs`: a site's logs (or the journal of the roles' units) on every host, followed or not. */
import type { Command } from 'commander';
import { contextOptions, varsOptions } from '../context.js';

export function register(program: Command): void {
  const verbose = () => program.opts().verbose === true;
  varsOptions(
    program
      .command('logs <env> [site]')
      .description(
        "a site's logs on every host that runs it (without a site: the journal of nginx, postgresql, supervisor, docker)",
      )
      .option('-f, --follow', 'go on printing new lines until Ctrl-C')
      .option('--tail <n>', 'lines from the end of each log', '100')
      .option('--since <duration>', 'only lines of the last 30s, 10m, 2h, 1d (not for python and node sites)')
      .option(
        '--grep <regex>',
        'only lines matching this extended regular expression (filtered on the host)',
      ),
  )
    .addHelpText(
      'after',
      '\nEach line is `<host> <source> | <line>` (the source: blue, green, worker-<name>, a swarm replica,\n' +
        'journal). The lines go to stdout (with --json: one JSON object per line), the rest to stderr.\n\n' +
        'Examples:\n  verdandi logs production catalogage --tail 50\n  verdandi logs production catalogage -f --grep "ERROR|Traceback"\n  verdandi logs production --since 1h',
    )
    .action(async (env: string, site: string | undefined, opts) => {
      const { logs } = await import('../../deploy/logs.js');
      process.exitCode = await logs(env, site, { ...(await contextOptions(opts)), verbose: verbose() });
    });
}
