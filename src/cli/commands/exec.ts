/** `verdandi exec <env> -- <command…>`: an ad-hoc command on the hosts (src/commands/exec.ts). */
import type { Command } from 'commander';
import { contextOptions, forksOption, varsOptions } from '../context.js';

export function register(program: Command): void {
  const verbose = () => program.opts().verbose === true;
  forksOption(
    varsOptions(
      program
        .command('exec')
        .description(
          "run one shell command on the selected hosts in parallel: each host's output, then the exit codes",
        )
        .argument('<env>', 'environment name under inventories/, or an inventory file')
        .argument('<command...>', 'the command, after `--` (several words are joined by spaces)')
        .option('--stream', 'print lines prefixed with the host as they come (stderr merged into stdout)'),
    ),
    'hosts run in parallel',
  ).action(async (env: string, command: string[], opts) => {
    const { execCommand } = await import('../../commands/exec.js');
    process.exitCode = await execCommand(env, command, {
      ...(await contextOptions(opts)),
      verbose: verbose(),
    });
  });
}
