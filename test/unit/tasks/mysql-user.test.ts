import { createHash } from 'node:crypto';
import test from 'ava';
import type { RunStep } from '../../../src/engine/types.js';
import { nativePasswordHash } from '../../../src/tasks/mysql-client.js';
import { mysqlUser, parsePrivileges, parseShowGrants } from '../../../src/tasks/mysql-user.js';
import { UserError } from '../../../src/util/errors.js';
import { clearSecrets, redact } from '../../../src/util/redact.js';

const CLIENT =
  'cd / && "$(command -v mariadb || command -v mysql || echo mariadb)" --batch --raw --skip-column-names';

// PASSWORD('pw') on MariaDB 10.11 (Debian 12).
const PW_HASH = '*D821809F681A40A6E379B50D0463EFAE20BDD122';
const digest = (hash: string) => createHash('sha256').update(hash).digest('hex');

/** The probe's output: the mysql.user row (plugin, SHA-256 of the stored hash) and SHOW GRANTS lines. */
function probe(account?: { plugin?: string; hash?: string; grants?: string[] }) {
  const lines: string[] = [];
  if (account)
    lines.push(
      `verdandi-myuser\t${account.plugin ?? 'mysql_native_password'}\t${digest(account.hash ?? '')}`,
    );
  lines.push('verdandi-mysql-exit 0');
  if (account?.grants) lines.push(...account.grants, 'verdandi-mygrants-exit 0');
  return { stdout: `${lines.join('\n')}\n`, exitCode: 0 };
}
const stdin = (plan: { steps: Array<{ kind: string }> }) => {
  for (const s of plan.steps)
    if ((s as RunStep).command !== CLIENT) throw new Error('not the client as root');
  return plan.steps.map((s) => (s as RunStep).stdin);
};
const USAGE = 'GRANT USAGE ON *.* TO `app`@`%`';

test('the native hash is what the server computes: * and hex SHA1(SHA1(password))', (t) => {
  t.is(nativePasswordHash('pw'), PW_HASH);
});

test('missing user: CREATE USER with the hash (never the password), then its grants, in one step', (t) => {
  const task = mysqlUser({ user: 'app', host: '%', password: 'pw', privileges: 'app.*:ALL/*.*:PROCESS' });
  const plan = task.plan(probe());
  t.deepEqual(stdin(plan), [
    `CREATE USER 'app'@'%' IDENTIFIED BY PASSWORD '${PW_HASH}';\nGRANT ALL PRIVILEGES ON \`app\`.* TO 'app'@'%';\nGRANT PROCESS ON *.* TO 'app'@'%';\n`,
  ]);
  t.is(plan.reason, 'user does not exist');
  t.true(task.sensitive);
  t.false(JSON.stringify(plan).includes("'pw'"));
  t.deepEqual(stdin(mysqlUser({ user: 'bare' }).plan(probe())), ["CREATE USER 'bare'@'localhost';\n"]);
});

test('same password and privileges (any case, order or spelling of ALL): converged', (t) => {
  const task = mysqlUser({
    user: 'app',
    host: '%',
    password: 'pw',
    privileges: 'app.*:all privileges/other.*:insert,Select,GRANT',
  });
  const plan = task.plan(
    probe({
      hash: PW_HASH,
      grants: [
        USAGE,
        'GRANT ALL PRIVILEGES ON `app`.* TO `app`@`%`',
        'GRANT SELECT, INSERT ON `other`.* TO `app`@`%` WITH GRANT OPTION',
      ],
    }),
  );
  t.deepEqual(plan, { steps: [] });
});

test('password differs, or the account logs in by another plugin: ALTER USER with the hash', (t) => {
  const task = mysqlUser({ user: 'app', host: '%', password: 'pw' });
  const differs = task.plan(probe({ hash: nativePasswordHash('old') }));
  t.deepEqual(stdin(differs), [`ALTER USER 'app'@'%' IDENTIFIED BY PASSWORD '${PW_HASH}';\n`]);
  t.is(differs.reason, 'password differs');
  // The right hash under another plugin is not this password login.
  const socket = task.plan(probe({ plugin: 'unix_socket', hash: PW_HASH }));
  t.is(socket.reason, 'authenticated by unix_socket, not a password');
  t.is(stdin(socket).length, 1);
});

