import type { Command } from 'commander';
import { UserError } from '../../util/errors.js';

export function register(program: Command): void {
  program
    .command('backup')
    .description('(being written)')
    .action(() => {
      throw new UserError('verdandi backup is not available yet in this build');
    });
}
