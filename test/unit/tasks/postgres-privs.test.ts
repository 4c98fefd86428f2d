import test from 'ava';
import type { RunStep } from '../../../src/engine/types.js';
import { type PostgresPrivsOptions, postgresPrivs } from '../../../src/tasks/postgres-privs.js';
import { UserError } from '../../../src/util/errors.js';

/** psqlProbe output: the rows, then psql's exit code. */
const rows = (...lines: string[]) => ({
  stdout: `${lines.map((line) => `verdandi-pgprivs|${line}`).join('\n')}\nverdandi-psql-exit 0\n`,
  exitCode: 0,
});

test('missing table privileges are granted in one transaction, SQL on stdin', (t) => {
  const task = postgresPrivs({
    database: 'app',
    roles: ['reader'],
    privs: 'SELECT,insert',
    objs: ['orders', 'items'],
  });
  const plan = task.plan(
    rows('R|reader||', 'O|orders||', 'O|items||', 'A|orders|reader|SELECT', 'A|orders|app|SELECT'),
  );
  t.is(plan.reason, 'grants INSERT on orders to reader; SELECT, INSERT on items to reader');
  const step = plan.steps[0] as RunStep;
  t.is(
    step.stdin,
    'BEGIN;\nGRANT INSERT ON TABLE "public"."orders" TO "reader";\nGRANT SELECT, INSERT ON TABLE "public"."items" TO "reader";\nCOMMIT;\n',
  );
  t.regex(step.command, /runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 '--dbname=dbname=.*app/);
  t.false(step.command.includes('GRANT'));
  t.is(task.name, 'postgres privs table app:orders,items reader');
});

test('converged: every privilege granted to the role itself', (t) => {
  const task = postgresPrivs({ database: 'app', roles: 'reader', privs: ['SELECT'], objs: 'orders' });
  t.deepEqual(task.plan(rows('R|reader||', 'O|orders||', 'A|orders|reader|SELECT')), { steps: [] });
});

test('ALL expands to the privileges of the type; absent revokes only what is granted', (t) => {
  const db = postgresPrivs({
    database: 'app',
    roles: 'PUBLIC',
    privs: 'ALL',
    type: 'database',
    state: 'absent',
  });
  const plan = db.plan(
    rows('O|app||', 'A|app|PUBLIC|CONNECT', 'A|app|PUBLIC|TEMPORARY', 'A|app|postgres|CREATE'),
  );
  t.is(
    (plan.steps[0] as RunStep).stdin,
    'BEGIN;\nREVOKE CONNECT, TEMPORARY ON DATABASE "app" FROM PUBLIC;\nCOMMIT;\n',
  );
  t.deepEqual(db.plan(rows('O|app||', 'A|app|postgres|CREATE')), { steps: [] });
});

test('schemas, sequences in ALL_IN_SCHEMA, and default privileges', (t) => {
  const schema = postgresPrivs({
    database: 'app',
    roles: 'reader',
    privs: 'USAGE',
    type: 'schema',
    objs: 'sales',
  });
  t.is(
    (schema.plan(rows('R|reader||', 'O|sales||')).steps[0] as RunStep).stdin,
    'BEGIN;\nGRANT USAGE ON SCHEMA "sales" TO "reader";\nCOMMIT;\n',
  );

  const sequences = postgresPrivs({
    database: 'app',
    roles: 'writer',
    privs: 'USAGE',
    type: 'sequence',
    objs: 'ALL_IN_SCHEMA',
    schema: 'sales',
  });
  const plan = sequences.plan(rows('R|writer||', 'O|b_seq||', 'O|a_seq||', 'A|a_seq|writer|USAGE'));
  t.is(
    (plan.steps[0] as RunStep).stdin,
    'BEGIN;\nGRANT USAGE ON SEQUENCE "sales"."b_seq" TO "writer";\nCOMMIT;\n',
  );

  const defaults = postgresPrivs({
    database: 'app',
    roles: 'reader',
    privs: 'SELECT',
    type: 'default',
    objs: 'TABLES',
    targetRole: 'app',
  });
  t.is(
    (defaults.plan(rows('R|reader||', 'R|app||')).steps[0] as RunStep).stdin,
    'BEGIN;\nALTER DEFAULT PRIVILEGES FOR ROLE "app" IN SCHEMA "public" GRANT SELECT ON TABLES TO "reader";\nCOMMIT;\n',
  );
  t.deepEqual(defaults.plan(rows('R|reader||', 'R|app||', 'A|TABLES|reader|SELECT')), { steps: [] });
});

test('errors: a missing role, a missing object, a database that is not there, psql failing', (t) => {
  const task = postgresPrivs({
    database: 'app',
    roles: ['reader', 'ghost'],
    privs: 'SELECT',
    objs: ['orders', 'nope'],
  });
  t.is(
    task.plan(rows('R|reader||', 'O|orders||')).error,
    'postgres privs app: role ghost not found: create it with postgresUser() before this task',
  );
  const known = postgresPrivs({
    database: 'app',
    roles: 'reader',
    privs: 'SELECT',
    objs: ['orders', 'nope'],
  });
  t.regex(known.plan(rows('R|reader||', 'O|orders||')).error ?? '', /table nope not found in app\.public/);
  const db = postgresPrivs({ database: 'gone', roles: 'PUBLIC', privs: 'CONNECT', type: 'database' });
  t.regex(db.plan(rows()).error ?? '', /database gone not found/);
  t.regex(
    known.plan({ stdout: 'psql: error: connection refused\nverdandi-psql-exit 2\n', exitCode: 0 }).error ??
      '',
    /cannot query PostgreSQL on the host \(psql exit code 2\)/,
  );
});

test('the probe reads ACLs with aclexplode, from the maintenance database for type database', (t) => {
  const task = postgresPrivs({ database: 'app', roles: 'reader', privs: 'CONNECT', type: 'database' });
  t.regex(task.probe, /aclexplode\(coalesce\(d\.datacl, acldefault\(/);
  t.regex(task.probe, /--dbname=dbname=.*postgres/);
});

test('options are checked when the task is built', (t) => {
  const build = (opts: PostgresPrivsOptions) => () => postgresPrivs(opts);
  t.throws(build({ database: 'app', roles: 'r', privs: 'SELECT' }), {
    instanceOf: UserError,
    message: /type table needs objs/,
  });
  t.throws(build({ database: 'app', roles: 'r', privs: 'CONNECT', type: 'database', objs: 'x' }), {
    instanceOf: UserError,
    message: /type database takes no objs/,
  });
  t.throws(build({ database: 'app', roles: 'r', privs: 'CONNECT', objs: 't' }), {
    instanceOf: UserError,
    message: /CONNECT is not a privilege of a table: SELECT, INSERT/,
  });
  t.throws(build({ database: 'app', roles: 'r', privs: 'SELECT', type: 'default', objs: 'VIEWS' }), {
    instanceOf: UserError,
    message: /objs are TABLES, SEQUENCES, FUNCTIONS or TYPES/,
  });
  t.throws(build({ database: 'app', roles: 'r', privs: 'USAGE', type: 'schema', objs: 'ALL_IN_SCHEMA' }), {
    instanceOf: UserError,
    message: /ALL_IN_SCHEMA is for type table or sequence/,
  });
  t.throws(build({ database: 'app', roles: [], privs: 'SELECT', objs: 't' }), {
    instanceOf: UserError,
    message: /roles must be a name or a non-empty list/,
  });
  t.throws(build({ database: 'app', roles: 'r', privs: 'SELECT', objs: 't', type: 'view' as 'table' }), {
    instanceOf: UserError,
    message: /type must be database, schema, table, sequence or default/,
  });
});
