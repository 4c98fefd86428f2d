/**
 * file({ path, owner?, group?, mode?, state?, modificationTime?, accessTime? }): a regular file exists
 * at `path` (created empty when missing) with the given attributes. Content is not managed (see
 * copy/template for that). Ansible's `file` module with `state: file` / `state: touch`.
 *
 * `state: 'touch'` is what this task always did (create when missing) and exists for ports from
 * Ansible; unlike Ansible's touch it changes nothing on an existing file by default (Ansible's
 * `modification_time: preserve`, `access_time: preserve`), so a rerun reports no change. With
 * `modificationTime: 'now'` / `accessTime: 'now'` the time is set on every run, reported as a change.
 *
 * `mode` may be symbolic (`u+rwx,g-w`): it is computed against the probed mode, so the task is
 * converged when chmod would change nothing; a new file gets it from chmod itself.
 *
 * A directory, symbolic link or special file at `path` is an error, never replaced: the task cannot
 * know whether its content matters.
 */
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep } from '../engine/types.js';
import { sh, words } from '../util/shell.js';
import { defineTask, type PrepareContext } from './define.js';
import {
  accountsProbe,
  applySymbolicMode,
  attributeChanges,
  creationAttributeSteps,
  describeType,
  formatMode,
  isSymbolicMode,
  probedPath,
} from './file-state.js';
import { absolutePath, attributes, fileModeOrSymbolic, oneOf } from './options.js';
import { joinReasons } from './probe-output.js';

const timeOption = (option: string) => oneOf(option, ['preserve', 'now']).default('preserve');

const options = z.strictObject({
  /** Absolute path of the file. */
  path: absolutePath(),
  /** User name or numeric uid; group name or numeric gid. */
  owner: attributes.owner,
  group: attributes.group,
  /** Octal string '0644' / '644', or symbolic 'u+rw,go-w' (umask when not given). */
  mode: fileModeOrSymbolic.optional(),
  /** 'file' (default) or 'touch': both create a missing file; touch may also set its times. */
  state: oneOf('state', ['file', 'touch']).default('file'),
  /** 'preserve' (default) or 'now': set the modification time on every run (state touch). */
  modificationTime: timeOption('modificationTime'),
  /** 'preserve' (default) or 'now': set the access time on every run (state touch). */
  accessTime: timeOption('accessTime'),
});

export type FileOptions = z.input<typeof options>;
type File = z.output<typeof options>;

function prepare(file: File, { fail }: PrepareContext): File {
  if (file.state !== 'touch') {
    if (file.modificationTime === 'now')
      fail('modificationTime', "modificationTime: 'now' needs state: 'touch'");
    if (file.accessTime === 'now') fail('accessTime', "accessTime: 'now' needs state: 'touch'");
  }
  return file;
}

/** Whether owner and group exist; the file's own state is read with every task's (`files`). */
function probe(file: File): string {
  return accountsProbe(file);
}

/** The `touch` that sets the times asked to be 'now' on an existing file (none when both preserve). */
function touchTimes(file: File): { step?: RunStep; reason?: string } {
  const mtime = file.modificationTime === 'now';
  const atime = file.accessTime === 'now';
  if (!mtime && !atime) return {};
  const flags = mtime && atime ? undefined : mtime ? '-m' : '-a';
  const what = mtime && atime ? 'access and modification times' : mtime ? 'modification time' : 'access time';
  return {
    step: { kind: 'run', command: words('touch', flags, '--', file.path) },
    reason: `${what} set to now`,
  };
}

function plan(file: File, probe: ProbeResult): Plan {
  const { path } = file;
  const label = `file ${path}`;
  const found = probedPath(label, path, file, probe);
  if (found.stop) return found.stop;
  const { state } = found;
  const symbolic = file.mode !== undefined && isSymbolicMode(file.mode);

  if (state.type === 'absent') {
    const creation = creationAttributeSteps(path, { ...file, mode: symbolic ? undefined : file.mode });
    // chmod applies a symbolic mode to the new file's mode itself (who is always given: no umask).
    if (symbolic) creation.push({ kind: 'run', command: words('chmod', file.mode, '--', path) });
    return {
      steps: [{ kind: 'run', command: sh`touch ${path}` }, ...creation],
      reason: 'file is missing',
    };
  }
  if (state.type !== 'file') {
    return {
      steps: [],
      error: `${label}: ${path} is ${describeType(state.type)}, not a file; remove it (absent()) or change the path`,
    };
  }
  const mode = symbolic ? formatMode(applySymbolicMode(state.mode, file.mode as string)) : file.mode;
  const { steps, reasons } = attributeChanges(path, state, { ...file, mode });
  const times = touchTimes(file);
  if (times.step) {
    steps.push(times.step);
    reasons.push(times.reason as string);
  }
  return { steps, reason: joinReasons(reasons) };
}

export const file = defineTask({
  type: 'file',
  options,
  subject: 'path',
  label: (path) => `file ${path}`,
  prepare,
  probe,
  files: ({ path }) => [{ path }],
  plan,
});
