/**
 * user: a local account present with the given attributes, or absent, through useradd/usermod/userdel.
 *
 * Only the attributes given are managed: an existing user's uid, primary group, supplementary groups,
 * home and shell are changed (one usermod) when they differ. `system` and `createHome` only matter when
 * the user is created. `groups` lists the supplementary groups: with `append` they are added to the
 * user's current ones, otherwise they replace them.
 *
 * From Ansible's `user` module: `password` (a crypt hash, as in /etc/shadow: `$6$...`, `$y$...`) is set
 * with `chpasswd -e`, the hash on standard input; the probe prints only the sha256 of the shadow hash, so
 * the hash never leaves the host and the task is sensitive. `passwordLock` (Ansible's `password_lock`)
 * locks (`usermod -L`: a `!` before the hash) or unlocks the password; a new hash keeps the lock state the
 * account has unless `passwordLock` says otherwise. `expires`: the account's expiry date (epoch seconds,
 * as Ansible, or `YYYY-MM-DD`), compared by day as /etc/shadow stores it; `-1` removes it.
 */

import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep } from '../engine/types.js';
import { registerSecret } from '../util/redact.js';
import { quote, words } from '../util/shell.js';
import { defineTask } from './define.js';
import { account, accountName, flag, integer, presence, rule, says, shown } from './options.js';
import { markedRest } from './probe-output.js';

/** A home or shell: absolute, and nothing that would break a passwd line. */
const passwdPath = (option: string) => {
  const message = says((got) => `${option} must be an absolute path without ':', got ${got}`);
  return z.string(message).regex(/^\/[^:\n]*$/, message);
};

/** A crypt hash as /etc/shadow holds it: one field, no `:` or newline, and not a locked (`!`) one. */
const cryptHash = z.custom<string>().superRefine(
  rule((hash: unknown) => {
    if (typeof hash !== 'string' || hash === '' || /[:\n]/.test(hash) || hash.startsWith('!')) {
      // The value is a secret: never shown.
      return {
        problem: 'password must be a crypt hash (one /etc/shadow field, without a leading !)',
        hint: 'make one with mkpasswd -m yescrypt or openssl passwd -6; lock with passwordLock: true',
      };
    }
    if (!hash.startsWith('$') && hash !== '*') {
      return {
        problem: 'password must be a crypt hash such as $6$... or $y$..., not a clear-text password',
        hint: 'make one with mkpasswd -m yescrypt or openssl passwd -6',
      };
    }
    return undefined;
  }),
);

const DAY_SECONDS = 86_400;

/**
 * The expiry as /etc/shadow stores it: days since 1970-01-01 (`-1` given: none, `null`). A date is UTC
 * midnight of that day; epoch seconds count in the day they fall in (as Ansible's `expires`).
 */
const expiryDate = z.custom<number | string>().transform((given, ctx): number | null => {
  if (given === -1) return null;
  if (typeof given === 'number' && Number.isFinite(given) && given >= 0)
    return Math.floor(given / DAY_SECONDS);
  if (typeof given === 'string' && /^\d{4}-\d\d-\d\d$/.test(given)) {
    const time = Date.parse(`${given}T00:00:00Z`);
    if (!Number.isNaN(time) && new Date(time).toISOString().startsWith(given))
      return time / 1000 / DAY_SECONDS;
  }
  ctx.addIssue({
    code: 'custom',
    message: `expires must be epoch seconds, a date YYYY-MM-DD or -1 (no expiry), got ${shown(given)}`,
    input: given,
  });
  return z.NEVER;
});

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
  /** Ansible's `password`: a crypt hash (`$6$...`, `$y$...`), never a clear-text password. Sensitive. */
  password: cryptHash.optional(),
  /** Ansible's `password_lock`: true locks the password (`usermod -L`), false unlocks it (`usermod -U`). */
  passwordLock: flag('passwordLock').optional(),
  /** Ansible's `expires`: epoch seconds or `YYYY-MM-DD`; -1 removes the expiry. */
  expires: expiryDate.optional(),
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

function probe(spec: User): string {
  const q = quote(spec.user);
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
    managesShadow(spec) && shadowProbe(q),
  ]
    .filter((line): line is string => typeof line === 'string')
    .join('\n');
}

function managesShadow(spec: User): boolean {
  return spec.password !== undefined || spec.passwordLock !== undefined || spec.expires !== undefined;
}

/**
 * `verdandi-user shadow <locked yes|no> <sha256 of the hash without its !> <expiry days|->`: the hash
 * itself is never printed (printf is the shell's builtin: no process argument holds it either).
 */
