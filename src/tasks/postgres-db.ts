/**
 * postgresDb: a PostgreSQL database with its owner, encoding and extensions.
 *
 * The probe reads pg_database and, when extensions are wanted, pg_extension inside the database. The
 * encoding and template only apply when the database is created (an existing database's encoding
 * cannot change: a different one is an error, not a silent drop). Given an encoding without a template,
 * the database is created from template0, the one template that accepts any encoding. Extensions are
 * created when missing (`CREATE EXTENSION IF NOT EXISTS`), never dropped.
 */
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep } from '../engine/types.js';
import { defineTask } from './define.js';
import { presence, says, text } from './options.js';
import { pgName, psqlFailure, psqlProbe, psqlStep, sqlIdent, sqlLiteral } from './postgres-user.js';

const options = z.strictObject({
  db: pgName('db'),
  state: presence.default('present'),
  /** Owner role (it must exist: create it with postgresUser first). */
  owner: pgName('owner').optional(),
  /** Encoding at creation, e.g. `UTF8`. */
  encoding: text('encoding', /^[A-Za-z0-9_-]+$/, 'an encoding name like UTF8').optional(),
  /** Template at creation (default template1, or template0 when an encoding is given). */
  template: pgName('template').optional(),
  /** Extensions to create in the database (`pg_trgm`, `uuid-ossp`...). */
  extensions: z
    .array(
      z.string(says((got) => `${got} is not an extension name`)).regex(
        /^[A-Za-z0-9_-]+$/,
        says((got) => `${got} is not an extension name`),
      ),
      { error: 'extensions must be a list of extension names' },
    )
    .default([]),
});

export type PostgresDbOptions = z.input<typeof options>;
type PostgresDb = z.output<typeof options>;

const DB_MARKER = 'verdandi-pgdb';
const EXT_MARKER = 'verdandi-pgext';
const EXT_EXIT = 'verdandi-pgext-exit';

function probe({ db: name, state, extensions }: PostgresDb): string {
  return [
    psqlProbe(
      `select '${DB_MARKER}', pg_encoding_to_char(encoding), pg_get_userbyid(datdba) from pg_database where datname = ${sqlLiteral(name)}`,
    ),
    ...(extensions.length > 0 && state === 'present'
      ? [
          `if [ "$code" = 0 ] && printf '%s\\n' "$out" | grep -q '^${DB_MARKER}|'; then`,
          psqlProbe(`select '${EXT_MARKER}|' || extname from pg_extension`, {
            database: name,
            exitMarker: EXT_EXIT,
          }),
          'fi',
        ]
      : []),
  ].join('\n');
}

/** One step creating the missing extensions in database `name`. */
function createExtensions(name: string, names: string[]): RunStep {
  return psqlStep(
    names.map((ext) => `CREATE EXTENSION IF NOT EXISTS ${sqlIdent(ext)};`).join('\n'),
    `create extension ${names.join(', ')} in ${name}`,
    name,
  );
}

function plan(opts: PostgresDb, result: ProbeResult): Plan {
  const { db: name, state, owner, template, extensions } = opts;
  const failure = psqlFailure(result);
  if (failure) return { steps: [], error: failure };
  const row = result.stdout.split('\n').find((l) => l.startsWith(`${DB_MARKER}|`));
  if (state === 'absent') {
    return row
      ? {
          steps: [psqlStep(`DROP DATABASE ${sqlIdent(name)};`, `drop database ${name}`)],
          reason: 'database exists',
        }
      : { steps: [] };
  }
  if (!row) {
    const clauses = [
      owner !== undefined && `OWNER ${sqlIdent(owner)}`,
      opts.encoding !== undefined && `ENCODING ${sqlLiteral(opts.encoding)}`,
      (template !== undefined || opts.encoding !== undefined) &&
        `TEMPLATE ${sqlIdent(template ?? 'template0')}`,
    ].filter((c): c is string => typeof c === 'string');
    const create = psqlStep(
      `CREATE DATABASE ${sqlIdent(name)}${clauses.length > 0 ? ` ${clauses.join(' ')}` : ''};`,
      `create database ${name}`,
    );
    return {
      steps: extensions.length > 0 ? [create, createExtensions(name, extensions)] : [create],
      reason: 'database does not exist',
    };
  }

  const [, encoding, ...ownerParts] = row.split('|');
  const currentOwner = ownerParts.join('|');
  if (opts.encoding !== undefined && normaliseEncoding(encoding) !== normaliseEncoding(opts.encoding)) {
    return {
      steps: [],
      error: `database ${name} has encoding ${encoding}, not ${opts.encoding}: an encoding cannot be changed; dump, drop and recreate the database, or remove the encoding option`,
    };
  }
  const steps: RunStep[] = [];
  const reasons: string[] = [];
  if (owner !== undefined && currentOwner !== owner) {
    steps.push(
      psqlStep(
        `ALTER DATABASE ${sqlIdent(name)} OWNER TO ${sqlIdent(owner)};`,
        `owner of ${name} → ${owner}`,
      ),
    );
    reasons.push(`owner ${currentOwner} → ${owner}`);
  }
  if (extensions.length > 0) {
    const extFailure = psqlFailure(result, EXT_EXIT);
    if (extFailure) return { steps: [], error: extFailure };
    const present = new Set(
      result.stdout
        .split('\n')
        .filter((l) => l.startsWith(`${EXT_MARKER}|`))
        .map((l) => l.slice(EXT_MARKER.length + 1)),
    );
    const missing = extensions.filter((ext) => !present.has(ext));
    if (missing.length > 0) {
      steps.push(createExtensions(name, missing));
      reasons.push(`extensions missing: ${missing.join(', ')}`);
    }
  }
  return steps.length > 0 ? { steps, reason: reasons.join(', ') } : { steps: [] };
}

/**
 * `postgresDb({ db, owner, encoding, template, extensions, state })`; `name` is the label (it was the
 * database before: still accepted).
 */
export const postgresDb = defineTask({
  type: 'postgresDb',
  becomeUser: { refuse: 'it runs psql as postgres itself through runuser, which only root may use' },
  options,
  subject: 'db',
  subjectWasName: true,
  label: (db) => `postgres database ${db}`,
  probe,
  plan,
});

/** `utf-8`, `UTF8` and `utf_8` name the same encoding. */
function normaliseEncoding(encoding: string): string {
  return encoding.toUpperCase().replace(/[-_]/g, '');
}
