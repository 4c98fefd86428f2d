/**
 * The background import of the run history, a process of its own (`node history-import.js` in the
 * project folder), started detached by the end of every recorded run (src/cli/recording.ts): it writes
 * the runs waiting in the spool into the store, as `verdandi history import --quiet` does. It is its
 * own entry point so that what every recorded run starts loads the spool and the store only, not the
 * command line (issue 25). Its output goes nowhere: a store that cannot be written is noted in the
 * spool's `last-error` (spool.ts), which the next run reports.
 */
import { importSpool } from './spool.js';
import { historyLocation } from './store.js';

try {
  const location = historyLocation(process.cwd());
  if (location.kind !== 'off') await importSpool(process.cwd(), location);
} catch {
  process.exitCode = 1;
}
