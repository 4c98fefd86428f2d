/**
 * postgres: Debian's PostgreSQL (15 on bookworm) for the app's database.
 *
 * - listen addresses, port and other settings in `conf.d/verdandi.conf` (a change restarts the server);
 * - `pg_hba.conf` from typed entries (a change reloads it);
 * - users whose passwords come from the secrets: sent to psql on stdin (never on a command line), never
 *   printed, changed only when the stored SCRAM verifier does not match (the `postgresUser` task);
 * - databases with owner, encoding and extensions;
 * - daily dumps: `verdandi-pg-backup.timer` runs `pg_dump -Fc` per database into
 *   `/var/backups/postgresql/<db>/`, keeping `postgres_backup_keep_days` days. `verdandi backup <env>`
 *   runs the same service at once; `verdandi restore` puts a dump back.
 */
import {
  apt,
  defineRole,
  directory,
  type HostInfo,
  passwordOf,
  postgresDb,
  postgresUser,
  quote,
  refuseDuplicateNames,
  service,
  shell,
  type Task,
  template,
  z,
} from 'verdandi';

export const BACKUP_SCRIPT = '/usr/local/sbin/verdandi-pg-backup';
export const BACKUP_UNIT = 'verdandi-pg-backup';

/** PostgreSQL identifiers the role writes into shell scripts and config files: plain names only. */
const identifier = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'a name is letters, digits, "_" or "-" and starts with a letter or "_"')
  .max(63);

