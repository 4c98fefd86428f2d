import type { Command } from 'commander';
import { UserError } from '../../util/errors.js';

export function register(program: Command): void {
  program
    .command('run')
    .description('(being written)')
    .action(() => {
      throw new UserError('verdandi run is not available yet in this build');
    });
}
