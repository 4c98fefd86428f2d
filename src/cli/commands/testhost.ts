/**
 * `verdandi testhost up|down|list`: throwaway local Debian machines for tests and trials. Only the
 * options live here; the implementation (src/testhost) is imported when a subcommand runs.
 */
import type { Command } from 'commander';

export function register(program: Command): void {
  const testhost = program
    .command('testhost')
    .description(
      'throwaway local Debian 12 machines (systemd-nspawn, sshd at 10.231.N.2) for tests and trials',
    )
    .addHelpText(
      'after',
      '\nNeeds Linux, root, debootstrap, systemd-nspawn and iptables. The base image is built once under\n' +
        '$VERDANDI_CACHE (default /var/cache/verdandi). After up/down, inventories/local.yml lists every\n' +
        'running host, so `verdandi ping local` reaches them.',
    );

  testhost
    .command('up')
    .description('boot test hosts (a running one is reused) and wait until sshd and systemd are up')
    .argument('[names...]', 'host names (default: test1, or test1..testN with --count)')
    .option('-c, --count <n>', 'boot N hosts: NAME1..NAMEN (NAME defaults to "test")')
    .action(async (names: string[], options: { count?: string }) => {
      const { upCommand } = await import('../../testhost/cli.js');
      await upCommand(names, options);
    });

  testhost
    .command('down')
    .description('power off test hosts and remove everything they used')
    .argument('[names...]', 'host names')
    .option('-a, --all', 'every test host, and whatever a crashed run left behind')
    .action(async (names: string[], options: { all?: boolean }) => {
      const { downCommand } = await import('../../testhost/cli.js');
      await downCommand(names, options);
    });

  testhost
    .command('list')
    .description('show the test hosts')
    .option('--json', 'one JSON document on stdout')
    .action(async (options: { json?: boolean }) => {
      const { listCommand } = await import('../../testhost/cli.js');
      await listCommand(options);
    });
}
