/**
 * sites: what each site of `sites: [...]` needs on a host before `verdandi deploy` can ship it.
 *
 * - the app user (default: the site's name) and `<sites_root>/<site>/{releases,shared,slots,bin}`;
 * - `repo.git`, the bare repository the releases are cut from (the deploy sends commits into it);
 * - python/node sites: two supervisor programs, `<site>-blue` (port) and `<site>-green` (port + 1),
 *   started by `bin/run`, which runs the release `slots/<color>` points at (an idle color exits at once);
 * - an nginx vhost whose upstream is an include file the deploy rewrites to switch colors, with the
 *   maintenance switch of the nginx role's convention; for a swarm site the role writes that file
 *   itself (each node's published port) and the vhost retries on the next node;
 * - `nginx.tls.acme`: the certificate comes from an ACME server through certbot (HTTP-01 on the site's
 *   vhost, certificate `site-<name>`); until it exists the site answers on plain HTTP.
 *
 * What differs between runtimes (packages, supervisor programs, the upstream) the role asks the site's
 * runtime (`runtimeOf(site).roleNeeds`). It expects the nginx role (and supervisor for python/node
 * sites, docker for docker/swarm sites) on the same host. See README.md for the vars and the deploy
 * for how releases go live.
 */
import {
  ACME_HTTP_DIR,
  ACME_WEBROOT,
  acmeAccountTasks,
  acmeCaBundle,
  acmeCertificatePaths,
  acmeHostTasks,
  apt,
  command,
  copy,
  defineRole,
  directory,
  MAINTENANCE_PAGE_DIR,
  obtainCertificateTask,
  quote,
  runtimeOf,
  type Site,
  type SitePaths,
  type SiteRoleNeeds,
  service,
  shell,
  sitePaths,
  sitesVarsSchema,
  type Task,
  template,
  user,
} from 'verdandi';

const tpl = (name: string) => new URL(`./templates/${name}`, import.meta.url);

/** The nginx role's checker (nginx -t on a private copy holding the candidate), when it is installed. */
const NGINX_CHECK = '/usr/local/sbin/verdandi-nginx-check';

function nginxValidate(target: string): string {
  return `if [ -x ${NGINX_CHECK} ]; then ${NGINX_CHECK} ${quote(target)} %s; fi`;
}

/** The supervisor programs of a site (its colors and workers) and the script they start. */
function supervisorTasks(
  site: Site,
  paths: SitePaths,
  supervisor: NonNullable<SiteRoleNeeds['supervisor']>,
): Task[] {
  return [
    directory({ path: `${paths.dir}/slots`, owner: 'root', group: 'root', mode: '0755' }),
    directory({ path: `${paths.dir}/bin`, owner: 'root', group: 'root', mode: '0755' }),
    template({
      path: paths.runScript,
      src: tpl('run.sh.hbs'),
      vars: {
        name: site.name,
        dir: paths.dir,
        bluePort: paths.port('blue'),
        greenPort: paths.port('green'),
        command: quote(supervisor.command),
        prelude: supervisor.prelude,
        workers: site.process.workers.map((w) => ({ name: w.name, command: quote(w.command) })),
      },
      owner: 'root',
      group: 'root',
      mode: '0755',
    }),
    template({
      path: paths.supervisorConf,
      src: tpl('supervisor.conf.hbs'),
      vars: {
        name: site.name,
        dir: paths.dir,
        user: paths.user,
        runScript: paths.runScript,
        stopTimeout: site.process.stopTimeout,
        logDir: paths.logDir,
        programs: supervisor.programs,
      },
      owner: 'root',
      group: 'root',
      mode: '0644',
      notify: 'update supervisor',
    }),
  ];
}

/**
 * The upstream include: written by the role at each provision when the role owns it (a swarm's nodes),
 * else created once (pointing at blue): the deploy owns its content afterwards.
 */
function upstreamTask(paths: SitePaths, upstream: SiteRoleNeeds['upstream']): Task {
  if (upstream.owner === 'role')
    return copy({
      path: paths.upstream,
      content: upstream.content,
      owner: 'root',
      group: 'root',
      mode: '0644',
      notify: 'reload nginx',
    });
  return shell({
    name: `initial upstream ${paths.upstream}`,
    script: `printf '%s' ${quote(upstream.content)} > ${quote(paths.upstream)}`,
    creates: paths.upstream,
    notify: 'reload nginx',
  });
}

