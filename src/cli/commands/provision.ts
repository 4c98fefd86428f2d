import type { Command } from 'commander';
import { commonRunOptions, contextOptions } from '../context.js';

export function register(program: Command): void {
  commonRunOptions(
    program
      .command('provision <env>')
      .description(
        "apply the roles of each host's groups (env: a name under inventories/ or an inventory file)",
      ),
  ).action(async (env: string, opts) => {
    const { provision } = await import('../../commands/provision.js');
    process.exitCode = await provision(env, {
      ...(await contextOptions(opts)),
      verbose: program.opts().verbose,
    });
  });
}
