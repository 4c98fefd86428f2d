/**
 * file({ path, owner?, group?, mode? }): a regular file exists at `path` (created empty when missing)
 * with the given attributes. Content is not managed (see copy/template for that).
 *
 * A directory, symbolic link or special file at `path` is an error, never replaced: the task cannot
 * know whether its content matters.
 */
import type { Plan, ProbeResult, Task, TaskOptions } from '../engine/types.js';
import { taskBase } from '../engine/types.js';
import { sh } from '../util/shell.js';
import {
  accountsProbe,
  attributeChanges,
  checkAttributes,
  checkPath,
  creationAttributeSteps,
  describeType,
  fileStateProbe,
  joinReasons,
  missingAccountError,
  parseFileState,
  unreadableProbe,
} from './probes.js';

export interface FileOptions extends TaskOptions {
  /** Absolute path of the file. */
  path: string;
  /** User name or numeric uid. */
  owner?: string;
  /** Group name or numeric gid. */
  group?: string;
  /** Octal string: '0644' or '644'. Left as created (umask) when not given. */
  mode?: string;
}

export function file(opts: FileOptions): Task {
  const path = checkPath(`file ${opts.path}`, opts.path);
  const label = `file ${path}`;
  const desired = checkAttributes(label, opts);

  return {
    ...taskBase('file', label, opts),
    probe: [fileStateProbe(path), accountsProbe(desired)].filter(Boolean).join('\n'),
    plan(probe: ProbeResult): Plan {
      const accountError = missingAccountError(probe.stdout, desired);
      if (accountError) return { steps: [], error: `${label}: ${accountError}` };
      const state = parseFileState(probe.stdout);
      if (!state) return { steps: [], error: unreadableProbe(path, probe.exitCode) };

      if (state.type === 'absent') {
        return {
          steps: [{ kind: 'run', command: sh`touch ${path}` }, ...creationAttributeSteps(path, desired)],
          reason: 'file is missing',
        };
      }
      if (state.type !== 'file') {
        return {
          steps: [],
          error: `${label}: ${path} is ${describeType(state.type)}, not a file; remove it (absent()) or change the path`,
        };
      }
      const { steps, reasons } = attributeChanges(path, state, desired);
      return { steps, reason: joinReasons(reasons) };
    },
  };
}
