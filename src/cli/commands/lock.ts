/** `verdandi lock status|release <env>`: the hosts' deploy locks (src/commands/lock.ts). */
import type { Command } from 'commander';
import { contextOptions, forksOption, varsOptions } from '../context.js';

export function register(program: Command): void {
  const verbose = () => program.opts().verbose === true;
  const lock = program
    .command('lock')
    .description("the hosts' deploy locks: who holds them (status), remove them (release)");
  forksOption(
    varsOptions(
      lock
        .command('status')
        .description("who holds each host's deploy lock, since when, from which command, alive or dead")
        .argument('<env>', 'environment name under inventories/, or an inventory file'),
    ),
    'hosts read in parallel',
  ).action(async (env: string, opts) => {
    const { lockStatus } = await import('../../commands/lock.js');
    process.exitCode = await lockStatus(env, { ...(await contextOptions(opts)), verbose: verbose() });
  });
  forksOption(
    varsOptions(
      lock
        .command('release')
        .description('remove the deploy locks held on the hosts (asks first; warns when a holder is alive)')
        .argument('<env>', 'environment name under inventories/, or an inventory file')
        .option('--yes', 'do not ask for confirmation'),
    ),
    'hosts worked on in parallel',
  ).action(async (env: string, opts) => {
    const { lockRelease } = await import('../../commands/lock.js');
    process.exitCode = await lockRelease(env, { ...(await contextOptions(opts)), verbose: verbose() });
  });
}
