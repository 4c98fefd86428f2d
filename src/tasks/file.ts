/**
 * file({ path, owner?, group?, mode? }): a regular file exists at `path` (created empty when missing)
 * with the given attributes. Content is not managed (see copy/template for that).
 *
 * A directory, symbolic link or special file at `path` is an error, never replaced: the task cannot
 * know whether its content matters.
 */
import { z } from 'zod';
import type { Plan, ProbeResult } from '../engine/types.js';
import { sh } from '../util/shell.js';
import { defineTask } from './define.js';
import {
  accountsProbe,
  attributeChanges,
  creationAttributeSteps,
  describeType,
  probedPath,
} from './file-state.js';
import { absolutePath, attributes } from './options.js';
import { joinReasons } from './probe-output.js';

const options = z.strictObject({
  /** Absolute path of the file. */
  path: absolutePath(),
  /** User name or numeric uid; group name or numeric gid; octal string '0644' or '644' (umask when not given). */
  ...attributes,
});

export type FileOptions = z.input<typeof options>;
type File = z.output<typeof options>;

/** Whether owner and group exist; the file's own state is read with every task's (`files`). */
function probe(file: File): string {
  return accountsProbe(file);
}

function plan(file: File, probe: ProbeResult): Plan {
  const { path } = file;
  const label = `file ${path}`;
  const found = probedPath(label, path, file, probe);
  if (found.stop) return found.stop;
  const { state } = found;

  if (state.type === 'absent') {
    return {
      steps: [{ kind: 'run', command: sh`touch ${path}` }, ...creationAttributeSteps(path, file)],
      reason: 'file is missing',
    };
  }
  if (state.type !== 'file') {
    return {
      steps: [],
      error: `${label}: ${path} is ${describeType(state.type)}, not a file; remove it (absent()) or change the path`,
    };
  }
  const { steps, reasons } = attributeChanges(path, state, file);
  return { steps, reason: joinReasons(reasons) };
}

export const file = defineTask({
  type: 'file',
  options,
  subject: 'path',
  label: (path) => `file ${path}`,
  probe,
  files: ({ path }) => [{ path }],
  plan,
});
