import test from 'ava';
import type { RunStep } from '../../../src/engine/types.js';
import { postgresDb } from '../../../src/tasks/postgres-db.js';
import { UserError } from '../../../src/util/errors.js';

const PSQL = 'cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1';

function probe(db?: { encoding: string; owner: string }, extensions?: string[]) {
  const lines: string[] = [];
  if (db) lines.push(`verdandi-pgdb|${db.encoding}|${db.owner}`);
  lines.push('verdandi-psql-exit 0');
  if (extensions) {
    for (const e of extensions) lines.push(`verdandi-pgext|${e}`);
    lines.push('verdandi-pgext-exit 0');
  }
  return { stdout: `${lines.join('\n')}\n`, exitCode: 0 };
}
const steps = (plan: { steps: Array<{ kind: string }> }) =>
  plan.steps.map((s) => ({ command: (s as RunStep).command, stdin: (s as RunStep).stdin }));

test('missing database: CREATE DATABASE with owner, encoding (template0), then extensions inside it', (t) => {
  const task = postgresDb({
    db: 'app',
    owner: 'app',
    encoding: 'UTF8',
    extensions: ['pg_trgm', 'uuid-ossp'],
  });
  const plan = task.plan(probe());
  t.deepEqual(steps(plan), [
    { command: PSQL, stdin: 'CREATE DATABASE "app" OWNER "app" ENCODING \'UTF8\' TEMPLATE "template0";\n' },
    {
      command: `${PSQL} '--dbname=dbname='\\''app'\\'''`,
      stdin: 'CREATE EXTENSION IF NOT EXISTS "pg_trgm";\nCREATE EXTENSION IF NOT EXISTS "uuid-ossp";\n',
    },
  ]);
  t.is(plan.reason, 'database does not exist');
});

test('missing database with nothing else: plain CREATE DATABASE; explicit template kept', (t) => {
  t.deepEqual(steps(postgresDb({ db: 'app' }).plan(probe())), [
    { command: PSQL, stdin: 'CREATE DATABASE "app";\n' },
  ]);
  t.deepEqual(steps(postgresDb({ db: 'app', template: 'tpl' }).plan(probe())), [
    { command: PSQL, stdin: 'CREATE DATABASE "app" TEMPLATE "tpl";\n' },
  ]);
});

test('existing database matching owner, encoding (any spelling) and extensions: converged', (t) => {
  const task = postgresDb({ db: 'app', owner: 'app', encoding: 'utf-8', extensions: ['pg_trgm'] });
  t.deepEqual(task.plan(probe({ encoding: 'UTF8', owner: 'app' }, ['plpgsql', 'pg_trgm'])), { steps: [] });
});

test('owner drift and a missing extension', (t) => {
  const task = postgresDb({ db: 'app', owner: 'app', extensions: ['pg_trgm', 'hstore'] });
  const plan = task.plan(probe({ encoding: 'UTF8', owner: 'postgres' }, ['plpgsql', 'pg_trgm']));
  t.deepEqual(steps(plan), [
    { command: PSQL, stdin: 'ALTER DATABASE "app" OWNER TO "app";\n' },
    {
      command: `${PSQL} '--dbname=dbname='\\''app'\\'''`,
      stdin: 'CREATE EXTENSION IF NOT EXISTS "hstore";\n',
    },
  ]);
  t.is(plan.reason, 'owner postgres → app, extensions missing: hstore');
});

test('different encoding of an existing database: an error, never a drop', (t) => {
  const plan = postgresDb({ db: 'app', encoding: 'UTF8' }).plan(
    probe({ encoding: 'SQL_ASCII', owner: 'app' }),
  );
  t.deepEqual(plan.steps, []);
  t.regex(plan.error ?? '', /has encoding SQL_ASCII, not UTF8: an encoding cannot be changed/);
});

test('probe lists extensions inside the database only when extensions are wanted', (t) => {
  const withExt = postgresDb({ db: "my'db", extensions: ['pg_trgm'] }).probe;
  t.true(withExt.includes('from pg_extension'));
  // The shell word is --dbname=dbname='my\'db' (a libpq connection string value).
  t.true(withExt.includes("'--dbname=dbname='\\''my\\'\\''db'\\'''"), withExt);
  t.false(postgresDb({ db: 'app' }).probe.includes('pg_extension'));
});

test('extension query failure is an error', (t) => {
  const stdout =
    'verdandi-pgdb|UTF8|app\nverdandi-psql-exit 0\npsql: error: FATAL: no such database\nverdandi-pgext-exit 2\n';
  const plan = postgresDb({ db: 'app', extensions: ['x'] }).plan({ stdout, exitCode: 0 });
  t.regex(plan.error ?? '', /psql exit code 2/);
});

test('absent: DROP DATABASE when it exists', (t) => {
  const task = postgresDb({ db: 'old', state: 'absent' });
  t.deepEqual(steps(task.plan(probe({ encoding: 'UTF8', owner: 'x' }))), [
    { command: PSQL, stdin: 'DROP DATABASE "old";\n' },
  ]);
  t.deepEqual(task.plan(probe()).steps, []);
});

test('validation', (t) => {
  t.throws(() => postgresDb({ db: 'app', extensions: ['bad name'] }), { instanceOf: UserError });
  t.throws(() => postgresDb({ db: 'app', encoding: "UTF8'; drop" }), { instanceOf: UserError });
  t.is(postgresDb({ db: 'app' }).name, 'postgres database app');
});