function siteTasks(site: Site, paths: SitePaths, needs: SiteRoleNeeds): Task[] {
  const owner = { owner: paths.user, group: paths.user };
  const tasks: Task[] = [
    user({ user: paths.user, system: true, home: paths.dir, shell: '/usr/sbin/nologin', createHome: false }),
    directory({ path: paths.dir, ...owner, mode: '0755' }),
    directory({ path: paths.releases, ...owner, mode: '0755' }),
    directory({ path: paths.shared, ...owner, mode: '0750' }),
    directory({ path: `${paths.shared}/log`, ...owner, mode: '0750' }),
    directory({ path: paths.repo, ...owner, mode: '0750' }),
    command({
      name: `git init --bare ${paths.repo}`,
      argv: ['git', 'init', '--quiet', '--bare', paths.repo],
      user: paths.user,
      creates: `${paths.repo}/HEAD`,
    }),
  ];

  if (needs.supervisor) tasks.push(...supervisorTasks(site, paths, needs.supervisor));
  tasks.push(
    directory({ path: '/etc/nginx/verdandi', owner: 'root', group: 'root', mode: '0755' }),
    upstreamTask(paths, needs.upstream),
  );
  const vhost = {
    src: tpl('vhost.conf.hbs'),
    owner: 'root',
    group: 'root',
    mode: '0644',
    validate: nginxValidate(paths.vhost),
  };
  const acme = site.nginx.tls?.acme;
  if (acme) {
    // The TLS server needs the certificate's files: until they exist, the plain-HTTP vhost stands in
    // for it while certbot answers the challenge (see the nginx role).
    const httpSiteFile = acmeHttpSiteFile(site.name);
    tasks.push(
      template({
        name: `plain-HTTP vhost of site ${site.name} (until its certificate exists)`,
        path: httpSiteFile,
        vars: vhostView(site, paths, needs, { httpOnly: true }),
        ...vhost,
      }),
      obtainCertificateTask({
        certName: certName(site),
        domains: site.nginx.serverNames,
        acme,
        siteFile: paths.vhost,
        httpSiteFile,
      }),
    );
  }
  tasks.push(
    template({ path: paths.vhost, vars: vhostView(site, paths, needs), ...vhost, notify: 'reload nginx' }),
  );
  return tasks;
}

/** certbot's name of a site's ACME certificate (`/etc/letsencrypt/live/site-<name>/`). */
function certName(site: Site): string {
  return `site-${site.name}`;
}

/** The vhost that serves an ACME site on plain HTTP until its certificate exists (copied into place once). */
function acmeHttpSiteFile(name: string): string {
  return `${ACME_HTTP_DIR}/site-${name}.conf`;
}

/**
 * What vhost.conf.hbs needs. `httpOnly`: the site as it answers before its ACME certificate exists
 * (plain HTTP, no TLS server, the challenge directory served).
 */
function vhostView(site: Site, paths: SitePaths, needs: SiteRoleNeeds, opts: { httpOnly?: boolean } = {}) {
  const t = opts.httpOnly ? undefined : site.nginx.tls;
  const tls = t?.acme
    ? acmeCertificatePaths(certName(site))
    : t?.certificate !== undefined && t.key !== undefined
      ? { certificate: t.certificate, key: t.key }
      : null;
  return {
    name: site.name,
    upstreamName: `verdandi_site_${site.name.replace(/-/g, '_')}`,
    upstreamFile: paths.upstream,
    serverNames: site.nginx.serverNames.join(' '),
    listen: site.nginx.listen,
    tls,
    // ACME sites answer the HTTP-01 challenge on plain HTTP (the redirecting server once TLS serves).
    acmeWebroot: site.nginx.tls?.acme ? ACME_WEBROOT : null,
    // The main server answers them itself while it is plain HTTP: the maintenance switch spares them.
    acmeChallenges: tls === null && site.nginx.tls?.acme !== undefined,
    clientMaxBodySize: site.nginx.clientMaxBodySize,
    maintenanceFlag: paths.maintenanceFlag,
    maintenanceRoot: MAINTENANCE_PAGE_DIR,
    // Several nodes serve (the role's upstream): a request goes on to the next one.
    retry: needs.upstream.owner === 'role',
  };
}

export default defineRole({
  name: 'sites',
  description:
    'app users, release directories, bare repositories, blue/green supervisor programs and nginx vhosts for `verdandi deploy`',
  vars: sitesVarsSchema,
  tasks(v, host) {
    const packages = new Set<string>(['git', 'curl']);
    const sites = v.sites.map((site) => {
      const paths = sitePaths(site, v.sites_root);
      const needs = runtimeOf(site).roleNeeds(site, paths, host);
      for (const p of [...site.packages, ...needs.packages]) packages.add(p);
      return siteTasks(site, paths, needs);
    });
    const acmes = v.sites.flatMap((s) => (s.nginx.tls?.acme ? [s.nginx.tls.acme] : []));
    const acmeTasks =
      acmes.length > 0
        ? [
            ...acmeHostTasks(acmeCaBundle(acmes, `sites of host ${host.name}`)),
            directory({ path: ACME_HTTP_DIR, owner: 'root', group: 'root', mode: '0755' }),
          ]
        : [];
    return [
      apt({ packages: [...packages] }),
      directory({ path: v.sites_root, owner: 'root', group: 'root', mode: '0755' }),
      ...acmeTasks,
      ...sites,
      ...(acmes.length > 0 ? acmeAccountTasks(acmes, `sites of host ${host.name}`) : []),
    ];
  },
  handlers: {
    'update supervisor': () =>
      shell({
        name: 'supervisorctl reread + update',
        script: 'supervisorctl reread && supervisorctl update',
        // A guard, so the task has a probe (also: nothing to update where supervisor is not installed).
        onlyIf: 'command -v supervisorctl',
      }),
    'reload nginx': () => service({ unit: 'nginx', state: 'reloaded' }),
  },
});