test('privileges: revoke what is not wanted, grant what is missing, per target; USAGE implied', (t) => {
  const task = mysqlUser({ user: 'app', host: '%', privileges: 'app.*:SELECT,INSERT,UPDATE' });
  const plan = task.plan(
    probe({
      grants: [
        'GRANT PROCESS ON *.* TO `app`@`%`',
        'GRANT SELECT, DELETE ON `app`.* TO `app`@`%` WITH GRANT OPTION',
        'GRANT ALL PRIVILEGES ON `old`.`t` TO `app`@`%`',
      ],
    }),
  );
  t.deepEqual(stdin(plan), [
    [
      "REVOKE DELETE ON `app`.* FROM 'app'@'%';",
      "GRANT INSERT, UPDATE ON `app`.* TO 'app'@'%';",
      "REVOKE GRANT OPTION ON `app`.* FROM 'app'@'%';",
      "REVOKE PROCESS ON *.* FROM 'app'@'%';",
      "REVOKE ALL PRIVILEGES ON `old`.`t` FROM 'app'@'%';",
      '',
    ].join('\n'),
  ]);
  t.is(plan.reason, 'privileges on app.* differ, privileges on *.* differ, privileges on old.t differ');
  // A dropped grant (drift) is granted again; the USAGE line alone needs nothing.
  t.deepEqual(
    stdin(mysqlUser({ user: 'app', host: '%', privileges: 'app.*:ALL' }).plan(probe({ grants: [USAGE] }))),
    ["GRANT ALL PRIVILEGES ON `app`.* TO 'app'@'%';\n"],
  );
  t.deepEqual(
    mysqlUser({ user: 'app', host: '%', privileges: '*.*:USAGE' }).plan(probe({ grants: [USAGE] })),
    {
      steps: [],
    },
  );
});

test('ALL held, a list wanted: revoke ALL then grant the list; grant option added alone', (t) => {
  const plan = mysqlUser({ user: 'app', host: '%', privileges: 'app.*:SELECT,GRANT' }).plan(
    probe({ grants: [USAGE, 'GRANT ALL PRIVILEGES ON `app`.* TO `app`@`%`'] }),
  );
  t.deepEqual(stdin(plan), [
    [
      "REVOKE ALL PRIVILEGES ON `app`.* FROM 'app'@'%';",
      "GRANT SELECT ON `app`.* TO 'app'@'%';",
      "GRANT USAGE ON `app`.* TO 'app'@'%' WITH GRANT OPTION;",
      '',
    ].join('\n'),
  ]);
});

test('a privilege MariaDB renamed compares under its new name (REPLICATION CLIENT is BINLOG MONITOR)', (t) => {
  const task = mysqlUser({ user: 'app', host: '%', privileges: '*.*:REPLICATION CLIENT,REPLICATION SLAVE' });
  // What MariaDB 10.11 shows after GRANT REPLICATION CLIENT, REPLICATION SLAVE.
  t.deepEqual(task.plan(probe({ grants: ['GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `app`@`%`'] })), {
    steps: [],
  });
  t.deepEqual(stdin(task.plan(probe({ grants: [USAGE] }))), [
    "GRANT BINLOG MONITOR, REPLICATION SLAVE ON *.* TO 'app'@'%';\n",
  ]);
});

test('privileges not given: grants are neither read nor changed', (t) => {
  const task = mysqlUser({ user: 'app', host: '%', password: 'pw' });
  t.false(task.probe.includes('SHOW GRANTS'));
  t.deepEqual(task.plan(probe({ hash: PW_HASH })), { steps: [] });
});

test('probe: mysql.user by user and host, SHOW GRANTS with the authentication cut; no password in it', (t) => {
  const task = mysqlUser({
    user: 'app',
    host: '10.0.0.%',
    password: 'pw-probe-secret',
    privileges: 'app.*:ALL',
  });
  t.regex(task.probe, /FROM mysql\.user WHERE User = '\\''app'\\'' AND Host = '\\''10\.0\.0\.%'\\''/);
  t.regex(task.probe, /SHA2\(authentication_string, 256\)/);
  t.true(task.probe.includes("SHOW GRANTS FOR '\\''app'\\''@'\\''10.0.0.%'\\''"));
  t.true(
    task.probe.includes(
      "sed -e 's/ IDENTIFIED .* WITH GRANT OPTION.*$/ WITH GRANT OPTION/' -e 's/ IDENTIFIED .*//'",
    ),
  );
  t.false(task.probe.includes('pw-probe-secret'));
  t.false(task.probe.includes(nativePasswordHash('pw-probe-secret')));
});

