/**
 * mysqlUser: a MariaDB account (`'user'@'host'`) with its password, privileges, resource limits and TLS
 * requirement (Ansible's mysql_user with `name`, `host`, `password`, `priv`, `resource_limits`,
 * `tls_requires` and `state`).
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
 * privileges are left as they are. A privilege on some columns of a table is written as Ansible does,
 * `db.table:SELECT (col1, col2)`: compared with SHOW GRANTS' `SELECT (`col1`, `col2`)` by its columns,
 * in any order and case (MariaDB's column names are not case-sensitive). ALL on a table with column
 * privileges is refused: SHOW GRANTS no longer shows them, so the task would never converge.
 *
 * `resourceLimits` (Ansible's `resource_limits`) and `tlsRequires` (`tls_requires`) are read from
 * mysql.user, the server's view of mysql.global_priv (max_questions..., ssl_type, x509_subject...), and
 * set with ALTER USER ... REQUIRE ... WITH ...: only the limits given are compared and set (as Ansible
 * does); `tlsRequires` is the whole requirement (`'none'` removes one).
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

/** The privileges MariaDB grants on columns. */
const COLUMN_PRIVILEGES = new Set(['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']);

/** A column: a plain name or a backquoted one, without commas or parentheses. */
const COLUMN = /^(?:`((?:[^`,()]|``)+)`|([^\s`,()]+))$/;

/** `SELECT (a, b)`: a privilege on columns, as its name and its columns (unquoted), or undefined. */
function columnPrivilege(raw: string): { privilege: string; columns: string[] } | string | undefined {
  const match = raw.trim().match(/^([A-Za-z]+(?: [A-Za-z]+)*)\s*\(([^()]*)\)$/);
  if (!match) return undefined;
  const privilege = match[1].replace(/\s+/g, ' ').toUpperCase();
  const columns: string[] = [];
  for (const text of match[2].split(',')) {
    const column = COLUMN.exec(text.trim());
    if (!column) return `"${text.trim()}" in "${raw.trim()}" is not a column name`;
    columns.push(column[1] !== undefined ? column[1].replace(/``/g, '`') : column[2]);
  }
  return { privilege, columns };
}

/**
 * A privilege on columns as the comparison keys it: the columns in lower case (MariaDB's column names
 * are not case-sensitive), sorted, unquoted: `SELECT (a, b)`.
 */
function columnKey(privilege: string, columns: string[]): string {
  return `${privilege} (${[...new Set(columns.map((c) => c.toLowerCase()))].sort().join(', ')})`;
}

/** Splits a privilege list at the commas outside parentheses (`SELECT (a, b), INSERT`). */
function splitPrivileges(list: string): string[] {
  return list.split(/,(?![^(]*\))/);
}

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
    for (const raw of splitPrivileges(entry.slice(colon + 1))) {
      const columns = columnPrivilege(raw);
      if (typeof columns === 'string') return columns;
      if (columns) {
        if (!COLUMN_PRIVILEGES.has(columns.privilege))
          return `"${raw.trim()}" in "${entry}": only SELECT, INSERT, UPDATE and REFERENCES are granted on columns`;
        if (target.endsWith('.*'))
          return `"${raw.trim()}" in "${entry}": column privileges are on a table (db.table), not ${target}`;
        set.privileges.add(columnKey(columns.privilege, columns.columns));
        continue;
      }
      const privilege = normalisePrivilege(raw);
      if (privilege === 'GRANT') set.grantOption = true;
      else if (PRIVILEGE.test(privilege)) set.privileges.add(privilege);
      else
        return `"${raw.trim()}" in "${entry}" is not a privilege (like SELECT, ALL, GRANT, SELECT (col1, col2))`;
    }
    if (set.privileges.has('ALL') && [...set.privileges].some(isColumnPrivilege))
      return `"${entry}": ALL already covers every column (SHOW GRANTS does not list column privileges beside it): give ALL, or the privileges one by one`;
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
  const columns = columnPrivilege(raw);
  if (columns && typeof columns !== 'string') return columnKey(columns.privilege, columns.columns);
  const privilege = raw.trim().replace(/\s+/g, ' ').toUpperCase();
  return RENAMED_PRIVILEGES[privilege] ?? privilege;
}

