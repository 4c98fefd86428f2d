import type { Command } from 'commander';
import { UserError } from '../../util/errors.js';

export function register(program: Command): void {
  program
    .command('deploy')
    .description('(being written)')
    .action(() => {
      throw new UserError('verdandi deploy is not available yet in this build');
    });
}
