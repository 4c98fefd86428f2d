/**
 * The `verdandi` command line. Each command lives in `commands/<name>.ts` and exports `register`,
 * which declares its options and lazily imports its implementation. Only the module of the command
 * named on the command line is loaded (all of them for `--help`, `help` or an unknown command), and
 * the run history's recorder only for a recorded command (recording.ts): `verdandi check` starts
 * without the rest.
 */
import { Command } from 'commander';
import { redact } from '../util/redact.js';
import { verdandiVersion } from '../util/user-code.js';
import { handleError } from './errors.js';
import type { Recording } from './recording.js';

type Register = (program: Command) => void;

/** Every command module, in the order `--help` lists them, with the top-level commands it declares. */
const COMMANDS: Array<[names: string[], load: () => Promise<{ register: Register }>]> = [
  [['ping'], () => import('./commands/ping.js')],
  [['provision'], () => import('./commands/provision.js')],
  [['deploy', 'rollback', 'status', 'demo'], () => import('./commands/deploy.js')],
  [['run'], () => import('./commands/run.js')],
  [['check'], () => import('./commands/check.js')],
  [['facts'], () => import('./commands/facts.js')],
  [['secrets'], () => import('./commands/secrets.js')],
  [['backup', 'restore'], () => import('./commands/backup.js')],
  [['testhost'], () => import('./commands/testhost.js')],
  [['init'], () => import('./commands/init.js')],
  [['schema'], () => import('./commands/schema.js')],
  [['history', 'report'], () => import('./commands/history.js')],
];

/** The command named on the command line: the first argument that is not an option. */
const named = process.argv.slice(2).find((arg) => !arg.startsWith('-'));
const only = COMMANDS.find(([names]) => named !== undefined && names.includes(named));

const program = new Command();
program
  .name('verdandi')
  .description('Typed, agentless provisioning and deployment over SSH.')
  .version(verdandiVersion())
  .option('-v, --verbose', 'show stack traces and the commands sent to hosts')
  .showHelpAfterError('(add --help for usage)')
  .exitOverride();

for (const [, load] of only ? [only] : COMMANDS) (await load()).register(program);

// provision, run, deploy, rollback, backup and restore are recorded in the run history.
let recording: Recording | undefined;
program.hook('preAction', async (_program, action) => {
  try {
    const { startRecording } = await import('./recording.js');
    recording = await startRecording(program, action, process.argv.slice(2));
  } catch (err) {
    // Recording never stops a run.
    process.stderr.write(`warning: this run is not recorded: ${redact((err as Error).message)}\n`);
  }
});

let failure: unknown;
try {
  await program.parseAsync(process.argv);
} catch (err) {
  failure = err;
  process.exitCode = handleError(err, program.opts().verbose === true || process.argv.includes('-v'));
}
await recording?.finish(Number(process.exitCode ?? 0), failure);
// The command is done: do not wait for connections still opening (a run stopped by a user error
// before it needed them) or idle keep-alive timers. stdout/stderr writes are synchronous on Linux.
process.exit(process.exitCode ?? 0);
