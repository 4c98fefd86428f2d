import type { Command } from 'commander';
import { connectionOptions } from '../context.js';

export function register(program: Command): void {
  connectionOptions(
    program
      .command('facts <env>')
      .description('what the engine sees of each host: OS, architecture, memory, packages, services'),
  )
    .option('--forks <n>', 'hosts reached in parallel (connections open at once)', '20')
    .action(async (env: string, opts) => {
      const { facts } = await import('../../engine/ping.js');
      process.exitCode = await facts(env, opts);
    });
}
