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
      "sed -e 's/ IDENTIFIED .* WITH GRANT OPTION$/ WITH GRANT OPTION/' -e 's/ IDENTIFIED .*//'",
    ),
  );
  t.false(task.probe.includes('pw-probe-secret'));
  t.false(task.probe.includes(nativePasswordHash('pw-probe-secret')));
});

test('SHOW GRANTS parsing: quoted names, column lists, roles and PROXY left out', (t) => {
  const sets = parseShowGrants([
    'GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION',
    'GRANT PROXY ON ``@`%` TO `root`@`localhost` WITH GRANT OPTION',
    'GRANT SELECT (a, b), INSERT ON `we``ird`.`t` TO `u`@`%`',
    'GRANT `reader` TO `u`@`%`',
  ]);
  t.deepEqual([...sets.keys()], ['*.*', 'we`ird.t']);
  t.deepEqual([...sets.get('*.*')!.privileges], ['ALL']);
  t.true(sets.get('*.*')!.grantOption);
  t.deepEqual([...sets.get('we`ird.t')!.privileges], ['SELECT (A, B)', 'INSERT']);
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
  t.regex(parsePrivileges('app.*:SELECT (a)') as string, /no column lists/);
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
