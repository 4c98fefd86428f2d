/**
 * group: a local group present (with a given gid) or absent, through groupadd/groupmod/groupdel.
 */
import type { Plan, ProbeResult, Task, TaskOptions } from '../engine/types.js';
import { taskBase } from '../engine/types.js';
import { quote, words } from '../util/shell.js';
import { taskOptionError } from './probes.js';

export interface GroupOptions {
  name: string;
  gid?: number;
  /** Create a system group (gid from the system range). Only used when the group is created. */
  system?: boolean;
  state?: 'present' | 'absent';
}

const MARKER = 'verdandi-group';

export function group(opts: GroupOptions & TaskOptions): Task {
  const name = checkAccountName('group', opts.name);
  const label = `group ${name}`;
  const state = checkState(label, opts.state);
  if (opts.gid !== undefined && !(Number.isInteger(opts.gid) && opts.gid >= 0)) {
    throw taskOptionError(label, `gid must be a non-negative integer, got ${JSON.stringify(opts.gid)}`);
  }

  const probe = `if g=$(getent group ${quote(name)}); then printf '${MARKER} %s\\n' "$g"; else echo '${MARKER} absent'; fi`;

  function plan(result: ProbeResult): Plan {
    const line = markedRest(result.stdout, MARKER);
    if (line === undefined)
      return { steps: [], error: `the group probe printed nothing (exit code ${result.exitCode})` };
    const exists = line !== 'absent';
    if (state === 'absent') {
      return exists
        ? { steps: [{ kind: 'run', command: words('groupdel', name) }], reason: 'group exists' }
        : { steps: [] };
    }
    if (!exists) {
      return {
        steps: [{ kind: 'run', command: words('groupadd', ...gidFlag(opts.gid), opts.system && '-r', name) }],
        reason: 'group does not exist',
      };
    }
    const gid = Number(line.split(':')[2]);
    if (opts.gid !== undefined && gid !== opts.gid) {
      return {
        steps: [{ kind: 'run', command: words('groupmod', '-g', opts.gid, name) }],
        reason: `gid ${gid} → ${opts.gid}`,
      };
    }
    return { steps: [] };
  }

  return { ...taskBase('group', label, { ...opts, name: label }), probe, plan };
}

function gidFlag(gid: number | undefined): Array<string | number> {
  return gid === undefined ? [] : ['-g', gid];
}

// ---------------------------------------------------------------------------------------------------
// Shared with user.ts

/** A user or group name as useradd/groupadd accept it (not numeric: getent would take it for an id). */
export function checkAccountName(kind: 'user' | 'group', name: unknown): string {
  if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(name) || name.length > 32) {
    throw taskOptionError(
      kind,
      `name must be a ${kind} name (letters, digits, _ . -, not starting with a digit or -, at most 32 characters), got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

export function checkState(label: string, state: unknown): 'present' | 'absent' {
  if (state === undefined) return 'present';
  if (state !== 'present' && state !== 'absent') {
    throw taskOptionError(label, `state must be present or absent, got ${JSON.stringify(state)}`);
  }
  return state;
}

/**
 * The rest of the first stdout line that starts with `marker ` (the whole rest, spaces included), or
 * undefined when there is none. For probe lines whose payload may hold spaces (passwd entries).
 */
export function markedRest(stdout: string, marker: string, key?: string): string | undefined {
  const prefix = key === undefined ? `${marker} ` : `${marker} ${key} `;
  for (const line of stdout.split('\n')) {
    const trimmed = line.replace(/\r$/, '');
    if (trimmed.startsWith(prefix)) return trimmed.slice(prefix.length);
    if (key !== undefined && trimmed === `${marker} ${key}`) return '';
  }
  return undefined;
}
