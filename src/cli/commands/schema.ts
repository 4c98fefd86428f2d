/**
 * `verdandi schema [env]`: the JSON Schema of the inventory format with every role's vars, for the
 * YAML language server of editors (completion and errors while writing inventories).
 */
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('schema [env]')
    .description(
      "write the JSON Schema of inventories with every role's vars, for editor completion (env: picks the project)",
    )
    .option('-o, --output <file>', 'where to write it (- for standard output)')
    .addHelpText(
      'after',
      '\nWrites inventories/inventory.schema.json of the project (the current folder, or the project of <env>).\n' +
        'An inventory uses it with this first line (`verdandi init` writes it):\n' +
        '  # yaml-language-server: $schema=./inventory.schema.json\n' +
        'Run it again after adding a role or a var.',
    )
    .action(async (env: string | undefined, options: { output?: string }) => {
      const { writeSchema } = await import('../../project/schema.js');
      const written = await writeSchema(env, { output: options.output });
      if (written !== '-') process.stdout.write(`wrote ${written}\n`);
    });
}
