/**
 * directory({ path, owner?, group?, mode?, recurse? }): a directory exists at `path` with the given
 * attributes.
 *
 * Missing parents are created with the same owner and group, as Ansible's `file` module does (it gives
 * them every attribute of the directory): `/srv/app/data` owned by `app` makes `/srv/app` `app`'s too,
 * so the owner can reach its directory. Their mode is the directory's without write for group and
 * others: a parent others can write lets them rename the directory asked for and put their own in its
 * place. Existing parents are never changed. Without owner, group and mode it is `mkdir -p` (root, 0755).
 *
 * Attributes apply to `path` only, unless `recurse: true`: then owner/group apply to everything below
 * (`chown -R`, symbolic links themselves, never followed) and the mode to every directory below. Files
 * keep their own mode, so a directory mode such as 0755 never makes every file executable.
 */
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep } from '../engine/types.js';
import { quote, sh, words } from '../util/shell.js';
import { defineTask } from './define.js';
import {
  accountsProbe,
  attributeChanges,
  chmodArgument,
  chownSpec,
  creationAttributeSteps,
  type DesiredAttributes,
  describeType,
  formatMode,
  probedPath,
} from './file-state.js';
import { absolutePath, attributes, flag } from './options.js';
import { joinReasons, MARKER_PREFIX, markedLines } from './probe-output.js';

const options = z.strictObject({
  /** Absolute path of the directory. */
  path: absolutePath(),
  /** Owner, group, and mode as an octal string ('0755' or '755'). */
  ...attributes,
  /** Apply owner/group to the whole tree and the mode to every directory of it (default false). */
  recurse: flag('recurse').default(false),
});

export type DirectoryOptions = z.input<typeof options>;
type Directory = z.output<typeof options>;

const DRIFT_MARKER = `${MARKER_PREFIX}drift`;

/**
 * Prints `verdandi-drift owner` / `verdandi-drift mode` when something below `path` has another
 * owner/group, or a directory below has another mode. `find -quit` stops at the first one.
 */
function treeDriftProbe(path: string, desired: DesiredAttributes): string {
  const lines = [sh`if [ -d ${path} ] && [ ! -L ${path} ]; then`];
  const ownerTests: string[] = [];
  if (desired.owner !== undefined) ownerTests.push(sh`! -user ${desired.owner}`);
  if (desired.group !== undefined) ownerTests.push(sh`! -group ${desired.group}`);
  if (ownerTests.length > 0) {
    lines.push(
      `  [ -n "$(find ${quote(path)} \\( ${ownerTests.join(' -o ')} \\) -print -quit 2>/dev/null)" ] && echo ${quote(`${DRIFT_MARKER} owner`)}`,
    );
  }
  if (desired.mode !== undefined) {
    lines.push(
      `  [ -n "$(find ${quote(path)} -type d ! -perm ${desired.mode} -print -quit 2>/dev/null)" ] && echo ${quote(`${DRIFT_MARKER} mode`)}`,
    );
  }
  lines.push('fi');
  return ownerTests.length > 0 || desired.mode !== undefined ? lines.join('\n') : '';
}

function probe(dir: Directory): string {
  return [accountsProbe(dir), dir.recurse ? treeDriftProbe(dir.path, dir) : ''].filter(Boolean).join('\n');
}

/** The ancestors of `path` below `/`, outermost first: `/srv/app/data` → `/srv`, `/srv/app`. */
function ancestors(path: string): string[] {
  const parts = path.split('/').filter(Boolean);
  return parts.slice(0, -1).map((_, index) => `/${parts.slice(0, index + 1).join('/')}`);
}

/** A parent's mode: the directory's, without write for group and others. */
export function parentMode(mode: string): string {
  return formatMode(Number.parseInt(mode, 8) & ~0o022);
}

/**
 * The steps creating a missing directory: the parents that are missing made one by one with the
 * directory's owner and group and `parentMode`, then the directory itself with its attributes.
 */
export function creationSteps(path: string, desired: DesiredAttributes): RunStep[] {
  const { owner, group, mode } = desired;
  const parents = ancestors(path);
  if ((owner === undefined && group === undefined && mode === undefined) || parents.length === 0) {
    return [{ kind: 'run', command: sh`mkdir -p ${path}` }, ...creationAttributeSteps(path, desired)];
  }
  const attribute = [
    owner !== undefined || group !== undefined ? `chown ${quote(chownSpec(owner, group))} "$d"` : '',
    mode !== undefined ? `chmod ${chmodArgument(parentMode(mode))} "$d"` : '',
  ].filter(Boolean);
  const make = ['mkdir "$d"', ...attribute].join(' && ');
  return [
    {
      kind: 'run',
      command: `for d in ${parents.map((parent) => quote(parent)).join(' ')}; do if [ ! -e "$d" ] && [ ! -L "$d" ]; then ${make} || exit 1; fi; done`,
      description: `create the missing parents of ${path}${mode !== undefined ? ` (mode ${parentMode(mode)})` : ''}`,
    },
    { kind: 'run', command: sh`mkdir -p ${path}` },
    ...creationAttributeSteps(path, desired),
  ];
}

function plan(dir: Directory, probe: ProbeResult): Plan {
  const { path, recurse } = dir;
  const desired: DesiredAttributes = dir;
  const label = `directory ${path}`;
  const found = probedPath(label, path, desired, probe);
  if (found.stop) return found.stop;
  const { state } = found;

  if (state.type === 'absent') {
    return {
      steps: creationSteps(path, desired),
      reason: 'directory is missing',
    };
  }
  if (state.type !== 'dir') {
    const target = state.type === 'link' && state.linkTarget ? ` (→ ${state.linkTarget})` : '';
    return {
      steps: [],
      error: `${label}: ${path} is ${describeType(state.type)}${target}, not a directory; remove it (absent()) or change the path`,
    };
  }
  if (!recurse) {
    const { steps, reasons } = attributeChanges(path, state, desired);
    return { steps, reason: joinReasons(reasons) };
  }

  // Recursive: the top directory's own differences, plus what the drift probe found below it.
  const top = attributeChanges(path, state, desired);
  const drift = new Set(markedLines(probe.stdout, DRIFT_MARKER).map((fields) => fields[0]));
  const reasons = [...top.reasons];
  const steps: RunStep[] = [];
  const ownerWanted = desired.owner !== undefined || desired.group !== undefined;
  if (ownerWanted && (top.ownerDiffers || drift.has('owner'))) {
    if (!top.ownerDiffers) reasons.push('owner/group differs below');
    steps.push({
      kind: 'run',
      command: words('chown', '-R', chownSpec(desired.owner, desired.group), path),
    });
  }
  if (desired.mode !== undefined && (top.modeDiffers || drift.has('mode'))) {
    if (!top.modeDiffers) reasons.push('mode of directories below differs');
    steps.push({
      kind: 'run',
      command: sh`find ${path} -type d ! -perm ${desired.mode} -exec chmod ${chmodArgument(desired.mode)} {} +`,
    });
  }
  return { steps, reason: joinReasons(reasons) };
}

export const directory = defineTask({
  type: 'directory',
  options,
  subject: 'path',
  label: (path) => `directory ${path}`,
  probe,
  files: ({ path }) => [{ path }],
  plan,
});