function shadowProbe(q: string): string {
  return [
    `if s=$(getent shadow ${q}); then`,
    `  vd_h=$(printf '%s' "$s" | cut -d: -f2); vd_e=$(printf '%s' "$s" | cut -d: -f8)`,
    `  case "$vd_h" in '!'*) vd_l=yes; vd_h=\${vd_h#!} ;; *) vd_l=no ;; esac`,
    `  printf '${MARKER} shadow %s %s %s\\n' "$vd_l" "$(printf '%s' "$vd_h" | sha256sum | cut -d' ' -f1)" "\${vd_e:--}"`,
    '  unset s vd_h',
    'fi',
  ].join('\n');
}

/** What the probe saw in /etc/shadow. */
interface Shadow {
  locked: boolean;
  /** sha256 of the hash (without the lock's `!`). */
  hashSha: string;
  /** Days since 1970-01-01, or null: never expires. */
  expires: number | null;
}

function parseShadow(stdout: string): Shadow | undefined {
  const fields = markedRest(stdout, MARKER, 'shadow')?.split(' ');
  if (fields?.length !== 3 || !/^[0-9a-f]{64}$/.test(fields[1])) return undefined;
  const [locked, hashSha, expires] = fields;
  return { locked: locked === 'yes', hashSha, expires: /^\d+$/.test(expires) ? Number(expires) : null };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** `YYYY-MM-DD` of a day count (what useradd/usermod -e take); '' removes the expiry. */
function expiryArgument(days: number | null): string {
  return days === null ? '' : new Date(days * DAY_SECONDS * 1000).toISOString().slice(0, 10);
}

/** Sets the hash (with a `!` when locked) through chpasswd's standard input. */
function passwordStep(name: string, hash: string, locked: boolean): RunStep {
  return {
    kind: 'run',
    command: 'chpasswd -e',
    stdin: `${name}:${locked ? '!' : ''}${hash}\n`,
    description: `chpasswd -e (the password hash of ${name} on standard input)`,
  };
}

/** The password, lock and expiry steps for a user that exists (`shadow` undefined: just created). */
function shadowSteps(opts: User, shadow: Shadow | undefined): { steps: RunStep[]; reasons: string[] } {
  const steps: RunStep[] = [];
  const reasons: string[] = [];
  const name = opts.user;
  // useradd leaves a new account's password locked (`!`, no hash).
  const locked = shadow?.locked ?? true;
  if (opts.password !== undefined && shadow?.hashSha !== sha256(opts.password)) {
    // A new hash keeps an existing account's lock; a new account's password is usable.
    steps.push(passwordStep(name, opts.password, opts.passwordLock ?? (shadow ? shadow.locked : false)));
    reasons.push(shadow ? 'password differs' : 'password set');
  } else if (opts.passwordLock !== undefined && opts.passwordLock !== locked) {
    steps.push({ kind: 'run', command: words('usermod', opts.passwordLock ? '-L' : '-U', name) });
    reasons.push(opts.passwordLock ? 'password not locked' : 'password locked');
  }
  if (opts.expires !== undefined && shadow !== undefined && shadow.expires !== opts.expires) {
    steps.push({ kind: 'run', command: words('usermod', '-e', expiryArgument(opts.expires), name) });
    const shown = (days: number | null) => (days === null ? 'never' : expiryArgument(days));
    reasons.push(`expires ${shown(shadow.expires)} → ${shown(opts.expires)}`);
  }
  return { steps, reasons };
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
            ...(opts.expires !== undefined && opts.expires !== null
              ? ['-e', expiryArgument(opts.expires)]
              : []),
            name,
          ),
        },
        // A new account's password is locked (`!`): set, or unlocked, after useradd.
        ...shadowSteps(opts, undefined).steps,
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
  const steps: RunStep[] =
    flags.length > 0 ? [{ kind: 'run', command: words('usermod', ...flags, name) }] : [];
  if (managesShadow(opts)) {
    const shadow = parseShadow(result.stdout);
    if (shadow === undefined) {
      return {
        steps: [],
        error: `user ${name}: /etc/shadow could not be read (password, passwordLock and expires need root: become)`,
      };
    }
    const more = shadowSteps(opts, shadow);
    steps.push(...more.steps);
    reasons.push(...more.reasons);
  }
  if (steps.length === 0) return { steps: [] };
  return { steps, reason: reasons.join(', ') };
}

/** `user({ user, uid, group, groups, ... })`; `name` is the label (it was the user before: still accepted). */
export const user = defineTask({
  type: 'user',
  becomeUser: { refuse: 'only root may change the accounts of the host' },
  options,
  subject: 'user',
  subjectWasName: true,
  label: (name) => `user ${name}`,
  // The hash is redacted wherever it might show (a failure's output), like any secret.
  prepare: (opts: User) => {
    if (opts.password !== undefined) registerSecret(opts.password);
    return opts;
  },
  probe,
  plan,
  sensitive: (spec) => spec.password !== undefined,
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
