/**
 * postgresUser: a PostgreSQL role (a user: LOGIN by default) with its attributes and password.
 *
 * The probe reads the role from `pg_authid` as the `postgres` system user (peer authentication on the
 * local socket). The stored password is a verifier, never the password itself: for SCRAM-SHA-256 (the
 * default since PostgreSQL 14) the plan checks the desired password against it locally, the way the
 * server checks a login; for md5 it compares `md5(password + name)`. So an unchanged password is left
 * alone, and a run where nothing changed reports nothing.
 *
 * When the password must be set, Verdandi computes the SCRAM verifier itself (random salt) and sends
 * `ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'`: PostgreSQL stores a verifier as it is, so the clear
 * password never reaches the server, nor its logs (log_statement = ddl would log the statement). The SQL
 * travels on psql's standard input, never on a command line. A task with a password is `sensitive`.
 *
 * Role attributes as Ansible's `role_attr_flags` and `conn_limit`: `superuser`, `createdb`, `login`,
 * `replication`, `createrole`, `bypassrls` (read from pg_authid's rol* columns) and `connLimit`
 * (rolconnlimit, -1: no limit). An attribute not given is left as it is.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep } from '../engine/types.js';
import { registerSecret } from '../util/redact.js';
import { words } from '../util/shell.js';
import { defineTask } from './define.js';
import { flag, presence, says } from './options.js';
import { sqlClientFailure } from './probe-output.js';

/** A role or database name: any text PostgreSQL accepts as an identifier (1 to 63 bytes, one line). */
export function pgName(option: string) {
  const message = says(
    (got) => `${option} must be a PostgreSQL name of 1 to 63 bytes on one line, got ${got}`,
  );
  return z
    .string(message)
    .min(1, message)
    .regex(/^[^\0\n\r]*$/, message)
    .refine((name) => Buffer.byteLength(name) <= 63, message);
}

const connLimitMessage = says((got) => `connLimit must be an integer of -1 (no limit) or more, got ${got}`);

const options = z.strictObject({
  user: pgName('user'),
  state: presence.default('present'),
  /** Clear password (from the secrets). Not given: the password is left as it is. */
  password: z
    .string({ error: 'password must be a non-empty string without NUL characters' })
    .regex(/^[^\0]+$/, { error: 'password must be a non-empty string without NUL characters' })
    .optional(),
  /** Untouched when not given (a new role is created without it). */
  superuser: flag('superuser').optional(),
  /** Untouched when not given (a new role is created without it). */
  createdb: flag('createdb').optional(),
  /** Can log in (default true: this is a user; false makes a group role). */
  login: flag('login').default(true),
  /** Ansible's REPLICATION flag: may start streaming replication. Untouched when not given. */
  replication: flag('replication').optional(),
  /** Ansible's CREATEROLE flag: may create, alter and drop roles. Untouched when not given. */
  createrole: flag('createrole').optional(),
  /** Ansible's BYPASSRLS flag: bypasses row-level security. Untouched when not given. */
  bypassrls: flag('bypassrls').optional(),
  /** Ansible's `conn_limit`: concurrent connections of the role, -1 for no limit. Untouched when not given. */
  connLimit: z.number(connLimitMessage).int(connLimitMessage).min(-1, connLimitMessage).optional(),
});

export type PostgresUserOptions = z.input<typeof options>;

interface PostgresUser extends z.output<typeof options> {
  /** The SCRAM verifier sent for the password, computed on first need (PBKDF2 takes a few milliseconds). */
  verifier(): string;
}

const MARKER = 'verdandi-pgrole';

function prepare(opts: z.output<typeof options>): PostgresUser {
  const { password } = opts;
  if (password !== undefined) registerSecret(password);
  let verifier: string | undefined;
  return {
    ...opts,
    // Kept once computed: plan() stays a function of its input for a given task.
    verifier: () => {
      verifier ??= scramVerifier(password!);
      return verifier;
    },
  };
}

function probe({ user }: PostgresUser): string {
  return psqlProbe(
    // The password last: it is the one column that may hold a `|`.
    `select '${MARKER}', rolsuper, rolcreatedb, rolcanlogin, rolreplication, rolcreaterole, rolbypassrls, rolconnlimit, coalesce(rolpassword, '') from pg_authid where rolname = ${sqlLiteral(user)}`,
  );
}

