/** Pieces the engine's unit tests share: a host to run on locally, and a task whose plan depends on another's. */
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
