/**
 * docker: the container road (docker-compose hosts, and Docker Swarm for zero-downtime
 * rolling updates across several servers).
 *
 * - the engine: Debian's `docker.io` (+ `docker-compose`) by default, or Docker's own repository
 *   (`docker-ce` + the compose plugin) with `docker_source: docker`;
 * - `/etc/docker/daemon.json` with log rotation by default (a change restarts docker);
 * - users in the `docker` group;
 * - containers and compose projects as typed data;
 * - Swarm: `docker_swarm: manager` initialises a swarm; `docker_swarm: worker` joins the manager found in
 *   the inventory, with the join token read from the manager during the run (or `docker_swarm_join_token`
 *   when the secrets hold it), on stdin, on no command line (see the dockerSwarmJoin task); stacks
 *   deploy on the manager with a rolling update_config (one task at a time, new one started and healthy
 *   before the old one stops, rollback on failure).
 */
import { createHash, scryptSync } from 'node:crypto';
import yaml from 'js-yaml';
import {
  apt,
  command,
  copy,
  defineRole,
  directory,
  dockerContainer,
  dockerStack,
  dockerSwarmJoin,
  type HostInfo,
  quote,
  service,
  shell,
  type Task,
  UserError,
  user,
  z,
} from 'verdandi';

const name = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'a name is letters, digits, ".", "_" or "-"');
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');
/** Compose content: YAML text, or the same as a mapping written in the inventory. The mapping is open
 * (any compose key): docker compose checks it, and it is written as is. */
const composeContent = z.union([z.string().min(1), z.record(z.string(), z.unknown())]);

const container = z.object({
  name,
  image: z.string().min(1),
  /** Command and arguments, each one word. */
  command: z.array(z.string()).optional(),
  /** `8080:80`, `127.0.0.1:5432:5432`. */
  ports: z.array(z.string().regex(/^[0-9.:[\]a-f/a-z]+$/)).default([]),
  /** Environment: values may come from the secrets (`{{ secrets.api_key }}`). Open: any variable name. */
  env: z.record(envName, z.string()).default({}),
  /** Environment variables read from the secrets: `{ API_KEY: api_key }`. Open: any variable name. */
  env_secrets: z.record(envName, z.string().min(1)).default({}),
  /** `/srv/data:/data`, `named-volume:/var/lib/x:ro`. */
  volumes: z.array(z.string().min(1)).default([]),
  restart: z.enum(['no', 'always', 'unless-stopped', 'on-failure']).default('unless-stopped'),
  healthcheck: z
    .object({
      /** A shell command run in the container (`wget -qO- http://127.0.0.1/health`). */
      test: z.string().min(1),
      interval: z.string().default('10s'),
      retries: z.number().int().positive().default(3),
    })
    .optional(),
  network: z.string().optional(),
  /** Open: any label. */
  labels: z.record(z.string(), z.string()).default({}),
  state: z.enum(['started', 'stopped', 'absent']).default('started'),
});

const composeProject = z.object({
  name,
  compose: composeContent,
  /** Written to `.env` beside the compose file (mode 0600). Open: any variable name. */
  env: z.record(envName, z.string()).default({}),
  /** Default: `/opt/verdandi/compose/<name>`. */
  dir: z
    .string()
    .regex(/^\/[A-Za-z0-9_./-]+$/)
    .optional(),
  state: z.enum(['present', 'absent']).default('present'),
});

const stack = z.object({
  name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]*$/, 'a stack name is letters, digits, "_" or "-"'),
  compose: composeContent,
  /** Add the rolling update defaults (parallelism 1, start-first, rollback on failure) to every service
   * that does not set its own `deploy.update_config`. */
  rolling_update: z.boolean().default(true),
  state: z.enum(['present', 'absent']).default('present'),
});

export type DockerContainer = z.infer<typeof container>;
export type DockerStack = z.infer<typeof stack>;