function plan(opts: PostgresUser, result: ProbeResult): Plan {
  const { user: name, state, password, login } = opts;
  const passwordClause = () => ` PASSWORD ${sqlLiteral(opts.verifier())}`;
  const failure = psqlFailure(result);
  if (failure) return { steps: [], error: failure };
  const row = result.stdout.split('\n').find((l) => l.startsWith(`${MARKER}|`));
  if (state === 'absent') {
    return row
      ? { steps: [psqlStep(`DROP ROLE ${sqlIdent(name)};`, `drop role ${name}`)], reason: 'role exists' }
      : { steps: [] };
  }
  if (!row) {
    const attributes = [
      login ? 'LOGIN' : 'NOLOGIN',
      opts.superuser ? 'SUPERUSER' : 'NOSUPERUSER',
      opts.createdb ? 'CREATEDB' : 'NOCREATEDB',
      ...(opts.replication !== undefined ? [opts.replication ? 'REPLICATION' : 'NOREPLICATION'] : []),
      ...(opts.createrole !== undefined ? [opts.createrole ? 'CREATEROLE' : 'NOCREATEROLE'] : []),
      ...(opts.bypassrls !== undefined ? [opts.bypassrls ? 'BYPASSRLS' : 'NOBYPASSRLS'] : []),
      ...(opts.connLimit !== undefined ? [`CONNECTION LIMIT ${opts.connLimit}`] : []),
    ].join(' ');
    const sql = `CREATE ROLE ${sqlIdent(name)} WITH ${attributes}${password !== undefined ? passwordClause() : ''};`;
    return { steps: [psqlStep(sql, `create role ${name}`)], reason: 'role does not exist' };
  }

  const [, superuser, createdb, canLogin, replication, createrole, bypassrls, connLimit, ...stored] =
    row.split('|');
  const storedPassword = stored.join('|');
  const changes: string[] = [];
  const reasons: string[] = [];
  const flag = (wanted: boolean | undefined, current: string, on: string, off: string) => {
    if (wanted === undefined || (current === 't') === wanted) return;
    changes.push(wanted ? on : off);
    reasons.push(`${wanted ? on : off.replace(/^NO/, 'no ')}`.toLowerCase());
  };
  flag(opts.superuser, superuser, 'SUPERUSER', 'NOSUPERUSER');
  flag(opts.createdb, createdb, 'CREATEDB', 'NOCREATEDB');
  flag(login, canLogin, 'LOGIN', 'NOLOGIN');
  flag(opts.replication, replication, 'REPLICATION', 'NOREPLICATION');
  flag(opts.createrole, createrole, 'CREATEROLE', 'NOCREATEROLE');
  flag(opts.bypassrls, bypassrls, 'BYPASSRLS', 'NOBYPASSRLS');
  if (opts.connLimit !== undefined && Number(connLimit) !== opts.connLimit) {
    changes.push(`CONNECTION LIMIT ${opts.connLimit}`);
    reasons.push(`connection limit ${connLimit} → ${opts.connLimit}`);
  }
  let setPassword = false;
  if (password !== undefined && !passwordMatches(password, name, storedPassword)) {
    setPassword = true;
    reasons.push(storedPassword === '' ? 'no password set' : 'password differs');
  }
  if (changes.length === 0 && !setPassword) return { steps: [] };
  const sql = `ALTER ROLE ${sqlIdent(name)}${changes.length > 0 ? ` WITH ${changes.join(' ')}` : ''}${setPassword ? passwordClause() : ''};`;
  return { steps: [psqlStep(sql, `alter role ${name}`)], reason: reasons.join(', ') };
}

/**
 * `postgresUser({ user, password, superuser, createdb, login, replication, createrole, bypassrls,
 * connLimit, state })`; `name` is the label (it was
 * the role before: still accepted). A task with a password is always sensitive.
 */
export const postgresUser = defineTask({
  type: 'postgresUser',
  becomeUser: { refuse: 'it runs psql as postgres itself through runuser, which only root may use' },
  options,
  subject: 'user',
  subjectWasName: true,
  label: (user) => `postgres user ${user}`,
  prepare,
  probe,
  plan,
  sensitive: (spec) => spec.password !== undefined,
});

// ---------------------------------------------------------------------------------------------------
// SQL quoting (also used by postgres-db.ts)

