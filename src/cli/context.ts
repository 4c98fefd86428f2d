/**
 * The command-line options shared by the commands that touch hosts: how to connect, extra vars, the
 * options of a run (check, diff, tags, forks...), and the parsing of a positive integer option.
 */
import { type Command, Option } from 'commander';
import { UserError } from '../util/errors.js';

export interface CommonRunOptions {
  check?: boolean;
  diff?: boolean;
  limit?: string;
  tags?: string;
  forks?: string;
  json?: boolean;
  var?: string[];
  vaultPasswordFile?: string;
  hostKeyChecking?: 'accept-new' | 'off';
  askBecomePass?: boolean;
  connectTimeout?: string;
  keepalive?: string;
  keepaliveCount?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** How to reach the hosts: the options of every command that connects (ping, facts, backup...). */
export function connectionOptions(cmd: Command): Command {
  return cmd
    .option('--limit <pattern>', 'only these hosts: a host, group, glob, comma list, !exclusion')
    .option('--json', 'print one JSON document on stdout instead of lines')
    .addOption(
      new Option(
        '--host-key-checking <mode>',
        'accept-new: record unknown host keys, refuse changed ones; off: never check',
      )
        .choices(['accept-new', 'off'])
        .default('accept-new'),
    )
    .option('--connect-timeout <seconds>', 'SSH connect timeout', '10')
    .option('--keepalive <seconds>', 'SSH keepalive interval: a silent host is probed this often', '5')
    .option(
      '--keepalive-count <n>',
      'unanswered keepalives before a host is declared lost (lost after about interval × (n + 1))',
      '2',
    );
}

/** Plus what a command that reads vars and secrets needs (deploy, rollback, status, backup...). */
export function varsOptions(cmd: Command): Command {
  return connectionOptions(cmd)
    .option('--var <key=value>', 'extra var, highest precedence (repeatable)', collect, [])
    .option('--vault-password-file <file>', 'file holding the secrets password')
    .option('-K, --ask-become-pass', 'prompt for the sudo password of become hosts');
}

/** Plus what a run of tasks needs (provision, run). */
export function commonRunOptions(cmd: Command, { check = true }: { check?: boolean } = {}): Command {
  if (check) {
    cmd.option('--check', 'probe only: show what would change, change nothing');
    cmd.option('--diff', 'show unified diffs of the files that change (secrets print as [secret])');
  }
  return varsOptions(cmd)
    .option('--tags <tags>', 'only tasks and roles with one of these tags (comma separated)')
    .option('--forks <n>', 'hosts run in parallel', '20');
}

export function parsePositiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new UserError(`${name} must be a positive whole number, got "${value}"`, 1);
  }
  return n;
}