export const vars = z.object({
  /** `debian`: Debian's docker.io and docker-compose. `docker`: Docker's repository (docker-ce, compose plugin). */
  docker_source: z.enum(['debian', 'docker']).default('debian'),
  docker_repository_url: z.string().default('https://download.docker.com/linux/debian'),
  /** Debian codename of the host, for Docker's repository. */
  docker_repository_codename: z
    .string()
    .regex(/^[a-z]+$/)
    .default('bookworm'),
  docker_compose: z.boolean().default(true),
  docker_log_driver: z.string().default('json-file'),
  /** Rotation of the json-file logs: size of one file, number of files kept. */
  docker_log_max_size: z
    .string()
    .regex(/^\d+[kmg]?$/)
    .default('10m'),
  docker_log_max_file: z.number().int().positive().default(3),
  /** Further daemon.json keys (merged over the log settings). Open: dockerd checks its own keys. */
  docker_daemon_options: z.record(z.string(), z.unknown()).default({}),
  /** Users added to the `docker` group (they exist already). */
  docker_users: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/)).default([]),
  docker_containers: z.array(container).default([]),
  docker_compose_projects: z.array(composeProject).default([]),
  /** Swarm membership of this host. */
  docker_swarm: z.enum(['none', 'manager', 'worker']).default('none'),
  /** Address other nodes reach this one at. Default: the host's inventory address. */
  docker_swarm_advertise_addr: z.string().optional(),
  /** Inventory name of the manager a worker joins. Default: the inventory's host with docker_swarm: manager. */
  docker_swarm_manager: z.string().optional(),
  /** Worker join token (`docker swarm join-token -q worker` on the manager): keep it in the secrets. */
  docker_swarm_join_token: z.string().optional(),
  /** Stacks deployed with `docker stack deploy` (on the manager only). */
  docker_stacks: z.array(stack).default([]),
  /**
   * A private registry (Debian's `docker-registry`) on one host, plain HTTP on the private network,
   * trusted by the docker engine of every host with this var (see README: "A private registry").
   */
  docker_registry: z
    .object({
      /** Inventory name of the host that runs it. */
      host: name,
      port: z.number().int().min(1).max(65535).default(5000),
      /** User name → password (`"{{ secrets.registry_password }}"`): htpasswd (bcrypt) auth. */
      users: z.record(name, z.string().min(8, 'a registry password has at least 8 characters')),
    })
    .optional(),
});

export type DockerVars = z.infer<typeof vars>;

/** daemon.json; with a registry, its address among the insecure (plain HTTP) registries. */
export function daemonConfig(v: DockerVars, registry?: string): Record<string, unknown> {
  const own = v.docker_daemon_options['insecure-registries'];
  const insecure = [...(Array.isArray(own) ? own : []), ...(registry ? [registry] : [])];
  return {
    'log-driver': v.docker_log_driver,
    'log-opts': { 'max-size': v.docker_log_max_size, 'max-file': String(v.docker_log_max_file) },
    ...v.docker_daemon_options,
    ...(insecure.length > 0 ? { 'insecure-registries': [...new Set(insecure)] } : {}),
  };
}

/** `address:port` of the registry, from the inventory (its host's swarm address, else its address). */
export function registryAddress(v: DockerVars, host: HostInfo): string | undefined {
  const r = v.docker_registry;
  if (!r) return undefined;
  const node = host.inventory.hosts.find((h) => h.name === r.host);
  if (!node) {
    throw new UserError(
      `docker_registry of host ${host.name} names the host "${r.host}", which is not in the inventory`,
      1,
      'set docker_registry.host to the inventory name of the host that runs the registry',
    );
  }
  const advertised = node.vars.docker_swarm_advertise_addr;
  const addr = typeof advertised === 'string' && advertised !== '' ? advertised : node.address;
  return `${addr}:${r.port}`;
}

const REGISTRY_DIR = '/etc/docker/registry';
const HTPASSWD = `${REGISTRY_DIR}/htpasswd`;

/** The registry's configuration: listening on the private address only, htpasswd auth. */
export function registryConfig(address: string): string {
  return yaml.dump(
    {
      version: 0.1,
      log: { fields: { service: 'registry' } },
      storage: { filesystem: { rootdirectory: '/var/lib/docker-registry' }, delete: { enabled: true } },
      http: { addr: address, headers: { 'X-Content-Type-Options': ['nosniff'] } },
      auth: { htpasswd: { realm: 'registry', path: HTPASSWD } },
    },
    { lineWidth: -1 },
  );
}

