/**
 * nginx: the web front of a site (nginx → uvicorn, nginx → containers).
 *
 * - nginx.conf from a template (workers, body size, gzip, `server_tokens off`);
 * - typed vhosts, one file each: `/etc/nginx/sites-enabled/verdandi-<name>.conf`; vhost files of Verdandi
 *   that are no longer listed are removed, and so is the distribution's `default` site;
 * - every file is checked with `nginx -t` BEFORE it replaces the old one (the `verdandi-nginx-check`
 *   helper tests a private copy of /etc/nginx holding the candidate): a broken config never reaches the
 *   running nginx, which keeps serving;
 * - a change reloads nginx (graceful: no dropped connection), never restarts it;
 * - the maintenance switch of the deploy: while `/etc/nginx/maintenance/<site>.on` exists, the site
 *   answers 503 with `/var/www/maintenance/<site>.html` (or the role's default page);
 * - `tls.acme`: the certificate comes from an ACME server through certbot (HTTP-01 on the site's own
 *   vhost); until it exists the site answers on plain HTTP, and Debian's certbot.timer renews it.
 */
import {
  ACME_HTTP_DIR,
  ACME_WEBROOT,
  absent,
  acmeAccountTasks,
  acmeCaBundle,
  acmeCertificatePaths,
  acmeHostTasks,
  acmeNameProblem,
  acmeSchema,
  apt,
  defineRole,
  directory,
  MAINTENANCE_FLAG_DIR,
  MAINTENANCE_PAGE_DIR,
  obtainCertificateTask,
  prune,
  quote,
  refuseDuplicateNames,
  service,
  type Task,
  template,
  tlsSourceCheck,
  z,
} from 'verdandi';

export const CHECK_SCRIPT = '/usr/local/sbin/verdandi-nginx-check';
export const SITES_DIR = '/etc/nginx/sites-enabled';
export const SITE_PREFIX = 'verdandi-';

/** A word nginx takes as one token in a directive (no spaces, quotes, braces or semicolons). */
const token = (what: string) =>
  z
    .string()
    .min(1)
    .regex(/^[^\s;{}'"#]+$/, `${what} must be one word without spaces, quotes, braces, # or ;`);

/** A raw directive line, written as is inside a block: it must end with `;` and open no block. */
const directive = z
  .string()
  .regex(/^[^{}\n]+;$/, 'a directive is one line ending with ";" (no braces: use locations for blocks)');

const location = z.object({
  /** What follows `location`: `/static/`, `= /health`, `~* \.(png|css)$`. */
  path: z.string().regex(/^[^{};\n]+$/, 'a location path has no braces, ";" or newline'),
  /** Proxy this location to a URL (`http://127.0.0.1:9000`) with the usual forwarded headers. */
  proxy_pass: token('proxy_pass').optional(),
  /** Serve files from this directory with `alias`. */
  alias: token('alias').optional(),
  /** Serve files from this root. */
  root: token('root').optional(),
  /** `return` arguments: `301 https://example.org$request_uri`, `204`. */
  return: z
    .string()
    .regex(/^[^{};\n]+$/)
    .optional(),
  /** Further directives, each a line ending with `;`. */
  directives: z.array(directive).default([]),
});

const site = z
  .object({
    /** Site name: file `verdandi-<name>.conf`, upstream `<name>_backend`, maintenance flag `<name>.on`. */
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_.-]*$/, 'a site name is lowercase letters, digits, ".", "_" or "-"'),
    server_names: z.array(token('a server name')).min(1).default(['_']),
    /** HTTP port (or `address:port`). */
    listen: z.union([z.number().int().min(1).max(65535), token('listen')]).default(80),
    default_server: z.boolean().default(false),
    /** Also listen on IPv6 (`[::]:port`). */
    ipv6: z.boolean().default(false),
    /**
     * TLS: either certificate and key paths on the host (the role does not create them), or `acme`: a
     * certificate the role obtains from an ACME server (Let's Encrypt) and that certbot renews.
     */
    tls: z
      .object({
        certificate: token('tls.certificate').optional(),
        key: token('tls.key').optional(),
        acme: acmeSchema.optional(),
        listen: z.union([z.number().int().min(1).max(65535), token('tls.listen')]).default(443),
        http2: z.boolean().default(true),
        /** Plain HTTP on `listen` only redirects to HTTPS. When false, the site answers on both. */
        redirect_http: z.boolean().default(true),
      })
      .superRefine(tlsSourceCheck('tls'))
      .optional(),
    /** Reverse proxy to these servers (`127.0.0.1:3579`, `unix:/run/app.sock`). */
    upstream: z
      .object({
        servers: z.array(token('an upstream server')).min(1),
        keepalive: z.number().int().positive().optional(),
      })
      .optional(),
    /** Static files from this directory (when there is no upstream, or for what it does not serve). */
    root: token('root').optional(),
    index: z.string().default('index.html'),
    client_max_body_size: token('client_max_body_size').optional(),
    locations: z.array(location).default([]),
    /** Further server-level directives, each a line ending with `;`. */
    extra: z.array(directive).default([]),
  })
  .refine((s) => s.upstream !== undefined || s.root !== undefined || s.locations.length > 0, {
    message: 'a site needs an upstream, a root or at least one location',
  })
  .superRefine((s, ctx) => {
    if (!s.tls?.acme) return;
    for (const [i, n] of s.server_names.entries()) {
      const problem = acmeNameProblem(n);
      if (problem)
        ctx.addIssue({
          code: 'custom',
          path: ['server_names', i],
          message: `${problem}: a site with tls.acme needs the host names its certificate is for in server_names`,
        });
    }
  });

