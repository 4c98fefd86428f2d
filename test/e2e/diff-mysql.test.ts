/**
 * Ansible as the oracle for mysqlDb, mysqlUser and npm (test/helpers/ansible-twin.ts): the same desired
 * state applied by Verdandi on hydif-my-v and by ansible-playbook (community.mysql's mysql_db and
 * mysql_user, as root over the unix socket through PyMySQL) on hydif-my-a, then both hosts' states and
 * both tools' verdicts compared on the first run, a rerun and after the same drift. MariaDB is installed
 * once per twin, by the first case's setup.
 *
 * Cases:
 * - my-db-new: a database with a character set and a collation (the drift drops it);
 * - my-db-collation: an existing database whose collation differs: Verdandi alters it, Ansible's
 *   mysql_db only creates databases and leaves an existing one's defaults as they are (the README's
 *   differences table says so);
 * - my-db-absent: a database dropped;
 * - my-user-new: an account with a password and privileges in Ansible's `priv` syntax, logging in over
 *   TCP with that password (the drift changes the password and revokes a privilege);
 * - my-user-privs: an existing account's privileges replaced (one revoked, one added, a whole database
 *   taken away; Ansible's default `append_privs: false`);
 * - my-user-absent: an account dropped;
 * - my-user-limits: an existing account's resource limits changed (one given limit replaced, one
 *   added; the drift sets another value);
 * - my-user-tls: TLS requirements: X509 for a new account, a certificate's subject and issuer for an
 *   account that required SSL (the drift removes one requirement and changes the other);
 * - npm-tarball: a tiny package packed on the host (`npm pack`, no registry) installed from its
 *   tarball into a project directory: Ansible's npm module reinstalls it on every run (the README's
 *   differences table says so);
 * - npm-global: the same tarball installed globally (its bin linked into /usr/local/bin);
 * - npm-absent: a package uninstalled from a project directory.
 *
 * The file is named for its MariaDB cases; npm shares the twin pair so that the hosts boot once.
 */
import test from 'ava';
import { type Probe, type TwinCase, useAnsibleTwin } from '../helpers/ansible-twin.js';

/** SQL run by the client as root over the unix socket; errors printed as they are. */
const sql = (statements: string) =>
  `mariadb --batch --skip-column-names -e "${statements.replaceAll('"', '\\"').replaceAll('`', '\\`')}"`;

/** A probe printing the rows of a query, or the client's error (the same text on both twins). */
const query = (statements: string): Probe => `sh:${sql(statements)} 2>&1 || true`;

const showDatabase = (db: string): Probe => query(`SHOW CREATE DATABASE \`${db}\``);

/** The account's row, then its grants (SHOW GRANTS holds the password hash: it is unsalted, so equal). */
const account = (user: string, host: string): Probe[] => [
  query(`SELECT User, Host, plugin FROM mysql.user WHERE User = '${user}' AND Host = '${host}'`),
  query(`SHOW GRANTS FOR '${user}'@'${host}'`),
];

/** The account's TLS requirement and resource limits, as mysql.user (over mysql.global_priv) holds them. */
const accountLimits = (user: string, host: string): Probe =>
  query(
    `SELECT ssl_type, ssl_cipher, x509_issuer, x509_subject, max_questions, max_updates, max_connections, max_user_connections, max_statement_time FROM mysql.user WHERE User = '${user}' AND Host = '${host}'`,
  );

/** Logs in over TCP (not the socket) with a password and prints the account the server chose. */
const tcpLogin = (user: string, password: string): Probe =>
  `sh:MYSQL_PWD='${password}' mariadb --protocol=tcp -h 127.0.0.1 -u ${user} --batch --skip-column-names -e 'SELECT CURRENT_USER()' 2>&1 | sed 's/ (using password: YES)//' || true`;

/** community.mysql's connection: root over the unix socket, as Debian's MariaDB authenticates it. */
const socket = { login_unix_socket: '/run/mysqld/mysqld.sock' };

const WHY_COLLATION =
  "Ansible's mysql_db only creates a database with its encoding and collation and leaves an existing one's defaults as they are; Verdandi's mysqlDb alters them";

/** A tiny package packed on each host by npm-tarball's setup (`npm pack`, no registry). */
const TARBALL = '/root/twpkg-1.0.0.tgz';

/**
 * Ansible's npm module looks for `name` (here the tarball's path) among the installed packages, never
 * finds it, and installs again on every run; Verdandi reads the installed package's version.
 */