/**
 * The registry host's tasks: the package, its config, the htpasswd file. bcrypt hashes are salted (a
 * new file differs every time), so the file is rewritten only when the users or passwords changed. To
 * know that without a password on any command line (a guard runs as `sh -c`), the file has a companion,
 * `.htpasswd.sum` (root only, 0600): an scrypt digest of the users and passwords (slow to brute-force,
 * like bcrypt). The passwords reach htpasswd on stdin (`-i`), never as arguments.
 */
function registryTasks(v: DockerVars, host: HostInfo, address: string | undefined): Task[] {
  const r = v.docker_registry;
  if (!r || !address || r.host !== host.name) return [];
  const users = Object.keys(r.users).sort();
  if (users.length === 0) {
    throw new UserError(
      `docker_registry of host ${host.name}: no users: the registry would accept anyone on the network`,
      1,
      'give docker_registry.users (name: "{{ secrets.registry_password }}")',
    );
  }
  const sum = `${REGISTRY_DIR}/.htpasswd.sum`;
  const digest = scryptSync(
    users.map((u) => `${u}\0${r.users[u]}`).join('\0'),
    `verdandi-registry-htpasswd:${host.name}`,
    32,
  ).toString('hex');
  const build = [
    'set -e',
    `tmp=$(mktemp ${REGISTRY_DIR}/.htpasswd.XXXXXX)`,
    'trap \'rm -f "$tmp"\' EXIT',
    ...users.map(
      (u) => `IFS= read -r pw; printf '%s\\n' "$pw" | htpasswd -i -B "$tmp" ${quote(u)} 2>/dev/null`,
    ),
    'chown "root:$(id -gn docker-registry)" "$tmp"',
    'chmod 0640 "$tmp"',
    `mv -f "$tmp" ${HTPASSWD}`,
    'trap - EXIT',
    `(umask 077 && echo ${digest} > ${sum})`,
  ].join('\n');
  return [
    apt({ packages: ['docker-registry', 'apache2-utils'] }),
    copy({
      path: `${REGISTRY_DIR}/config.yml`,
      content: registryConfig(address),
      mode: '0644',
      notify: 'restart docker-registry',
    }),
    shell({
      name: `registry users ${users.join(', ')}`,
      script: build,
      stdin: `${users.map((u) => r.users[u]).join('\n')}\n`,
      unless: `[ -s ${HTPASSWD} ] && grep -qxF ${digest} ${sum}`,
      sensitive: true,
      notify: 'restart docker-registry',
    }),
    service({ unit: 'docker-registry', state: 'started', enabled: true }),
  ];
}

export function packages(v: DockerVars): string[] {
  // A worker joins through the engine's API with curl (the join token stays off every command line).
  const joinTool = v.docker_swarm === 'worker' ? ['curl'] : [];
  if (v.docker_source === 'debian')
    return [...(v.docker_compose ? ['docker.io', 'docker-compose'] : ['docker.io']), ...joinTool];
  const pkgs = ['docker-ce', 'docker-ce-cli', 'containerd.io', 'docker-buildx-plugin'];
  return [...(v.docker_compose ? [...pkgs, 'docker-compose-plugin'] : pkgs), ...joinTool];
}

export function composeCommand(v: DockerVars): string[] {
  return v.docker_source === 'debian' ? ['docker-compose'] : ['docker', 'compose'];
}

function composeText(content: string | Record<string, unknown>): string {
  return typeof content === 'string' ? content : yaml.dump(content, { lineWidth: -1, noRefs: true });
}

/** Zero-downtime defaults of a Swarm service, added where a service sets none. */
export const ROLLING_UPDATE = {
  update_config: { parallelism: 1, order: 'start-first', failure_action: 'rollback', monitor: '10s' },
  rollback_config: { parallelism: 1, order: 'start-first' },
};