export type NginxSite = z.infer<typeof site>;

export const vars = z.object({
  /** `auto` (one per core) or a number. */
  nginx_worker_processes: z.union([z.literal('auto'), z.number().int().positive()]).default('auto'),
  nginx_worker_connections: z.number().int().positive().default(768),
  nginx_keepalive_timeout: z.number().int().nonnegative().default(65),
  /** Largest request body (uploads): `10m`, `512k`. */
  nginx_client_max_body_size: token('nginx_client_max_body_size').default('10m'),
  nginx_gzip: z.boolean().default(true),
  nginx_gzip_comp_level: z.number().int().min(1).max(9).default(5),
  nginx_gzip_types: z
    .array(token('a MIME type'))
    .default([
      'text/plain',
      'text/css',
      'text/xml',
      'application/json',
      'application/javascript',
      'application/xml',
      'application/rss+xml',
      'image/svg+xml',
    ]),
  /** Further `http {}` directives, each a line ending with `;`. */
  nginx_http_extra: z.array(directive).default([]),
  nginx_sites: z.array(site).default([]),
  /** Remove Debian's `default` site (it would answer on port 80 before any `_` site). */
  nginx_remove_default_site: z.boolean().default(true),
  nginx_maintenance_title: z.string().default('Maintenance in progress'),
  nginx_maintenance_message: z
    .string()
    .default('We are updating the service. Please come back in a few minutes.'),
});

export type NginxVars = z.infer<typeof vars>;

const template_ = (name: string) => new URL(`./templates/${name}`, import.meta.url);

/** The `validate` command of a file under /etc/nginx: nginx -t on a copy of /etc/nginx holding it. */
export function validateCommand(target: string): string {
  return `${CHECK_SCRIPT} ${quote(target)} %s`;
}

export function siteFile(name: string): string {
  return `${SITES_DIR}/${SITE_PREFIX}${name}.conf`;
}

/** What nginx.conf.hbs needs (every key present: templates are rendered in strict mode). */
export function mainConfigView(v: NginxVars) {
  return {
    workerProcesses: v.nginx_worker_processes,
    workerConnections: v.nginx_worker_connections,
    keepaliveTimeout: v.nginx_keepalive_timeout,
    clientMaxBodySize: v.nginx_client_max_body_size,
    gzip: v.nginx_gzip,
    gzipCompLevel: v.nginx_gzip_comp_level,
    gzipTypes: v.nginx_gzip_types.join(' '),
    extraHttp: v.nginx_http_extra,
  };
}

const PROXY_HEADERS = [
  'proxy_http_version 1.1;',
  'proxy_set_header Host $host;',
  'proxy_set_header X-Real-IP $remote_addr;',
  'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
  'proxy_set_header X-Forwarded-Proto $scheme;',
  'proxy_set_header Connection "";',
];

