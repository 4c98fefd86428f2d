import type { Command } from 'commander';
import { commonRunOptions, contextOptions } from '../context.js';

export function register(program: Command): void {
  commonRunOptions(
    program
      .command('run <env> <playbook>')
      .description('run a TypeScript playbook (export default definePlaybook({ plays: [...] }))'),
  ).action(async (env: string, playbook: string, opts) => {
    const { runPlaybook } = await import('../../commands/run.js');
    process.exitCode = await runPlaybook(env, playbook, {
      ...(await contextOptions(opts)),
      verbose: program.opts().verbose,
    });
  });
}