test('SHOW GRANTS parsing: quoted names, column lists, roles and PROXY left out', (t) => {
  const sets = parseShowGrants([
    'GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION',
    'GRANT PROXY ON ``@`%` TO `root`@`localhost` WITH GRANT OPTION',
    'GRANT SELECT (`b`, `A`), INSERT ON `we``ird`.`t` TO `u`@`%`',
    'GRANT `reader` TO `u`@`%`',
  ]);
  t.deepEqual([...sets.keys()], ['*.*', 'we`ird.t']);
  t.deepEqual([...sets.get('*.*')!.privileges], ['ALL']);
  t.true(sets.get('*.*')!.grantOption);
  t.deepEqual([...sets.get('we`ird.t')!.privileges], ['SELECT (a, b)', 'INSERT']);
});

// What MariaDB 10.11 (Debian 12) prints for an account with column privileges, limits and TLS.
const FULL_GRANTS = [
  "GRANT PROCESS ON *.* TO `app`@`%` REQUIRE ISSUER '/CN=ca' SUBJECT '/CN=x' CIPHER 'AES' WITH GRANT OPTION MAX_QUERIES_PER_HOUR 10 MAX_USER_CONNECTIONS 3 MAX_STATEMENT_TIME 1.500000",
  'GRANT SELECT (`a`, `b`), INSERT (`Cc`), UPDATE ON `d`.`t` TO `app`@`%`',
];

/** The probe's output with the account's TLS and limit columns (mysql.user), as the server prints them. */
function probeAccount(columns: string[], grants?: string[]) {
  const row = ['verdandi-myuser', 'mysql_native_password', digest(''), ...columns].join('\t');
  const lines = [row, 'verdandi-mysql-exit 0', ...(grants ? [...grants, 'verdandi-mygrants-exit 0'] : [])];
  return { stdout: `${lines.join('\n')}\n`, exitCode: 0 };
}
const NO_TLS_NO_LIMITS = ['', '', '', '', '0', '0', '0', '0', '0.000000'];
const SPECIFIED = ['SPECIFIED', 'AES', '/CN=ca', '/CN=x', '10', '0', '0', '3', '1.500000'];

test('column privileges: compared by their columns in any order and case; whole entries revoked and granted', (t) => {
  const task = mysqlUser({
    user: 'app',
    host: '%',
    privileges: 'd.t:UPDATE,insert(cc),SELECT (b, a)/*.*:PROCESS,GRANT',
  });
  t.deepEqual(task.plan(probeAccount(SPECIFIED, FULL_GRANTS)), { steps: [] }, 'converged');
  const changed = mysqlUser({
    user: 'app',
    host: '%',
    privileges: 'd.t:SELECT (a, `c`),UPDATE/*.*:PROCESS,GRANT',
  });
  const plan = changed.plan(probeAccount(SPECIFIED, FULL_GRANTS));
  t.deepEqual(stdin(plan), [
    [
      "REVOKE SELECT (`a`, `b`), INSERT (`cc`) ON `d`.`t` FROM 'app'@'%';",
      "GRANT SELECT (`a`, `c`) ON `d`.`t` TO 'app'@'%';",
      '',
    ].join('\n'),
  ]);
  t.is(plan.reason, 'privileges on d.t differ');
  // A new account gets them with its other grants.
  t.deepEqual(stdin(mysqlUser({ user: 'n', privileges: 'd.t:SELECT (a)' }).plan(probe())), [
    "CREATE USER 'n'@'localhost';\nGRANT SELECT (`a`) ON `d`.`t` TO 'n'@'localhost';\n",
  ]);
  // REVOKE ALL takes the column privileges too: the wanted ones are granted again after it.
  const fromAll = mysqlUser({ user: 'app', host: '%', privileges: 'd.t:SELECT (a),INSERT' }).plan(
    probe({ grants: [USAGE, 'GRANT ALL PRIVILEGES ON `d`.`t` TO `app`@`%`'] }),
  );
  t.deepEqual(stdin(fromAll), [
    [
      "REVOKE ALL PRIVILEGES ON `d`.`t` FROM 'app'@'%';",
      "GRANT INSERT ON `d`.`t` TO 'app'@'%';",
      "GRANT SELECT (`a`) ON `d`.`t` TO 'app'@'%';",
      '',
    ].join('\n'),
  ]);
  t.regex(parsePrivileges('d.t:ALL,SELECT (a)') as string, /ALL already covers every column/);
  t.regex(parsePrivileges('d.t:DELETE (a)') as string, /only SELECT, INSERT, UPDATE and REFERENCES/);
  t.regex(parsePrivileges('d.t:SELECT (a b)') as string, /"a b" in "SELECT \(a b\)" is not a column name/);
});