/** The vhost that serves an ACME site on plain HTTP until its certificate exists (copied into place once). */
export function acmeHttpSiteFile(name: string): string {
  return `${ACME_HTTP_DIR}/${SITE_PREFIX}${name}.conf`;
}

/**
 * What vhost.conf.hbs needs for one site. `httpOnly`: the site as it answers before its ACME certificate
 * exists (plain HTTP, no TLS server, the challenge directory served).
 */
export function siteView(s: NginxSite, opts: { httpOnly?: boolean } = {}) {
  const upstreamName = `${s.name.replace(/[^a-z0-9_]/g, '_')}_backend`;
  const plain = (port: number | string, extra: string[]) =>
    [String(port), ...extra].join(' ') + (s.default_server ? ' default_server' : '');
  const withIpv6 = (port: number | string, extra: string[]) => {
    const lines = [plain(port, extra)];
    if (s.ipv6 && typeof port === 'number') lines.push(plain(`[::]:${port}`, extra));
    return lines;
  };

  const tls = opts.httpOnly ? undefined : s.tls;
  // ACME sites answer the HTTP-01 challenge on plain HTTP: in the redirecting server when there is one.
  const acmeWebroot = s.tls?.acme ? ACME_WEBROOT : null;
  let listen: string[];
  let redirect: { listen: string[]; acmeWebroot: string | null } | null = null;
  if (tls) {
    const tlsListen = withIpv6(tls.listen, tls.http2 ? ['ssl', 'http2'] : ['ssl']);
    if (tls.redirect_http) {
      listen = tlsListen;
      redirect = { listen: withIpv6(s.listen, []), acmeWebroot };
    } else {
      listen = [...withIpv6(s.listen, []), ...tlsListen];
    }
  } else {
    listen = withIpv6(s.listen, []);
  }

  const locations = s.locations.map((l) => {
    const directives: string[] = [];
    if (l.root) directives.push(`root ${l.root};`);
    if (l.alias) directives.push(`alias ${l.alias};`);
    if (l.proxy_pass) directives.push(`proxy_pass ${l.proxy_pass};`, ...PROXY_HEADERS);
    directives.push(...l.directives);
    if (l.return) directives.push(`return ${l.return};`);
    return { path: l.path, directives };
  });
  // The site's main location, unless the user wrote their own `/`.
  if (!s.locations.some((l) => l.path.trim() === '/')) {
    const main = s.upstream
      ? [`proxy_pass http://${upstreamName};`, ...PROXY_HEADERS]
      : ['try_files $uri $uri/ =404;'];
    locations.unshift({ path: '/', directives: main });
  }

  return {
    name: s.name,
    serverNames: s.server_names.join(' '),
    listen,
    redirect,
    tls: tls ? tlsFiles(s.name, tls) : null,
    acmeWebroot: redirect ? null : acmeWebroot,
    upstream: s.upstream
      ? { name: upstreamName, servers: s.upstream.servers, keepalive: s.upstream.keepalive ?? null }
      : null,
    root: s.root ?? null,
    index: s.index,
    clientMaxBodySize: s.client_max_body_size ?? null,
    extra: s.extra,
    locations,
    maintenanceFlag: `${MAINTENANCE_FLAG_DIR}/${s.name}.on`,
    maintenanceRoot: MAINTENANCE_PAGE_DIR,
  };
}

function tlsFiles(name: string, tls: NonNullable<NginxSite['tls']>): { certificate: string; key: string } {
  if (tls.acme) return acmeCertificatePaths(name);
  // The schema refuses a tls without acme that lacks either.
  if (tls.certificate === undefined || tls.key === undefined)
    throw new Error(`site ${name}: tls has neither acme nor certificate and key`);
  return { certificate: tls.certificate, key: tls.key };
}

