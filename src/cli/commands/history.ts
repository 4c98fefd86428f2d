/** `verdandi history` and `verdandi report`: the runs recorded in this project (see src/history/). */
import type { Command } from 'commander';
import { hostKeyCheckingOption, positiveInt } from '../context.js';

export function register(program: Command): void {
  const history = program
    .command('history')
    .description(
      'recorded runs, newest first (provision, run, deploy, rollback, backup, restore, exec, lock release)',
    )
    .argument('[env]', 'only runs of this environment')
    .option('--host <name>', 'only runs that touched this host')
    .option(
      '--status <status>',
      'only runs that ended so: ok, changed, failed, unreachable, interrupted, error, crashed',
    )
    .option('--command <name>', 'only runs of this command (provision, deploy...)')
    .option('--last <n>', 'how many runs', '20')
    .option('--json', 'one JSON document')
    .action(async (env: string | undefined, opts) => {
      const { listRuns } = await import('../../history/commands.js');
      process.exitCode = await listRuns(env, opts);
    });
  history
    .command('show <id>')
    .description('one run as it was printed: every task per host, diffs, failures, the recap')
    .option('--json', 'one JSON document')
    .action(async (id: string, opts) => {
      const { showRun } = await import('../../history/commands.js');
      // `--json` after `show <id>` or before it (`history --json show 3`).
      process.exitCode = await showRun(id, { json: opts.json || history.opts().json });
    });
  history
    .command('import')
    .description(
      'write the runs waiting in .verdandi/history-spool into the history (runs do it by themselves)',
    )
    .option('--quiet', 'print nothing when it works')
    .action(async (opts) => {
      const { importRuns } = await import('../../history/commands.js');
      process.exitCode = await importRuns(opts);
    });

  program
    .command('report')
    .description('write the run history as one self-contained HTML page (.verdandi/report.html)')
    .option('--out <file>', 'where to write it', '.verdandi/report.html')
    .option('--env <env>', 'only runs of this environment')
    .option('--details <n>', 'the newest n runs carry their hosts, tasks, diffs and failures', '300')
    .option('--open', 'open it in a browser (prints its path when there is no desktop)')
    .option('--serve [port]', 'serve it on 127.0.0.1 (fresh at each load) until Ctrl-C')
    .option(
      '--hosts',
      "also read the deploy logs of the --env environment's hosts (deploys made from any machine)",
    )
    .option('--limit <pattern>', 'with --hosts: only these hosts')
    .option('--vault-password-file <file>', 'with --hosts: file holding the secrets password')
    .addOption(hostKeyCheckingOption())
    .option(
      '--connect-timeout <seconds>',
      'with --hosts: how long to wait for each host',
      positiveInt('--connect-timeout'),
      5,
    )
    .action(async (opts) => {
      const { report } = await import('../../report/command.js');
      process.exitCode = await report(opts);
    });
}
