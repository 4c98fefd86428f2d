/**
 * What every site has, whatever its runtime: the options besides `runtime` (site.ts adds the runtime's,
 * from the runtime's own schema), its colors, and every path and name it has on its host. The runtimes
 * (runtimes/*.ts) are written against this module, so they import nothing that imports them.
 */
import { z } from 'zod';
import { acmeNameProblem, acmeSchema, tlsSourceCheck } from './acme.js';

const name = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{0,30}$/,
    'a site name is lowercase letters, digits and dashes (at most 31), starting with a letter',
  );

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');

export const siteBaseSchema = z.object({
  name,
  /**
   * Where the code comes from. With `fetch: push` (default) a URL or path the machine running Verdandi
   * can read; with `fetch: pull` a URL the host itself can fetch from (it needs the credentials).
   */
  repo: z.string().min(1),
  /** Deployed when `verdandi deploy` gets no --branch. */
  branch: z.string().default('main'),
  /**
   * push: Verdandi fetches the repo locally and sends the missing commits to the host's bare repository
   * over the SSH connection (servers need no git credentials). pull: the host fetches `repo` itself.
   */
  fetch: z.enum(['push', 'pull']).default('push'),
  /** Unix user that owns the releases and runs the app (created by the role). Default: the site name. */
  user: z.string().optional(),
  /** Debian packages the site needs on the host (python3-uvicorn, libpq5...), installed by the role. */
  packages: z.array(z.string()).default([]),
  /** Commands run in the new release after the dependencies, as the app user (`npm run build`). */
  build: z.array(z.string()).default([]),
  /** Pre-deploy checks run in the new release (the tests): a failure stops the deploy. */
  checks: z.array(z.string()).default([]),
  /**
   * What `verdandi console` runs when given no command (`python manage.py shell`, `bin/rails console`):
   * one command, in the live release's environment. Default: a shell.
   */
  console: z.string().min(1).optional(),
  migrate: z
    .object({
      /** Applies the migrations (`python manage.py migrate`). */
      command: z.string(),
      /**
       * Exits 0 when the database is up to date, non-zero when migrations are pending (like
       * `manage.py migrate --check`). Without it, every deploy migrates (under maintenance).
       */
      check: z.string().optional(),
    })
    .optional(),
  env: z
    .object({
      /** Plain values. This and `secrets` are open maps (any variable name); every other mapping of a
       * site refuses unknown keys (see src/inventory/strict-keys.ts). */
      vars: z.record(envName, z.union([z.string(), z.number(), z.boolean()])).default({}),
      /** Variable name → key in the environment's secrets (`DATABASE_URL: catalogage_database_url`). */
      secrets: z.record(envName, z.string()).default({}),
    })
    .prefault({}),
  process: z
    .object({
      /** Command that serves HTTP on $PORT (python/node): `uvicorn app:app --host 127.0.0.1 --port $PORT`. */
      command: z.string().optional(),
      /** Ports of the two colors: `port` (blue) and `port + 1` (green). */
      port: z.number().int().min(1024).max(65534).default(8000),
      /** Seconds a stopping release gets to finish its requests before it is killed. */
      stopTimeout: z.number().int().min(1).default(20),
      /**
       * Background processes (queues, schedulers, a "processor"), python/node sites only: one
       * supervisor program each, `<site>-worker-<name>`, running the live release (`current`). They
       * stop while migrations run and restart on the new release after each deploy and rollback.
       */
      workers: z
        .array(
          z.object({
            name: z
              .string()
              .regex(/^[a-z][a-z0-9-]{0,30}$/, 'a worker name is lowercase letters, digits and dashes'),
            command: z.string().min(1),
          }),
        )
        .default([]),
    })
    .prefault({}),
  nginx: z
    .object({
      serverNames: z.array(z.string()).min(1).default(['_']),
      listen: z.number().int().default(80),
      /**
       * Either certificate and key paths on the host, or `acme`: a certificate the sites role obtains
       * from an ACME server (Let's Encrypt) by HTTP-01 and that certbot renews.
       */
      tls: z
        .object({
          certificate: z.string().optional(),
          key: z.string().optional(),
          acme: acmeSchema.optional(),
        })
        .superRefine(tlsSourceCheck('nginx.tls'))
        .optional(),
      clientMaxBodySize: z.string().default('10m'),
    })
    .superRefine((n, ctx) => {
      if (!n.tls?.acme) return;
      for (const [i, name] of n.serverNames.entries()) {
        const problem = acmeNameProblem(name);
        if (problem)
          ctx.addIssue({
            code: 'custom',
            path: ['serverNames', i],
            message: `${problem}: a site with nginx.tls.acme needs the host names its certificate is for in serverNames`,
          });
      }
    })
    .prefault({}),
  health: z
    .object({
      path: z.string().startsWith('/').default('/'),
      status: z.number().int().default(200),
      /** Seconds the new release has to answer with `status`. */
      timeout: z.number().int().min(1).default(30),
    })
    .prefault({}),
  /** Releases kept on the host (the live one included): what rollback can go back to. */
  keepReleases: z.number().int().min(2).default(5),
  /** Slack-compatible incoming webhook (POST `{"text": ...}`) told of every deploy's outcome. */
  webhook: z.string().url().optional(),
});

