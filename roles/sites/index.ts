/**
 * sites: what each site of `sites: [...]` needs on a host before `verdandi deploy` can ship it.
 *
 * - the app user (default: the site's name) and `<sites_root>/<site>/{releases,shared,slots,bin}`;
 * - `repo.git`, the bare repository the releases are cut from (the deploy sends commits into it);
 * - python/node sites: two supervisor programs, `<site>-blue` (port) and `<site>-green` (port + 1),
 *   started by `bin/run`, which runs the release `slots/<color>` points at (an idle color exits at once);
 * - an nginx vhost whose upstream is an include file the deploy rewrites to switch colors, with the
 *   maintenance switch of the nginx role's convention; for a swarm site the role writes that file
 *   itself (each node's published port) and the vhost retries on the next node.
 *
 * It expects the nginx role (and supervisor for python/node sites, docker for docker/swarm sites) on
 * the same host. See README.md for the vars and the deploy for how releases go live.
 */
import {
  apt,
  command,
  copy,
  defineRole,
  directory,
  type HostInfo,
  quote,
  type Site,
  type SitePaths,
  service,
  shell,
  sitePaths,
  sitesVarsSchema,
  type Task,
  template,
  UserError,
  upstreamContent,
  user,
  usesSupervisor,
} from 'verdandi';

const tpl = (name: string) => new URL(`./templates/${name}`, import.meta.url);

/** The nginx role's checker (nginx -t on a private copy holding the candidate), when it is installed. */
const NGINX_CHECK = '/usr/local/sbin/verdandi-nginx-check';

function nginxValidate(target: string): string {
  return `if [ -x ${NGINX_CHECK} ]; then ${NGINX_CHECK} ${quote(target)} %s; fi`;
}

/**
 * A swarm site's upstreams: `<node>:<port>` of each node that runs its web tasks (ports published in
 * `mode: host`), by default every swarm worker of the inventory. nginx skips a node that does not
 * answer (see the vhost's proxy_next_upstream).
 */
export function swarmUpstream(site: Site, host: HostInfo): string {
  if (site.runtime.type !== 'swarm') throw new Error(`site ${site.name} is not a swarm site`);
  const rt = site.runtime;
  if (rt.port === undefined) {
    throw new UserError(
      `site ${site.name}: a swarm site needs runtime.port, the port its web service publishes on the nodes`,
      1,
      'publish it in mode: host in the compose file (ports: [{ target: 8080, published: 8080, mode: host }]) and set runtime.port: 8080',
    );
  }
  const all = host.inventory.hosts;
  const nodes = rt.nodes
    ? rt.nodes.map((name) => {
        const node = all.find((h) => h.name === name);
        if (!node)
          throw new UserError(
            `site ${site.name}: runtime.nodes names "${name}", which is not in the inventory`,
            1,
            `hosts of the inventory: ${all.map((h) => h.name).join(', ')}`,
          );
        return node;
      })
    : all.filter((h) => h.vars.docker_swarm === 'worker');
  if (nodes.length === 0) {
    throw new UserError(
      `site ${site.name}: no node to proxy to: no host of the inventory has docker_swarm: worker`,
      1,
      'list the hosts that run the web tasks in runtime.nodes',
    );
  }
  const servers = nodes.map((n) => {
    const advertised = n.vars.docker_swarm_advertise_addr;
    const addr = typeof advertised === 'string' && advertised !== '' ? advertised : n.address;
    return `server ${addr}:${rt.port} max_fails=1 fail_timeout=5s; # ${n.name}\n`;
  });
  return `# Written by the sites role: the nodes that run the web tasks of ${site.name}.\n${servers.join('')}`;
}

