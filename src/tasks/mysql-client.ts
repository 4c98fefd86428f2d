/**
 * What mysqlDb and mysqlUser share: SQL quoting for MariaDB, and the `mariadb` client run as root.
 *
 * Debian's MariaDB lets the system root in as `root@localhost` through unix_socket authentication, so
 * there is no admin password to keep anywhere: the client runs as root on the host and connects over
 * the local socket. Statements that change something travel on the client's standard input, never on a
 * command line (a password hash in them would show in the host's process list otherwise).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ProbeResult, RunStep } from '../engine/types.js';
import { quote } from '../util/shell.js';
import { says } from './options.js';
import { sqlClientFailure } from './probe-output.js';

/**
 * A database, user or host name: one line of text without NUL, at most `max` characters (MariaDB: 64
 * for a database, 80 for a user, 255 for a host).
 */
export function mysqlName(option: string, max: number) {
  const message = says(
    (got) => `${option} must be a MariaDB name of 1 to ${max} characters on one line, got ${got}`,
  );
  return z
    .string(message)
    .min(1, message)
    .max(max, message)
    .regex(/^[^\0\n\r\t]*$/, message);
}

/**
 * A SQL string literal for MariaDB's default sql_mode (backslash is an escape character): backslashes
 * and quotes escaped, so the literal means the value whatever it holds.
 */
export function mysqlString(value: string): string {
  if (value.includes('\0')) throw new Error('a SQL literal cannot contain a NUL character');
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A SQL identifier, always backquoted (backquotes inside doubled). */
export function mysqlIdent(name: string): string {
  if (name.includes('\0')) throw new Error('a SQL identifier cannot contain a NUL character');
  return `\`${name.replace(/`/g, '``')}\``;
}

/** `'user'@'host'`, the way an account is named in GRANT, CREATE USER and SHOW GRANTS. */
export function mysqlAccount(user: string, host: string): string {
  return `${mysqlString(user)}@${mysqlString(host)}`;
}

/**
 * The client as root, from `/`: `mariadb` (MariaDB 10.4 and later), or `mysql` on older hosts. Batch
 * mode: rows as tab-separated lines without a header, values raw (names hold no tab nor newline).
 */
const CLIENT =
  'cd / && "$(command -v mariadb || command -v mysql || echo mariadb)" --batch --raw --skip-column-names';

const EXIT_MARKER = 'verdandi-mysql-exit';

/**
 * Probe fragment running `sql` (a query without secrets: it is on the command line): its rows, then
 * `<exitMarker> <code>`. Errors go to stdout too, for the plan's message. Start each row with a marker
 * so rows are told apart from errors.
 */
export function mysqlProbe(sql: string, exitMarker = EXIT_MARKER, filter?: string): string {
  return [
    `out=$(${CLIENT} -e ${quote(sql)} 2>&1); code=$?`,
    `printf '%s\\n' "$out"${filter ? ` | ${filter}` : ''}`,
    `echo "${exitMarker} $code"`,
  ].join('\n');
}

/** The error message of a client probe that failed (server down, not installed...), if it did. */
export function mysqlFailure(result: ProbeResult, exitMarker = EXIT_MARKER): string | undefined {
  return sqlClientFailure(result, exitMarker, {
    name: 'MariaDB',
    client: 'client',
    installed: 'mariadb-server',
  });
}

/** The rows of a probe that start with `marker`, split into their columns (the marker dropped). */
export function mysqlRows(result: ProbeResult, marker: string): string[][] {
  return result.stdout
    .split('\n')
    .filter((l) => l.startsWith(`${marker}\t`))
    .map((l) => l.split('\t').slice(1));
}

/** A step running `sql` (on stdin) with the client as root; it stops at the first error. */
export function mysqlStep(sql: string, description: string): RunStep {
  return { kind: 'run', command: CLIENT, stdin: `${sql}\n`, description };
}

/**
 * The `mysql_native_password` hash of a password, as the server's PASSWORD() computes it: `*` and the
 * upper-case hex of SHA1(SHA1(password)). No salt: the plan compares it with the stored hash, and
 * `IDENTIFIED BY PASSWORD '<hash>'` sets it, so the clear password never reaches the host. The hash
 * is enough to log in with this plugin: it is as secret as the password.
 */
export function nativePasswordHash(password: string): string {
  const once = createHash('sha1').update(password, 'utf8').digest();
  return `*${createHash('sha1').update(once).digest('hex').toUpperCase()}`;
}
