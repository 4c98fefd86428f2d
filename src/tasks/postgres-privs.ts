/**
 * postgresPrivs({ database, roles, privs, type?, objs?, schema?, targetRole?, state? }): privileges
 * granted to roles on a database, schemas, tables, sequences, or the default privileges of new objects
 * (Ansible's community.postgresql.postgresql_privs).
 *
 * The probe reads the access control lists themselves (`aclexplode` of pg_class.relacl,
 * pg_namespace.nspacl, pg_database.datacl, pg_default_acl.defaclacl; an object never granted on has
 * its owner's implicit privileges, `acldefault`), so only what was granted to the role itself counts:
 * a privilege it has through a group, PUBLIC or superuser rights is not a grant of its own, and a
 * revoke removes exactly what is there. `present` grants what is missing, `absent` revokes what is
 * granted. `ALL` stands for every privilege of the type. The SQL travels on psql's standard input.
 *
 * `objs`: for `table` and `sequence`, names in `schema` (default `public`) or `ALL_IN_SCHEMA` (every one
 * that exists when the task runs); for `schema`, schema names; for `database`, nothing (the database
 * itself); for `default`, the kinds of future objects (`TABLES`, `SEQUENCES`, `FUNCTIONS`, `TYPES`) created
 * in `schema` by `targetRole` (default: `postgres`, who runs the statements).
 */
import { z } from 'zod';
import type { Plan, ProbeResult } from '../engine/types.js';
import { defineTask, type PrepareContext } from './define.js';
import { oneOf, presence, says } from './options.js';
import { pgName, psqlFailure, psqlProbe, psqlStep, sqlIdent, sqlLiteral } from './postgres-user.js';

const MARKER = 'verdandi-pgprivs';

type PrivType = 'database' | 'schema' | 'table' | 'sequence' | 'default';
type DefaultKind = 'TABLES' | 'SEQUENCES' | 'FUNCTIONS' | 'TYPES';

/** Every privilege of each kind of object, as aclexplode names them. */
const ALL_PRIVILEGES: Record<'database' | 'schema' | 'table' | 'sequence' | 'function' | 'type', string[]> = {
  database: ['CREATE', 'CONNECT', 'TEMPORARY'],
  schema: ['USAGE', 'CREATE'],
  table: ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'],
  sequence: ['USAGE', 'SELECT', 'UPDATE'],
  function: ['EXECUTE'],
  type: ['USAGE'],
};

const DEFAULT_KINDS: Record<DefaultKind, { objtype: string; privileges: string[] }> = {
  TABLES: { objtype: 'r', privileges: ALL_PRIVILEGES.table },
  SEQUENCES: { objtype: 'S', privileges: ALL_PRIVILEGES.sequence },
  FUNCTIONS: { objtype: 'f', privileges: ALL_PRIVILEGES.function },
  TYPES: { objtype: 'T', privileges: ALL_PRIVILEGES.type },
};

const nameList = (option: string) => {
  const message = says((got) => `${option} must be a name or a non-empty list of names, got ${got}`);
  return z
    .union([pgName(option), z.array(pgName(option), message).min(1, message)], message)
    .transform((names) => (typeof names === 'string' ? [names] : names));
};

const options = z.strictObject({
  /** The database the objects are in (for type database: the database granted on). */
  database: pgName('database'),
  /** Roles receiving (or losing) the privileges; `PUBLIC` is every role. */
  roles: nameList('roles'),
  /** `SELECT`, `['SELECT', 'INSERT']`, `ALL`: privileges of the type. */
  privs: z
    .union(
      [z.string(), z.array(z.string()).min(1)],
      says((got) => `privs must be a privilege or a list of them, got ${got}`),
    )
    .transform((privs) =>
      (typeof privs === 'string' ? privs.split(',') : privs).map((p) => p.trim().toUpperCase()),
    ),
  type: oneOf('type', ['database', 'schema', 'table', 'sequence', 'default']).default('table'),
  /** The objects: see the module's comment. */
  objs: nameList('objs').optional(),
  /** The schema of tables, sequences and default privileges (default `public`). */
  schema: pgName('schema').default('public'),
  /** For type default: whose new objects (default `postgres`). */
  targetRole: pgName('targetRole').optional(),
  state: presence.default('present'),
});

export type PostgresPrivsOptions = z.input<typeof options>;

interface PrivsSpec {
  label: string;
  database: string;
  roles: string[];
  type: PrivType;
  schema: string;
  targetRole: string;
  /** The objects named (none for a database; ALL_IN_SCHEMA expands on the host). */
  objs: string[];
  allInSchema: boolean;
  /** The privileges wanted per object, `ALL` expanded (for default: per kind). */
  privileges: (obj: string) => string[];
  state: 'present' | 'absent';
}

