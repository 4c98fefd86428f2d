/**
 * The postgres role on a fresh test host over real SSH: PostgreSQL 15 converges with a user whose
 * password comes from the encrypted secrets, that user logs in over TCP with it, the database exists
 * with its extension; the second run changes nothing; the daily timer is armed; `verdandi backup
 * --download` makes a dump that `verdandi restore --yes` puts back into an emptied database.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { assertConverged, projectDir, provision, sshOk, stackInventory } from '../fixtures/roles/e2e.js';
import { runCli } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'roles-postgres';
const hosts = useTestHosts(test, [HOST]);
const project = projectDir('roles-postgres');
test.after.always(() => project.cleanup());

const PASSWORD = 'Pg-pass-from-secrets-42';
const ENV = { VERDANDI_VAULT_PASSWORD: 'vault-password-for-roles-postgres-test' };

const vars = {
  postgres_users: [{ name: 'catalogage', password: '{{ secrets.db_password }}' }],
  postgres_databases: [{ name: 'catalogage', owner: 'catalogage', extensions: ['pg_trgm'] }],
  postgres_backup_keep_days: 7,
};

let inventory = '';

const psqlAsUser = (sql: string) =>
  `PGPASSWORD='${PASSWORD}' psql -h 127.0.0.1 -U catalogage catalogage -tAc "${sql}"`;

test.before(async () => {
  const plain = join(project.dir, 'secrets.plain.yml');
  writeFileSync(plain, `db_password: ${PASSWORD}\n`);
  const enc = await runCli(['secrets', 'encrypt', 'test', plain], { cwd: project.dir, env: ENV });
  if (enc.code !== 0) throw new Error(`secrets encrypt failed: ${enc.stderr}`);
});

test.serial('converges; the user logs in over TCP with the password from the secrets', async (t) => {
  inventory = stackInventory(project.dir, [hosts.get(HOST)], ['postgres'], vars);
  const r = await provision(project.dir, inventory, [], ENV);
  t.true(assertConverged(t, r, HOST).changed > 0);
  // The secret never shows in Verdandi's output.
  t.false(r.stdout.includes(PASSWORD) || r.stderr.includes(PASSWORD));

  t.is(await sshOk(t, hosts, HOST, psqlAsUser('select 1')), '1\n');
  t.is(
    await sshOk(t, hosts, HOST, psqlAsUser("select extname from pg_extension where extname = 'pg_trgm'")),
    'pg_trgm\n',
  );
  t.is(
    await sshOk(
      t,
      hosts,
      HOST,
      psqlAsUser("select pg_get_userbyid(datdba) from pg_database where datname = 'catalogage'"),
    ),
    'catalogage\n',
  );
  // A wrong password is refused (the login above is not a trust rule letting anyone in).
  const wrong = await hosts.ssh(
    HOST,
    `PGPASSWORD=wrong psql -h 127.0.0.1 -U catalogage catalogage -c 'select 1'`,
  );
  t.not(wrong.code, 0);
  t.regex(await sshOk(t, hosts, HOST, 'runuser -u postgres -- psql -tAc "show server_version"'), /^15\./);
});

test.serial('a second run changes nothing', async (t) => {
  const r = await provision(project.dir, inventory, [], ENV);
  t.is(assertConverged(t, r, HOST).changed, 0, r.stdout);
});

test.serial('the daily backup timer is armed', async (t) => {
  t.is((await sshOk(t, hosts, HOST, 'systemctl is-enabled verdandi-pg-backup.timer')).trim(), 'enabled');
  t.is((await sshOk(t, hosts, HOST, 'systemctl is-active verdandi-pg-backup.timer')).trim(), 'active');
  t.regex(
    await sshOk(t, hosts, HOST, 'systemctl cat verdandi-pg-backup.timer'),
    /OnCalendar=\*-\*-\* 03:15:00/,
  );
});

test.serial(
  'verdandi backup makes a dump; verdandi restore puts it back into an empty database',
  async (t) => {
    await sshOk(
      t,
      hosts,
      HOST,
      psqlAsUser(
        "create table books (id int primary key, title text); insert into books values (1, 'Skuld'), (2, 'Urd')",
      ),
    );
    const downloads = join(project.dir, 'downloads');
    const backup = await runCli(['backup', inventory, '--download', downloads, '--host-key-checking=off'], {
      cwd: project.dir,
      env: ENV,
    });
    t.is(backup.code, 0, backup.stderr);
    t.regex(
      backup.stdout,
      /catalogage → \/var\/backups\/postgresql\/catalogage\/catalogage-\d{8}T\d{6}Z\.dump/,
    );

    // On the host, in the role's backup directory...
    const onHost = await sshOk(t, hosts, HOST, 'ls /var/backups/postgresql/catalogage/');
    t.regex(onHost, /^catalogage-\d{8}T\d{6}Z\.dump$/m);
    // ...and downloaded, a real custom-format dump.
    const files = readdirSync(join(downloads, HOST));
    t.is(files.length, 1);
    const dump = join(downloads, HOST, files[0]);
    t.is(readFileSync(dump).subarray(0, 5).toString('latin1'), 'PGDMP');

    // Empty the database: dropped and created again, empty, with its owner (what provision would do).
    await sshOk(
      t,
      hosts,
      HOST,
      'runuser -u postgres -- dropdb catalogage && runuser -u postgres -- createdb -O catalogage catalogage',
    );
    t.is(
      await sshOk(t, hosts, HOST, psqlAsUser("select count(*) from pg_tables where tablename = 'books'")),
      '0\n',
    );

    // Without --yes and without a terminal, restore refuses and changes nothing.
    const refused = await runCli(
      ['restore', inventory, '--db', 'catalogage', '--from', dump, '--host-key-checking=off'],
      {
        cwd: project.dir,
        env: ENV,
      },
    );
    t.is(refused.code, 1);
    t.regex(refused.stderr, /--yes/);

    const restore = await runCli(
      ['restore', inventory, '--db', 'catalogage', '--from', dump, '--yes', '--host-key-checking=off'],
      { cwd: project.dir, env: ENV },
    );
    t.is(restore.code, 0, restore.stderr);
    t.is(await sshOk(t, hosts, HOST, psqlAsUser('select title from books order by id')), 'Skuld\nUrd\n');
    t.true(existsSync(dump));
  },
);

test.serial('the timer service itself makes a dump', async (t) => {
  await sshOk(t, hosts, HOST, 'rm -f /var/backups/postgresql/catalogage/*.dump');
  await sshOk(t, hosts, HOST, 'systemctl start verdandi-pg-backup.service');
  t.regex(
    await sshOk(t, hosts, HOST, 'ls /var/backups/postgresql/catalogage/'),
    /^catalogage-\d{8}T\d{6}Z\.dump\n$/,
  );
});
