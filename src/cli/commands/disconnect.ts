/** `verdandi disconnect`: stop the connection keeper of `--persist` now (src/commands/disconnect.ts). */
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('disconnect')
    .description('close the SSH connections kept by --persist and stop their keeper now')
    .action(async () => {
      const { disconnect } = await import('../../commands/disconnect.js');
      process.exitCode = await disconnect();
    });
}
