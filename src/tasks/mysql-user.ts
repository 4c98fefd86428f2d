/**
 * mysqlUser: a MariaDB account (`'user'@'host'`) with its password and privileges (Ansible's mysql_user
 * with `name`, `host`, `password`, `priv` and `state`).
 *
 * The probe reads the account from mysql.user and its grants with SHOW GRANTS, as root (unix_socket
 * authentication, see ./mysql-client.ts). The password is compared by its `mysql_native_password`
 * hash: Verdandi computes the hash of the desired password (SHA1(SHA1(password)), unsalted, what the
 * server's PASSWORD() returns) and compares it with the stored one, so an unchanged password is left
 * alone and the password itself is never sent to the host. When it must be set, the statement is
 * `IDENTIFIED BY PASSWORD '<hash>'`, on the client's standard input. The hash logs in as well as the
 * password does: it is registered as a secret (redacted from output) and a task with a password is
 * `sensitive`. SHOW GRANTS prints the stored hash: the probe cuts it off before anything reads it.
 *
 * `privileges` is Ansible's `priv`: `db.table:PRIV,PRIV` entries separated by `/` (`app.*:ALL`,
 * `app.*:SELECT,INSERT/*.*:PROCESS`), `GRANT` among them for WITH GRANT OPTION. Given, it is the
 * account's whole set of privileges (Ansible's default `append_privs: false`): what SHOW GRANTS lists
 * beyond it is revoked, what it lacks is granted; the comparison is of normalised sets (upper case, `ALL
 * PRIVILEGES` is `ALL`, order and spacing ignored). `*.*:USAGE` (no privilege) is implied. Not given,
 * privileges are left as they are. Column privileges are not supported.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Plan, ProbeResult } from '../engine/types.js';
import { registerSecret } from '../util/redact.js';
import { defineTask } from './define.js';
import {
  mysqlAccount,
  mysqlFailure,
  mysqlIdent,
  mysqlName,
  mysqlProbe,
  mysqlRows,
  mysqlStep,
  mysqlString,
  nativePasswordHash,
} from './mysql-client.js';
import { presence, rule } from './options.js';

/** What one `privileges` entry grants: privileges (upper case) on a target, and the grant option. */
export interface GrantSet {
  /** `db.*`, `db.table` or `*.*`, names unquoted. */
  target: string;
  privileges: Set<string>;
  grantOption: boolean;
}

const PRIVILEGE = /^[A-Z]+( [A-Z]+)*$/;

/**
 * Parses Ansible's `priv` syntax into one GrantSet per target, or returns the problem. A target is
 * `db.table`, each side a name, `*`, or a backquoted name (`` `my.db`.* ``).
 */
export function parsePrivileges(spec: string): Map<string, GrantSet> | string {
  const sets = new Map<string, GrantSet>();
  for (const entry of spec.split('/')) {
    const colon = entry.lastIndexOf(':');
    if (colon < 0) return `"${entry}" is not db.table:PRIVILEGES`;
    const target = parseTarget(entry.slice(0, colon).trim());
    if (target === undefined)
      return `"${entry.slice(0, colon)}" is not a target like db.* or db.table or *.*`;
    if (sets.has(target)) return `${target} is listed twice`;
    const set: GrantSet = { target, privileges: new Set(), grantOption: false };
    for (const raw of entry.slice(colon + 1).split(',')) {
      const privilege = normalisePrivilege(raw);
      if (privilege === 'GRANT') set.grantOption = true;
      else if (PRIVILEGE.test(privilege)) set.privileges.add(privilege);
      else
        return `"${raw.trim()}" in "${entry}" is not a privilege (like SELECT, ALL, GRANT; no column lists)`;
    }
    sets.set(target, set);
  }
  return sets;
}

/** `db.table` with each side `*`, a plain name or a backquoted one, as `db.table` unquoted. */
function parseTarget(text: string): string | undefined {
  const part = '(\\*|`(?:[^`]|``)+`|[^.`*\\s]+)';
  const match = text.match(new RegExp(`^${part}\\.${part}$`));
  if (!match) return undefined;
  const unquote = (p: string) => (p.startsWith('`') ? p.slice(1, -1).replace(/``/g, '`') : p);
  const [db, table] = [unquote(match[1]), unquote(match[2])];
  if (db === '*' && table !== '*') return undefined;
  return `${db}.${table}`;
}

/**
 * Privileges MariaDB renamed (10.5): SHOW GRANTS prints the new name for a grant made with the old one,
 * so both sides are compared (and granted) under the new name.
 */
const RENAMED_PRIVILEGES: Record<string, string> = {
  'ALL PRIVILEGES': 'ALL',
  'REPLICATION CLIENT': 'BINLOG MONITOR',
};

