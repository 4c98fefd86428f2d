/**
 * How the runtimes' `logsScript` print their logs: several sources (a color, a worker, a service) read
 * at once, each line tagged with its source, written whole (`sed -u` writes one line at a time, so two
 * sources never share a line) to the one stdout `verdandi logs` reads.
 */
import { quote } from '../../util/shell.js';

/** `command`'s output (stderr too), each line `<source> | <line>`, in the background. */
export function taggedSource(source: string, command: string): string {
  const label = source.replace(/[\\/&]/g, (c) => `\\${c}`);
  return `( ${command} 2>&1 | sed -u ${quote(`s/^/${label} | /`)} ) &`;
}

/** The sources read at once; the script ends when all have (never, when they follow). */
export function allSources(sources: string[]): string {
  return [...sources, 'wait'].join('\n');
}

/** `--tail`, `-f` and `--since` for `docker logs` and `docker service logs` (same flags). */
export function dockerLogFlags(q: { tail: number; follow: boolean; sinceSeconds?: number }): string[] {
  return [
    '--tail',
    String(q.tail),
    ...(q.sinceSeconds !== undefined ? ['--since', `${q.sinceSeconds}s`] : []),
    ...(q.follow ? ['--follow'] : []),
  ];
}
