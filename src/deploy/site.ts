/**
 * A site: one application deployed from a git repository, described as typed data in the inventory
 * (`sites: [...]` in the vars of a host or group). The `sites` role provisions what a site needs (app
 * user, directories, nginx vhost, supervisor programs); `verdandi deploy` ships releases of it.
 * Both read the vars through `sitesVarsSchema`, so they agree on every default.
 */
import { z } from 'zod';

const name = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{0,30}$/,
    'a site name is lowercase letters, digits and dashes (at most 31), starting with a letter',
  );

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');

const pythonRuntime = z.object({
  type: z.literal('python'),
  /** `system` (Debian's /usr/bin/python3) or a pyenv version installed by the pyenv role ("3.11.9"). */
  python: z.string().default('system'),
  /** Where pyenv lives when `python` is a version (the pyenv role's root). */
  pyenvRoot: z.string().default('/opt/pyenv'),
  /** Make a virtualenv `.venv` inside each release. */
  virtualenv: z.boolean().default(true),
  /** The virtualenv sees the system's packages (Debian's python3-*), for hosts without a package index. */
  systemSitePackages: z.boolean().default(false),
  /** Requirements file in the repository, installed with pip into the virtualenv when present. */
  requirements: z.string().default('requirements.txt'),
  /** Extra pip options: ['--no-index', '--find-links', '/srv/wheels'] for hosts that cannot reach an index. */
  pipOptions: z.array(z.string()).default([]),
});

const nodeRuntime = z.object({
  type: z.literal('node'),
  /** Install command run in the release. */
  install: z.string().default('npm ci'),
});

const dockerRuntime = z.object({
  type: z.literal('docker'),
  /** Dockerfile path relative to the release; the image is built on the host from the release. */
  dockerfile: z.string().default('Dockerfile'),
  /** Port the application listens on inside the container (also given as $PORT). */
  containerPort: z.number().int().min(1).max(65535).default(8000),
  /** Extra `docker run` options (volumes, --add-host...). */
  runOptions: z.array(z.string()).default([]),
});

const serviceName = z
  .string()
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'a compose service name (letters, digits, ".", "_" or "-")');

const swarmRuntime = z.object({
  type: z.literal('swarm'),
  /**
   * Compose file (relative to the release) deployed as a stack named after the site, with
   * `${IMAGE}` (the release's image), `${ENV_SECRET}` (the Docker secret holding the release's
   * environment) and `${RELEASE}` set.
   */
  compose: z.string().default('docker-compose.yml'),
  /** Dockerfile built once on the manager as `[<registry>/]verdandi/<site>:<release>`. */
  dockerfile: z.string().default('Dockerfile'),
  /**
   * The registry every node pulls the image from (the docker role's `docker_registry`). Without it
   * the image stays on the manager: a single-node swarm only.
   */
  registry: z
    .object({
      /** `address:port` of the registry (the one the engines trust). */
      address: z.string().regex(/^[A-Za-z0-9.-]+(:\d+)?$/, 'a registry address like 10.0.0.31:5000'),
      username: z.string().min(1),
      /** Key in the environment's secrets holding the password (like `env.secrets`). */
      password: z.string().min(1),
    })
    .optional(),
  /** The compose service that serves HTTP: stopped while migrations run. */
  web: serviceName.default('web'),
  /** Compose services of background processes: scaled to 0 while migrations run. */
  workers: z.array(serviceName).default([]),
  /**
   * The port the web service publishes in `mode: host` on the nodes that run it: nginx on the
   * manager proxies to `<node>:<port>` (the front, no routing mesh needed).
   */
  port: z.number().int().min(1).max(65535).optional(),
  /** Inventory hosts that run the web tasks (the front's upstreams). Default: the swarm workers. */
  nodes: z.array(z.string().min(1)).optional(),
  /** Extra `docker run` options for checks and migrations run on the manager (volumes, --add-host). */
  runOptions: z.array(z.string()).default([]),
  /** Seconds the stack has to converge (every task on the new image and healthy). */
  convergeTimeout: z.number().int().min(1).default(300),
});

export const runtimeSchema = z.discriminatedUnion('type', [
  pythonRuntime,
  nodeRuntime,
  dockerRuntime,
  swarmRuntime,
]);

export const siteSchema = z.object({
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
  // prefault: the default goes through the schema, so it gets the runtime's own defaults.
  runtime: runtimeSchema.prefault({ type: 'python' }),
  /** Debian packages the site needs on the host (python3-uvicorn, libpq5...), installed by the role. */
  packages: z.array(z.string()).default([]),
  /** Commands run in the new release after the dependencies, as the app user (`npm run build`). */
  build: z.array(z.string()).default([]),
  /** Pre-deploy checks run in the new release (the tests): a failure stops the deploy. */
  checks: z.array(z.string()).default([]),
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
      tls: z.object({ certificate: z.string(), key: z.string() }).optional(),
      clientMaxBodySize: z.string().default('10m'),
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

export type SiteInput = z.input<typeof siteSchema>;
export type Site = z.infer<typeof siteSchema>;
export type Runtime = Site['runtime'];

/** The vars the `sites` role and the deploy read (role var names are prefixed with the role's name). */
export const sitesVarsSchema = z.object({
  sites: z
    .array(siteSchema)
    .default([])
    .superRefine((sites, ctx) => {
      const seen = new Set<string>();
      const ports = new Map<number, string>();
      for (const s of sites) {
        if (seen.has(s.name)) ctx.addIssue({ code: 'custom', message: `two sites are named "${s.name}"` });
        seen.add(s.name);
        // Each site with colors takes two ports (blue, green); a swarm site's tasks publish on the nodes.
        if (s.runtime.type === 'swarm') continue;
        for (const port of [s.process.port, s.process.port + 1]) {
          const other = ports.get(port);
          if (other)
            ctx.addIssue({
              code: 'custom',
              message: `sites "${other}" and "${s.name}" both use port ${port} (each site takes process.port and process.port + 1)`,
            });
          ports.set(port, s.name);
        }
      }
    }),
  /** Every site lives in `<sites_root>/<name>`. */
  sites_root: z.string().startsWith('/').default('/srv'),
});
export type SitesVars = z.infer<typeof sitesVarsSchema>;

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

export function sitePaths(site: Site, root: string): SitePaths {
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
    program: (color) => `${site.name}-${color}`,
    workers: site.process.workers.map((w) => `${site.name}-worker-${w.name}`),
    port: (color) => (color === 'blue' ? site.process.port : site.process.port + 1),
    user: site.user ?? site.name,
  };
}

/** Whether the site's processes run under supervisor (python, node) or as containers (docker). */
export function usesSupervisor(site: Site): boolean {
  return site.runtime.type === 'python' || site.runtime.type === 'node';
}
