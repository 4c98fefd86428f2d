/**
 * The `verdandi` command line. Each command lives in `commands/<name>.ts` and exports `register`,
 * which declares its options and lazily imports its implementation: `verdandi --help` loads commander
 * only, so it starts fast.
 */
import { Command } from 'commander';
import { redact } from '../util/redact.js';
import { verdandiVersion } from '../util/user-code.js';
import { register as registerBackup } from './commands/backup.js';
import { register as registerCheck } from './commands/check.js';
import { register as registerDeploy } from './commands/deploy.js';
import { register as registerFacts } from './commands/facts.js';
import { register as registerHistory } from './commands/history.js';
import { register as registerInit } from './commands/init.js';
import { register as registerPing } from './commands/ping.js';
import { register as registerProvision } from './commands/provision.js';
import { register as registerRun } from './commands/run.js';
import { register as registerSchema } from './commands/schema.js';
import { register as registerSecrets } from './commands/secrets.js';
import { register as registerTesthost } from './commands/testhost.js';
import { handleError } from './errors.js';
import { type Recording, startRecording } from './recording.js';

const program = new Command();
program
  .name('verdandi')
  .description('Typed, agentless provisioning and deployment over SSH.')
  .version(verdandiVersion())
  .option('-v, --verbose', 'show stack traces and the commands sent to hosts')
  .showHelpAfterError('(add --help for usage)')
  .exitOverride();

registerPing(program);
registerProvision(program);
registerDeploy(program);
registerRun(program);
registerCheck(program);
registerFacts(program);
registerSecrets(program);
registerBackup(program);
registerTesthost(program);
registerInit(program);
registerSchema(program);
registerHistory(program);

// provision, run, deploy, rollback, backup and restore are recorded in the run history.
let recording: Recording | undefined;
program.hook('preAction', async (_program, action) => {
  try {
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
