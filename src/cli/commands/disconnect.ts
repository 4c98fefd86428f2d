/**
 * `verdandi disconnect`: stop the connection keeper of `--persist` now (src/commands/disconnect.ts),
 * and the spare engine waiting for the next command (src/cli/warm/).
 */
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('disconnect')
    .description('close the SSH connections kept by --persist and stop their keeper and spare engine now')
    .action(async () => {
      const { disconnect } = await import('../../commands/disconnect.js');
      process.exitCode = await disconnect();
      const { stopSpare } = await import('../warm/client.js');
      if (await stopSpare()) process.stdout.write('the spare engine stopped\n');
    });
}