test('resource limits: only those given are compared and set, with ALTER USER ... WITH', (t) => {
  const task = mysqlUser({
    user: 'app',
    host: '%',
    resourceLimits: { maxQueriesPerHour: 10, maxUserConnections: 3, maxStatementTime: 1.5 },
  });
  t.deepEqual(task.plan(probeAccount(SPECIFIED)), { steps: [] }, 'the same limits: converged');
  const plan = task.plan(probeAccount(NO_TLS_NO_LIMITS));
  t.deepEqual(stdin(plan), [
    "ALTER USER 'app'@'%' WITH MAX_QUERIES_PER_HOUR 10 MAX_USER_CONNECTIONS 3 MAX_STATEMENT_TIME 1.5;\n",
  ]);
  t.is(
    plan.reason,
    'MAX_QUERIES_PER_HOUR is 0, wanted 10, MAX_USER_CONNECTIONS is 0, wanted 3, MAX_STATEMENT_TIME is 0, wanted 1.5',
  );
  // 0 is "no limit": a limit set on the host is taken away.
  t.deepEqual(
    stdin(
      mysqlUser({ user: 'app', host: '%', resourceLimits: { maxQueriesPerHour: 0 } }).plan(
        probeAccount(SPECIFIED),
      ),
    ),
    ["ALTER USER 'app'@'%' WITH MAX_QUERIES_PER_HOUR 0;\n"],
  );
  t.deepEqual(stdin(mysqlUser({ user: 'n', resourceLimits: { maxConnectionsPerHour: 5 } }).plan(probe())), [
    "CREATE USER 'n'@'localhost' WITH MAX_CONNECTIONS_PER_HOUR 5;\n",
  ]);
  t.true(
    task.probe.includes(
      'max_questions, max_updates, max_connections, max_user_connections, max_statement_time',
    ),
  );
});

test('TLS requirement: none, ssl, x509 or subject/issuer/cipher, compared with mysql.user', (t) => {
  const tls = (tlsRequires: Parameters<typeof mysqlUser>[0]['tlsRequires']) =>
    mysqlUser({ user: 'app', host: '%', tlsRequires });
  const specified = tls({ subject: '/CN=x', issuer: '/CN=ca', cipher: 'AES' });
  t.deepEqual(specified.plan(probeAccount(SPECIFIED)), { steps: [] });
  const plan = specified.plan(probeAccount(NO_TLS_NO_LIMITS));
  t.deepEqual(stdin(plan), [
    "ALTER USER 'app'@'%' REQUIRE SUBJECT '/CN=x' AND ISSUER '/CN=ca' AND CIPHER 'AES';\n",
  ]);
  t.is(plan.reason, 'TLS requirement differs');
  // One field differing, or missing, is a different requirement.
  t.is(stdin(tls({ subject: '/CN=x', issuer: '/CN=ca' }).plan(probeAccount(SPECIFIED))).length, 1);
  const any = ['ANY', '', '', '', '0', '0', '0', '0', '0.000000'];
  t.deepEqual(tls('ssl').plan(probeAccount(any)), { steps: [] });
  t.deepEqual(stdin(tls('x509').plan(probeAccount(any))), ["ALTER USER 'app'@'%' REQUIRE X509;\n"]);
  t.deepEqual(stdin(tls('none').plan(probeAccount(any))), ["ALTER USER 'app'@'%' REQUIRE NONE;\n"]);
  t.deepEqual(tls('none').plan(probeAccount(NO_TLS_NO_LIMITS)), { steps: [] });
  // With a password and limits: one ALTER USER, its clauses in the server's order.
  const all = mysqlUser({
    user: 'app',
    host: '%',
    password: 'pw',
    tlsRequires: 'ssl',
    resourceLimits: { maxUpdatesPerHour: 7 },
  });
  t.deepEqual(stdin(all.plan(probeAccount(NO_TLS_NO_LIMITS))), [
    `ALTER USER 'app'@'%' IDENTIFIED BY PASSWORD '${PW_HASH}' REQUIRE SSL WITH MAX_UPDATES_PER_HOUR 7;\n`,
  ]);
  t.deepEqual(stdin(all.plan(probe())), [
    `CREATE USER 'app'@'%' IDENTIFIED BY PASSWORD '${PW_HASH}' REQUIRE SSL WITH MAX_UPDATES_PER_HOUR 7;\n`,
  ]);
});