const npmRerun = (task: string) => ({
  task,
  phase: 'rerun' as const,
  verdandi: 'ok' as const,
  ansible: 'changed' as const,
  why: "Ansible's npm module cannot tell a tarball is installed: it reinstalls it on every run",
});

const twin = useAnsibleTwin(test, 'hydif-my', (): TwinCase[] => [
  {
    name: 'my-db-new',
    setup: [
      'apt-get update -qq',
      'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server python3-pymysql >/dev/null',
      'systemctl start mariadb',
      `until ${sql('SELECT 1')} >/dev/null 2>&1; do sleep 0.5; done`,
    ].join(' && '),
    tasks: [
      {
        name: 'my-db-new: mysqlDb',
        verdandi: ['mysqlDb', { db: 'difnew', encoding: 'utf8mb4', collation: 'utf8mb4_unicode_ci' }],
        ansible: {
          'community.mysql.mysql_db': {
            name: 'difnew',
            encoding: 'utf8mb4',
            collation: 'utf8mb4_unicode_ci',
            ...socket,
          },
        },
      },
    ],
    drift: sql('DROP DATABASE difnew'),
    probes: [showDatabase('difnew')],
  },
  {
    name: 'my-db-collation',
    setup: sql('CREATE DATABASE difcoll CHARACTER SET latin1 COLLATE latin1_swedish_ci'),
    tasks: [
      {
        name: 'my-db-collation: mysqlDb',
        verdandi: ['mysqlDb', { db: 'difcoll', encoding: 'utf8mb4', collation: 'utf8mb4_general_ci' }],
        ansible: {
          'community.mysql.mysql_db': {
            name: 'difcoll',
            encoding: 'utf8mb4',
            collation: 'utf8mb4_general_ci',
            ...socket,
          },
        },
      },
    ],
    drift: sql('ALTER DATABASE difcoll COLLATE utf8mb4_bin'),
    probes: [showDatabase('difcoll')],
    differences: {
      state: [
        {
          probe: showDatabase('difcoll'),
          after: 'first',
          verdandi:
            'difcoll\tCREATE DATABASE `difcoll` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci */',
          ansible:
            'difcoll\tCREATE DATABASE `difcoll` /*!40100 DEFAULT CHARACTER SET latin1 COLLATE latin1_swedish_ci */',
          why: WHY_COLLATION,
        },
        {
          probe: showDatabase('difcoll'),
          after: 'drift',
          verdandi:
            'difcoll\tCREATE DATABASE `difcoll` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci */',
          ansible:
            'difcoll\tCREATE DATABASE `difcoll` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin */',
          why: WHY_COLLATION,
        },
      ],
      verdicts: [
        {
          task: 'my-db-collation: mysqlDb',
          phase: 'first',
          verdandi: 'changed',
          ansible: 'ok',
          why: WHY_COLLATION,
        },
        {
          task: 'my-db-collation: mysqlDb',
          phase: 'drift',
          verdandi: 'changed',
          ansible: 'ok',
          why: WHY_COLLATION,
        },
      ],
    },
  },
  {
    name: 'my-db-absent',
    setup: sql('CREATE DATABASE difold'),
    tasks: [
      {
        name: 'my-db-absent: mysqlDb',
        verdandi: ['mysqlDb', { db: 'difold', state: 'absent' }],
        ansible: { 'community.mysql.mysql_db': { name: 'difold', state: 'absent', ...socket } },
      },
    ],
    drift: sql('CREATE DATABASE difold'),
    probes: [showDatabase('difold')],
  },
  {
    name: 'my-user-new',
    setup: sql('CREATE DATABASE difapp'),
    tasks: [
      {
        name: 'my-user-new: mysqlUser',
        verdandi: [
          'mysqlUser',
          {
            user: 'difapp',
            host: '%',
            password: 'twin-secret-1',
            privileges: 'difapp.*:SELECT,INSERT,UPDATE',
          },
        ],
        ansible: {
          'community.mysql.mysql_user': {
            name: 'difapp',
            host: '%',
            password: 'twin-secret-1',
            priv: 'difapp.*:SELECT,INSERT,UPDATE',
            ...socket,
          },
          no_log: true,
        },
      },
    ],
    drift: sql(
      "SET PASSWORD FOR 'difapp'@'%' = PASSWORD('hand-set'); REVOKE INSERT ON difapp.* FROM 'difapp'@'%'",
    ),
    probes: [...account('difapp', '%'), tcpLogin('difapp', 'twin-secret-1')],
  },
  {
    name: 'my-user-privs',
    setup: [
      sql('CREATE DATABASE difrw; CREATE DATABASE difother'),
      sql("CREATE USER 'difrw'@'localhost'"),
      sql(
        "GRANT SELECT, INSERT ON difrw.* TO 'difrw'@'localhost'; GRANT ALL ON difother.* TO 'difrw'@'localhost'",
      ),
    ].join(' && '),
    tasks: [
      {
        name: 'my-user-privs: mysqlUser',
        verdandi: ['mysqlUser', { user: 'difrw', privileges: 'difrw.*:SELECT,UPDATE/*.*:PROCESS' }],
        ansible: {
          'community.mysql.mysql_user': {
            name: 'difrw',
            host: 'localhost',
            priv: 'difrw.*:SELECT,UPDATE/*.*:PROCESS',
            ...socket,
          },
        },
      },
    ],
    drift: sql(
      "GRANT DELETE ON difrw.* TO 'difrw'@'localhost'; REVOKE PROCESS ON *.* FROM 'difrw'@'localhost'",
    ),
    probes: account('difrw', 'localhost'),
  },
  {
    name: 'my-user-absent',
    setup: sql("CREATE USER 'difgone'@'localhost'"),
    tasks: [
      {
        name: 'my-user-absent: mysqlUser',
        verdandi: ['mysqlUser', { user: 'difgone', state: 'absent' }],
        ansible: {
          'community.mysql.mysql_user': { name: 'difgone', host: 'localhost', state: 'absent', ...socket },
        },
      },
    ],
    drift: sql("CREATE USER 'difgone'@'localhost'"),
    probes: account('difgone', 'localhost'),
  },
  {
    name: 'my-user-limits',
    setup: sql("CREATE USER 'diflim'@'localhost' WITH MAX_QUERIES_PER_HOUR 5 MAX_UPDATES_PER_HOUR 9"),
    tasks: [
      {
        name: 'my-user-limits: mysqlUser',
        verdandi: [
          'mysqlUser',
          { user: 'diflim', resourceLimits: { maxQueriesPerHour: 100, maxUserConnections: 4 } },
        ],
        ansible: {
          'community.mysql.mysql_user': {
            name: 'diflim',
            host: 'localhost',
            resource_limits: { MAX_QUERIES_PER_HOUR: 100, MAX_USER_CONNECTIONS: 4 },
            ...socket,
          },
        },
      },
    ],
    drift: sql("ALTER USER 'diflim'@'localhost' WITH MAX_QUERIES_PER_HOUR 1"),
    probes: [...account('diflim', 'localhost'), accountLimits('diflim', 'localhost')],
  },
  {
    name: 'my-user-tls',
    setup: sql("CREATE USER 'diftls'@'localhost' REQUIRE SSL"),
    tasks: [
      {
        name: 'my-user-tls: mysqlUser x509',
        verdandi: ['mysqlUser', { user: 'difx509', tlsRequires: 'x509' }],
        ansible: {
          'community.mysql.mysql_user': {
            name: 'difx509',
            host: 'localhost',
            tls_requires: { X509: null },
            ...socket,
          },
        },
      },
      {
        name: 'my-user-tls: mysqlUser subject',
        verdandi: ['mysqlUser', { user: 'diftls', tlsRequires: { subject: '/CN=client', issuer: '/CN=ca' } }],
        ansible: {
          'community.mysql.mysql_user': {
            name: 'diftls',
            host: 'localhost',
            tls_requires: { SUBJECT: '/CN=client', ISSUER: '/CN=ca' },
            ...socket,
          },
        },
      },
    ],
    drift: sql("ALTER USER 'difx509'@'localhost' REQUIRE NONE; ALTER USER 'diftls'@'localhost' REQUIRE SSL"),
    probes: [
      ...account('difx509', 'localhost'),
      accountLimits('difx509', 'localhost'),
      ...account('diftls', 'localhost'),
      accountLimits('diftls', 'localhost'),
    ],
  },
  {
    name: 'npm-tarball',
    setup: [
      'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null',
      'mkdir -p /root/twpkg',
      `printf '%s\\n' '{"name": "twpkg", "version": "1.0.0", "bin": {"twpkg": "index.js"}}' > /root/twpkg/package.json`,
      `printf '%s\\n' '#!/usr/bin/env node' 'console.log("twin");' > /root/twpkg/index.js`,
      'cd /root && npm pack --silent ./twpkg >/dev/null',
    ].join(' && '),
    tasks: [
      {
        name: 'npm-tarball: npm',
        verdandi: ['npm', { package: 'twpkg', version: '1.0.0', source: TARBALL, path: '/srv/npmdif1' }],
        ansible: { 'community.general.npm': { name: TARBALL, path: '/srv/npmdif1' } },
      },
    ],
    drift: 'rm -rf /srv/npmdif1/node_modules/twpkg',
    probes: ['tree:/srv/npmdif1/node_modules/twpkg', 'sh:cat /srv/npmdif1/package.json'],
    differences: { verdicts: [npmRerun('npm-tarball: npm')] },
  },
  {
    name: 'npm-global',
    tasks: [
      {
        name: 'npm-global: npm',
        verdandi: ['npm', { package: 'twpkg', source: TARBALL, global: true }],
        ansible: { 'community.general.npm': { name: TARBALL, global: true } },
      },
    ],
    drift: 'npm uninstall --global --silent twpkg',
    probes: ['tree:/usr/local/lib/node_modules/twpkg', 'path:/usr/local/bin/twpkg'],
    differences: { verdicts: [npmRerun('npm-global: npm')] },
  },
  {
    name: 'npm-absent',
    setup: `mkdir -p /srv/npmdif3 && cd /srv/npmdif3 && npm install --silent ${TARBALL}`,
    tasks: [
      {
        name: 'npm-absent: npm',
        verdandi: ['npm', { package: 'twpkg', path: '/srv/npmdif3', state: 'absent' }],
        ansible: { 'community.general.npm': { name: 'twpkg', path: '/srv/npmdif3', state: 'absent' } },
      },
    ],
    drift: `cd /srv/npmdif3 && npm install --silent ${TARBALL}`,
    probes: ['tree:/srv/npmdif3/node_modules/twpkg', 'sh:cat /srv/npmdif3/package.json'],
  },
]);