/** A site's options besides its runtime's. */
export type SiteBase = z.infer<typeof siteBaseSchema>;

export const COLORS = ['blue', 'green'] as const;
export type Color = (typeof COLORS)[number];

export function otherColor(c: Color): Color {
  return c === 'blue' ? 'green' : 'blue';
}

/** Every path and name that belongs to a site on its host, in one place. */
export interface SitePaths {
  dir: string;
  releases: string;
  shared: string;
  repo: string;
  current: string;
  runScript: string;
  deployLog: string;
  /** `slots/<color>` → the release that color runs. */
  slot(color: Color): string;
  /** nginx upstream include, the switch between colors. */
  upstream: string;
  vhost: string;
  maintenanceFlag: string;
  maintenancePage: string;
  supervisorConf: string;
  /** Where supervisor writes the programs' output: `<logName>.log` each. */
  logDir: string;
  /** Supervisor program (python/node) or container (docker) name of a color. */
  program(color: Color): string;
  /** Supervisor programs of the site's workers. */
  workers: string[];
  port(color: Color): number;
  user: string;
}

export const NGINX_UPSTREAM_DIR = '/etc/nginx/verdandi';
export const MAINTENANCE_FLAG_DIR = '/etc/nginx/maintenance';
export const MAINTENANCE_PAGE_DIR = '/var/www/maintenance';

export function sitePaths(site: SiteBase, root: string): SitePaths {
  const dir = `${root.replace(/\/+$/, '')}/${site.name}`;
  return {
    dir,
    releases: `${dir}/releases`,
    shared: `${dir}/shared`,
    repo: `${dir}/repo.git`,
    current: `${dir}/current`,
    runScript: `${dir}/bin/run`,
    deployLog: `${dir}/deploys.log`,
    slot: (color) => `${dir}/slots/${color}`,
    upstream: `${NGINX_UPSTREAM_DIR}/${site.name}.upstream`,
    vhost: `/etc/nginx/conf.d/verdandi-${site.name}.conf`,
    maintenanceFlag: `${MAINTENANCE_FLAG_DIR}/${site.name}.on`,
    maintenancePage: `${MAINTENANCE_PAGE_DIR}/${site.name}.html`,
    // Not `verdandi-*`: the supervisor role removes the files of that prefix it does not list.
    supervisorConf: `/etc/supervisor/conf.d/site-${site.name}.conf`,
    logDir: `${dir}/shared/log`,
    program: (color) => `${site.name}-${color}`,
    workers: site.process.workers.map((w) => `${site.name}-worker-${w.name}`),
    port: (color) => (color === 'blue' ? site.process.port : site.process.port + 1),
    user: site.user ?? site.name,
  };
}
