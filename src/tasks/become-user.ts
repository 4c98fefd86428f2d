/**
 * becomeUser (a common task option, Ansible's `become_user`): a task's probe and steps run as another
 * user. This file wraps the probe and the plan; the engine wraps each step when it runs it
 * (engine/steps.ts). The file states a task compares (`Task.files`: stat and sha256) are read by the
 * probe batch's own command, with the connection's privileges: reading metadata needs no user's rights,
 * and writing is what the user must be able to do.
 *
 * A user missing on the host is not a probe failure: in check mode the user may be one an earlier task
 * of the same run creates. The task plans a step that fails naming the user, and says why.
 */
import type { Plan, ProbeResult } from '../engine/types.js';
import { quote, scriptAsUser, sh } from '../util/shell.js';

/** What the probe of a task prints, alone, when its user does not exist on the host. */
export const NO_SUCH_USER = 'verdandi-become-user-missing';

/** `probe` run as `user`; only the marker NO_SUCH_USER when there is no such user. */
export function probeAsUser(user: string, probe: string): string {
  const exists = `id -u ${quote(user)} >/dev/null 2>&1`;
  if (probe.trim() === '') return `${exists} || echo ${NO_SUCH_USER}`;
  return `if ! ${exists}; then echo ${NO_SUCH_USER}; exit 1; fi\n${scriptAsUser(user, probe)}`;
}

/** The plan of a task whose user the probe did not find, else undefined. */
export function missingUserPlan(user: string, probe: ProbeResult): Plan | undefined {
  if (probe.stdout.trim() !== NO_SUCH_USER) return undefined;
  const message = `becomeUser: there is no user ${user} on the host`;
  return {
    steps: [{ kind: 'run', command: sh`echo ${message} >&2; exit 1`, description: `becomeUser ${user}` }],
    reason: `user ${user} does not exist (yet)`,
  };
}