/** Compose text of a stack, with ROLLING_UPDATE added to each service that has no update_config. */
export function stackCompose(s: DockerStack): string {
  if (!s.rolling_update) return composeText(s.compose);
  const doc = (typeof s.compose === 'string' ? yaml.load(s.compose) : structuredClone(s.compose)) as Record<
    string,
    unknown
  >;
  if (!doc || typeof doc !== 'object' || typeof doc.services !== 'object' || doc.services === null) {
    throw new UserError(`docker_stacks: stack "${s.name}" has no services mapping`);
  }
  for (const svc of Object.values(doc.services as Record<string, Record<string, unknown>>)) {
    if (!svc || typeof svc !== 'object') continue;
    const deploy = (svc.deploy ?? {}) as Record<string, unknown>;
    if (deploy.update_config === undefined) deploy.update_config = { ...ROLLING_UPDATE.update_config };
    if (deploy.rollback_config === undefined) deploy.rollback_config = { ...ROLLING_UPDATE.rollback_config };
    svc.deploy = deploy;
  }
  return yaml.dump(doc, { lineWidth: -1, noRefs: true });
}

/** The inventory host a worker joins: the one named by docker_swarm_manager, or the first manager. */
function swarmManager(v: DockerVars, host: HostInfo): HostInfo['inventory']['hosts'][number] {
  const managers = host.inventory.hosts.filter((h) =>
    v.docker_swarm_manager ? h.name === v.docker_swarm_manager : h.vars.docker_swarm === 'manager',
  );
  if (managers.length === 0) {
    throw new UserError(
      v.docker_swarm_manager
        ? `docker_swarm_manager of host ${host.name} names "${v.docker_swarm_manager}", which is not in the inventory`
        : `host ${host.name} is a swarm worker but no host of the inventory has docker_swarm: manager`,
      1,
      'give one host docker_swarm: manager, or set docker_swarm_manager to its inventory name',
    );
  }
  return managers[0];
}

/** Address of the swarm manager a worker joins, from the inventory. */
export function swarmManagerAddress(v: DockerVars, host: HostInfo): string {
  const manager = swarmManager(v, host);
  const advertised = manager.vars.docker_swarm_advertise_addr;
  return typeof advertised === 'string' && advertised !== '' ? advertised : manager.address;
}

const SWARM_ACTIVE = `docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null | grep -qx active`;

function swarmTasks(v: DockerVars, host: HostInfo): Task[] {
  const addr = v.docker_swarm_advertise_addr ?? host.address;
  if (v.docker_swarm === 'manager') {
    return [
      command({
        name: 'docker swarm init',
        argv: ['docker', 'swarm', 'init', '--advertise-addr', addr],
        unless: SWARM_ACTIVE,
      }),
    ];
  }
  if (v.docker_swarm === 'worker') {
    const manager = swarmManager(v, host);
    // Without a token in the vars, the join reads it from the manager during the run (over the
    // manager's own connection), once the manager's swarm exists.
    const token = v.docker_swarm_join_token;
    return [
      dockerSwarmJoin({
        manager: swarmManagerAddress(v, host),
        advertiseAddr: addr,
        ...(token ? { token } : { tokenFrom: manager.name }),
      }),
    ];
  }
  return [];
}

function containerTasks(v: DockerVars, host: HostInfo): Task[] {
  return v.docker_containers.map((c) => {
    const env = { ...c.env };
    for (const [key, secret] of Object.entries(c.env_secrets)) {
      const value = host.secrets[secret];
      if (typeof value !== 'string') {
        throw new UserError(
          `docker_containers of host ${host.name}: container "${c.name}" reads ${key} from the secret "${secret}", which the ${host.env} secrets do not hold`,
          1,
          `add it with: verdandi secrets edit ${host.env}`,
        );
      }
      env[key] = value;
    }
    return dockerContainer({
      container: c.name,
      image: c.image,
      command: c.command,
      ports: c.ports,
      env,
      volumes: c.volumes,
      restart: c.restart,
      healthcheck: c.healthcheck,
      network: c.network,
      labels: c.labels,
      state: c.state,
      sensitive: Object.keys(env).length > 0,
    });
  });
}