test('both tools exit 0 in every phase', (t) => twin.assertRuns(t));

for (const c of twin.cases) {
  test(c.name, (t) => twin.assertCase(t, c));
}

/**
 * The twins agreeing is not enough: both could be wrong the same way (a login refused on both). What
 * Verdandi's host holds after the first run and after repairing the drift, as the cases want it.
 */
const CONVERGED: Array<{ name: string; probe: Probe; matches: RegExp }> = [
  {
    name: 'my-db-new',
    probe: showDatabase('difnew'),
    matches: /DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci/,
  },
  { name: 'my-db-absent', probe: showDatabase('difold'), matches: /Unknown database 'difold'/ },
  { name: 'my-user-new', probe: tcpLogin('difapp', 'twin-secret-1'), matches: /^difapp@%$/ },
  {
    name: 'my-user-new',
    probe: account('difapp', '%')[1],
    matches: /^GRANT SELECT, INSERT, UPDATE ON `difapp`\.\* TO `difapp`@`%`$/m,
  },
  {
    name: 'my-user-privs',
    probe: account('difrw', 'localhost')[1],
    matches:
      /^GRANT PROCESS ON \*\.\* TO `difrw`@`localhost`\nGRANT SELECT, UPDATE ON `difrw`\.\* TO `difrw`@`localhost`$/,
  },
  { name: 'my-user-absent', probe: account('difgone', 'localhost')[0], matches: /^$/ },
  {
    name: 'my-user-limits',
    probe: accountLimits('diflim', 'localhost'),
    matches: /^\t\t\t\t100\t9\t0\t4\t0\.000000$/,
  },
  { name: 'my-user-tls', probe: accountLimits('difx509', 'localhost'), matches: /^X509\t/ },
  {
    name: 'my-user-tls',
    probe: accountLimits('diftls', 'localhost'),
    matches: /^SPECIFIED\t\t\/CN=ca\t\/CN=client\t/,
  },
  {
    name: 'npm-tarball',
    probe: 'tree:/srv/npmdif1/node_modules/twpkg',
    matches: /^\/srv\/npmdif1\/node_modules\/twpkg\/index\.js regular file /m,
  },
  {
    name: 'npm-global',
    probe: 'path:/usr/local/bin/twpkg',
    matches: /^-> \.\.\/lib\/node_modules\/twpkg\/index\.js$/m,
  },
  { name: 'npm-absent', probe: 'tree:/srv/npmdif3/node_modules/twpkg', matches: /^missing$/ },
];

test('the converged states are the wanted ones', (t) => {
  const { verdandi } = twin.get();
  for (const { name, probe, matches } of CONVERGED) {
    for (const when of ['first', 'drift'] as const) {
      t.regex(
        verdandi.state[when][`${name} ${probe.replaceAll("'", '')}`] ?? '',
        matches,
        `${name} ${probe} (${when})`,
      );
    }
  }
});