function isColumnPrivilege(key: string): boolean {
  return key.includes('(');
}

/** A privilege as GRANT and REVOKE write it: `SELECT`, or `SELECT (`a`, `b`)` with its columns quoted. */
function privilegeSql(key: string): string {
  const open = key.indexOf(' (');
  if (open < 0) return key;
  const columns = key.slice(open + 2, -1).split(', ');
  return `${key.slice(0, open)} (${columns.map(mysqlIdent).join(', ')})`;
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
    // Column privileges (`SELECT (`a`, `b`)`) hold commas: split outside parentheses only.
    for (const raw of splitPrivileges(match[1])) set.privileges.add(normalisePrivilege(raw));
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
    const real = (s: GrantSet, columns: boolean) =>
      new Set([...s.privileges].filter((p) => p !== 'USAGE' && isColumnPrivilege(p) === columns));
    const [w, h] = [real(want, false), real(have, false)];
    const [wc, hc] = [real(want, true), real(have, true)];
    const on = targetSql(target);
    const before = sql.length;
    const list = (keys: Iterable<string>) => [...keys].map(privilegeSql).join(', ');
    /** Column privileges REVOKE ALL took away too (it does, on MariaDB): granted again below. */
    let revokedAll = false;
    if (w.has('ALL')) {
      if (!h.has('ALL')) sql.push(`GRANT ALL PRIVILEGES ON ${on} TO ${account};`);
    } else if (h.has('ALL')) {
      sql.push(`REVOKE ALL PRIVILEGES ON ${on} FROM ${account};`);
      revokedAll = true;
      if (w.size > 0) sql.push(`GRANT ${list(w)} ON ${on} TO ${account};`);
    } else {
      const revoke = [...h].filter((p) => !w.has(p));
      const grant = [...w].filter((p) => !h.has(p));
      if (revoke.length > 0) sql.push(`REVOKE ${list(revoke)} ON ${on} FROM ${account};`);
      if (grant.length > 0) sql.push(`GRANT ${list(grant)} ON ${on} TO ${account};`);
    }
    // Column privileges compare as whole entries (`SELECT (a, b)`): an entry whose columns differ is
    // revoked, then granted with the wanted ones.
    const revokeColumns = revokedAll ? [] : [...hc].filter((p) => !wc.has(p));
    const grantColumns = [...wc].filter((p) => revokedAll || !hc.has(p));
    if (revokeColumns.length > 0) sql.push(`REVOKE ${list(revokeColumns)} ON ${on} FROM ${account};`);
    if (grantColumns.length > 0) sql.push(`GRANT ${list(grantColumns)} ON ${on} TO ${account};`);
    if (want.grantOption && !have.grantOption)
      sql.push(`GRANT USAGE ON ${on} TO ${account} WITH GRANT OPTION;`);
    if (!want.grantOption && have.grantOption) sql.push(`REVOKE GRANT OPTION ON ${on} FROM ${account};`);
    if (sql.length > before) reasons.push(`privileges on ${target} differ`);
  }
  return { sql, reasons };
}

/** `resourceLimits`' options: their SQL names and the mysql.user columns that hold them. */
const LIMITS = [
  ['maxQueriesPerHour', 'MAX_QUERIES_PER_HOUR', 'max_questions'],
  ['maxUpdatesPerHour', 'MAX_UPDATES_PER_HOUR', 'max_updates'],
  ['maxConnectionsPerHour', 'MAX_CONNECTIONS_PER_HOUR', 'max_connections'],
  ['maxUserConnections', 'MAX_USER_CONNECTIONS', 'max_user_connections'],
  ['maxStatementTime', 'MAX_STATEMENT_TIME', 'max_statement_time'],
] as const;

type LimitName = (typeof LIMITS)[number][0];

const count = (name: string) =>
  z
    .number({ error: `resourceLimits.${name} must be a whole number (0: no limit)` })
    .int({ error: `resourceLimits.${name} must be a whole number (0: no limit)` })
    .min(0, { error: `resourceLimits.${name} must be 0 (no limit) or more` })
    .optional();