test('resourceLimits and tlsRequires validation', (t) => {
  t.throws(() => mysqlUser({ user: 'app', resourceLimits: { maxQueriesPerHour: -1 } }), {
    instanceOf: UserError,
    message: /resourceLimits.maxQueriesPerHour must be 0 \(no limit\) or more/,
  });
  t.throws(() => mysqlUser({ user: 'app', resourceLimits: { maxQueriesPerHour: 1.5 } }), {
    instanceOf: UserError,
    message: /whole number/,
  });
  t.throws(() => mysqlUser({ user: 'app', resourceLimits: { MAX_QUERIES_PER_HOUR: 1 } as never }), {
    instanceOf: UserError,
    message: /unknown option MAX_QUERIES_PER_HOUR/,
  });
  t.throws(() => mysqlUser({ user: 'app', tlsRequires: 'X509' as never }), {
    instanceOf: UserError,
    message: /tlsRequires must be "none", "ssl", "x509" or \{ subject, issuer, cipher \}/,
  });
  t.throws(() => mysqlUser({ user: 'app', tlsRequires: {} }), {
    instanceOf: UserError,
    message: /give subject, issuer or cipher/,
  });
  t.throws(() => mysqlUser({ user: 'app', tlsRequires: { subject: 'a\nb' } }), {
    instanceOf: UserError,
    message: /one line/,
  });
});

test('priv syntax: targets, quoted names, GRANT; the problems named', (t) => {
  const sets = parsePrivileges('`my.db`.*:select , insert/*.*:PROCESS,GRANT/app.t1:ALL');
  t.not(typeof sets, 'string');
  const map = sets as Exclude<typeof sets, string>;
  t.deepEqual([...map.keys()], ['my.db.*', '*.*', 'app.t1']);
  t.deepEqual([...map.get('my.db.*')!.privileges], ['SELECT', 'INSERT']);
  t.true(map.get('*.*')!.grantOption);
  t.is(parsePrivileges('app.*'), '"app.*" is not db.table:PRIVILEGES');
  t.regex(parsePrivileges('app:ALL') as string, /not a target/);
  t.regex(parsePrivileges('*.t:ALL') as string, /not a target/);
  t.regex(
    parsePrivileges('app.*:SELECT (a)') as string,
    /column privileges are on a table \(db\.table\), not app\.\*/,
  );
  t.is(parsePrivileges('app.*:ALL/app.*:SELECT'), 'app.* is listed twice');
});

test('absent: DROP USER when it exists', (t) => {
  const task = mysqlUser({ user: 'old', host: '%', state: 'absent' });
  t.deepEqual(stdin(task.plan(probe({}))), ["DROP USER 'old'@'%';\n"]);
  t.deepEqual(task.plan(probe()), { steps: [] });
});

test('client failures: of the account query, then of SHOW GRANTS', (t) => {
  const task = mysqlUser({ user: 'app', privileges: 'app.*:ALL' });
  const down = task.plan({ stdout: 'ERROR 2002 (HY000): no socket\nverdandi-mysql-exit 1\n', exitCode: 0 });
  t.regex(down.error ?? '', /cannot query MariaDB on the host \(client exit code 1\): ERROR 2002/);
  const grants = task.plan({
    stdout: `verdandi-myuser\tmysql_native_password\t${digest('')}\nverdandi-mysql-exit 0\nERROR 1141 (42000): no grant\nverdandi-mygrants-exit 1\n`,
    exitCode: 0,
  });
  t.regex(grants.error ?? '', /ERROR 1141/);
});

test('the password and its hash are registered as secrets: redacted from any output', (t) => {
  clearSecrets();
  mysqlUser({ user: 'app', password: 'hunter2-long' });
  t.is(redact('password is hunter2-long'), 'password is [secret]');
  t.is(redact(`hash ${nativePasswordHash('hunter2-long')}`), 'hash [secret]');
  clearSecrets();
});

test('validation', (t) => {
  t.throws(() => mysqlUser({ user: '' }), { instanceOf: UserError, message: /user must be a MariaDB name/ });
  t.throws(() => mysqlUser({ user: 'x'.repeat(81) }), { instanceOf: UserError });
  t.throws(() => mysqlUser({ user: 'app', password: '' }), { instanceOf: UserError });
  t.throws(() => mysqlUser({ user: 'app', privileges: 'app.*' }), {
    instanceOf: UserError,
    message: /privileges: "app\.\*" is not db\.table:PRIVILEGES/,
  });
  t.false(mysqlUser({ user: 'app' }).sensitive);
  t.is(mysqlUser({ user: 'app' }).name, 'mysql user app@localhost');
});