function composeTasks(v: DockerVars): Task[] {
  const tasks: Task[] = [];
  const compose = composeCommand(v);
  for (const p of v.docker_compose_projects) {
    const dir = p.dir ?? `/opt/verdandi/compose/${p.name}`;
    const projectCmd = [...compose, '-p', p.name, '-f', `${dir}/docker-compose.yml`];
    if (p.state === 'absent') {
      tasks.push(
        command({
          name: `compose down ${p.name}`,
          argv: [...projectCmd, 'down'],
          removes: `${dir}/docker-compose.yml`,
        }),
        shell({ name: `remove ${dir}`, script: `rm -rf ${quote(dir)}`, removes: dir }),
      );
      continue;
    }
    const composeFile = composeText(p.compose);
    const envFile = Object.entries(p.env)
      .map(([k, val]) => `${k}=${val}`)
      .join('\n');
    const hash = createHash('sha256').update(composeFile).update('\0').update(envFile).digest('hex');
    const applied = `${dir}/.verdandi-applied`;
    tasks.push(
      directory({ path: dir, owner: 'root', group: 'root', mode: '0755' }),
      copy({ path: `${dir}/docker-compose.yml`, content: composeFile, mode: '0644' }),
      copy({
        path: `${dir}/.env`,
        content: envFile === '' ? '' : `${envFile}\n`,
        mode: '0600',
        sensitive: envFile !== '',
      }),
      shell({
        name: `compose up ${p.name}`,
        cwd: dir,
        script: `${projectCmd.map((w) => quote(w)).join(' ')} up -d --remove-orphans && echo ${hash} > ${quote(applied)}`,
        // Up again when the files changed since the last `up`, or when nothing of the project runs.
        unless: `grep -qxF ${hash} ${quote(applied)} && [ -n "$(docker ps -q --filter label=com.docker.compose.project=${p.name})" ]`,
      }),
    );
  }
  return tasks;
}

function repositoryTasks(v: DockerVars): Task[] {
  if (v.docker_source !== 'docker') return [];
  const keyring = '/etc/apt/keyrings/docker.asc';
  const list = '/etc/apt/sources.list.d/docker.list';
  return [
    apt({ packages: ['ca-certificates', 'curl'] }),
    directory({ path: '/etc/apt/keyrings', mode: '0755' }),
    command({
      name: "download Docker's repository key",
      argv: ['curl', '-fsSL', '-o', keyring, `${v.docker_repository_url}/gpg`],
      creates: keyring,
    }),
    copy({
      path: list,
      content: `deb [signed-by=${keyring}] ${v.docker_repository_url} ${v.docker_repository_codename} stable\n`,
      mode: '0644',
    }),
    // apt's cache may be fresh enough for the apt task, yet older than the new source: read it once.
    shell({
      name: "apt-get update for Docker's repository",
      script: 'apt-get update',
      unless: "apt-cache policy docker-ce | grep -q 'Candidate: [0-9]'",
    }),
  ];
}

export default defineRole({
  name: 'docker',
  description: 'Docker engine, daemon.json, containers, compose projects, Swarm and stacks',
  vars,
  tasks(v, host) {
    if (v.docker_stacks.length > 0 && v.docker_swarm !== 'manager') {
      throw new UserError(
        `docker_stacks of host ${host.name}: stacks deploy on a swarm manager, and this host has docker_swarm: ${v.docker_swarm}`,
        1,
        'set docker_swarm: manager on this host, or move docker_stacks to the manager',
      );
    }
    const registry = registryAddress(v, host);
    const tasks: Task[] = [
      ...repositoryTasks(v),
      // daemon.json before the package: a fresh install starts with it, without a restart.
      directory({ path: '/etc/docker', mode: '0755' }),
      copy({
        path: '/etc/docker/daemon.json',
        content: `${JSON.stringify(daemonConfig(v, registry), null, 2)}\n`,
        mode: '0644',
        notify: 'restart docker',
      }),
      apt({ packages: packages(v) }),
      service({ unit: 'docker', state: 'started', enabled: true }),
      ...v.docker_users.map((u) => user({ user: u, groups: ['docker'], append: true })),
      ...swarmTasks(v, host),
      ...registryTasks(v, host, registry),
      ...containerTasks(v, host),
      ...composeTasks(v),
      ...v.docker_stacks.map((s) =>
        dockerStack({
          stack: s.name,
          compose: s.state === 'absent' ? '' : stackCompose(s),
          state: s.state,
        }),
      ),
    ];
    return tasks;
  },
  handlers: {
    'restart docker': () => service({ unit: 'docker', state: 'restarted' }),
    'restart docker-registry': () => service({ unit: 'docker-registry', state: 'restarted' }),
  },
});
