/**
 * `verdandi deploy`, `rollback`, `status` and `demo`. The implementations live in src/deploy/ and are
 * imported only when the command runs.
 */
import type { Command } from 'commander';
import { contextOptions, hostWalkOptions, varsOptions } from '../context.js';

/** The options deploy, rollback and status share with the other commands that touch hosts. */
function hostOptions(cmd: Command): Command {
  return varsOptions(cmd.option('--site <names>', 'only these sites (comma separated)'));
}

/**
 * The host's deploy lock, for every command that takes it (deploy, rollback, restore). A lock whose
 * holder is dead (its process gone on this machine, or not refreshed for 10 minutes) is taken over
 * without --break-lock.
 */
export function lockOptions(cmd: Command): Command {
  return cmd
    .option('--lock-wait <seconds>', 'how long to wait for another deploy on the same host', '120')
    .option('--break-lock', "remove another deploy's lock first (it is printed)");
}

function releaseOptions(cmd: Command): Command {
  return lockOptions(
    cmd
      .option('--check', 'show what would happen, change nothing')
      .option('--serial <n>', 'hosts at once: a number or a percentage (default: 1 when there are several)'),
  );
}

export function register(program: Command): void {
  const verbose = () => program.opts().verbose === true;

  hostOptions(
    releaseOptions(
      program
        .command('deploy <env>')
        .description(
          'deploy the sites of each host at a branch, tag or commit: atomic, health-gated, zero-downtime',
        )
        .option('--branch <ref>', "branch, tag or sha to deploy (default: each site's branch)")
        .option('--if-changed', 'do nothing on hosts that already run that commit (for cron/CI)'),
    ),
  ).action(async (env: string, opts) => {
    const { deploy } = await import('../../deploy/deploy.js');
    process.exitCode = await deploy(env, {
      ...(await hostWalkOptions(await contextOptions(opts))),
      verbose: verbose(),
    });
  });

  hostOptions(
    releaseOptions(
      program
        .command('rollback <env>')
        .description('switch each site back to its previous release (or --to), with the same health check')
        .option('--to <release>', 'release to go back to (a name under releases/, see `verdandi status`)'),
    ),
  ).action(async (env: string, opts) => {
    const { rollback } = await import('../../deploy/rollback.js');
    process.exitCode = await rollback(env, {
      ...(await hostWalkOptions(await contextOptions(opts))),
      verbose: verbose(),
    });
  });

  hostOptions(
    program
      .command('status <env>')
      .description('what runs where: release, branch, commit, processes, nginx, health check, free disk'),
  ).action(async (env: string, opts) => {
    const { status } = await import('../../deploy/status.js');
    process.exitCode = await status(env, {
      ...(await hostWalkOptions(await contextOptions(opts))),
      verbose: verbose(),
    });
  });

  program
    .command('demo')
    .description('boot a local test host, provision it and deploy the bundled sample site')
    .option('--host <name>', 'name of the test host', 'demo')
    .option(
      '--dir <dir>',
      'project directory the demo writes (inventory, sample repository)',
      '.verdandi/demo',
    )
    .action(async (opts) => {
      const { demo } = await import('../../commands/demo.js');
      process.exitCode = await demo({ host: opts.host, dir: opts.dir, verbose: verbose() });
    });
}
