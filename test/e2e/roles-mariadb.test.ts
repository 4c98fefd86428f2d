/**
 * The mariadb role on a fresh test host over real SSH (one host, one install of mariadb-server from the
 * Debian mirror): it converges with a database and a user whose password comes from the encrypted
 * secrets; that user logs in over TCP with it and sees only its database; the second run changes
 * nothing; `--check` on a drifted host (a dropped grant, a password and a collation changed by hand)
 * reports the changes and makes none; the next run repairs them; `state: absent` drops a database and a
 * user; a setting the server refuses fails the run before the running server is touched.
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { assertConverged, projectDir, provision, sshOk, stackInventory } from '../fixtures/roles/e2e.js';
import { runCli } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'hm-mariadb';
const hosts = useTestHosts(test, [HOST]);
const project = projectDir('roles-mariadb');
test.after.always(() => project.cleanup());

const PASSWORD = 'Maria-pass-from-secrets-42';
const ENV = { VERDANDI_VAULT_PASSWORD: 'vault-password-for-roles-mariadb-test' };
const CONFIG = '/etc/mysql/mariadb.conf.d/90-verdandi.cnf';

const vars = (settings: Record<string, unknown> = {}, gone: 'absent' | 'present' = 'present') => ({
  mariadb_bind_address: '0.0.0.0',
  mariadb_max_connections: 60,
  mariadb_settings: settings,
  mariadb_databases: [
    { name: 'shop', collation: 'utf8mb4_unicode_ci' },
    { name: 'ledger', state: gone },
  ],
  mariadb_users: [
    { name: 'shop', host: '%', password: '{{ secrets.db_password }}', privileges: 'shop.*:ALL' },
    { name: 'reporter', password_secret: 'db_password', privileges: 'ledger.*:SELECT', state: gone },
  ],
});

let inventory = '';

/** A query as root on the host (unix_socket), its rows. */
const asRoot = (sql: string) => `mariadb -N -B -e "${sql}"`;
/** A query as the `shop` user over TCP with its password (in the environment, not on the command line). */
const asShop = (sql: string, password = PASSWORD) =>
  `MYSQL_PWD='${password}' mariadb --protocol=TCP -h 127.0.0.1 -u shop -N -B -e "${sql}"`;

test.before(async () => {
  const plain = join(project.dir, 'secrets.plain.yml');
  writeFileSync(plain, `db_password: ${PASSWORD}\n`);
  const enc = await runCli(['secrets', 'encrypt', 'test', plain], { cwd: project.dir, env: ENV });
  if (enc.code !== 0) throw new Error(`secrets encrypt failed: ${enc.stderr}`);
});

test.serial(
  'converges; the user logs in over TCP with its password and sees only its database',
  async (t) => {
    t.timeout(20 * 60_000);
    inventory = stackInventory(project.dir, [hosts.get(HOST)], ['mariadb'], vars());
    const r = await provision(project.dir, inventory, [], ENV);
    t.true(assertConverged(t, r, HOST).changed > 0);
    // Neither the password nor its hash shows in Verdandi's output.
    t.false(r.stdout.includes(PASSWORD) || r.stderr.includes(PASSWORD));
    t.false(/\*[0-9A-F]{40}/.test(r.stdout + r.stderr));

    t.is(await sshOk(t, hosts, HOST, asShop('SHOW DATABASES')), 'information_schema\nshop\n');
    t.is(
      await sshOk(t, hosts, HOST, asShop('CREATE TABLE shop.t (id INT); SELECT COUNT(*) FROM shop.t')),
      '0\n',
    );
    t.not(
      (await hosts.ssh(HOST, asShop('SELECT 1', 'wrong-password'))).code,
      0,
      'a wrong password is refused',
    );
    t.not((await hosts.ssh(HOST, asShop('CREATE TABLE ledger.t (id INT)'))).code, 0, 'no rights on ledger');
    await sshOk(t, hosts, HOST, asRoot('CREATE TABLE ledger.t (id INT)'));
    t.is(
      await sshOk(
        t,
        hosts,
        HOST,
        `MYSQL_PWD='${PASSWORD}' mariadb -u reporter -N -B -e 'SELECT COUNT(*) FROM ledger.t'`,
      ),
      '0\n',
      'reporter (password_secret) reads ledger over the socket',
    );

    t.is(await sshOk(t, hosts, HOST, asRoot('SELECT @@bind_address, @@max_connections')), '0.0.0.0\t60\n');
    t.is(
      await sshOk(
        t,
        hosts,
        HOST,
        asRoot("SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'"),
      ),
      'utf8mb4_unicode_ci\n',
    );
    t.is((await sshOk(t, hosts, HOST, 'systemctl is-enabled mariadb')).trim(), 'enabled');
  },
);