function prepare(opts: z.output<typeof options>, { fail, label }: PrepareContext): PrivsSpec {
  const { type } = opts;
  const objs = opts.objs ?? [];
  if (type === 'database' && objs.length > 0)
    fail('objs', 'type database takes no objs: the database is `database`');
  if (type !== 'database' && objs.length === 0)
    fail('objs', `type ${type} needs objs (the objects granted on)`);
  const allInSchema = objs.length === 1 && objs[0] === 'ALL_IN_SCHEMA';
  if (allInSchema && type !== 'table' && type !== 'sequence') {
    fail('objs', 'ALL_IN_SCHEMA is for type table or sequence');
  }
  if (type === 'default') {
    const unknown = objs.find((obj) => !(obj in DEFAULT_KINDS));
    if (unknown !== undefined) {
      fail(
        'objs',
        `for type default, objs are TABLES, SEQUENCES, FUNCTIONS or TYPES, got ${JSON.stringify(unknown)}`,
      );
    }
  }
  if (opts.targetRole !== undefined && type !== 'default')
    fail('targetRole', 'targetRole is for type default');
  const available = (obj: string): string[] =>
    type === 'default' ? DEFAULT_KINDS[obj as DefaultKind].privileges : ALL_PRIVILEGES[type];
  const normalize = (priv: string) => (priv === 'TEMP' ? 'TEMPORARY' : priv);
  const privs = opts.privs.map(normalize);
  // Checked against each object kind once (for default, each kind named).
  for (const obj of type === 'default' ? objs : ['-']) {
    const known = available(obj);
    const wrong = privs.find((priv) => priv !== 'ALL' && !known.includes(priv));
    if (wrong !== undefined) {
      fail(
        'privs',
        `${wrong} is not a privilege of ${type === 'default' ? obj.toLowerCase() : `a ${type}`}: ${[...known, 'ALL'].join(', ')}`,
      );
    }
  }
  return {
    label,
    database: opts.database,
    roles: opts.roles,
    type,
    schema: opts.schema,
    targetRole: opts.targetRole ?? 'postgres',
    objs,
    allInSchema,
    privileges: (obj) => (privs.includes('ALL') ? available(obj) : [...new Set(privs)]),
    state: opts.state,
  };
}

const list = (names: string[]) => names.map(sqlLiteral).join(', ');

/**
 * One query printing `marker|O|<object>` for each object that exists and `marker|A|<object>|<grantee>|
 * <privilege>` for each privilege granted on it, and `marker|R|<role>` for each named role that exists.
 */
export function privilegesQuery(spec: PrivsSpec): string {
  const m = sqlLiteral(MARKER);
  const grantee = `coalesce((select rolname from pg_roles where oid = a.grantee), 'PUBLIC')`;
  const roles = `select ${m}, 'R', rolname, null, null from pg_roles where rolname in (${list([...spec.roles, spec.targetRole].filter((r) => r !== 'PUBLIC'))})`;
  let objects: string;
  switch (spec.type) {
    case 'database':
      objects = `select ${m}, kind, datname, g, p from pg_database d cross join lateral (select 'O' kind, null g, null p union all select 'A', ${grantee}, a.privilege_type from aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a) x where datname = ${sqlLiteral(spec.database)}`;
      break;
    case 'schema':
      objects = `select ${m}, kind, nspname, g, p from pg_namespace n cross join lateral (select 'O' kind, null g, null p union all select 'A', ${grantee}, a.privilege_type from aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a) x where nspname in (${list(spec.objs)})`;
      break;
    case 'table':
    case 'sequence': {
      const kinds = spec.type === 'table' ? "'r', 'p', 'v', 'm', 'f'" : "'S'";
      const names = spec.allInSchema ? '' : ` and c.relname in (${list(spec.objs)})`;
      objects = `select ${m}, kind, relname, g, p from pg_class c join pg_namespace n on n.oid = c.relnamespace cross join lateral (select 'O' kind, null g, null p union all select 'A', ${grantee}, a.privilege_type from aclexplode(coalesce(c.relacl, acldefault(case when c.relkind = 'S' then 's' else 'r' end::"char", c.relowner))) a) x where n.nspname = ${sqlLiteral(spec.schema)} and c.relkind in (${kinds})${names}`;
      break;
    }
    case 'default': {
      const kinds = spec.objs
        .map((obj) => `(${sqlLiteral(obj)}, ${sqlLiteral(DEFAULT_KINDS[obj as DefaultKind].objtype)})`)
        .join(', ');
      objects = `select ${m}, 'A', k.name, ${grantee}, a.privilege_type from (values ${kinds}) k(name, objtype) join pg_default_acl d on d.defaclobjtype::text = k.objtype and d.defaclrole = (select oid from pg_roles where rolname = ${sqlLiteral(spec.targetRole)}) and d.defaclnamespace = (select oid from pg_namespace where nspname = ${sqlLiteral(spec.schema)}) cross join lateral aclexplode(d.defaclacl) a`;
      break;
    }
  }
  return `${roles} union all ${objects}`;
}

function probe(spec: PrivsSpec): string {
  // Privileges on a database are read from any database: the maintenance one always exists.
  return psqlProbe(privilegesQuery(spec), {
    database: spec.type === 'database' ? 'postgres' : spec.database,
  });
}

