/**
 * absent({ path }): nothing exists at `path`. A file or link is removed, a directory with everything
 * in it (`rm -rf`); a link is removed itself, never what it points to. Nothing runs when it is absent.
 */
import type { Plan, ProbeResult, Task, TaskOptions } from '../engine/types.js';
import { taskBase } from '../engine/types.js';
import { sh } from '../util/shell.js';
import {
  checkPath,
  describeType,
  fileStateProbe,
  parseFileState,
  taskOptionError,
  unreadableProbe,
} from './probes.js';

export interface AbsentOptions extends TaskOptions {
  /** Absolute path to remove. */
  path: string;
}

export function absent(opts: AbsentOptions): Task {
  const path = checkPath(`absent ${opts.path}`, opts.path);
  const label = `absent ${path}`;
  if (path === '/') throw taskOptionError(label, 'refusing to remove /');

  return {
    ...taskBase('absent', label, opts),
    probe: fileStateProbe(path),
    plan(probe: ProbeResult): Plan {
      const state = parseFileState(probe.stdout);
      if (!state) return { steps: [], error: unreadableProbe(path, probe.exitCode) };
      if (state.type === 'absent') return { steps: [] };
      const command = state.type === 'dir' ? sh`rm -rf ${path}` : sh`rm -f ${path}`;
      const target = state.type === 'link' && state.linkTarget ? ` (→ ${state.linkTarget})` : '';
      return {
        steps: [{ kind: 'run', command }],
        reason: `removes ${describeType(state.type)}${target}`,
      };
    },
  };
}
