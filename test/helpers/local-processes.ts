/**
 * The controller's own processes, seen from /proc, and waiting on markers: for the e2e tests of the
 * processes Verdandi leaves running (the connection keeper, a spare engine).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Every process's pid and command line (its arguments joined by spaces). */
function commandLines(): Array<{ pid: number; line: string }> {
  const found: Array<{ pid: number; line: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      found.push({
        pid: Number(entry),
        line: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' '),
      });
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** The pids of the processes whose command line holds every one of `parts`. */
export function pidsWithCommandLine(...parts: string[]): number[] {
  return commandLines()
    .filter(({ line }) => parts.every((part) => line.includes(part)))
    .map(({ pid }) => pid);
}

/** Every command line holding `text`. */
export function commandLinesWith(text: string): string[] {
  return commandLines()
    .filter(({ line }) => line.includes(text))
    .map(({ line }) => line);
}

/** Waits until `condition` holds (a marker), polling every 50 ms; fails after `ms`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
