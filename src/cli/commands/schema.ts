/**
 * `verdandi schema [env]`: the JSON Schema of the inventory format with every role's vars, for the
 * YAML language server of editors (completion and errors while writing inventories); with --events,
 * the JSON Schema of the `--json` output of the commands that run on hosts.
 */
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('schema [env]')
    .description(
      "write the JSON Schema of inventories with every role's vars, for editor completion (env: picks the project)",
    )
    .option('-o, --output <file>', 'write only the inventory schema, there (- for standard output)')
    .option('--events', 'print the JSON Schema of the --json output of the commands that run on hosts')
    .addHelpText(
      'after',
      '\nWrites inventories/inventory.schema.json and vars.schema.json of the project (the current folder,\n' +
        'or the project of <env>). An inventory uses the first with this first line (`verdandi init` writes\n' +
        'it), a group_vars/ or host_vars/ file the second:\n' +
        '  # yaml-language-server: $schema=./inventory.schema.json\n' +
        '  # yaml-language-server: $schema=../vars.schema.json\n' +
        'Run it again after adding a role or a var.',
    )
    .action(async (env: string | undefined, options: { output?: string; events?: boolean }) => {
      if (options.events) {
        const { eventsSchema } = await import('../../engine/events-schema.js');
        process.stdout.write(`${JSON.stringify(eventsSchema(), null, 2)}\n`);
        return;
      }
      const { writeSchema } = await import('../../project/schema.js');
      for (const file of await writeSchema(env, { output: options.output })) {
        process.stdout.write(`wrote ${file}\n`);
      }
    });
}