/**
 * A SQL string literal. Like PostgreSQL's quote_literal: quotes doubled, and when the text holds a
 * backslash, an E'' literal with backslashes doubled, so the result means the same whatever
 * standard_conforming_strings says.
 */
export function sqlLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('a SQL literal cannot contain a NUL character');
  const quoted = value.replace(/'/g, "''");
  return value.includes('\\') ? `E'${quoted.replace(/\\/g, '\\\\')}'` : `'${quoted}'`;
}

/** A SQL identifier, always double-quoted (so its case is kept as written). */
export function sqlIdent(name: string): string {
  if (name.includes('\0')) throw new Error('a SQL identifier cannot contain a NUL character');
  return `"${name.replace(/"/g, '""')}"`;
}

/** A libpq connection string value (`dbname='...'`), for psql's --dbname. */
export function conninfoValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

// ---------------------------------------------------------------------------------------------------
// Running psql as the postgres system user (also used by postgres-db.ts)

/** psql as `postgres`, from `/` (psql warns when it cannot enter root's working directory). */
function psqlAsPostgres(args: Array<string | undefined>): string {
  return `cd / && ${words('runuser', '-u', 'postgres', '--', 'psql', '-X', ...args.filter((a): a is string => a !== undefined))}`;
}

/**
 * Probe fragment running one query: rows as `a|b|c` lines (start each row with a marker, so rows are
 * told apart from errors), then `<exitMarker> <code>`. Errors go to stdout too, for the plan's message.
 */
export function psqlProbe(query: string, opts: { database?: string; exitMarker?: string } = {}): string {
  const dbArg = opts.database === undefined ? undefined : `--dbname=dbname=${conninfoValue(opts.database)}`;
  return [
    `out=$(${psqlAsPostgres(['-A', '-t', '-F', '|', dbArg, '-c', query])} 2>&1); code=$?`,
    `printf '%s\\n' "$out"`,
    `echo "${opts.exitMarker ?? PSQL_EXIT} $code"`,
  ].join('\n');
}

const PSQL_EXIT = 'verdandi-psql-exit';

/** The error message for a psql probe that failed (server down, not installed...), if it did. */
export function psqlFailure(result: ProbeResult, exitMarker = PSQL_EXIT): string | undefined {
  return sqlClientFailure(result, exitMarker, { name: 'PostgreSQL', client: 'psql', installed: 'it' });
}

/** A step running `sql` (on stdin, so nothing of it shows on a command line) with psql as `postgres`. */
export function psqlStep(sql: string, description: string, database?: string): RunStep {
  const dbArg = database === undefined ? undefined : `--dbname=dbname=${conninfoValue(database)}`;
  return {
    kind: 'run',
    command: psqlAsPostgres(['-q', '-v', 'ON_ERROR_STOP=1', dbArg]),
    stdin: `${sql}\n`,
    description,
  };
}

// ---------------------------------------------------------------------------------------------------
// Password verifiers

