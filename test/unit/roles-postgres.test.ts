/** postgres role without a host: settings, pg_hba order, passwords from the secrets, backup script. */
import { readFileSync } from 'node:fs';
import test from 'ava';
import Handlebars from 'handlebars';
import role, {
  backupDatabases,
  hbaLines,
  settingsLines,
  userPassword,
  vars,
} from '../../roles/postgres/index.js';
import { hostInfo } from '../fixtures/roles/host-info.js';

test('settings: listen addresses and port, strings quoted', (t) => {
  const v = vars.parse({
    postgres_listen_addresses: ['localhost', '10.0.0.5'],
    postgres_settings: { max_connections: 200, log_line_prefix: "%m [%p] it's", jit: false },
  });
  t.deepEqual(settingsLines(v), [
    "listen_addresses = 'localhost,10.0.0.5'",
    'port = 5432',
    'max_connections = 200',
    "log_line_prefix = '%m [%p] it''s'",
    'jit = off',
  ]);
});

test("pg_hba: postgres peer first, the user's entries, then Debian's defaults", (t) => {
  const v = vars.parse({ postgres_hba: [{ address: '10.0.0.0/24', database: 'app', user: 'app' }] });
  const lines = hbaLines(v).filter((l) => !l.startsWith('#'));
  t.is(lines[0], 'local all postgres peer');
  t.is(lines[1], 'host app app 10.0.0.0/24 scram-sha-256');
  t.true(lines.includes('host all all 127.0.0.1/32 scram-sha-256'));
  t.throws(() => vars.parse({ postgres_hba: [{ type: 'host', method: 'trust' }] }), { message: /need one/ });
  t.throws(() => vars.parse({ postgres_hba: [{ type: 'local', address: '1.2.3.4/32' }] }));
});

test('passwords: given (from {{ secrets.x }}) or read from the secrets by name', (t) => {
  const host = hostInfo('db1', { secrets: { app_db_password: 's3cret-pw' } });
  const [given, named] = vars.parse({
    postgres_users: [
      { name: 'a', password: 'inline-pw' },
      { name: 'b', password_secret: 'app_db_password' },
    ],
  }).postgres_users;
  t.is(userPassword(given, host), 'inline-pw');
  t.is(userPassword(named, host), 's3cret-pw');
  const missing = vars.parse({ postgres_users: [{ name: 'c', password_secret: 'nope' }] }).postgres_users[0];
  t.throws(() => userPassword(missing, host), { message: /secret "nope"/ });
});

test('backup script: every managed database, quoted, keep days in minutes', (t) => {
  const v = vars.parse({
    postgres_databases: [
      { name: 'app' },
      { name: 'scratch', backup: false },
      { name: 'old', state: 'absent' },
    ],
    postgres_backup_keep_days: 3,
  });
  t.deepEqual(backupDatabases(v), ['app']);
  const src = readFileSync(new URL('../../roles/postgres/templates/backup.sh.hbs', import.meta.url), 'utf8');
  const script = Handlebars.compile(src, { noEscape: true, strict: true })({
    dir: '/var/backups/postgresql',
    keepDays: 3,
    keepMinutes: 3 * 1440,
    databases: 'app',
    port: 5432,
  });
  t.regex(script, /^keep_minutes=4320$/m);
  t.regex(script, /set -- app;/);
  t.regex(script, /pg_dump -p 5432 -Fc -f "\$out\.partial" "\$db"/);
});

test('tasks: users before databases, passwords sensitive, backup timer enabled', async (t) => {
  const v = vars.parse({
    postgres_users: [{ name: 'app', password: 'pw-123456' }],
    postgres_databases: [{ name: 'app', owner: 'app', extensions: ['pg_trgm'] }],
  });
  const tasks = (await role.tasks(v, hostInfo('db1'))) as Array<{
    name: string;
    type: string;
    sensitive: boolean;
  }>;
  const types = tasks.map((x) => x.type);
  t.true(types.indexOf('postgresUser') < types.indexOf('postgresDb'));
  t.true(tasks.find((x) => x.type === 'postgresUser')!.sensitive);
  t.true(tasks.some((x) => x.name.includes('verdandi-pg-backup.timer')));
});
