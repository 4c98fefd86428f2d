/** `verdandi maintenance on|off`: a site's maintenance page by hand, under the deploy lock. */
import type { Command } from 'commander';
import { contextOptions, hostWalkOptions, varsOptions } from '../context.js';
import { lockOptions } from './deploy.js';

export function register(program: Command): void {
  const verbose = () => program.opts().verbose === true;
  varsOptions(
    lockOptions(
      program
        .command('maintenance <on|off> <env> <site>')
        .description(
          'switch the maintenance page of a site on or off on every host that runs it (nginx answers 503)',
        )
        .option(
          '--message <text>',
          "with on: the text of the page (HTML-escaped); default: the nginx role's page",
        ),
    ),
  )
    .addHelpText(
      'after',
      '\nOn twice is one change. A deploy that ends leaves a maintenance switched on here on;\n' +
        '`verdandi status` shows it and since when.\n\n' +
        'Examples:\n  verdandi maintenance on production catalogage --message "Back at 14:00."\n' +
        '  verdandi maintenance off production catalogage',
    )
    .action(async (state: string, env: string, site: string, opts) => {
      const { maintenance, parseSwitch } = await import('../../deploy/maintenance.js');
      process.exitCode = await maintenance(parseSwitch(state), env, site, {
        ...(await hostWalkOptions(await contextOptions(opts))),
        verbose: verbose(),
      });
    });
}
