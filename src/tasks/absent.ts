/**
 * absent({ path }): nothing exists at `path`. A file or link is removed, a directory with everything
 * in it (`rm -rf`); a link is removed itself, never what it points to. Nothing runs when it is absent.
 */
import { z } from 'zod';
import type { Plan, ProbeResult } from '../engine/types.js';
import { sh } from '../util/shell.js';
import { defineTask } from './define.js';
import { describeType, unreadableProbe } from './file-state.js';
import { absolutePath } from './options.js';

const options = z.strictObject({
  /** Absolute path to remove. */
  path: absolutePath().refine((path) => path !== '/', { error: 'refusing to remove /' }),
});

export type AbsentOptions = z.input<typeof options>;
type Absent = z.output<typeof options>;

function plan({ path }: Absent, probe: ProbeResult): Plan {
  const state = probe.files?.get(path);
  if (!state) return { steps: [], error: unreadableProbe(path, probe.exitCode) };
  if (state.type === 'absent') return { steps: [] };
  const command = state.type === 'dir' ? sh`rm -rf ${path}` : sh`rm -f ${path}`;
  const target = state.type === 'link' && state.linkTarget ? ` (→ ${state.linkTarget})` : '';
  return {
    steps: [{ kind: 'run', command }],
    reason: `removes ${describeType(state.type)}${target}`,
  };
}

export const absent = defineTask({
  type: 'absent',
  options,
  subject: 'path',
  label: (path) => `absent ${path}`,
  // The path's state is all it needs: read with every task's (`files`), no probe of its own.
  probe: () => '',
  files: ({ path }) => [{ path }],
  plan,
});
