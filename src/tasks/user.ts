/**
 * user: a local account present with the given attributes, or absent, through useradd/usermod/userdel.
 *
 * Only the attributes given are managed: an existing user's uid, primary group, supplementary groups,
 * home and shell are changed (one usermod) when they differ. `system` and `createHome` only matter when
 * the user is created. `groups` lists the supplementary groups: with `append` they are added to the
 * user's current ones, otherwise they replace them.
 */
import { z } from 'zod';
import type { Plan, ProbeResult } from '../engine/types.js';
import { quote, words } from '../util/shell.js';
import { defineTask } from './define.js';
import { account, accountName, flag, integer, presence, says } from './options.js';
import { markedRest } from './probe-output.js';

/** A home or shell: absolute, and nothing that would break a passwd line. */
const passwdPath = (option: string) => {
  const message = says((got) => `${option} must be an absolute path without ':', got ${got}`);
  return z.string(message).regex(/^\/[^:\n]*$/, message);
};

const options = z.strictObject({
  user: accountName('user', 'user'),
  state: presence.default('present'),
  uid: integer('uid', 0).optional(),
  /** Primary group (name or numeric gid). When not given, useradd creates a group named like the user,
   * or uses it when it already exists. */
  group: account('group', 'a group name or gid').optional(),
  /** Supplementary groups (they must exist). */
  groups: z
    .array(accountName('group', 'group'), { error: 'groups must be a list of group names' })
    .optional(),
  /** Add `groups` to the user's current supplementary groups instead of replacing them (default false). */
  append: flag('append').optional(),
  home: passwdPath('home').optional(),
  shell: passwdPath('shell').optional(),
  /** Create a system account (uid from the system range). Only used when the user is created. */
  system: flag('system').optional(),
  /** Create the home directory when the user is created (default true). */
  createHome: flag('createHome').default(true),
});

export type UserOptions = z.input<typeof options>;
type User = z.output<typeof options>;

const MARKER = 'verdandi-user';

/** What the probe saw of an existing user. */
interface Account {
  uid: number;
  gid: number;
  home: string;
  shell: string;
  /** Name of the primary group ('' when the gid has no group entry). */
  primary: string;
  /** Every group of the user, primary included (`id -Gn`). */
  groups: string[];
}

function probe({ user: name }: User): string {
  const q = quote(name);
  return [
    `if p=$(getent passwd ${q}); then`,
    `  printf '${MARKER} passwd %s\\n' "$p"`,
    `  printf '${MARKER} primary %s\\n' "$(getent group "$(printf '%s' "$p" | cut -d: -f4)" | cut -d: -f1)"`,
    `  printf '${MARKER} groups %s\\n' "$(id -Gn ${q} 2>/dev/null)"`,
    'else',
    `  echo '${MARKER} absent'`,
    'fi',
    // useradd refuses to create the user's own group when a group of that name already exists.
    `if getent group ${q} >/dev/null; then echo '${MARKER} samegroup yes'; else echo '${MARKER} samegroup no'; fi`,
  ].join('\n');
}

function plan(opts: User, result: ProbeResult): Plan {
  const { user: name, state } = opts;
  const passwd = markedRest(result.stdout, MARKER, 'passwd');
  const absent = result.stdout.split('\n').some((l) => l.trim() === `${MARKER} absent`);
  if (passwd === undefined && !absent) {
    return { steps: [], error: `the user probe printed nothing (exit code ${result.exitCode})` };
  }
  if (state === 'absent') {
    return passwd === undefined
      ? { steps: [] }
      : { steps: [{ kind: 'run', command: words('userdel', name) }], reason: 'user exists' };
  }
  if (passwd === undefined) {
    const sameGroupExists = markedRest(result.stdout, MARKER, 'samegroup') === 'yes';
    const primary = opts.group ?? (sameGroupExists ? name : undefined);
    return {
      steps: [
        {
          kind: 'run',
          command: words(
            'useradd',
            ...(opts.uid !== undefined ? ['-u', opts.uid] : []),
            ...(primary !== undefined ? ['-g', primary] : []),
            ...(opts.groups !== undefined && opts.groups.length > 0 ? ['-G', opts.groups.join(',')] : []),
            ...(opts.home !== undefined ? ['-d', opts.home] : []),
            ...(opts.shell !== undefined ? ['-s', opts.shell] : []),
            opts.system && '-r',
            opts.createHome ? '-m' : '-M',
            name,
          ),
        },
      ],
      reason: 'user does not exist',
    };
  }

  const account = parseAccount(passwd, result.stdout);
  const flags: Array<string | number> = [];
  const reasons: string[] = [];
  if (opts.uid !== undefined && account.uid !== opts.uid) {
    flags.push('-u', opts.uid);
    reasons.push(`uid ${account.uid} → ${opts.uid}`);
  }
  if (opts.group !== undefined) {
    const matches = /^\d+$/.test(opts.group)
      ? account.gid === Number(opts.group)
      : account.primary === opts.group;
    if (!matches) {
      flags.push('-g', opts.group);
      reasons.push(`group ${account.primary || account.gid} → ${opts.group}`);
    }
  }
  if (opts.groups !== undefined) {
    const current = account.groups.filter((g) => g !== account.primary);
    if (opts.append) {
      const missing = opts.groups.filter((g) => !account.groups.includes(g));
      if (missing.length > 0) {
        flags.push('-a', '-G', missing.join(','));
        reasons.push(`not in groups ${missing.join(', ')}`);
      }
    } else {
      const wanted = [...new Set(opts.groups)].sort();
      const have = [...new Set(current)].sort();
      if (wanted.join(',') !== have.join(',')) {
        flags.push('-G', wanted.join(','));
        reasons.push(`groups ${have.join(',') || '(none)'} → ${wanted.join(',') || '(none)'}`);
      }
    }
  }
  if (opts.home !== undefined && account.home !== opts.home) {
    flags.push('-d', opts.home);
    reasons.push(`home ${account.home} → ${opts.home}`);
  }
  if (opts.shell !== undefined && account.shell !== opts.shell) {
    flags.push('-s', opts.shell);
    reasons.push(`shell ${account.shell} → ${opts.shell}`);
  }
  if (flags.length === 0) return { steps: [] };
  return {
    steps: [{ kind: 'run', command: words('usermod', ...flags, name) }],
    reason: reasons.join(', '),
  };
}

/** `user({ user, uid, group, groups, ... })`; `name` is the label (it was the user before: still accepted). */
export const user = defineTask({
  type: 'user',
  options,
  subject: 'user',
  subjectWasName: true,
  label: (name) => `user ${name}`,
  probe,
  plan,
});

/** A passwd entry (`name:x:uid:gid:gecos:home:shell`) and the primary/groups probe lines. */
function parseAccount(passwd: string, stdout: string): Account {
  const fields = passwd.split(':');
  return {
    uid: Number(fields[2]),
    gid: Number(fields[3]),
    home: fields[5] ?? '',
    shell: fields[6] ?? '',
    primary: markedRest(stdout, MARKER, 'primary') ?? '',
    groups: (markedRest(stdout, MARKER, 'groups') ?? '').split(' ').filter((g) => g !== ''),
  };
}
