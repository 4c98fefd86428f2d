/**
 * link({ path, target, owner?, group? }): `path` is a symbolic link pointing to `target` (compared as
 * written, not resolved; `target` may be relative to the link's folder).
 *
 * A missing link is created, a link pointing elsewhere or a regular file is replaced. The switch is
 * atomic (a new link is made beside it, then renamed over the old one with `mv -T`), so a `current`
 * link of a deploy always points somewhere. A real directory at `path` is never replaced: that is an error.
 */
import { posix } from 'node:path';
import type { Plan, ProbeResult, RunStep, Task, TaskOptions } from '../engine/types.js';
import { taskBase } from '../engine/types.js';
import { and, sh, words } from '../util/shell.js';
import {
  accountsProbe,
  attributeChanges,
  checkAccount,
  checkPath,
  chownSpec,
  describeType,
  fileStateProbe,
  joinReasons,
  missingAccountError,
  parseFileState,
  taskOptionError,
  unreadableProbe,
} from './probes.js';

export interface LinkOptions extends TaskOptions {
  /** Absolute path of the link. */
  path: string;
  /** What the link points to. */
  target: string;
  /** Owner of the link itself (`chown -h`). */
  owner?: string;
  group?: string;
}

/** Name of the temporary link made beside `path` before it is renamed over it. */
export function temporaryLinkPath(path: string): string {
  return posix.join(posix.dirname(path), `.${posix.basename(path)}.verdandi-link`);
}

export function link(opts: LinkOptions): Task {
  const path = checkPath(`link ${opts.path}`, opts.path);
  const label = `link ${path}`;
  if (typeof opts.target !== 'string' || opts.target === '' || opts.target.includes('\0')) {
    throw taskOptionError(label, `target must be a non-empty path, got ${JSON.stringify(opts.target)}`);
  }
  const target = opts.target;
  if (path === '/') throw taskOptionError(label, 'refusing to make / a link');
  const desired = {
    owner: checkAccount(label, 'owner', opts.owner),
    group: checkAccount(label, 'group', opts.group),
  };

  /** Make the new link beside the old path, then rename it over: never a moment without a link. */
  function switchLink(): RunStep {
    const temporary = temporaryLinkPath(path);
    const owned = desired.owner !== undefined || desired.group !== undefined;
    return {
      kind: 'run',
      command: and(
        sh`rm -f ${temporary}`,
        sh`ln -s -- ${target} ${temporary}`,
        owned && words('chown', '-h', chownSpec(desired.owner, desired.group), temporary),
        sh`mv -T -f ${temporary} ${path}`,
      ),
      description: `link ${path} → ${target}`,
    };
  }

  return {
    ...taskBase('link', `${label} → ${target}`, opts),
    probe: [fileStateProbe(path), accountsProbe(desired)].filter(Boolean).join('\n'),
    plan(probe: ProbeResult): Plan {
      const accountError = missingAccountError(probe.stdout, desired);
      if (accountError) return { steps: [], error: `${label}: ${accountError}` };
      const state = parseFileState(probe.stdout);
      if (!state) return { steps: [], error: unreadableProbe(path, probe.exitCode) };

      switch (state.type) {
        case 'absent':
          return { steps: [switchLink()], reason: 'link is missing' };
        case 'file':
          return { steps: [switchLink()], reason: `${path} is a file, replaced by a link` };
        case 'link': {
          if (state.linkTarget !== target) {
            return { steps: [switchLink()], reason: `points to ${state.linkTarget}, not ${target}` };
          }
          const { steps, reasons } = attributeChanges(path, state, desired, { link: true });
          return { steps, reason: joinReasons(reasons) };
        }
        default:
          return {
            steps: [],
            error: `${label}: ${path} is ${describeType(state.type)}, not a link; refusing to replace it (move or remove it by hand)`,
          };
      }
    },
  };
}