/** A certificate field or cipher list: text on one line (the probe reads it as one column). */
const tlsText = (name: string) =>
  z
    .string({ error: `tlsRequires.${name} must be text` })
    .regex(/^[^\t\n\r\0]+$/, { error: `tlsRequires.${name} must be non-empty text on one line` })
    .optional();

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
  /**
   * Ansible's `resource_limits`: the limits given are compared and set (0: no limit); the others are
   * left as they are. `maxStatementTime` is in seconds (MariaDB).
   */
  resourceLimits: z
    .strictObject(
      {
        maxQueriesPerHour: count('maxQueriesPerHour'),
        maxUpdatesPerHour: count('maxUpdatesPerHour'),
        maxConnectionsPerHour: count('maxConnectionsPerHour'),
        maxUserConnections: count('maxUserConnections'),
        maxStatementTime: z
          .number({ error: 'resourceLimits.maxStatementTime must be a number of seconds (0: no limit)' })
          .min(0, { error: 'resourceLimits.maxStatementTime must be 0 (no limit) or more' })
          .optional(),
      },
      { error: 'resourceLimits must be an object like { maxQueriesPerHour: 100 }' },
    )
    .optional(),
  /**
   * Ansible's `tls_requires`: `'none'`, `'ssl'`, `'x509'` (a valid client certificate), or the
   * certificate's `subject` and/or `issuer` and/or the `cipher`. Not given: left as it is.
   */
  tlsRequires: z
    .union(
      [
        z.enum(['none', 'ssl', 'x509']),
        z
          .strictObject({ subject: tlsText('subject'), issuer: tlsText('issuer'), cipher: tlsText('cipher') })
          .refine((o) => o.subject !== undefined || o.issuer !== undefined || o.cipher !== undefined, {
            error: 'tlsRequires: give subject, issuer or cipher (or "none", "ssl", "x509")',
          }),
      ],
      { error: 'tlsRequires must be "none", "ssl", "x509" or { subject, issuer, cipher }' },
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

/** What the probe reads of the account besides its plugin and hash: its TLS requirement and limits. */
const ACCOUNT_COLUMNS = ['ssl_type', 'ssl_cipher', 'x509_issuer', 'x509_subject', ...LIMITS.map((l) => l[2])];

/** The account's row as the probe reads it (the columns after the plugin and the hash's digest). */
function accountColumns(row: string[]): Record<string, string | undefined> {
  return Object.fromEntries(ACCOUNT_COLUMNS.map((column, i) => [column, row[2 + i]]));
}

type TlsRequires = NonNullable<z.output<typeof options>['tlsRequires']>;

/** `REQUIRE ...` for a TLS requirement. */
function requireSql(tls: TlsRequires): string {
  if (typeof tls === 'string') return `REQUIRE ${tls.toUpperCase()}`;
  const parts: string[] = [];
  if (tls.subject !== undefined) parts.push(`SUBJECT ${mysqlString(tls.subject)}`);
  if (tls.issuer !== undefined) parts.push(`ISSUER ${mysqlString(tls.issuer)}`);
  if (tls.cipher !== undefined) parts.push(`CIPHER ${mysqlString(tls.cipher)}`);
  return `REQUIRE ${parts.join(' AND ')}`;
}

/** Whether the account's TLS requirement (mysql.user's ssl_type and its fields) is the wanted one. */
export function sameTls(tls: TlsRequires, account: Record<string, string | undefined>): boolean {
  const type = account.ssl_type ?? '';
  if (tls === 'none') return type === '';
  if (tls === 'ssl') return type === 'ANY';
  if (tls === 'x509') return type === 'X509';
  return (
    type === 'SPECIFIED' &&
    (account.x509_subject ?? '') === (tls.subject ?? '') &&
    (account.x509_issuer ?? '') === (tls.issuer ?? '') &&
    (account.ssl_cipher ?? '') === (tls.cipher ?? '')
  );
}

/** The limits given that the account does not have, as `WITH` writes them, and a reason per limit. */
export function limitChanges(
  limits: Partial<Record<LimitName, number>> | undefined,
  account: Record<string, string | undefined> | undefined,
): { sql: string[]; reasons: string[] } {
  const sql: string[] = [];
  const reasons: string[] = [];
  for (const [option, name, column] of LIMITS) {
    const want = limits?.[option];
    if (want === undefined) continue;
    const have = account?.[column];
    if (have !== undefined && Number(have) === want) continue;
    sql.push(`${name} ${want}`);
    if (account) reasons.push(`${name} is ${have === undefined ? 'unknown' : Number(have)}, wanted ${want}`);
  }
  return { sql, reasons };
}
const GRANTS_EXIT = 'verdandi-mygrants-exit';

function prepare(opts: z.output<typeof options>): MysqlUser {
  const hash = opts.password === undefined ? undefined : nativePasswordHash(opts.password);
  if (opts.password !== undefined) registerSecret([opts.password, hash]);
  const parsed = opts.privileges === undefined ? undefined : parsePrivileges(opts.privileges);
  // The schema refused a spec that does not parse: here it is always a map.
  return { ...opts, hash, wanted: typeof parsed === 'string' ? undefined : parsed };
}

/**
 * SHOW GRANTS ends the *.* line with the account's authentication, then its REQUIRE and WITH clauses
 * (`WITH GRANT OPTION MAX_QUERIES_PER_HOUR 10`): cut from IDENTIFIED on (it holds the hash), keeping
 * the grant option.
 */
const CUT_AUTHENTICATION =
  "sed -e 's/ IDENTIFIED .* WITH GRANT OPTION.*$/ WITH GRANT OPTION/' -e 's/ IDENTIFIED .*//'";

function probe({ user, host, state, wanted }: MysqlUser): string {
  // The stored hash leaves the server only hashed again (SHA-256): enough to compare, not to log in.
  const lines = [
    mysqlProbe(
      `SELECT '${USER_MARKER}', plugin, SHA2(authentication_string, 256), ${ACCOUNT_COLUMNS.join(', ')} FROM mysql.user WHERE User = ${mysqlString(user)} AND Host = ${mysqlString(host)}`,
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
  const { user, host, state, hash, wanted, tlsRequires, resourceLimits } = opts;
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
  // CREATE USER and ALTER USER take the same clauses: IDENTIFIED, REQUIRE, then WITH the limits.
  const clauses = (parts: { identified?: boolean; tls?: boolean; limits: string[] }) =>
    [
      parts.identified ? identified : '',
      parts.tls && tlsRequires !== undefined ? ` ${requireSql(tlsRequires)}` : '',
      parts.limits.length > 0 ? ` WITH ${parts.limits.join(' ')}` : '',
    ].join('');
  if (!row) {
    const grants = wanted === undefined ? [] : grantChanges(account, wanted, new Map()).sql;
    const limits = limitChanges(resourceLimits, undefined).sql;
    return {
      steps: [
        mysqlStep(
          [`CREATE USER ${account}${clauses({ identified: true, tls: true, limits })};`, ...grants].join(
            '\n',
          ),
          `create user ${user}@${host}`,
        ),
      ],
      reason: 'user does not exist',
    };
  }
  const sql: string[] = [];
  const reasons: string[] = [];
  const [plugin, storedDigest] = row;
  const columns = accountColumns(row);
  let passwordDiffers = false;
  if (hash !== undefined) {
    const same =
      plugin === 'mysql_native_password' && storedDigest === createHash('sha256').update(hash).digest('hex');
    if (!same) {
      passwordDiffers = true;
      reasons.push(
        plugin === 'mysql_native_password'
          ? 'password differs'
          : `authenticated by ${plugin}, not a password`,
      );
    }
  }
  const tlsDiffers = tlsRequires !== undefined && !sameTls(tlsRequires, columns);
  if (tlsDiffers) reasons.push('TLS requirement differs');
  const limits = limitChanges(resourceLimits, columns);
  reasons.push(...limits.reasons);
  if (passwordDiffers || tlsDiffers || limits.sql.length > 0)
    sql.push(
      `ALTER USER ${account}${clauses({ identified: passwordDiffers, tls: tlsDiffers, limits: limits.sql })};`,
    );
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

/**
 * `mysqlUser({ user, host, password, privileges, resourceLimits, tlsRequires, state })`. A task with a
 * password is always sensitive.
 */
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