export interface ScramSecret {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** Parses `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 parts), or undefined. */
export function parseScramVerifier(stored: string): ScramSecret | undefined {
  const match = stored.match(/^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/);
  if (!match) return undefined;
  const secret = {
    iterations: Number(match[1]),
    salt: Buffer.from(match[2], 'base64'),
    storedKey: Buffer.from(match[3], 'base64'),
    serverKey: Buffer.from(match[4], 'base64'),
  };
  if (secret.iterations < 1 || secret.storedKey.length !== 32 || secret.serverKey.length !== 32)
    return undefined;
  return secret;
}

/** StoredKey and ServerKey of a password (RFC 5802 / RFC 7677), as PostgreSQL derives them. */
function scramKeys(
  password: string,
  salt: Buffer,
  iterations: number,
): { storedKey: Buffer; serverKey: Buffer } {
  const saltedPassword = pbkdf2Sync(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', saltedPassword).update('Client Key').digest();
  return {
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', saltedPassword).update('Server Key').digest(),
  };
}

/**
 * A SCRAM-SHA-256 verifier for `password`, in the form PostgreSQL stores in pg_authid.rolpassword.
 * A random 16-byte salt and 4096 iterations (PostgreSQL's defaults) unless given.
 */
export function scramVerifier(password: string, opts: { salt?: Buffer; iterations?: number } = {}): string {
  const salt = opts.salt ?? randomBytes(16);
  const iterations = opts.iterations ?? 4096;
  const { storedKey, serverKey } = scramKeys(password, salt, iterations);
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * Whether `password` is the one behind `stored` (pg_authid.rolpassword of role `roleName`):
 * SCRAM-SHA-256 verifiers are recomputed with their salt and iteration count; md5 ones are
 * `md5` + md5(password + role name); anything else is compared as a clear password (very old servers).
 * An empty `stored` (no password) never matches.
 */
export function passwordMatches(password: string, roleName: string, stored: string): boolean {
  if (stored === '') return false;
  const scram = parseScramVerifier(stored);
  if (scram) {
    const { storedKey, serverKey } = scramKeys(password, scram.salt, scram.iterations);
    return timingSafeEqual(storedKey, scram.storedKey) && timingSafeEqual(serverKey, scram.serverKey);
  }
  if (stored.startsWith('SCRAM-SHA-256$')) return false;
  if (/^md5[0-9a-f]{32}$/.test(stored)) return stored === md5Verifier(password, roleName);
  return stored === password;
}

/** PostgreSQL's md5 verifier: `md5` + hex md5 of password followed by the role name. */
export function md5Verifier(password: string, roleName: string): string {
  return `md5${createHash('md5')
    .update(password + roleName, 'utf8')
    .digest('hex')}`;
}

// SASLprep (RFC 4013) as PostgreSQL applies it to passwords before hashing (src/common/saslprep.c).
// ASCII passwords are used as they are. Others: some characters are removed, non-ASCII spaces become
// spaces, the result is NFKC-normalised; if it then holds a prohibited character, PostgreSQL uses the
// raw password instead. Approximation: the Unicode version is the one of this Node (RFC 3454 tables are
// Unicode 3.2), and the bidirectional-text rule is not checked. Both only matter for exotic passwords.
type Range = [number, number];
const inRanges = (ranges: Range[]) => (codePoint: number) =>
  ranges.some(([lo, hi]) => codePoint >= lo && codePoint <= hi);

/** RFC 3454 table B.1: removed. */
const isMappedToNothing = inRanges([
  [0xad, 0xad],
  [0x34f, 0x34f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200b, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
]);
/** RFC 3454 table C.1.2: non-ASCII spaces, mapped to a space. */
const isNonAsciiSpace = inRanges([
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200b],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
]);
/** RFC 3454 tables C.1.2 to C.9: prohibited after mapping. */
const isProhibited = inRanges([
  [0x00, 0x1f],
  [0x7f, 0x9f],
  [0xa0, 0xa0],
  [0x340, 0x341],
  [0x6dd, 0x6dd],
  [0x70f, 0x70f],
  [0x1680, 0x1680],
  [0x180e, 0x180e],
  [0x2000, 0x200f],
  [0x2028, 0x202f],
  [0x205f, 0x2063],
  [0x206a, 0x206f],
  [0x2ff0, 0x2ffb],
  [0x3000, 0x3000],
  [0xd800, 0xdfff],
  [0xe000, 0xf8ff],
  [0xfdd0, 0xfdef],
  [0xfeff, 0xfeff],
  [0xfff9, 0xfffd],
  [0x1d173, 0x1d17a],
  [0xe0001, 0xe0001],
  [0xe0020, 0xe007f],
  [0xf0000, 0x10ffff],
]);
/** Code points with no character (RFC 3454 A.1 is Unicode 3.2's list; this is Node's Unicode). */
const isUnassigned = (c: string) => /\p{Cn}/u.test(c);
const isNonCharacter = (codePoint: number) => (codePoint & 0xfffe) === 0xfffe;

export function saslPrep(password: string): string {
  if (/^[\x00-\x7F]*$/.test(password)) return password;
  const mapped = [...password]
    .filter((c) => !isMappedToNothing(c.codePointAt(0)!))
    .map((c) => (isNonAsciiSpace(c.codePointAt(0)!) ? ' ' : c))
    .join('')
    .normalize('NFKC');
  const prohibited = [...mapped].some((c) => {
    const codePoint = c.codePointAt(0)!;
    return isProhibited(codePoint) || isNonCharacter(codePoint) || isUnassigned(c);
  });
  return mapped === '' || prohibited ? password : mapped;
}