function siteTasks(site: Site, paths: SitePaths, host: HostInfo): Task[] {
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

  if (!usesSupervisor(site) && site.process.workers.length > 0) {
    throw new UserError(
      `site ${site.name}: process.workers are for python and node sites (supervisor programs)`,
      1,
    );
  }
  if (usesSupervisor(site)) {
    tasks.push(
      directory({ path: `${paths.dir}/slots`, owner: 'root', group: 'root', mode: '0755' }),
      directory({ path: `${paths.dir}/bin`, owner: 'root', group: 'root', mode: '0755' }),
    );
    if (!site.process.command) {
      throw new UserError(
        `site ${site.name}: a ${site.runtime.type} site needs process.command (what serves HTTP on $PORT)`,
        1,
        'e.g. process: { command: "uvicorn app:app --host 127.0.0.1 --port $PORT" }',
      );
    }
    const programs = [
      ...(['blue', 'green'] as const).map((color) => ({
        program: paths.program(color),
        args: `web ${color} ${paths.port(color)}`,
        logName: color,
      })),
      ...site.process.workers.map((w, i) => ({
        program: paths.workers[i],
        args: `worker ${w.name}`,
        logName: `worker-${w.name}`,
      })),
    ];
    tasks.push(
      template({
        path: paths.runScript,
        src: tpl('run.sh.hbs'),
        vars: {
          name: site.name,
          dir: paths.dir,
          bluePort: paths.port('blue'),
          greenPort: paths.port('green'),
          command: quote(site.process.command),
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
          logDir: `${paths.shared}/log`,
          programs,
        },
        owner: 'root',
        group: 'root',
        mode: '0644',
        notify: 'update supervisor',
      }),
    );
  }

  tasks.push(
    directory({ path: '/etc/nginx/verdandi', owner: 'root', group: 'root', mode: '0755' }),
    site.runtime.type === 'swarm'
      ? // The role owns a swarm site's upstreams: the nodes, not a color.
        copy({
          path: paths.upstream,
          content: swarmUpstream(site, host),
          owner: 'root',
          group: 'root',
          mode: '0644',
          notify: 'reload nginx',
        })
      : // The deploy owns this file's content afterwards: it is only created here (pointing at blue).
        shell({
          name: `initial upstream ${paths.upstream}`,
          script: `printf '%s' ${quote(upstreamContent(paths, 'blue'))} > ${quote(paths.upstream)}`,
          creates: paths.upstream,
          notify: 'reload nginx',
        }),
    template({
      path: paths.vhost,
      src: tpl('vhost.conf.hbs'),
      vars: {
        name: site.name,
        upstreamName: `verdandi_site_${site.name.replace(/-/g, '_')}`,
        upstreamFile: paths.upstream,
        serverNames: site.nginx.serverNames.join(' '),
        listen: site.nginx.listen,
        tls: site.nginx.tls ?? null,
        clientMaxBodySize: site.nginx.clientMaxBodySize,
        maintenanceFlag: paths.maintenanceFlag,
        maintenanceRoot: '/var/www/maintenance',
        retry: site.runtime.type === 'swarm',
      },
      owner: 'root',
      group: 'root',
      mode: '0644',
      validate: nginxValidate(paths.vhost),
      notify: 'reload nginx',
    }),
  );
  return tasks;
}

export default defineRole({
  name: 'sites',
  description:
    'app users, release directories, bare repositories, blue/green supervisor programs and nginx vhosts for `verdandi deploy`',
  vars: sitesVarsSchema,
  tasks(v, host) {
    const packages = new Set<string>(['git', 'curl']);
    for (const site of v.sites) {
      for (const p of site.packages) packages.add(p);
      if (site.runtime.type === 'python' && site.runtime.virtualenv && site.runtime.python === 'system') {
        packages.add('python3-venv');
      }
      if (site.runtime.type === 'node') {
        packages.add('nodejs');
        packages.add('npm');
      }
    }
    return [
      apt({ packages: [...packages] }),
      directory({ path: v.sites_root, owner: 'root', group: 'root', mode: '0755' }),
      ...v.sites.map((site) => siteTasks(site, sitePaths(site, v.sites_root), host)),
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
