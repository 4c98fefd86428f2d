/**
 * postgresDb: a PostgreSQL database with its owner, encoding and extensions.
 *
 * The probe reads pg_database and, when extensions are wanted, pg_extension inside the database. The
 * encoding and template only apply when the database is created (an existing database's encoding
 * cannot change: a different one is an error, not a silent drop). Given an encoding without a template,
 * the database is created from template0, the one template that accepts any encoding. Extensions are
 * created when missing (`CREATE EXTENSION IF NOT EXISTS`), never dropped.
 */
import type { Plan, ProbeResult, RunStep, Task, TaskOptions } from '../engine/types.js';
import { taskBase } from '../engine/types.js';
import { checkPgName, psqlFailure, psqlProbe, psqlStep, sqlIdent, sqlLiteral } from './postgres-user.js';
import { taskOptionError } from './probes.js';

export interface PostgresDbOptions {
  name: string;
  /** Owner role (it must exist: create it with postgresUser first). */
  owner?: string;
  /** Encoding at creation, e.g. `UTF8`. */
  encoding?: string;
  /** Template at creation (default template1, or template0 when an encoding is given). */
  template?: string;
  /** Extensions to create in the database (`pg_trgm`, `uuid-ossp`...). */
  extensions?: string[];
  state?: 'present' | 'absent';
}

const DB_MARKER = 'verdandi-pgdb';
const EXT_MARKER = 'verdandi-pgext';
const EXT_EXIT = 'verdandi-pgext-exit';

export function postgresDb(opts: PostgresDbOptions & TaskOptions): Task {
  const name = checkPgName('postgresDb', 'name', opts.name);
  const label = `postgres database ${name}`;
  const state = opts.state ?? 'present';
  if (state !== 'present' && state !== 'absent') {
    throw taskOptionError(label, `state must be present or absent, got ${JSON.stringify(state)}`);
  }
  const owner = opts.owner === undefined ? undefined : checkPgName(label, 'owner', opts.owner);
  const template = opts.template === undefined ? undefined : checkPgName(label, 'template', opts.template);
  if (
    opts.encoding !== undefined &&
    (typeof opts.encoding !== 'string' || !/^[A-Za-z0-9_-]+$/.test(opts.encoding))
  ) {
    throw taskOptionError(
      label,
      `encoding must be an encoding name like UTF8, got ${JSON.stringify(opts.encoding)}`,
    );
  }
  const extensions = opts.extensions ?? [];
  if (!Array.isArray(extensions))
    throw taskOptionError(label, 'extensions must be a list of extension names');
  for (const ext of extensions) {
    if (typeof ext !== 'string' || !/^[A-Za-z0-9_-]+$/.test(ext)) {
      throw taskOptionError(label, `${JSON.stringify(ext)} is not an extension name`);
    }
  }

  const probe = [
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

  const createExtensions = (names: string[]): RunStep =>
    psqlStep(
      names.map((ext) => `CREATE EXTENSION IF NOT EXISTS ${sqlIdent(ext)};`).join('\n'),
      `create extension ${names.join(', ')} in ${name}`,
      name,
    );

  function plan(result: ProbeResult): Plan {
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
        steps: extensions.length > 0 ? [create, createExtensions(extensions)] : [create],
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
        steps.push(createExtensions(missing));
        reasons.push(`extensions missing: ${missing.join(', ')}`);
      }
    }
    return steps.length > 0 ? { steps, reason: reasons.join(', ') } : { steps: [] };
  }

  return { ...taskBase('postgresDb', label, { ...opts, name: label }), probe, plan };
}

/** `utf-8`, `UTF8` and `utf_8` name the same encoding. */
function normaliseEncoding(encoding: string): string {
  return encoding.toUpperCase().replace(/[-_]/g, '');
}