/** `ON TABLE "public"."t"`, `ON DATABASE "app"`... the object part of GRANT/REVOKE. */
function objectClause(spec: PrivsSpec, obj: string): string {
  switch (spec.type) {
    case 'database':
      return `DATABASE ${sqlIdent(spec.database)}`;
    case 'schema':
      return `SCHEMA ${sqlIdent(obj)}`;
    case 'table':
      return `TABLE ${sqlIdent(spec.schema)}.${sqlIdent(obj)}`;
    case 'sequence':
      return `SEQUENCE ${sqlIdent(spec.schema)}.${sqlIdent(obj)}`;
    case 'default':
      return obj;
  }
}

const roleSql = (role: string) => (role === 'PUBLIC' ? 'PUBLIC' : sqlIdent(role));

function plan(spec: PrivsSpec, result: ProbeResult): Plan {
  const { label } = spec;
  const failure = psqlFailure(result);
  if (failure) return { steps: [], error: `${label}: ${failure}` };
  const rows = result.stdout
    .split('\n')
    .filter((line) => line.startsWith(`${MARKER}|`))
    .map((line) => line.split('|').slice(1));
  const existingRoles = new Set(rows.filter(([kind]) => kind === 'R').map(([, role]) => role));
  const named = spec.type === 'default' ? [...spec.roles, spec.targetRole] : spec.roles;
  const missingRoles = [...new Set(named)].filter((role) => role !== 'PUBLIC' && !existingRoles.has(role));
  if (missingRoles.length > 0) {
    return {
      steps: [],
      error: `${label}: role${missingRoles.length > 1 ? 's' : ''} ${missingRoles.join(', ')} not found: create ${missingRoles.length > 1 ? 'them' : 'it'} with postgresUser() before this task`,
    };
  }
  const granted = new Set(
    rows.filter(([kind]) => kind === 'A').map(([, obj, role, priv]) => `${obj}|${role}|${priv}`),
  );
  const existing = new Set(rows.filter(([kind]) => kind === 'O').map(([, obj]) => obj));
  let objs: string[];
  if (spec.type === 'database') {
    if (!existing.has(spec.database))
      return { steps: [], error: `${label}: database ${spec.database} not found` };
    objs = [spec.database];
  } else if (spec.type === 'default') {
    objs = spec.objs;
  } else if (spec.allInSchema) {
    objs = [...existing].sort();
  } else {
    const missing = spec.objs.filter((obj) => !existing.has(obj));
    if (missing.length > 0) {
      const where =
        spec.type === 'schema' ? `in database ${spec.database}` : `in ${spec.database}.${spec.schema}`;
      return { steps: [], error: `${label}: ${spec.type} ${missing.join(', ')} not found ${where}` };
    }
    objs = spec.objs;
  }

  const statements: string[] = [];
  const changes: string[] = [];
  for (const obj of objs) {
    for (const role of spec.roles) {
      const privileges = spec
        .privileges(obj)
        .filter((priv) => granted.has(`${obj}|${role}|${priv}`) === (spec.state === 'absent'));
      if (privileges.length === 0) continue;
      const on = objectClause(spec, obj);
      const privs = privileges.join(', ');
      if (spec.type === 'default') {
        const prefix = `ALTER DEFAULT PRIVILEGES FOR ROLE ${sqlIdent(spec.targetRole)} IN SCHEMA ${sqlIdent(spec.schema)}`;
        statements.push(
          spec.state === 'present'
            ? `${prefix} GRANT ${privs} ON ${on} TO ${roleSql(role)};`
            : `${prefix} REVOKE ${privs} ON ${on} FROM ${roleSql(role)};`,
        );
      } else {
        statements.push(
          spec.state === 'present'
            ? `GRANT ${privs} ON ${on} TO ${roleSql(role)};`
            : `REVOKE ${privs} ON ${on} FROM ${roleSql(role)};`,
        );
      }
      changes.push(`${privs} on ${obj} ${spec.state === 'present' ? 'to' : 'from'} ${role}`);
    }
  }
  if (statements.length === 0) return { steps: [] };
  const verb = spec.state === 'present' ? 'grant' : 'revoke';
  return {
    steps: [
      psqlStep(
        ['BEGIN;', ...statements, 'COMMIT;'].join('\n'),
        `${verb} ${spec.type} privileges in ${spec.database}`,
        spec.database,
      ),
    ],
    reason: `${verb}s ${changes.join('; ')}`,
  };
}

export const postgresPrivs = defineTask({
  type: 'postgresPrivs',
  becomeUser: { refuse: 'it runs psql as postgres itself through runuser, which only root may use' },
  options,
  subject: 'database',
  label: (database) => `postgres privs ${database}`,
  describe: (spec) =>
    `postgres privs ${spec.type} ${spec.type === 'database' ? spec.database : `${spec.database}:${spec.objs.join(',')}`} ${spec.roles.join(',')}`,
  prepare,
  probe,
  plan,
});
