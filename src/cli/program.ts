/**
 * The `verdandi` command line (main.ts starts it). Each command lives in `commands/<name>.ts` and
 * exports `register`, which declares its options and lazily imports its implementation: only the
 * implementation of the command named on the command line is loaded, and the run history's recorder
 * only for a recorded command (recording.ts). The `register` modules themselves are small and imported
 * here statically: the build bundles them into this module's chunk (scripts/bundle.js), where loading
 * each as a chunk of its own cost `--help` more than their code.
 */
import { Command } from 'commander';
import { redact } from '../util/redact.js';
import { exitWhenFlushed, jsonDocumentPrinted } from '../util/stdio.js';
import { verdandiVersion } from '../util/user-code.js';
import * as backupCommand from './commands/backup.js';
import * as checkCommand from './commands/check.js';
import * as consoleCommand from './commands/console.js';
import * as deployCommand from './commands/deploy.js';
import * as disconnectCommand from './commands/disconnect.js';
import * as execCommand from './commands/exec.js';
import * as factsCommand from './commands/facts.js';
import * as historyCommand from './commands/history.js';
import * as initCommand from './commands/init.js';
import * as lockCommand from './commands/lock.js';
import * as logsCommand from './commands/logs.js';
import * as maintenanceCommand from './commands/maintenance.js';
import * as pingCommand from './commands/ping.js';
import * as provisionCommand from './commands/provision.js';
import * as runCommand from './commands/run.js';
import * as schemaCommand from './commands/schema.js';
import * as secretsCommand from './commands/secrets.js';
import * as testhostCommand from './commands/testhost.js';
import { persistFromEnv, persistSeconds } from './context.js';
import { errorDocument, handleError } from './errors.js';
import type { Recording } from './recording.js';
import { commandEnded } from './warm/handover.js';

type Register = (program: Command) => void;

/** Every command module, in the order `--help` lists them, with the top-level commands it declares. */
const COMMANDS: Array<[names: string[], module: { register: Register }]> = [
  [['ping'], pingCommand],
  [['provision'], provisionCommand],
  [['deploy', 'rollback', 'status', 'demo'], deployCommand],
  [['logs'], logsCommand],
  [['maintenance'], maintenanceCommand],
  [['run'], runCommand],
  [['exec'], execCommand],
  [['lock'], lockCommand],
  [['check'], checkCommand],
  [['facts'], factsCommand],
  [['secrets'], secretsCommand],
  [['backup', 'restore'], backupCommand],
  [['console', 'db'], consoleCommand],
  [['disconnect'], disconnectCommand],
  [['testhost'], testhostCommand],
  [['init'], initCommand],
  [['schema'], schemaCommand],
  [['history', 'report'], historyCommand],
];

/**
 * The program with its options and commands: only the command named in `args` (the arguments after
 * `verdandi`) when there is one, every command otherwise (`--help` lists them all).
 */
export function createProgram(args: readonly string[]): Command {
  // The command named on the command line: the first argument that is not an option.
  const named = args.find((arg) => !arg.startsWith('-'));
  const only = COMMANDS.find(([names]) => named !== undefined && names.includes(named));

  const program = new Command();
  program
    .name('verdandi')
    .description('Typed, agentless provisioning and deployment over SSH.')
    .version(verdandiVersion())
    .option('-v, --verbose', 'show stack traces and the commands sent to hosts')
    .option('--ssh-config <file>', 'OpenSSH client configuration to follow instead of ~/.ssh/config')
    .option(
      '--persist <seconds>',
      'keep the SSH connections open this long after the run, for the next one (0: off; default: $VERDANDI_PERSIST)',
      persistSeconds('--persist'),
    )
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  for (const [, command] of only ? [only] : COMMANDS) command.register(program);
  return program;
}

/** Runs the command line `argv` (process.argv: node, the script, then the arguments) to its exit. */
export async function runCli(argv: string[]): Promise<void> {
  const program = createProgram(argv.slice(2));

  // provision, run, deploy, rollback, backup, restore, exec and lock release are recorded in the run history.
  let recording: Recording | undefined;
  /** The command run, for the `--json` error document (see errorDocument). */
  let action: { name: string; env?: string; json: boolean } | undefined;
  /** `--persist`'s seconds for this command, when given. */
  let persist: number | undefined;
  program.hook('preAction', async (_program, actionCommand) => {
    const [first] = actionCommand.args;
    // A subcommand is named with its parent (`lock status`), as the user typed it.
    const parent =
      actionCommand.parent && actionCommand.parent !== program ? `${actionCommand.parent.name()} ` : '';
    action = {
      name: `${parent}${actionCommand.name()}`,
      env: first,
      json: actionCommand.opts().json === true,
    };
    // A global option: the command's own options carry it to where hosts are connected to.
    const sshConfig = program.opts().sshConfig;
    if (sshConfig !== undefined) actionCommand.setOptionValue('sshConfig', sshConfig);
    persist = program.opts().persist ?? persistFromEnv();
    if (persist) {
      // The keeper's directory and socket are checked before anything is loaded or any host contacted.
      const { checkKeeperPlace } = await import('../connection/keeper-socket.js');
      checkKeeperPlace();
      actionCommand.setOptionValue('persist', persist);
    }
    try {
      const { startRecording } = await import('./recording.js');
      recording = await startRecording(program, actionCommand, argv.slice(2));
    } catch (err) {
      // Recording never stops a run.
      process.stderr.write(`warning: this run is not recorded: ${redact((err as Error).message)}\n`);
    }
  });

  let failure: unknown;
  try {
    await program.parseAsync(argv);
  } catch (err) {
    failure = err;
    process.exitCode = handleError(err, program.opts().verbose === true || argv.includes('-v'));
    if (action?.json && !jsonDocumentPrinted()) {
      const document = errorDocument(action.name, action.env, Number(process.exitCode), err);
      process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    }
  }
  await recording?.finish(Number(process.exitCode ?? 0), failure);
  // Served by a spare engine: the user's process ends now, with this code (cli/warm/).
  commandEnded(Number(process.exitCode ?? 0));
  if (persist) {
    // The next command of the same kind finds an engine already loaded (cli/warm/successor.ts).
    const { startSpare } = await import('./warm/successor.js');
    await startSpare(argv, persist).catch(() => undefined);
  }
  // The command is done: do not wait for connections still opening (a run stopped by a user error
  // before it needed them) or idle keep-alive timers; only for the output to be written out.
  await exitWhenFlushed(Number(process.exitCode ?? 0));
}
