import test from 'ava';
import type { RunStep } from '../../../src/engine/types.js';
import {
  md5Verifier,
  parseScramVerifier,
  passwordMatches,
  postgresUser,
  saslPrep,
  scramVerifier,
  sqlIdent,
  sqlLiteral,
} from '../../../src/tasks/postgres-user.js';
import { UserError } from '../../../src/util/errors.js';
import { clearSecrets, redact } from '../../../src/util/redact.js';

// Verifiers made by a real PostgreSQL 15 (CREATE ROLE ... PASSWORD '...', then pg_authid.rolpassword).
const PG_SCRAM_CORRECT_HORSE =
  'SCRAM-SHA-256$4096:PdrPAf8AxjmXDM5WALgZzg==$zJ7T9j88m4Tg9h3eBFLfroWJMSu7dLR/hMIQzLzkx0A=:g2H0Z8g2vi7ZSSbTbB+l1of4LwhsHcyGJkmRlR3IUTY=';
// password_encryption = md5, role vt2, password 'correct horse'.
const PG_MD5_CORRECT_HORSE = 'md5e185418cd7c2a0d48c584b4049242303';
// Password E'\uFF30\uFF41ss\u00ADw\u00A0rd' (fullwidth letters, soft hyphen, no-break space): SASLprep
// turns it into 'Passw rd' before hashing.
const PG_SCRAM_SASLPREP =
  'SCRAM-SHA-256$4096:kHuPUZfTITnJIeQpFyzSGQ==$sW32sLGPhZsmXg/uOD00zkyGleaLCMHPNfqFJwTml60=:Lc2dc2G+NbshRYVWMOpeZAsY+XoHfUWaufrf7tg3dRc=';
// Password 'café été' (precomposed é).
const PG_SCRAM_ACCENTS =
  'SCRAM-SHA-256$4096:reOj04MM0GoHqEfdc5R28w==$+r3P+H5oxgW7DtTRQU0xeBYYWIZkYzt3xTTnhHM1SFU=:d2pG5Mi8CtCLTMQmFa4LKvOmvVDEE4iBXaD23j7p1sI=';

/** A pg_authid row as the probe prints it; `more`: rolreplication, rolcreaterole, rolbypassrls, rolconnlimit. */
const row = (
  superuser: string,
  createdb: string,
  login: string,
  password: string,
  more: [string, string, string, string] = ['f', 'f', 'f', '-1'],
) => ({
  stdout: `verdandi-pgrole|${superuser}|${createdb}|${login}|${more.join('|')}|${password}\nverdandi-psql-exit 0\n`,
  exitCode: 0,
});
const noRole = { stdout: 'verdandi-psql-exit 0\n', exitCode: 0 };

test('SCRAM verifiers made by PostgreSQL are verified locally', (t) => {
  t.true(passwordMatches('correct horse', 'vt1', PG_SCRAM_CORRECT_HORSE));
  t.false(passwordMatches('correct horsE', 'vt1', PG_SCRAM_CORRECT_HORSE));
  t.false(passwordMatches('', 'vt1', PG_SCRAM_CORRECT_HORSE));
  t.true(passwordMatches('\uFF30\uFF41ss\u00ADw\u00A0rd', 'vt3', PG_SCRAM_SASLPREP));
  t.true(passwordMatches('Passw rd', 'vt3', PG_SCRAM_SASLPREP), 'the prepared form is the same password');
  t.true(passwordMatches('café été', 'vt4', PG_SCRAM_ACCENTS));
  t.true(passwordMatches('cafe\u0301 e\u0301te\u0301', 'vt4', PG_SCRAM_ACCENTS), 'NFKC composes é');
});

test('md5 verifiers: md5(password + role name)', (t) => {
  t.is(md5Verifier('correct horse', 'vt2'), PG_MD5_CORRECT_HORSE);
  t.true(passwordMatches('correct horse', 'vt2', PG_MD5_CORRECT_HORSE));
  t.false(passwordMatches('correct horse', 'other', PG_MD5_CORRECT_HORSE));
});

test('no stored password never matches; a malformed SCRAM string never matches', (t) => {
  t.false(passwordMatches('x', 'r', ''));
  t.false(passwordMatches('x', 'r', 'SCRAM-SHA-256$4096:bad'));
});