const hbaEntry = z
  .object({
    type: z.enum(['local', 'host', 'hostssl', 'hostnossl']).default('host'),
    /** `all`, `sameuser`, a database name, or a comma list. */
    database: z
      .string()
      .regex(/^[A-Za-z0-9_,.+@-]+$/)
      .default('all'),
    user: z
      .string()
      .regex(/^[A-Za-z0-9_,.+@-]+$/)
      .default('all'),
    /** CIDR (`10.0.0.0/24`) for host lines; none for local lines. */
    address: z
      .string()
      .regex(/^[0-9A-Fa-f:./]+$|^(all|samehost|samenet)$/)
      .optional(),
    method: z
      .enum(['scram-sha-256', 'md5', 'peer', 'ident', 'trust', 'reject', 'password', 'cert'])
      .default('scram-sha-256'),
    /** Extra `name=value` options (`clientcert=verify-full`). */
    options: z
      .string()
      .regex(/^[^\n#]*$/)
      .optional(),
  })
  .refine((e) => (e.type === 'local') === (e.address === undefined), {
    message: 'a local entry has no address; host entries need one (e.g. 10.0.0.0/24)',
  });

const user = z.object({
  name: identifier,
  /** The password itself: write `{{ secrets.db_password }}` in the inventory, never the clear text. */
  password: z.string().min(1).optional(),
  /** Or the name of a key in the environment's secrets holding it. */
  password_secret: z.string().min(1).optional(),
  superuser: z.boolean().default(false),
  createdb: z.boolean().default(false),
  login: z.boolean().default(true),
  state: z.enum(['present', 'absent']).default('present'),
});

const database = z.object({
  name: identifier,
  owner: identifier.optional(),
  encoding: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('UTF8'),
  /** e.g. `template0` (needed for an encoding other than the cluster's). */
  template: identifier.optional(),
  extensions: z.array(z.string().regex(/^[a-z0-9_-]+$/)).default([]),
  state: z.enum(['present', 'absent']).default('present'),
  /** Include this database in the daily dumps. */
  backup: z.boolean().default(true),
});

export type PostgresUser = z.infer<typeof user>;
export type PostgresDatabase = z.infer<typeof database>;
export type PostgresHbaEntry = z.infer<typeof hbaEntry>;

export const vars = z.object({
  /** Major version of Debian's packages (`postgresql-15` on bookworm). */
  postgres_version: z.string().regex(/^\d+$/).default('15'),
  postgres_cluster: z
    .string()
    .regex(/^[a-z0-9_-]+$/)
    .default('main'),
  /** Addresses the server listens on: `localhost`, `*`, or IP addresses of the host. */
  postgres_listen_addresses: z
    .array(z.string().regex(/^[A-Za-z0-9*.:_-]+$/))
    .min(1)
    .default(['localhost']),
  postgres_port: z.number().int().min(1).max(65535).default(5432),
  /** Further postgresql.conf settings (`max_connections: 200`, `shared_buffers: 256MB`). Open: any
   * setting name (PostgreSQL refuses the ones it does not know). */
  postgres_settings: z
    .record(z.string().regex(/^[a-z_][a-z0-9_.]*$/), z.union([z.string(), z.number(), z.boolean()]))
    .default({}),
  /** pg_hba entries, placed after `local all postgres peer` and before Debian's defaults. */
  postgres_hba: z.array(hbaEntry).default([]),
  /** Keep Debian's default entries (local peer, password over localhost TCP). */
  postgres_hba_debian_defaults: z.boolean().default(true),
  postgres_users: z.array(user).default([]),
  postgres_databases: z.array(database).default([]),
  postgres_backup_enabled: z.boolean().default(true),
  postgres_backup_dir: z
    .string()
    .regex(/^\/[A-Za-z0-9_./-]+$/)
    .default('/var/backups/postgresql'),
  postgres_backup_keep_days: z.number().int().min(1).default(7),
  /** systemd OnCalendar expression of the daily dump. */
  postgres_backup_on_calendar: z
    .string()
    .regex(/^[^\n]+$/)
    .default('*-*-* 03:15:00'),
  postgres_backup_randomized_delay_sec: z.number().int().nonnegative().default(600),
});

export type PostgresVars = z.infer<typeof vars>;

const templateFile = (name: string) => new URL(`./templates/${name}`, import.meta.url);

export function configDir(v: PostgresVars): string {
  return `/etc/postgresql/${v.postgres_version}/${v.postgres_cluster}`;
}

export function serverUnit(v: PostgresVars): string {
  return `postgresql@${v.postgres_version}-${v.postgres_cluster}`;
}

/** A postgresql.conf value: numbers and booleans as they are, strings single-quoted. */
function settingValue(value: string | number | boolean): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

export function settingsLines(v: PostgresVars): string[] {
  const settings: Record<string, string | number | boolean> = {
    listen_addresses: v.postgres_listen_addresses.join(','),
    port: v.postgres_port,
    ...v.postgres_settings,
  };
  return Object.entries(settings).map(([k, value]) => `${k} = ${settingValue(value)}`);
}

export function hbaLines(v: PostgresVars): string[] {
  const line = (e: PostgresHbaEntry) =>
    [e.type, e.database, e.user, e.address, e.method, e.options]
      .filter((x) => x !== undefined && x !== '')
      .join(' ');
  const lines = ['# The role itself works through this one: keep it first.', 'local all postgres peer'];
  if (v.postgres_hba.length > 0) lines.push('# From postgres_hba:', ...v.postgres_hba.map(line));
  if (v.postgres_hba_debian_defaults) {
    lines.push(
      "# Debian's defaults:",
      'local all all peer',
      'host all all 127.0.0.1/32 scram-sha-256',
      'host all all ::1/128 scram-sha-256',
      'local replication all peer',
      'host replication all 127.0.0.1/32 scram-sha-256',
      'host replication all ::1/128 scram-sha-256',
    );
  }
  return lines;
}

/** The password of a user: given as is (from `{{ secrets.x }}` in the inventory) or read from the secrets. */
export function userPassword(u: PostgresUser, host: HostInfo): string | undefined {
  return passwordOf(u, host, `postgres_users of host ${host.name}: user "${u.name}"`);
}

export function backupDatabases(v: PostgresVars): string[] {
  return v.postgres_databases.filter((d) => d.state === 'present' && d.backup).map((d) => d.name);
}

export default defineRole({
  name: 'postgres',
  description: "Debian's PostgreSQL: settings, pg_hba, users from the secrets, databases, daily dumps",
  vars,
  tasks(v, host) {
    refuseDuplicateNames(
      'postgres_users',
      v.postgres_users.map((u) => u.name),
      host,
    );
    refuseDuplicateNames(
      'postgres_databases',
      v.postgres_databases.map((d) => d.name),
      host,
    );
    const dir = configDir(v);
    const tasks: Task[] = [
      apt({ packages: [`postgresql-${v.postgres_version}`, `postgresql-client-${v.postgres_version}`] }),
      template({
        path: `${dir}/conf.d/verdandi.conf`,
        src: templateFile('verdandi.conf.hbs'),
        vars: { lines: settingsLines(v) },
        owner: 'postgres',
        group: 'postgres',
        mode: '0644',
        notify: 'restart postgresql',
      }),
      template({
        path: `${dir}/pg_hba.conf`,
        src: templateFile('pg_hba.conf.hbs'),
        vars: { lines: hbaLines(v) },
        owner: 'postgres',
        group: 'postgres',
        mode: '0640',
        notify: 'reload postgresql',
      }),
      service({ unit: serverUnit(v), state: 'started', enabled: true }),
    ];

    // Users first (a database's owner must exist), databases next; removals in the reverse order.
    for (const u of v.postgres_users.filter((x) => x.state === 'present')) {
      tasks.push(
        postgresUser({
          user: u.name,
          password: userPassword(u, host),
          superuser: u.superuser,
          createdb: u.createdb,
          login: u.login,
          sensitive: true,
        }),
      );
    }
    for (const d of v.postgres_databases) {
      tasks.push(
        postgresDb({
          db: d.name,
          owner: d.owner,
          encoding: d.encoding,
          template: d.template,
          extensions: d.extensions,
          state: d.state,
        }),
      );
    }
    for (const u of v.postgres_users.filter((x) => x.state === 'absent')) {
      tasks.push(postgresUser({ user: u.name, state: 'absent' }));
    }

    if (v.postgres_backup_enabled) {
      tasks.push(
        directory({ path: v.postgres_backup_dir, owner: 'postgres', group: 'postgres', mode: '0700' }),
        template({
          path: BACKUP_SCRIPT,
          src: templateFile('backup.sh.hbs'),
          vars: {
            dir: quote(v.postgres_backup_dir),
            keepDays: v.postgres_backup_keep_days,
            keepMinutes: v.postgres_backup_keep_days * 24 * 60,
            databases: backupDatabases(v)
              .map((d) => quote(d))
              .join(' '),
            port: v.postgres_port,
          },
          owner: 'root',
          group: 'root',
          mode: '0755',
        }),
        template({
          path: `/etc/systemd/system/${BACKUP_UNIT}.service`,
          src: templateFile('backup.service.hbs'),
          vars: { script: BACKUP_SCRIPT },
          owner: 'root',
          group: 'root',
          mode: '0644',
        }),
        template({
          path: `/etc/systemd/system/${BACKUP_UNIT}.timer`,
          src: templateFile('backup.timer.hbs'),
          vars: {
            onCalendar: v.postgres_backup_on_calendar,
            randomizedDelaySec: v.postgres_backup_randomized_delay_sec,
          },
          owner: 'root',
          group: 'root',
          mode: '0644',
        }),
        service({ unit: `${BACKUP_UNIT}.timer`, state: 'started', enabled: true }),
      );
    } else {
      const unitFiles = [
        `/etc/systemd/system/${BACKUP_UNIT}.timer`,
        `/etc/systemd/system/${BACKUP_UNIT}.service`,
      ];
      tasks.push(
        shell({
          name: 'remove the backup timer',
          script: [
            `systemctl disable --now ${BACKUP_UNIT}.timer || true`,
            `rm -f ${unitFiles.map((f) => quote(f)).join(' ')} ${BACKUP_SCRIPT}`,
            'systemctl daemon-reload',
          ].join('\n'),
          onlyIf: `test -e ${quote(unitFiles[0])}`,
        }),
      );
    }
    return tasks;
  },
  handlers: {
    'restart postgresql': (v) => service({ unit: serverUnit(v), state: 'restarted' }),
    'reload postgresql': (v) => service({ unit: serverUnit(v), state: 'reloaded' }),
  },
});
