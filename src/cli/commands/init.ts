/**
 * `verdandi init [dir]`: scaffold an ops project (inventories, a role, a playbook, secrets/, editor
 * set-up), like `kamal init`. Nothing that exists is overwritten.
 */
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('init [dir]')
    .description('scaffold an ops project in dir (default: here); files that exist are kept as they are')
    .action(async (dir: string | undefined) => {
      const { initCommand } = await import('../../project/init.js');
      await initCommand(dir ?? '.');
    });
}
