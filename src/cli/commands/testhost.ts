/**
 * `verdandi testhost up|down|list|box`: throwaway local Debian machines for tests and trials. Only the
 * options live here; the implementation (src/testhost) is imported when a subcommand runs.
 */
import type { Command } from 'commander';
import { VM_ADDRESS } from '../../testhost/naming.js';

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
        'running host, so `verdandi ping local` reaches them.\n' +
        '\n' +
        'A whole VM (its own kernel) instead: `testhost box` builds its image once, `testhost up --vm` boots it\n' +
        `under qemu at ${VM_ADDRESS} (user vagrant with sudo), \`testhost down --vm\` removes it.`,
    );

  testhost
    .command('up')
    .description('boot test hosts (a running one is reused) and wait until sshd and systemd are up')
    .argument('[names...]', 'host names (default: test1, or test1..testN with --count)')
    .option('-c, --count <n>', 'boot N hosts: NAME1..NAMEN (NAME defaults to "test")')
    .option('--vm', `boot the VM (testhost box's image, under qemu) at ${VM_ADDRESS} instead`)
    .action(async (names: string[], options: { count?: string; vm?: boolean }) => {
      const { upCommand } = await import('../../testhost/cli.js');
      await upCommand(names, options);
    });

  testhost
    .command('down')
    .description('power off test hosts and remove everything they used')
    .argument('[names...]', 'host names')
    .option('-a, --all', 'every test host, and whatever a crashed run left behind')
    .option('--vm', 'the VM of `testhost up --vm` (its qemu, disk, tap interface and rules)')
    .action(async (names: string[], options: { all?: boolean; vm?: boolean }) => {
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

  testhost
    .command('box')
    .description(
      'build the VM image from Debian packages (once, cached) and register it as a Vagrant box for libvirt',
    )
    .action(async () => {
      const { boxCommand } = await import('../../testhost/cli.js');
      await boxCommand();
    });
}
