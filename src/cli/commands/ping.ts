import { type Command, Option } from 'commander';

export function register(program: Command): void {
  program
    .command('ping <env>')
    .description('reach every host over SSH; exit 3 if any is unreachable')
    .option('--limit <pattern>', 'only these hosts')
    .option('--json', 'print one JSON document on stdout')
    .option('--connect-timeout <seconds>', 'SSH connect timeout', '10')
    .addOption(
      new Option('--host-key-checking <mode>', 'accept-new or off')
        .choices(['accept-new', 'off'])
        .default('accept-new'),
    )
    .action(async (env: string, opts) => {
      const { ping } = await import('../../engine/ping.js');
      process.exitCode = await ping(env, opts);
    });
}
