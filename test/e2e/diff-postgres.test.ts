/**
 * Ansible as the oracle for postgresUser, postgresDb and postgresPrivs (test/helpers/ansible-twin.ts):
 * the same desired state applied by Verdandi on hxdif-pg-v and by ansible-playbook (the
 * community.postgresql modules, as the `postgres` system user) on hxdif-pg-a, then both hosts' states
 * and both tools' verdicts compared on the first run, a rerun and after the same drift.
 *
 * Cases:
 * - pg-user-new: a login role with a password and CREATEDB (the stored verifiers differ by their random
 *   salt: the probe says only that a SCRAM verifier is stored);
 * - pg-user-attrs: attributes added to an existing role (REPLICATION, a connection limit);
 * - pg-user-absent: a role dropped;
 * - pg-db-new: a database with an owner and an encoding (created from template0);
 * - pg-db-ext: a database with an extension (Ansible: postgresql_db, then postgresql_ext);
 * - pg-db-absent: a database dropped;
 * - pg-privs-tables: SELECT on every table of a schema;
 * - pg-privs-schema: USAGE on a schema;
 * - pg-privs-revoke: a table privilege revoked.
 */
import test from 'ava';
import { type Probe, type TwinCase, type TwinTask, useAnsibleTwin } from '../helpers/ansible-twin.js';

/** SQL run as the postgres system user (peer authentication), in a database. */
const psql = (sql: string, db = 'postgres') =>
  `runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -d ${db} -c "${sql.replaceAll('"', '\\"')}"`;

/** A probe reading rows of a query. */
const query = (sql: string, db = 'postgres'): Probe => `sh:${psql(sql, db)}`;

/** Ansible's module run as postgres (peer authentication), as roles do with become_user. */
const asPostgres = { become: true, become_user: 'postgres', become_method: 'su' };

const role = (name: string): Probe =>
  query(
    `select rolname, rolcanlogin, rolcreatedb, rolsuper, rolreplication, rolconnlimit, coalesce(left(rolpassword, 14), 'no password') from pg_authid where rolname = '${name}'`,
  );

const database = (name: string): Probe =>
  query(
    `select datname, pg_get_userbyid(datdba), pg_encoding_to_char(encoding) from pg_database where datname = '${name}'`,
  );

/** The privileges granted on the tables of the schema public of a database, and on the schema. */
const grants = (db: string): Probe[] => [
  query(
    "select c.relname, a.grantee::regrole, a.privilege_type from pg_class c, aclexplode(c.relacl) a where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' and a.grantee <> c.relowner order by 1, 2, 3",
    db,
  ),
  query(
    "select a.grantee::regrole, a.privilege_type from pg_namespace n, aclexplode(n.nspacl) a where n.nspname = 'public' order by 1, 2",
    db,
  ),
];

function privs(name: string, verdandi: Record<string, unknown>, ansible: Record<string, unknown>): TwinTask {
  return {
    name,
    verdandi: ['postgresPrivs', verdandi],
    ansible: { 'community.postgresql.postgresql_privs': ansible, ...asPostgres },
  };
}

