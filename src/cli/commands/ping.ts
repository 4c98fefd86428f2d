import type { Command } from 'commander';
import { connectionOptions } from '../context.js';

export function register(program: Command): void {
  connectionOptions(
    program.command('ping <env>').description('reach every host over SSH; exit 3 if any is unreachable'),
  )
    .option('--forks <n>', 'hosts reached in parallel (connections open at once)', '20')
    .action(async (env: string, opts) => {
      const { ping } = await import('../../engine/ping.js');
      process.exitCode = await ping(env, opts);
    });
}
