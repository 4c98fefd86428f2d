/**
 * group: a local group present (with a given gid) or absent, through groupadd/groupmod/groupdel.
 */
import { z } from 'zod';
import type { Plan, ProbeResult } from '../engine/types.js';
import { quote, words } from '../util/shell.js';
import { defineTask } from './define.js';
import { accountName, flag, integer, presence } from './options.js';
import { markedRest } from './probe-output.js';

const options = z.strictObject({
  group: accountName('group', 'group'),
  state: presence.default('present'),
  gid: integer('gid', 0).optional(),
  /** Create a system group (gid from the system range). Only used when the group is created. */
  system: flag('system').optional(),
});

export type GroupOptions = z.input<typeof options>;
type Group = z.output<typeof options>;

const MARKER = 'verdandi-group';

function probe({ group }: Group): string {
  return `if g=$(getent group ${quote(group)}); then printf '${MARKER} %s\\n' "$g"; else echo '${MARKER} absent'; fi`;
}

function plan({ group, state, gid, system }: Group, result: ProbeResult): Plan {
  const line = markedRest(result.stdout, MARKER);
  if (line === undefined)
    return { steps: [], error: `the group probe printed nothing (exit code ${result.exitCode})` };
  const exists = line !== 'absent';
  if (state === 'absent') {
    return exists
      ? { steps: [{ kind: 'run', command: words('groupdel', group) }], reason: 'group exists' }
      : { steps: [] };
  }
  if (!exists) {
    return {
      steps: [
        {
          kind: 'run',
          command: words('groupadd', ...(gid === undefined ? [] : ['-g', gid]), system && '-r', group),
        },
      ],
      reason: 'group does not exist',
    };
  }
  const current = Number(line.split(':')[2]);
  if (gid !== undefined && current !== gid) {
    return {
      steps: [{ kind: 'run', command: words('groupmod', '-g', gid, group) }],
      reason: `gid ${current} → ${gid}`,
    };
  }
  return { steps: [] };
}

/** `group({ group, gid, system, state })`; `name` is the label (it was the group before: still accepted). */
export const group = defineTask({
  type: 'group',
  becomeUser: { refuse: 'only root may change the groups of the host' },
  options,
  subject: 'group',
  subjectWasName: true,
  label: (name) => `group ${name}`,
  probe,
  plan,
});
