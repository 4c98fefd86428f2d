import type { Command } from 'commander';
import { UserError } from '../../util/errors.js';

export function register(program: Command): void {
  program
    .command('testhost')
    .description('(being written)')
    .action(() => {
      throw new UserError('verdandi testhost is not available yet in this build');
    });
}