function normalisePrivilege(raw: string): string {
  const privilege = raw.trim().replace(/\s+/g, ' ').toUpperCase();
  return RENAMED_PRIVILEGES[privilege] ?? privilege;
}

/** The target of a GrantSet as GRANT and REVOKE write it: `` `db`.* ``, `` `db`.`t` ``, `*.*`. */
function targetSql(target: string): string {
  const dot = target.indexOf('.');
  const [db, table] = [target.slice(0, dot), target.slice(dot + 1)];
  const side = (name: string) => (name === '*' ? '*' : mysqlIdent(name));
  return `${side(db)}.${side(table)}`;
}

/**
 * The grants SHOW GRANTS printed (`GRANT SELECT, INSERT ON `app`.* TO `u`@`h` WITH GRANT OPTION`), as
 * GrantSets. Lines granting a role or PROXY are not privileges on objects: left out.
 */
export function parseShowGrants(lines: string[]): Map<string, GrantSet> {
  const sets = new Map<string, GrantSet>();
  for (const line of lines) {
    const match = line.match(/^GRANT (.+?) ON ((?:\*|`(?:[^`]|``)+`)\.(?:\*|`(?:[^`]|``)+`)) TO (.*)$/);
    if (!match || match[1] === 'PROXY') continue;
    const target = parseTarget(match[2]);
    if (target === undefined) continue;
    const set = sets.get(target) ?? { target, privileges: new Set<string>(), grantOption: false };
    // Column privileges (`SELECT (a, b)`) hold commas: split outside parentheses only.
    for (const raw of match[1].split(/,(?![^(]*\))/)) set.privileges.add(normalisePrivilege(raw));
    if (/ WITH GRANT OPTION\b/.test(match[3])) set.grantOption = true;
    sets.set(target, set);
  }
  return sets;
}

/** The REVOKE and GRANT statements taking `current` to `wanted`, with a reason per target changed. */
export function grantChanges(
  account: string,
  wanted: Map<string, GrantSet>,
  current: Map<string, GrantSet>,
): { sql: string[]; reasons: string[] } {
  const sql: string[] = [];
  const reasons: string[] = [];
  const empty = (target: string): GrantSet => ({ target, privileges: new Set(), grantOption: false });
  for (const target of new Set([...wanted.keys(), ...current.keys()])) {
    const want = wanted.get(target) ?? empty(target);
    const have = current.get(target) ?? empty(target);
    // USAGE is "no privilege": every account has it on *.*, and granting it adds nothing.
    const real = (s: GrantSet) => new Set([...s.privileges].filter((p) => p !== 'USAGE'));
    const [w, h] = [real(want), real(have)];
    const on = targetSql(target);
    const before = sql.length;
    if (w.has('ALL')) {
      if (!h.has('ALL')) sql.push(`GRANT ALL PRIVILEGES ON ${on} TO ${account};`);
    } else if (h.has('ALL')) {
      sql.push(`REVOKE ALL PRIVILEGES ON ${on} FROM ${account};`);
      if (w.size > 0) sql.push(`GRANT ${[...w].join(', ')} ON ${on} TO ${account};`);
    } else {
      const revoke = [...h].filter((p) => !w.has(p));
      const grant = [...w].filter((p) => !h.has(p));
      if (revoke.length > 0) sql.push(`REVOKE ${revoke.join(', ')} ON ${on} FROM ${account};`);
      if (grant.length > 0) sql.push(`GRANT ${grant.join(', ')} ON ${on} TO ${account};`);
    }
    if (want.grantOption && !have.grantOption)
      sql.push(`GRANT USAGE ON ${on} TO ${account} WITH GRANT OPTION;`);
    if (!want.grantOption && have.grantOption) sql.push(`REVOKE GRANT OPTION ON ${on} FROM ${account};`);
    if (sql.length > before) reasons.push(`privileges on ${target} differ`);
  }
  return { sql, reasons };
}

const options = z.strictObject({
  user: mysqlName('user', 80),
  /** The host part of the account: `localhost` (the default), `%` (anywhere), an address or pattern. */
  host: mysqlName('host', 255).default('localhost'),
  state: presence.default('present'),
  /** Clear password (from the secrets). Not given: the password is left as it is. */
  password: z
    .string({ error: 'password must be a non-empty string without NUL characters' })
    .regex(/^[^\0]+$/, { error: 'password must be a non-empty string without NUL characters' })
    .optional(),
  /** Ansible's `priv`: `db.*:ALL/other.*:SELECT,GRANT`. Not given: privileges are left as they are. */
  privileges: z
    .string({ error: 'privileges must be text like "app.*:ALL" (entries separated by "/")' })
    .superRefine(
      rule((spec: string) => {
        const parsed = parsePrivileges(spec);
        return typeof parsed === 'string'
          ? {
              problem: `privileges: ${parsed}`,
              hint: 'write db.table:PRIV,PRIV entries separated by "/", e.g. app.*:ALL/*.*:PROCESS',
            }
          : undefined;
      }),
    )
    .optional(),
});