export default defineRole({
  name: 'nginx',
  description: 'nginx with typed vhosts, nginx -t before every change, reload on change, maintenance switch',
  vars,
  tasks(v, host) {
    refuseDuplicateNames(
      'nginx_sites',
      v.nginx_sites.map((s) => s.name),
      host,
      'give each site its own name (it names the vhost file and the maintenance flag)',
    );
    const reload = { notify: 'reload nginx' };
    const tasks: Task[] = [
      apt({ packages: ['nginx'] }),
      template({
        name: `template ${CHECK_SCRIPT}`,
        path: CHECK_SCRIPT,
        src: template_('nginx-check.sh.hbs'),
        vars: {},
        owner: 'root',
        group: 'root',
        mode: '0755',
      }),
      directory({ path: MAINTENANCE_FLAG_DIR, owner: 'root', group: 'root', mode: '0755' }),
      directory({ path: MAINTENANCE_PAGE_DIR, owner: 'root', group: 'root', mode: '0755' }),
      template({
        path: `${MAINTENANCE_PAGE_DIR}/_default.html`,
        src: template_('maintenance.html.hbs'),
        vars: { title: v.nginx_maintenance_title, message: v.nginx_maintenance_message },
        owner: 'root',
        group: 'root',
        mode: '0644',
      }),
      template({
        path: '/etc/nginx/nginx.conf',
        src: template_('nginx.conf.hbs'),
        vars: mainConfigView(v),
        owner: 'root',
        group: 'root',
        mode: '0644',
        validate: validateCommand('/etc/nginx/nginx.conf'),
        ...reload,
      }),
    ];
    if (v.nginx_remove_default_site) tasks.push(absent({ path: `${SITES_DIR}/default`, ...reload }));

    // Sites Verdandi wrote earlier and that are no longer listed go first: a new site may reuse their names.
    const keep = v.nginx_sites.map((s) => `${SITE_PREFIX}${s.name}.conf`);
    tasks.push(
      prune({
        name: 'remove vhosts no longer listed',
        dir: SITES_DIR,
        match: `${SITE_PREFIX}*.conf`,
        keep,
        ...reload,
      }),
    );

    const acmeSites = v.nginx_sites.filter((s) => s.tls?.acme);
    const acmes = acmeSites.flatMap((s) => (s.tls?.acme ? [s.tls.acme] : []));
    const acmeWhere = `nginx_sites of host ${host.name}`;
    if (acmeSites.length > 0) {
      tasks.push(
        ...acmeHostTasks(acmeCaBundle(acmes, acmeWhere)),
        directory({ path: ACME_HTTP_DIR, owner: 'root', group: 'root', mode: '0755' }),
        prune({
          name: 'remove plain-HTTP vhosts of ACME sites no longer listed',
          dir: ACME_HTTP_DIR,
          match: `${SITE_PREFIX}*.conf`,
          keep: acmeSites.map((s) => `${SITE_PREFIX}${s.name}.conf`),
        }),
      );
    }

    for (const s of v.nginx_sites) {
      const path = siteFile(s.name);
      const vhost = { src: template_('vhost.conf.hbs'), owner: 'root', group: 'root', mode: '0644' };
      const acme = s.tls?.acme;
      if (acme) {
        // The TLS server needs the certificate's files: until they exist, the plain-HTTP vhost (written
        // here, checked as if it were the site's) stands in for it while certbot answers the challenge.
        const httpSiteFile = acmeHttpSiteFile(s.name);
        tasks.push(
          template({
            name: `plain-HTTP vhost ${s.name} (until its certificate exists)`,
            path: httpSiteFile,
            vars: siteView(s, { httpOnly: true }),
            validate: validateCommand(path),
            ...vhost,
          }),
          obtainCertificateTask({
            certName: s.name,
            domains: s.server_names,
            acme,
            siteFile: path,
            httpSiteFile,
          }),
        );
      }
      tasks.push(
        template({
          name: `vhost ${s.name}`,
          path,
          vars: siteView(s),
          validate: validateCommand(path),
          ...vhost,
          ...reload,
        }),
      );
    }
    // After the certificate requests: the account they registered is the one to keep current.
    if (acmeSites.length > 0) tasks.push(...acmeAccountTasks(acmes, acmeWhere));
    tasks.push(service({ unit: 'nginx', state: 'started', enabled: true }));
    return tasks;
  },
  handlers: {
    'reload nginx': () => service({ unit: 'nginx', state: 'reloaded' }),
  },
});
