/**
 * mysqlDb: a MariaDB database with its default character set and collation (Ansible's mysql_db with
 * `state: present|absent`, `encoding` and `collation`).
 *
 * The probe reads information_schema.SCHEMATA as root (unix_socket authentication, see
 * ./mysql-client.ts). Unlike PostgreSQL, a database's character set and collation are only defaults
 * for the tables created later, and they can change: a database whose defaults differ gets
 * `ALTER DATABASE ... CHARACTER SET ... COLLATE ...` (existing tables keep theirs). An option not given
 * is not compared; a collation alone implies its character set.
 */
import { z } from 'zod';
import type { Plan, ProbeResult } from '../engine/types.js';
import { defineTask } from './define.js';
import {
  mysqlFailure,
  mysqlIdent,
  mysqlName,
  mysqlProbe,
  mysqlRows,
  mysqlStep,
  mysqlString,
} from './mysql-client.js';
import { presence, text } from './options.js';

const options = z.strictObject({
  db: mysqlName('db', 64),
  state: presence.default('present'),
  /** Default character set, e.g. `utf8mb4`. */
  encoding: text('encoding', /^[A-Za-z0-9_]+$/, 'a character set name like utf8mb4').optional(),
  /** Default collation, e.g. `utf8mb4_unicode_ci`. */
  collation: text('collation', /^[A-Za-z0-9_]+$/, 'a collation name like utf8mb4_unicode_ci').optional(),
});

export type MysqlDbOptions = z.input<typeof options>;
type MysqlDb = z.output<typeof options>;

const MARKER = 'verdandi-mydb';

function probe({ db }: MysqlDb): string {
  return mysqlProbe(
    `SELECT '${MARKER}', DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${mysqlString(db)}`,
  );
}

/** The CHARACTER SET and COLLATE clauses of the options given. */
function defaultsClause({ encoding, collation }: MysqlDb): string {
  return [encoding && ` CHARACTER SET ${encoding}`, collation && ` COLLATE ${collation}`]
    .filter(Boolean)
    .join('');
}

function plan(opts: MysqlDb, result: ProbeResult): Plan {
  const { db, state } = opts;
  const failure = mysqlFailure(result);
  if (failure) return { steps: [], error: failure };
  const row = mysqlRows(result, MARKER)[0];
  if (state === 'absent') {
    return row
      ? {
          steps: [mysqlStep(`DROP DATABASE ${mysqlIdent(db)};`, `drop database ${db}`)],
          reason: 'database exists',
        }
      : { steps: [] };
  }
  if (!row) {
    return {
      steps: [
        mysqlStep(`CREATE DATABASE ${mysqlIdent(db)}${defaultsClause(opts)};`, `create database ${db}`),
      ],
      reason: 'database does not exist',
    };
  }
  const [charset, collation] = row;
  const reasons: string[] = [];
  if (opts.encoding !== undefined && normaliseCharset(opts.encoding) !== normaliseCharset(charset)) {
    reasons.push(`character set ${charset} → ${opts.encoding}`);
  }
  if (opts.collation !== undefined && normaliseCharset(opts.collation) !== normaliseCharset(collation)) {
    reasons.push(`collation ${collation} → ${opts.collation}`);
  }
  if (reasons.length === 0) return { steps: [] };
  return {
    steps: [
      mysqlStep(`ALTER DATABASE ${mysqlIdent(db)}${defaultsClause(opts)};`, `defaults of database ${db}`),
    ],
    reason: reasons.join(', '),
  };
}

/** `mysqlDb({ db, encoding, collation, state })`. */
export const mysqlDb = defineTask({
  type: 'mysqlDb',
  options,
  subject: 'db',
  label: (db) => `mysql database ${db}`,
  probe,
  plan,
});

/**
 * A character set or collation as the server reports it: lower case, and `utf8` is `utf8mb3` (MariaDB
 * 10.6 and later report the alias's real name: `utf8_general_ci` comes back `utf8mb3_general_ci`).
 */
function normaliseCharset(name: string): string {
  return name.toLowerCase().replace(/^utf8(?!mb)/, 'utf8mb3');
}