export type MysqlUserOptions = z.input<typeof options>;

interface MysqlUser extends z.output<typeof options> {
  /** The wanted mysql_native_password hash, when a password is given. */
  hash?: string;
  wanted?: Map<string, GrantSet>;
}

const USER_MARKER = 'verdandi-myuser';
const GRANTS_EXIT = 'verdandi-mygrants-exit';

function prepare(opts: z.output<typeof options>): MysqlUser {
  const hash = opts.password === undefined ? undefined : nativePasswordHash(opts.password);
  if (opts.password !== undefined) registerSecret([opts.password, hash]);
  const parsed = opts.privileges === undefined ? undefined : parsePrivileges(opts.privileges);
  // The schema refused a spec that does not parse: here it is always a map.
  return { ...opts, hash, wanted: typeof parsed === 'string' ? undefined : parsed };
}

/** SHOW GRANTS ends the *.* line with the account's authentication: cut it (it holds the hash). */
const CUT_AUTHENTICATION =
  "sed -e 's/ IDENTIFIED .* WITH GRANT OPTION$/ WITH GRANT OPTION/' -e 's/ IDENTIFIED .*//'";

function probe({ user, host, state, wanted }: MysqlUser): string {
  // The stored hash leaves the server only hashed again (SHA-256): enough to compare, not to log in.
  const lines = [
    mysqlProbe(
      `SELECT '${USER_MARKER}', plugin, SHA2(authentication_string, 256) FROM mysql.user WHERE User = ${mysqlString(user)} AND Host = ${mysqlString(host)}`,
    ),
  ];
  if (state === 'present' && wanted !== undefined) {
    lines.push(
      `if [ "$code" = 0 ] && printf '%s\\n' "$out" | grep -q '^${USER_MARKER}\t'; then`,
      mysqlProbe(`SHOW GRANTS FOR ${mysqlAccount(user, host)}`, GRANTS_EXIT, CUT_AUTHENTICATION),
      'fi',
    );
  }
  return lines.join('\n');
}

function plan(opts: MysqlUser, result: ProbeResult): Plan {
  const { user, host, state, hash, wanted } = opts;
  const account = mysqlAccount(user, host);
  const failure = mysqlFailure(result);
  if (failure) return { steps: [], error: failure };
  const row = mysqlRows(result, USER_MARKER)[0];
  if (state === 'absent') {
    return row
      ? { steps: [mysqlStep(`DROP USER ${account};`, `drop user ${user}@${host}`)], reason: 'user exists' }
      : { steps: [] };
  }
  const identified = hash === undefined ? '' : ` IDENTIFIED BY PASSWORD ${mysqlString(hash)}`;
  if (!row) {
    const grants = wanted === undefined ? [] : grantChanges(account, wanted, new Map()).sql;
    return {
      steps: [
        mysqlStep(
          [`CREATE USER ${account}${identified};`, ...grants].join('\n'),
          `create user ${user}@${host}`,
        ),
      ],
      reason: 'user does not exist',
    };
  }
  const sql: string[] = [];
  const reasons: string[] = [];
  const [plugin, storedDigest] = row;
  if (hash !== undefined) {
    const same =
      plugin === 'mysql_native_password' && storedDigest === createHash('sha256').update(hash).digest('hex');
    if (!same) {
      sql.push(`ALTER USER ${account}${identified};`);
      reasons.push(
        plugin === 'mysql_native_password'
          ? 'password differs'
          : `authenticated by ${plugin}, not a password`,
      );
    }
  }
  if (wanted !== undefined) {
    const grantsFailure = mysqlFailure(result, GRANTS_EXIT);
    if (grantsFailure) return { steps: [], error: grantsFailure };
    const current = parseShowGrants(result.stdout.split('\n').filter((l) => l.startsWith('GRANT ')));
    const changes = grantChanges(account, wanted, current);
    sql.push(...changes.sql);
    reasons.push(...changes.reasons);
  }
  if (sql.length === 0) return { steps: [] };
  return { steps: [mysqlStep(sql.join('\n'), `alter user ${user}@${host}`)], reason: reasons.join(', ') };
}

/** `mysqlUser({ user, host, password, privileges, state })`. A task with a password is always sensitive. */
export const mysqlUser = defineTask({
  type: 'mysqlUser',
  options,
  subject: 'user',
  label: (user) => `mysql user ${user}`,
  describe: (spec: MysqlUser) => `mysql user ${spec.user}@${spec.host}`,
  prepare,
  probe,
  plan,
  sensitive: (spec) => spec.password !== undefined,
});
