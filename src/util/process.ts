/**
 * Processes of this machine, read from /proc. A pid alone is not an identity (pids are reused): a lock
 * remembers its holder as pid + start time, and a holder whose start time changed is gone.
 */
import { readFileSync } from 'node:fs';

/** The start time of a process of this machine, or undefined when it does not exist (or no /proc). */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // A zombie has exited: only its parent's wait is missing.
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}
