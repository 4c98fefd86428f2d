/**
 * link({ path, target, owner?, group? }): `path` is a symbolic link pointing to `target` (compared as
 * written, not resolved; `target` may be relative to the link's folder).
 *
 * A missing link is created, a link pointing elsewhere or a regular file is replaced. The switch is
 * atomic (a new link is made beside it, then renamed over the old one with `mv -T`), so a `current`
 * link of a deploy always points somewhere. A real directory at `path` is never replaced: that is an error.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep } from '../engine/types.js';
import { and, sh, words } from '../util/shell.js';
import { defineTask } from './define.js';
import { accountsProbe, attributeChanges, chownSpec, describeType, probedPath } from './file-state.js';
import { absolutePath, attributes, says } from './options.js';
import { joinReasons } from './probe-output.js';

const targetMessage = says((got) => `target must be a non-empty path, got ${got}`);

const options = z.strictObject({
  /** Absolute path of the link. */
  path: absolutePath().refine((path) => path !== '/', { error: 'refusing to make / a link' }),
  /** What the link points to. */
  target: z.string(targetMessage).regex(/^[^\0]+$/, targetMessage),
  /** Owner and group of the link itself (`chown -h`). */
  owner: attributes.owner,
  group: attributes.group,
});

export type LinkOptions = z.input<typeof options>;
type Link = z.output<typeof options>;

/** Name of the temporary link made beside `path` before it is renamed over it. */
export function temporaryLinkPath(path: string): string {
  return posix.join(posix.dirname(path), `.${posix.basename(path)}.verdandi-link`);
}

/** Make the new link beside the old path, then rename it over: never a moment without a link. */
function switchLink({ path, target, owner, group }: Link): RunStep {
  const temporary = temporaryLinkPath(path);
  const owned = owner !== undefined || group !== undefined;
  return {
    kind: 'run',
    command: and(
      sh`rm -f ${temporary}`,
      sh`ln -s -- ${target} ${temporary}`,
      owned && words('chown', '-h', chownSpec(owner, group), temporary),
      sh`mv -T -f ${temporary} ${path}`,
    ),
    description: `link ${path} → ${target}`,
  };
}

/** Whether owner and group exist; the link's own state is read with every task's (`files`). */
function probe(link: Link): string {
  return accountsProbe(link);
}

function plan(link: Link, probe: ProbeResult): Plan {
  const { path, target } = link;
  const label = `link ${path}`;
  const found = probedPath(label, path, link, probe);
  if (found.stop) return found.stop;
  const { state } = found;

  switch (state.type) {
    case 'absent':
      return { steps: [switchLink(link)], reason: 'link is missing' };
    case 'file':
      return { steps: [switchLink(link)], reason: `${path} is a file, replaced by a link` };
    case 'link': {
      if (state.linkTarget !== target) {
        return { steps: [switchLink(link)], reason: `points to ${state.linkTarget}, not ${target}` };
      }
      const { steps, reasons } = attributeChanges(path, state, link, { link: true });
      return { steps, reason: joinReasons(reasons) };
    }
    default:
      return {
        steps: [],
        error: `${label}: ${path} is ${describeType(state.type)}, not a link; refusing to replace it (move or remove it by hand)`,
      };
  }
}

export const link = defineTask({
  type: 'link',
  options,
  subject: 'path',
  label: (path) => `link ${path}`,
  describe: ({ path, target }) => `link ${path} → ${target}`,
  probe,
  files: ({ path }) => [{ path }],
  plan,
});