test('scramVerifier: same salt and iterations give PostgreSQL’s verifier; random salts differ', (t) => {
  const parsed = parseScramVerifier(PG_SCRAM_CORRECT_HORSE)!;
  t.is(
    scramVerifier('correct horse', { salt: parsed.salt, iterations: parsed.iterations }),
    PG_SCRAM_CORRECT_HORSE,
  );
  const a = scramVerifier('pw');
  const b = scramVerifier('pw');
  t.not(a, b);
  t.regex(a, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/);
  t.true(passwordMatches('pw', 'any', a));
  t.false(passwordMatches('pw2', 'any', a));
});

test('saslPrep: ASCII untouched (even control characters), mapped characters handled', (t) => {
  t.is(saslPrep('a\tb c'), 'a\tb c');
  t.is(saslPrep('\uFF21\u00AD\u2003b'), 'A b');
  t.is(saslPrep('x\u0007\u00e9'), 'x\u0007\u00e9', 'prohibited after mapping: raw password');
});

test('SQL quoting helpers', (t) => {
  t.is(sqlLiteral("it's"), "'it''s'");
  t.is(sqlLiteral('a\\b'), "E'a\\\\b'");
  t.is(sqlIdent('we"ird'), '"we""ird"');
  t.throws(() => sqlLiteral('a\0b'));
});

test('missing role: CREATE ROLE with attributes and a SCRAM verifier, on stdin only', (t) => {
  const password = 'Tr0ub4dor&3-secret';
  const task = postgresUser({ user: 'app', password, createdb: true });
  t.true(task.sensitive);
  const plan = task.plan(noRole);
  t.is(plan.reason, 'role does not exist');
  const step = plan.steps[0] as RunStep;
  t.is(step.command, 'cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1');
  const match = step.stdin?.match(
    /^CREATE ROLE "app" WITH LOGIN NOSUPERUSER CREATEDB PASSWORD '(SCRAM-SHA-256\$[^']+)';\n$/,
  );
  t.truthy(match, step.stdin);
  t.true(passwordMatches(password, 'app', match![1]));
  t.false(step.stdin!.includes(password), 'the clear password is not even sent to the server');
  t.false(step.command.includes(password));
});

test('the same task plans the same verifier every time (plan is a function of its input)', (t) => {
  const task = postgresUser({ user: 'app', password: 'pw-123456' });
  t.deepEqual(task.plan(noRole), task.plan(noRole));
});

test('existing role with the same password (SCRAM or md5) and attributes: converged', (t) => {
  t.deepEqual(
    postgresUser({ user: 'vt1', password: 'correct horse' }).plan(row('f', 'f', 't', PG_SCRAM_CORRECT_HORSE)),
    {
      steps: [],
    },
  );
  t.deepEqual(
    postgresUser({ user: 'vt2', password: 'correct horse' }).plan(row('f', 'f', 't', PG_MD5_CORRECT_HORSE)),
    {
      steps: [],
    },
  );
});

