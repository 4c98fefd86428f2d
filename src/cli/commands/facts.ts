import { type Command, Option } from 'commander';

export function register(program: Command): void {
  program
    .command('facts <env>')
    .description('what the engine sees of each host: OS, architecture, memory, packages, services')
    .option('--limit <pattern>', 'only these hosts')
    .option('--json', 'print JSON instead of a table')
    .option('--connect-timeout <seconds>', 'SSH connect timeout', '10')
    .addOption(
      new Option('--host-key-checking <mode>', 'accept-new or off')
        .choices(['accept-new', 'off'])
        .default('accept-new'),
    )
    .action(async (env: string, opts) => {
      const { facts } = await import('../../engine/ping.js');
      process.exitCode = await facts(env, opts);
    });
}
