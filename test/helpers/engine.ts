/**
 * Pieces the engine's unit tests share: a host to run on locally, a reporter that keeps its lines, and a
 * task whose plan depends on another's.
 */
import { Reporter } from '../../src/engine/report.js';
import { type HostInfo, type Task, taskBase } from '../../src/engine/types.js';
import { quote } from '../../src/util/shell.js';

/** The host the unit tests run tasks on (a LocalConnection). */
export const localHost: HostInfo = {
  name: 'local',
  address: 'localhost',
  groups: [],
  vars: {},
  secrets: {},
  env: 'test',
  inventory: { hosts: [] },
};

/** A reporter writing to memory: `lines` holds what it printed (nothing reaches the test's output). */
export function quietReporter(check = false): { reporter: Reporter; lines: string[] } {
  const lines: string[] = [];
  const out = {
    write: (s: string) => {
      lines.push(s);
      return true;
    },
    isTTY: false,
  } as unknown as NodeJS.WritableStream;
  return { reporter: new Reporter({ json: false, verbose: false, check, out }), lines };
}

/** `dest` holds what `src` holds: its plan depends on what an earlier task wrote (proves the re-probe). */
export function copyOf(src: string, dest: string): Task {
  return {
    ...taskBase('test-copy', `copy ${src}`),
    probe: `printf '%s\\n' "$(cat ${quote(src)} 2>/dev/null)"; cat ${quote(dest)} 2>/dev/null`,
    plan: (p) => {
      const [want, ...rest] = p.stdout.split('\n');
      return rest.join('\n') === want
        ? { steps: [] }
        : { steps: [{ kind: 'write', path: dest, content: want }], reason: 'differs' };
    },
  };
}