test.serial('a second run changes nothing', async (t) => {
  t.timeout(10 * 60_000);
  const r = await provision(project.dir, inventory, [], ENV);
  t.is(assertConverged(t, r, HOST).changed, 0, r.stdout);
});

test.serial(
  'drift (a dropped grant, a password and a collation changed by hand): --check reports it and changes nothing; the next run repairs it',
  async (t) => {
    t.timeout(10 * 60_000);
    const collation = asRoot(
      "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'",
    );
    await sshOk(
      t,
      hosts,
      HOST,
      asRoot(
        "REVOKE ALL PRIVILEGES ON shop.* FROM 'shop'@'%'; ALTER USER 'reporter'@'localhost' IDENTIFIED BY 'changed-by-hand'; ALTER DATABASE shop COLLATE utf8mb4_general_ci",
      ),
    );
    t.is(await sshOk(t, hosts, HOST, asShop('SHOW DATABASES')), 'information_schema\n');

    const check = await provision(project.dir, inventory, ['--check'], ENV);
    // The database, and each user.
    t.is(assertConverged(t, check, HOST).changed, 3, check.stdout);
    t.false(check.stdout.includes(PASSWORD) || /\*[0-9A-F]{40}/.test(check.stdout + check.stderr));
    t.is(
      await sshOk(t, hosts, HOST, asShop('SHOW DATABASES')),
      'information_schema\n',
      'check mode granted nothing',
    );
    t.is(await sshOk(t, hosts, HOST, collation), 'utf8mb4_general_ci\n');

    const r = await provision(project.dir, inventory, [], ENV);
    t.is(assertConverged(t, r, HOST).changed, 3, r.stdout);
    t.is(await sshOk(t, hosts, HOST, asShop('SHOW DATABASES')), 'information_schema\nshop\n');
    t.is(await sshOk(t, hosts, HOST, collation), 'utf8mb4_unicode_ci\n');
    t.is(
      await sshOk(
        t,
        hosts,
        HOST,
        `MYSQL_PWD='${PASSWORD}' mariadb -u reporter -N -B -e 'SELECT COUNT(*) FROM ledger.t'`,
      ),
      '0\n',
      'the password from the secrets again, and SELECT on ledger',
    );
    t.is(assertConverged(t, await provision(project.dir, inventory, [], ENV), HOST).changed, 0);
  },
);

test.serial('state absent drops the database and the user', async (t) => {
  t.timeout(10 * 60_000);
  const gone = stackInventory(project.dir, [hosts.get(HOST)], ['mariadb'], vars({}, 'absent'));
  const r = await provision(project.dir, gone, [], ENV);
  t.is(assertConverged(t, r, HOST).changed, 2, r.stdout);
  t.is(
    await sshOk(
      t,
      hosts,
      HOST,
      asRoot(
        "SELECT (SELECT COUNT(*) FROM mysql.user WHERE User = 'reporter'), (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'ledger')",
      ),
    ),
    '0\t0\n',
  );
  t.is(assertConverged(t, await provision(project.dir, gone, [], ENV), HOST).changed, 0);
});

test.serial(
  'a setting the server refuses fails the run; the file and the running server are kept',
  async (t) => {
    t.timeout(10 * 60_000);
    const before = await sshOk(t, hosts, HOST, `cat ${CONFIG}`);
    const pid = await sshOk(t, hosts, HOST, 'systemctl show -p MainPID --value mariadb');
    // The same inventory (the environment of the secrets), rewritten with the bad setting.
    const bad = stackInventory(project.dir, [hosts.get(HOST)], ['mariadb'], vars({ no_such_variable: 1 }));
    const r = await provision(project.dir, bad, [], ENV);
    t.not(r.code, 0);
    t.regex(r.stdout + r.stderr, /unknown variable 'no_such_variable=1'/);
    t.is(await sshOk(t, hosts, HOST, `cat ${CONFIG}`), before);
    t.is(await sshOk(t, hosts, HOST, 'systemctl show -p MainPID --value mariadb'), pid, 'not restarted');
  },
);
