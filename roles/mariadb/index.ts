/**
 * mariadb: Debian's MariaDB server (10.11 on bookworm) for an app's database.
 *
 * - bind address, port, max connections and other `[mysqld]` settings in a drop-in read after Debian's
 *   `50-server.cnf`; the server checks the file before it is put in place (`mariadbd --help --verbose`
 *   refuses an unknown variable or a bad value), and a change restarts it;
 * - the service started and enabled;
 * - databases (the `mysqlDb` task) and users (the `mysqlUser` task) with their privileges; passwords
 *   come from the secrets, are compared by their hash and never sent nor printed.
 *
 * The role works as root through unix_socket authentication, Debian's default for root@localhost:
 * there is no admin password to manage.
 */
import {
  apt,
  defineRole,
  type HostInfo,
  mysqlDb,
  mysqlUser,
  passwordOf,
  refuseDuplicateNames,
  service,
  type Task,
  template,
  z,
} from 'verdandi';

export const CONFIG_FILE = '/etc/mysql/mariadb.conf.d/90-verdandi.cnf';

/** Names the role writes into SQL and config: plain names only. */
const identifier = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'a name is letters, digits, "_" or "-" and starts with a letter or "_"')
  .max(64);

const user = z.object({
  name: identifier,
  /** The account's host part: `localhost`, `%` (anywhere), an address or a pattern like `10.0.0.%`. */
  host: z
    .string()
    .regex(/^[A-Za-z0-9%_.:-]+$/)
    .default('localhost'),
  /** The password itself: write `{{ secrets.db_password }}` in the inventory, never the clear text. */
  password: z.string().min(1).optional(),
  /** Or the name of a key in the environment's secrets holding it. */
  password_secret: z.string().min(1).optional(),
  /** Ansible's `priv`: `app.*:ALL`, entries separated by `/`. Not given: privileges are left alone. */
  privileges: z.string().min(1).optional(),
  state: z.enum(['present', 'absent']).default('present'),
});

const database = z.object({
  name: identifier,
  encoding: z
    .string()
    .regex(/^[A-Za-z0-9_]+$/)
    .default('utf8mb4'),
  /** e.g. `utf8mb4_unicode_ci`; not given: the encoding's default collation. */
  collation: z
    .string()
    .regex(/^[A-Za-z0-9_]+$/)
    .optional(),
  state: z.enum(['present', 'absent']).default('present'),
});

export type MariadbUser = z.infer<typeof user>;

export const vars = z.object({
  /** Address the server listens on: `127.0.0.1` (Debian's default), `0.0.0.0`, or an address of the host. */
  mariadb_bind_address: z
    .string()
    .regex(/^[0-9A-Fa-f.:*]+$|^localhost$/)
    .default('127.0.0.1'),
  mariadb_port: z.number().int().min(1).max(65535).default(3306),
  mariadb_max_connections: z.number().int().min(1).default(151),
  /** Further `[mysqld]` settings (`innodb_buffer_pool_size: 512M`). Open: any setting name (the server
   * refuses the ones it does not know, before the file is put in place). */
  mariadb_settings: z
    .record(
      z.string().regex(/^[a-z_][a-z0-9_-]*$/),
      z.union([z.string().regex(/^[^\n]*$/), z.number(), z.boolean()]),
    )
    .default({}),
  mariadb_databases: z.array(database).default([]),
  mariadb_users: z.array(user).default([]),
});

export type MariadbVars = z.infer<typeof vars>;

const templateFile = (name: string) => new URL(`./templates/${name}`, import.meta.url);

/** The `[mysqld]` lines of the drop-in: booleans as ON/OFF, the rest as written. */
export function settingsLines(v: MariadbVars): string[] {
  const settings: Record<string, string | number | boolean> = {
    bind_address: v.mariadb_bind_address,
    port: v.mariadb_port,
    max_connections: v.mariadb_max_connections,
    ...v.mariadb_settings,
  };
  return Object.entries(settings).map(([k, value]) => {
    const shown = typeof value === 'boolean' ? (value ? 'ON' : 'OFF') : String(value);
    return `${k.replace(/-/g, '_')} = ${shown}`;
  });
}

/** The password of a user: given as is (from `{{ secrets.x }}` in the inventory) or read from the secrets. */
export function userPassword(u: MariadbUser, host: HostInfo): string | undefined {
  return passwordOf(u, host, `mariadb_users of host ${host.name}: user "${u.name}"@"${u.host}"`);
}

export default defineRole({
  name: 'mariadb',
  description:
    "Debian's MariaDB: settings, the service, databases, users from the secrets with their privileges",
  vars,
  tasks(v, host) {
    refuseDuplicateNames(
      'mariadb_databases',
      v.mariadb_databases.map((d) => d.name),
      host,
    );
    refuseDuplicateNames(
      'mariadb_users',
      v.mariadb_users.map((u) => `${u.name}@${u.host}`),
      host,
    );
    const tasks: Task[] = [
      apt({ packages: ['mariadb-server', 'mariadb-client'] }),
      template({
        path: CONFIG_FILE,
        src: templateFile('verdandi.cnf.hbs'),
        vars: { lines: settingsLines(v) },
        owner: 'root',
        group: 'root',
        mode: '0644',
        // The drop-in alone, as the server would read it: an unknown variable or a bad value fails here,
        // and the running server keeps its configuration. Only the server's messages are kept (its help
        // text is not): the group keeps them apart from the redirection the engine adds after it.
        validate: '{ mariadbd --defaults-file=%s --help --verbose 2>&1 >/dev/null; }',
        notify: 'restart mariadb',
      }),
      service({ unit: 'mariadb', state: 'started', enabled: true }),
    ];
    // Databases first (a grant may name one), users next; removed databases last of all.
    for (const d of v.mariadb_databases.filter((x) => x.state === 'present')) {
      tasks.push(mysqlDb({ db: d.name, encoding: d.encoding, collation: d.collation }));
    }
    for (const u of v.mariadb_users) {
      tasks.push(
        u.state === 'absent'
          ? mysqlUser({ user: u.name, host: u.host, state: 'absent' })
          : mysqlUser({
              user: u.name,
              host: u.host,
              password: userPassword(u, host),
              privileges: u.privileges,
              sensitive: true,
            }),
      );
    }
    for (const d of v.mariadb_databases.filter((x) => x.state === 'absent')) {
      tasks.push(mysqlDb({ db: d.name, state: 'absent' }));
    }
    return tasks;
  },
  handlers: {
    'restart mariadb': () => service({ unit: 'mariadb', state: 'restarted' }),
  },
});
