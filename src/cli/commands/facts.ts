import type { Command } from 'commander';
import { connectionOptions, forksOption } from '../context.js';

export function register(program: Command): void {
  forksOption(
    connectionOptions(
      program
        .command('facts <env>')
        .description('what the engine sees of each host: OS, architecture, memory, packages, services'),
    ),
    'hosts reached in parallel (connections open at once)',
  ).action(async (env: string, opts) => {
    const { facts } = await import('../../commands/ping.js');
    process.exitCode = await facts(env, opts);
  });
}