test('password differs: ALTER ROLE with a new verifier; nothing of the password in commands', (t) => {
  const password = 'new-horse-battery';
  const plan = postgresUser({ user: 'vt1', password }).plan(row('f', 'f', 't', PG_SCRAM_CORRECT_HORSE));
  t.is(plan.reason, 'password differs');
  const step = plan.steps[0] as RunStep;
  t.regex(step.stdin ?? '', /^ALTER ROLE "vt1" PASSWORD 'SCRAM-SHA-256\$4096:/);
  for (const s of plan.steps) {
    t.false((s as RunStep).command.includes(password));
    t.false(((s as RunStep).description ?? '').includes(password));
  }
});

test('attribute drift only: ALTER ROLE WITH, password untouched when not given', (t) => {
  const plan = postgresUser({ user: 'app', superuser: true, login: false }).plan(row('f', 't', 't', ''));
  t.is((plan.steps[0] as RunStep).stdin, 'ALTER ROLE "app" WITH SUPERUSER NOLOGIN;\n');
  t.is(plan.reason, 'superuser, no login');
  t.deepEqual(
    postgresUser({ user: 'app' }).plan(row('t', 't', 't', '')).steps,
    [],
    'superuser/createdb not given: untouched',
  );
});

test('no stored password: set it', (t) => {
  const plan = postgresUser({ user: 'app', password: 'pw-123456' }).plan(row('f', 'f', 't', ''));
  t.is(plan.reason, 'no password set');
});

test('absent: DROP ROLE when it exists', (t) => {
  const task = postgresUser({ user: 'old', state: 'absent' });
  t.is((task.plan(row('f', 'f', 't', '')).steps[0] as RunStep).stdin, 'DROP ROLE "old";\n');
  t.deepEqual(task.plan(noRole).steps, []);
});

test('probe queries pg_authid as postgres, with the name as a SQL literal', (t) => {
  const { probe } = postgresUser({ user: "o'brien" });
  t.true(probe.includes('runuser -u postgres -- psql -X -A -t -F'));
  t.true(probe.includes("where rolname = '\\''o'\\'''\\''brien'\\''"), probe);
});

test('psql failure (server down) is an error that says what to do', (t) => {
  const plan = postgresUser({ user: 'app' }).plan({
    stdout:
      'psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: No such file or directory\nverdandi-psql-exit 2\n',
    exitCode: 0,
  });
  t.deepEqual(plan.steps, []);
  t.regex(
    plan.error ?? '',
    /cannot query PostgreSQL on the host \(psql exit code 2\): psql: error: connection/,
  );
});

test('the password is registered as a secret: redacted from any output', (t) => {
  clearSecrets();
  postgresUser({ user: 'app', password: 'hunter2-long' });
  t.is(redact('password is hunter2-long'), 'password is [secret]');
  clearSecrets();
});

test('validation', (t) => {
  t.throws(() => postgresUser({ user: '' }), { instanceOf: UserError });
  t.throws(() => postgresUser({ user: 'x'.repeat(64) }), { instanceOf: UserError });
  t.throws(() => postgresUser({ user: 'app', password: '' }), { instanceOf: UserError });
  t.false(postgresUser({ user: 'app' }).sensitive);
  t.is(postgresUser({ user: 'app' }).name, 'postgres user app');
});

test('replication, createrole, bypassrls and connLimit: compared with pg_authid, set by one ALTER ROLE', (t) => {
  const task = postgresUser({
    user: 'repl',
    replication: true,
    createrole: false,
    bypassrls: true,
    connLimit: 5,
  });
  t.regex(task.probe, /rolreplication, rolcreaterole, rolbypassrls, rolconnlimit, coalesce\(rolpassword, /);
  const plan = task.plan(row('f', 'f', 't', '', ['f', 't', 'f', '-1']));
  t.is(
    (plan.steps[0] as RunStep).stdin,
    'ALTER ROLE "repl" WITH REPLICATION NOCREATEROLE BYPASSRLS CONNECTION LIMIT 5;\n',
  );
  t.is(plan.reason, 'replication, no createrole, bypassrls, connection limit -1 → 5');
  t.deepEqual(task.plan(row('f', 'f', 't', '', ['t', 'f', 't', '5'])).steps, []);
  // A password holding `|` does not shift the columns.
  t.deepEqual(
    postgresUser({ user: 'repl', password: 'a|b', connLimit: 5 }).plan(
      row('f', 'f', 't', 'a|b', ['t', 'f', 't', '5']),
    ).steps,
    [],
  );
});

test('new role: the attributes given are in CREATE ROLE', (t) => {
  const plan = postgresUser({ user: 'repl', replication: true, connLimit: -1 }).plan(noRole);
  t.is(
    (plan.steps[0] as RunStep).stdin,
    'CREATE ROLE "repl" WITH LOGIN NOSUPERUSER NOCREATEDB REPLICATION CONNECTION LIMIT -1;\n',
  );
  t.throws(() => postgresUser({ user: 'x', connLimit: -2 }), {
    message: /connLimit must be an integer of -1 \(no limit\) or more, got -2/,
  });
  t.throws(() => postgresUser({ user: 'x', bypassrls: 'yes' as unknown as boolean }), {
    message: /bypassrls must be true or false, got "yes"/,
  });
});
