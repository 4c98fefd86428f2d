import test from 'ava';
import type { RunStep } from '../../../src/engine/types.js';
import { mysqlDb } from '../../../src/tasks/mysql-db.js';
import { UserError } from '../../../src/util/errors.js';

const CLIENT =
  'cd / && "$(command -v mariadb || command -v mysql || echo mariadb)" --batch --raw --skip-column-names';

/** What the probe prints: the SCHEMATA row when the database exists, then the client's exit code. */
function probe(db?: { charset: string; collation: string }, exit = 0) {
  const lines = db ? [`verdandi-mydb\t${db.charset}\t${db.collation}`] : [];
  lines.push(`verdandi-mysql-exit ${exit}`);
  return { stdout: `${lines.join('\n')}\n`, exitCode: 0 };
}
const steps = (plan: { steps: Array<{ kind: string }> }) =>
  plan.steps.map((s) => ({ command: (s as RunStep).command, stdin: (s as RunStep).stdin }));

test('missing database: CREATE DATABASE with its character set and collation, on stdin', (t) => {
  const plan = mysqlDb({ db: 'app', encoding: 'utf8mb4', collation: 'utf8mb4_unicode_ci' }).plan(probe());
  t.deepEqual(steps(plan), [
    { command: CLIENT, stdin: 'CREATE DATABASE `app` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n' },
  ]);
  t.is(plan.reason, 'database does not exist');
  t.deepEqual(steps(mysqlDb({ db: 'we`ird' }).plan(probe())), [
    { command: CLIENT, stdin: 'CREATE DATABASE `we``ird`;\n' },
  ]);
});

test('existing database with the same defaults (any case, utf8 is utf8mb3): converged', (t) => {
  const existing = probe({ charset: 'utf8mb4', collation: 'utf8mb4_unicode_ci' });
  t.deepEqual(mysqlDb({ db: 'app', encoding: 'UTF8MB4', collation: 'utf8mb4_unicode_ci' }).plan(existing), {
    steps: [],
  });
  t.deepEqual(mysqlDb({ db: 'app' }).plan(existing), { steps: [] }, 'options not given are not compared');
  t.deepEqual(
    mysqlDb({ db: 'legacy', encoding: 'utf8', collation: 'utf8_general_ci' }).plan(
      probe({ charset: 'utf8mb3', collation: 'utf8mb3_general_ci' }),
    ),
    { steps: [] },
  );
});

test('different defaults: ALTER DATABASE, with what differs as the reason', (t) => {
  const plan = mysqlDb({ db: 'app', encoding: 'utf8mb4', collation: 'utf8mb4_unicode_ci' }).plan(
    probe({ charset: 'latin1', collation: 'latin1_swedish_ci' }),
  );
  t.deepEqual(steps(plan), [
    { command: CLIENT, stdin: 'ALTER DATABASE `app` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n' },
  ]);
  t.is(plan.reason, 'character set latin1 → utf8mb4, collation latin1_swedish_ci → utf8mb4_unicode_ci');
  const collationOnly = mysqlDb({ db: 'app', collation: 'utf8mb4_bin' }).plan(
    probe({ charset: 'utf8mb4', collation: 'utf8mb4_general_ci' }),
  );
  t.deepEqual(steps(collationOnly), [
    { command: CLIENT, stdin: 'ALTER DATABASE `app` COLLATE utf8mb4_bin;\n' },
  ]);
});

test('absent: DROP DATABASE when it exists, nothing otherwise', (t) => {
  const task = mysqlDb({ db: 'old', state: 'absent' });
  t.deepEqual(steps(task.plan(probe({ charset: 'utf8mb4', collation: 'utf8mb4_general_ci' }))), [
    { command: CLIENT, stdin: 'DROP DATABASE `old`;\n' },
  ]);
  t.deepEqual(task.plan(probe()), { steps: [] });
});

test('probe reads SCHEMATA with the name as a quoted literal, as root', (t) => {
  const task = mysqlDb({ db: "o'neil\\db" });
  t.true(task.probe.includes(CLIENT));
  t.true(task.probe.includes("SCHEMA_NAME = '\\''o\\'\\''neil\\\\db'\\''"), task.probe);
});

test('client failure (server down, not installed) is an error that says what to do', (t) => {
  const plan = mysqlDb({ db: 'app' }).plan({
    stdout:
      "ERROR 2002 (HY000): Can't connect to local server through socket '/run/mysqld/mysqld.sock' (2)\nverdandi-mysql-exit 1\n",
    exitCode: 0,
  });
  t.deepEqual(plan.steps, []);
  t.regex(plan.error ?? '', /cannot query MariaDB on the host \(client exit code 1\): ERROR 2002/);
  t.regex(plan.error ?? '', /mariadb-server installed and running/);
});

test('validation: names, encoding and collation', (t) => {
  t.throws(() => mysqlDb({ db: '' }), { instanceOf: UserError, message: /db must be a MariaDB name/ });
  t.throws(() => mysqlDb({ db: 'a'.repeat(65) }), { message: /1 to 64 characters/ });
  t.throws(() => mysqlDb({ db: 'a\nb' }), { message: /db must be a MariaDB name/ });
  t.throws(() => mysqlDb({ db: 'app', encoding: 'utf8; DROP' }), {
    message: /encoding must be a character set name/,
  });
  t.throws(() => mysqlDb({ db: 'app', collation: 'x y' }), { message: /collation must be a collation name/ });
});
