import type { Command } from 'commander';
import { connectionOptions, forksOption } from '../context.js';

export function register(program: Command): void {
  forksOption(
    connectionOptions(
      program.command('ping <env>').description('reach every host over SSH; exit 3 if any is unreachable'),
    ),
    'hosts reached in parallel (connections open at once)',
  ).action(async (env: string, opts) => {
    const { ping } = await import('../../commands/ping.js');
    process.exitCode = await ping(env, { ...opts, verbose: program.opts().verbose });
  });
}
