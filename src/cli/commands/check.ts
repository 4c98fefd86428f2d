import type { Command } from 'commander';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function register(program: Command): void {
  program
    .command('check <env> [playbooks...]')
    .description(
      'check everything knowable without contacting a host: inventory, roles, vars, templates, tasks(), secrets',
    )
    .option('--limit <pattern>', 'only these hosts: a host, group, glob, comma list, !exclusion')
    .option('--var <key=value>', 'extra var, highest precedence (repeatable)', collect, [])
    .option('--vault-password-file <file>', 'file holding the secrets password')
    .option(
      '--json',
      'print one JSON document on stdout: {ok, errors, notes, hosts, units, tasks, durationMs}',
    )
    .action(async (env: string, playbooks: string[], opts) => {
      const { check } = await import('../../engine/check.js');
      process.exitCode = await check(env, playbooks, opts);
    });
}