const twin = useAnsibleTwin(test, 'hxdif-pg', (): TwinCase[] => [
  {
    name: 'pg-user-new',
    setup: [
      'apt-get update -qq',
      'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql python3-psycopg2 >/dev/null',
      'systemctl start postgresql',
      `until ${psql('select 1')} >/dev/null 2>&1; do sleep 0.5; done`,
    ].join(' && '),
    tasks: [
      {
        name: 'pg-user-new: postgresUser',
        verdandi: ['postgresUser', { user: 'difapp', password: 'twin-secret-1', createdb: true }],
        ansible: {
          'community.postgresql.postgresql_user': {
            name: 'difapp',
            password: 'twin-secret-1',
            role_attr_flags: 'CREATEDB',
          },
          no_log: true,
          ...asPostgres,
        },
      },
    ],
    drift: psql('alter role difapp nocreatedb'),
    probes: [role('difapp')],
  },
  {
    name: 'pg-user-attrs',
    setup: psql('create role difrep login'),
    tasks: [
      {
        name: 'pg-user-attrs: postgresUser',
        verdandi: ['postgresUser', { user: 'difrep', replication: true, connLimit: 5 }],
        ansible: {
          'community.postgresql.postgresql_user': {
            name: 'difrep',
            role_attr_flags: 'REPLICATION',
            conn_limit: 5,
          },
          ...asPostgres,
        },
      },
    ],
    drift: psql('alter role difrep noreplication connection limit -1'),
    probes: [role('difrep')],
  },
  {
    name: 'pg-user-absent',
    setup: psql('create role difgone login'),
    tasks: [
      {
        name: 'pg-user-absent: postgresUser',
        verdandi: ['postgresUser', { user: 'difgone', state: 'absent' }],
        ansible: {
          'community.postgresql.postgresql_user': { name: 'difgone', state: 'absent' },
          ...asPostgres,
        },
      },
    ],
    drift: psql('create role difgone login'),
    probes: [role('difgone')],
  },
  {
    name: 'pg-db-new',
    tasks: [
      {
        name: 'pg-db-new: postgresDb',
        verdandi: ['postgresDb', { db: 'difdb', owner: 'difapp', encoding: 'UTF8' }],
        ansible: {
          'community.postgresql.postgresql_db': {
            name: 'difdb',
            owner: 'difapp',
            encoding: 'UTF8',
            template: 'template0',
          },
          ...asPostgres,
        },
      },
    ],
    drift: psql('alter database difdb owner to postgres'),
    probes: [database('difdb')],
  },
  {
    name: 'pg-db-ext',
    tasks: [
      {
        name: 'pg-db-ext: postgresDb',
        verdandi: ['postgresDb', { db: 'difext', extensions: ['pg_trgm'] }],
        ansible: [
          { 'community.postgresql.postgresql_db': { name: 'difext' }, ...asPostgres },
          { 'community.postgresql.postgresql_ext': { name: 'pg_trgm', db: 'difext' }, ...asPostgres },
        ],
      },
    ],
    drift: psql('drop extension pg_trgm', 'difext'),
    probes: [database('difext'), query('select extname from pg_extension order by 1', 'difext')],
  },
  {
    name: 'pg-db-absent',
    setup: psql('create database difold'),
    tasks: [
      {
        name: 'pg-db-absent: postgresDb',
        verdandi: ['postgresDb', { db: 'difold', state: 'absent' }],
        ansible: { 'community.postgresql.postgresql_db': { name: 'difold', state: 'absent' }, ...asPostgres },
      },
    ],
    drift: psql('create database difold'),
    probes: [database('difold')],
  },
  {
    name: 'pg-privs-tables',
    setup: [
      psql('create role difro login'),
      psql('create database difprivs'),
      psql('create table t1 (id int); create table t2 (id int)', 'difprivs'),
    ].join(' && '),
    tasks: [
      privs(
        'pg-privs-tables: postgresPrivs',
        { database: 'difprivs', roles: 'difro', privs: 'SELECT', type: 'table', objs: 'ALL_IN_SCHEMA' },
        { db: 'difprivs', roles: 'difro', privs: 'SELECT', type: 'table', objs: 'ALL_IN_SCHEMA' },
      ),
    ],
    drift: psql('revoke select on t2 from difro', 'difprivs'),
    probes: grants('difprivs'),
  },
  {
    name: 'pg-privs-schema',
    setup: [psql('create role difsch login'), psql('create database difschema')].join(' && '),
    tasks: [
      privs(
        'pg-privs-schema: postgresPrivs',
        { database: 'difschema', roles: 'difsch', privs: 'USAGE', type: 'schema', objs: 'public' },
        { db: 'difschema', roles: 'difsch', privs: 'USAGE', type: 'schema', objs: 'public' },
      ),
    ],
    drift: psql('revoke usage on schema public from difsch', 'difschema'),
    probes: grants('difschema'),
  },
  {
    name: 'pg-privs-revoke',
    setup: [
      psql('create role difrw login'),
      psql('create database difrevoke'),
      psql('create table t1 (id int); grant select, insert on t1 to difrw', 'difrevoke'),
    ].join(' && '),
    tasks: [
      privs(
        'pg-privs-revoke: postgresPrivs',
        {
          database: 'difrevoke',
          roles: 'difrw',
          privs: 'INSERT',
          type: 'table',
          objs: 't1',
          state: 'absent',
        },
        { db: 'difrevoke', roles: 'difrw', privs: 'INSERT', type: 'table', objs: 't1', state: 'absent' },
      ),
    ],
    drift: psql('grant insert on t1 to difrw', 'difrevoke'),
    probes: grants('difrevoke'),
  },
]);

test('both tools exit 0 in every phase', (t) => twin.assertRuns(t));

for (const c of twin.cases) {
  test(c.name, (t) => twin.assertCase(t, c));
}
