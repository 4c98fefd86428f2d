/** mariadb role without a host: settings lines, passwords from the secrets, the order of its tasks. */
import { readFileSync } from 'node:fs';
import test from 'ava';
import Handlebars from 'handlebars';
import role, { CONFIG_FILE, settingsLines, userPassword, vars } from '../../roles/mariadb/index.js';
import { hostInfo } from '../fixtures/roles/host-info.js';

test('settings: bind address, port, max connections, then the extra ones; booleans ON/OFF', (t) => {
  const v = vars.parse({
    mariadb_bind_address: '0.0.0.0',
    mariadb_max_connections: 300,
    mariadb_settings: { 'innodb-buffer-pool-size': '512M', skip_name_resolve: true, wait_timeout: 600 },
  });
  t.deepEqual(settingsLines(v), [
    'bind_address = 0.0.0.0',
    'port = 3306',
    'max_connections = 300',
    'innodb_buffer_pool_size = 512M',
    'skip_name_resolve = ON',
    'wait_timeout = 600',
  ]);
  const src = readFileSync(
    new URL('../../roles/mariadb/templates/verdandi.cnf.hbs', import.meta.url),
    'utf8',
  );
  const file = Handlebars.compile(src, { noEscape: true, strict: true })({ lines: settingsLines(v) });
  t.regex(file, /^\[mysqld\]\nbind_address = 0\.0\.0\.0\n/m);
  t.throws(() => vars.parse({ mariadb_settings: { x: 'a\nb' } }));
  t.throws(() => vars.parse({ mariadb_bind_address: '1.2.3.4; rm' }));
});

test('passwords: given (from {{ secrets.x }}) or read from the secrets by name', (t) => {
  const host = hostInfo('db1', { secrets: { app_db_password: 's3cret-pw' } });
  const [given, named] = vars.parse({
    mariadb_users: [
      { name: 'a', password: 'inline-pw' },
      { name: 'b', password_secret: 'app_db_password' },
    ],
  }).mariadb_users;
  t.is(userPassword(given, host), 'inline-pw');
  t.is(userPassword(named, host), 's3cret-pw');
  const [missing, both] = vars.parse({
    mariadb_users: [
      { name: 'c', password_secret: 'nope' },
      { name: 'd', password: 'x', password_secret: 'app_db_password' },
    ],
  }).mariadb_users;
  t.throws(() => userPassword(missing, host), { message: /secret "nope"/ });
  t.throws(() => userPassword(both, host), { message: /both password and password_secret/ });
});

test('tasks: package, validated drop-in, service, databases, users (sensitive), removed databases last', async (t) => {
  const v = vars.parse({
    mariadb_databases: [{ name: 'app' }, { name: 'old', state: 'absent' }],
    mariadb_users: [
      { name: 'app', host: '%', password: 'pw-123456', privileges: 'app.*:ALL' },
      { name: 'gone', state: 'absent' },
    ],
  });
  const tasks = (await role.tasks(v, hostInfo('db1'))) as Array<{
    name: string;
    type: string;
    sensitive: boolean;
    notify?: string[];
  }>;
  t.deepEqual(
    tasks.map((x) => x.name),
    [
      'apt mariadb-server, mariadb-client',
      `template ${CONFIG_FILE}`,
      'service mariadb',
      'mysql database app',
      'mysql user app@%',
      'mysql user gone@localhost',
      'mysql database old',
    ],
  );
  t.true(tasks[4].sensitive);
});

test('the same database or account listed twice is an error', async (t) => {
  const host = hostInfo('db1');
  await t.throwsAsync(
    async () => role.tasks(vars.parse({ mariadb_databases: [{ name: 'a' }, { name: 'a' }] }), host),
    {
      message: /mariadb_databases of host db1: "a" is listed twice/,
    },
  );
  const users = vars.parse({ mariadb_users: [{ name: 'a' }, { name: 'a', host: '%' }] });
  await t.notThrowsAsync(async () => role.tasks(users, host), 'one name on two hosts is two accounts');
});
