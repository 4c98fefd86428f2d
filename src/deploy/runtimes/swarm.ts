/**
 * Swarm sites: the release's image is built once on the manager (`[<registry>/]verdandi/<site>:<release>`),
 * pushed to the registry every node pulls from, and deployed with `docker stack deploy
 * --with-registry-auth`; the stack's own `update_config` rolls the tasks (parallelism, order, health
 * gate, rollback on failure). The deploy then waits until the stack converged (every task of the site's
 * image on the new release, running and healthy) or Swarm rolled the update back, and says which.
 *
 * The release's environment (vars and secrets) reaches the tasks as a Docker secret, `<site>-env-<release>`
 * (one per release: Docker secrets are immutable, and a rollback needs the old one), created from the
 * release's 0600 `.env` file: never in the service's spec, so never in `docker service inspect`.
 *
 * No colors: for migrations, the workers and the web service are scaled to 0 (the front shows the
 * maintenance page), the migration runs as a one-off `docker run` on the manager, then the stack
 * deploy brings every service back on the new image. Anything that fails before the new release
 * converged deploys the previous release's stack again.
 */
import { z } from 'zod';
import type { HostInfo } from '../../engine/types.js';
import type { InventoryHost } from '../../inventory/types.js';
import { UserError } from '../../util/errors.js';
import { quote, sh, words } from '../../util/shell.js';
import { switchCurrent } from '../commands.js';
import type { PlanStep } from '../plan-step.js';
import { releaseDir, releaseEnvFile } from '../release-files.js';
import type { SitePaths } from '../site-base.js';
import {
  containerConsole,
  imageBuildStep,
  imageName as imageOf,
  refuseWorkers,
  renderDockerEnv,
  runInImage,
} from './docker.js';
import { dockerLogFlags } from './log-lines.js';
import type { DeployRuntime, GoLiveInput, LogsQuery, ReleaseInput, RuntimeSite, Stack } from './runtime.js';

const serviceName = z
  .string()
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'a compose service name (letters, digits, ".", "_" or "-")');

const schema = z.object({
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

export type SwarmSite = RuntimeSite<z.infer<typeof schema>>;

/** Exit code of the convergence wait when Swarm rolled the update back (failure_action: rollback). */
export const ROLLED_BACK_EXIT = 3;

/** The release's image, under the registry's address when the site has one (what every node pulls). */
export function imageName(site: SwarmSite, release: string): string {
  return imageOf(site, release, site.runtime.registry?.address);
}

/** A compose service's name in the site's stack. */
export function stackService(site: SwarmSite, service: string): string {
  return `${site.name}_${service}`;
}

/** The Docker secret that holds a release's environment file. */
export function envSecretName(site: SwarmSite, release: string): string {
  return `${site.name}-env-${release}`;
}

/** `docker login` to the site's registry, the password on stdin. Null without a registry. */
export function registryLogin(site: SwarmSite): string | null {
  const r = site.runtime.registry;
  if (!r) return null;
  return `${words('docker', 'login', r.address, '--username', r.username, '--password-stdin')} >/dev/null`;
}

export function pushImage(site: SwarmSite, release: string): string {
  return `${words('docker', 'push', imageName(site, release))} >/dev/null`;
}

/**
 * The release's environment as a Docker secret, read from its 0600 file (no value on a command line).
 * A site without env has an empty file, and Docker refuses an empty secret ("secret data must be larger
 * than 0"): its secret is then one empty line, which the documented entrypoint loop skips.
 */
export function createEnvSecret(site: SwarmSite, paths: SitePaths, release: string): string {
  const name = envSecretName(site, release);
  const file = releaseEnvFile(paths, release);
  const create = sh`docker secret create --label ${`verdandi.site=${site.name}`} ${name}`;
  return [
    sh`docker secret inspect ${name} >/dev/null 2>&1 ||`,
    sh`if [ ! -f ${file} ]; then echo ${`${file} is missing`} >&2; false;`,
    `elif [ -s ${quote(file)} ]; then ${create} ${quote(file)} >/dev/null;`,
    `else echo | ${create} - >/dev/null; fi`,
  ].join(' ');
}

/** `docker stack deploy` of the release's compose file with IMAGE, ENV_SECRET and RELEASE set. */
export function deployStack(site: SwarmSite, paths: SitePaths, release: string): string {
  const rt = site.runtime;
  return [
    sh`cd ${releaseDir(paths, release)}`,
    words(
      'env',
      `IMAGE=${imageName(site, release)}`,
      `ENV_SECRET=${envSecretName(site, release)}`,
      `RELEASE=${release}`,
      'docker',
      'stack',
      'deploy',
      rt.registry && '--with-registry-auth',
      '--prune',
      '-c',
      rt.compose,
      site.name,
    ),
  ].join(' && ');
}

/**
 * Waits until the stack converged on `release`: every service that runs the site's image runs the
 * release's, each service has all its replicas running (and healthy: Swarm reports a task with a
 * healthcheck Running only once it is healthy), no update in progress. Exits ROLLED_BACK_EXIT when
 * Swarm rolled a service back to its previous image, 1 when an update paused or the time ran out.
 * Prints `converged: <service> <running>/<replicas> ...` on success.
 */
export function convergeScript(site: SwarmSite, release: string): string {
  const rt = site.runtime;
  const want = imageName(site, release);
  const repo = want.slice(0, want.lastIndexOf(':'));
  return [
    `stack=${quote(site.name)}; want=${quote(want)}; repo=${quote(repo)}; release=${quote(release)}`,
    `end=$(( $(date +%s) + ${rt.convergeTimeout} ))`,
    'while :; do',
    '  pending=; summary=',
    `  services=$(docker stack services --format '{{.Name}}' "$stack" 2>/dev/null)`,
    '  [ -n "$services" ] || pending="the stack $stack has no services yet"',
    '  for s in $services; do',
    `    info=$(docker service inspect -f '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}|{{.Spec.TaskTemplate.ContainerSpec.Image}}|{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{end}}' "$s" 2>&1) || { pending="$s: $info"; continue; }`,
    `    state=\${info%%|*}; rest=\${info#*|}; image=\${rest%%|*}; replicas=\${rest#*|}`,
    '    ours=no; case "$image" in "$repo":*) ours=yes ;; esac',
    '    if [ "$ours" = yes ]; then',
    '      case "$image" in',
    '        "$want"|"$want"@*) ;;',
    '        *)',
    // The spec went back to another release of the site's image: Swarm rolled the update back.
    `          msg=$(docker service inspect -f '{{if .UpdateStatus}}{{.UpdateStatus.Message}}{{end}}' "$s")`,
    '          case "$state" in',
    `            rollback_completed) echo "$s: Swarm rolled the update back (\${msg:-no message}): its tasks run \${image%@*} again" >&2; exit ${ROLLED_BACK_EXIT} ;;`,
    `            rollback_paused) echo "$s: the rollback of the update paused (\${msg:-no message}): look at docker service ps $s" >&2; exit 1 ;;`,
    '          esac',
    `          pending="$s: rolling back (\${state:-waiting})"; continue ;;`,
    '      esac',
    '      case "$state" in',
    `        paused) echo "$s: the update paused ($(docker service inspect -f '{{.UpdateStatus.Message}}' "$s")): set update_config.failure_action: rollback" >&2; exit 1 ;;`,
    '        updating|rollback_started) pending="$s: $state"; continue ;;',
    '      esac',
    '    fi',
    `    tasks=$(docker service ps --filter desired-state=running --format '{{.CurrentState}}|{{.Image}}' "$s")`,
    '    total=0; ok=0',
    '    while IFS= read -r t; do',
    '      [ -n "$t" ] || continue',
    '      total=$((total + 1))',
    '      case "$t" in Running*) ;; *) continue ;; esac',
    `      img=\${t#*|}`,
    '      if [ "$ours" = yes ]; then case "$img" in "$want"|"$want"@*) ;; *) continue ;; esac; fi',
    '      ok=$((ok + 1))',
    '    done <<EOF',
    '$tasks',
    'EOF',
    `    n=\${replicas:-$total}`,
    '    if [ "$ok" -ne "$n" ] || [ "$total" -ne "$ok" ]; then pending="$s: $ok/$n tasks running the release"; continue; fi',
    '    summary="$summary $s $ok/$n"',
    '  done',
    `  if [ -z "$pending" ]; then echo "converged:$summary on release $release"; exit 0; fi`,
    '  if [ "$(date +%s)" -ge "$end" ]; then',
    `    echo "not converged after ${rt.convergeTimeout} s: $pending" >&2`,
    `    docker stack ps --filter desired-state=running --format '{{.Name}} {{.Node}} {{.CurrentState}} {{.Error}}' "$stack" >&2`,
    '    exit 1',
    '  fi',
    '  sleep 1',
    'done',
  ].join('\n');
}

/**
 * Scales the stack's `services` that exist to 0 and waits (bounded) until none of their tasks runs.
 * Services not deployed yet are skipped.
 */
export function scaleToZero(site: SwarmSite, services: string[], timeoutSeconds = 120): string {
  const names = services.map((s) => stackService(site, s));
  return [
    `end=$(( $(date +%s) + ${timeoutSeconds} ))`,
    `for s in ${words(...names)}; do`,
    '  docker service inspect "$s" >/dev/null 2>&1 || continue',
    '  docker service scale --detach "$s=0" >/dev/null || exit 1',
    "  while docker service ps --format '{{.CurrentState}}' \"$s\" | grep -qE '^(New|Allocated|Pending|Assigned|Accepted|Preparing|Ready|Starting|Running)'; do",
    `    if [ "$(date +%s)" -ge "$end" ]; then echo "$s: tasks still running after ${timeoutSeconds} s" >&2; exit 1; fi`,
    '    sleep 0.5',
    '  done',
    'done',
  ].join('\n');
}

/** Read-only lines for `verdandi status`: the stack's services and the running tasks. */
export function stackStatusScript(site: SwarmSite): string {
  return [
    `${words('docker', 'stack', 'services', '--format', 'swarm_service={{.Name}}|{{.Replicas}}|{{.Image}}', site.name)} 2>/dev/null`,
    `${words('docker', 'stack', 'ps', '--filter', 'desired-state=running', '--format', 'swarm_task={{.Name}}|{{.Node}}|{{.CurrentState}}|{{.Image}}', site.name)} 2>/dev/null`,
  ].join('\n');
}

/** The services and tasks `stackStatusScript` printed. */
export function parseStack(stdout: string): Stack {
  const stack: Stack = { services: [], tasks: [] };
  for (const line of stdout.split('\n')) {
    if (line.startsWith('swarm_service=')) {
      const [name, replicas, image] = line.slice('swarm_service='.length).split('|');
      stack.services.push({ name, replicas: replicas ?? '?', image: image ?? '?' });
    } else if (line.startsWith('swarm_task=')) {
      const [name, node, state, image] = line.slice('swarm_task='.length).split('|');
      stack.tasks.push({ name, node: node ?? '?', state: state ?? '?', image: image ?? '?' });
    }
  }
  return stack;
}

/** Steps that deploy `previous` again (the undo of anything that touched the stack). */
function restore(site: SwarmSite, paths: SitePaths, previous: string | undefined): string[] {
  if (!previous) return [`${words('docker', 'stack', 'rm', site.name)} >/dev/null 2>&1; true`];
  return [deployStack(site, paths, previous), convergeScript(site, previous)];
}

/**
 * A deploy's steps after the build and checks, before any migration (so maintenance lasts no longer
 * than it must): the registry login, the push, the environment's secret.
 */
function publish(i: ReleaseInput<SwarmSite>): PlanStep[] {
  const steps = login(i);
  if (steps.length > 0)
    steps.push({
      phase: 'build',
      title: 'push image',
      command: pushImage(i.site, i.release),
      timeoutMs: 600_000,
    });
  steps.push(envSecret(i));
  return steps;
}

function login({ site, registryPassword }: ReleaseInput<SwarmSite>): PlanStep[] {
  const command = registryLogin(site);
  if (!command) return [];
  if (registryPassword === undefined)
    throw new Error(`site ${site.name}: the registry password was not read from the secrets`);
  return [{ phase: 'build', title: 'registry login', command, stdin: `${registryPassword}\n` }];
}

function envSecret({ site, paths, release }: ReleaseInput<SwarmSite>): PlanStep {
  return { phase: 'build', title: 'environment secret', command: createEnvSecret(site, paths, release) };
}

/** Milliseconds a step that waits for the stack may take (its wait, plus Docker's own commands). */
function stackTimeoutMs(site: SwarmSite): number {
  return (site.runtime.convergeTimeout + 60) * 1000;
}

/**
 * The stack deploy and the wait for convergence. A deploy published the release before; a rollback
 * logs in again (the credentials `--with-registry-auth` hands the nodes) and makes sure the target's
 * secret exists.
 */
function rollout(i: GoLiveInput<SwarmSite>): PlanStep[] {
  const { site, paths, release, current: previous } = i;
  return [
    ...(i.published ? [] : [...login(i), envSecret(i)]),
    {
      phase: 'start',
      title: 'stack deploy',
      command: deployStack(site, paths, release),
      undo: restore(site, paths, previous),
      timeoutMs: stackTimeoutMs(site),
    },
    {
      phase: 'start',
      title: 'converge',
      command: convergeScript(site, release),
      pointOfNoReturn: true,
      showsOutput: true,
      timeoutMs: stackTimeoutMs(site),
    },
  ];
}

function stopForMigrations(i: ReleaseInput<SwarmSite>): PlanStep[] {
  const { site, paths, current: previous } = i;
  // Nothing runs before the first release.
  if (!previous) return [];
  const rt = site.runtime;
  const undo = restore(site, paths, previous);
  const steps: PlanStep[] = [];
  if (rt.workers.length > 0)
    steps.push({
      phase: 'migrate',
      title: 'workers to 0',
      command: scaleToZero(site, rt.workers),
      undo,
      timeoutMs: stackTimeoutMs(site),
    });
  steps.push({
    phase: 'migrate',
    title: `stop ${rt.web}`,
    command: scaleToZero(site, [rt.web]),
    undo,
    timeoutMs: stackTimeoutMs(site),
  });
  return steps;
}

/**
 * The front: `<node>:<port>` of each node that runs the web tasks (ports published in `mode: host`), by
 * default every swarm worker of the inventory. nginx skips a node that does not answer (see the vhost's
 * proxy_next_upstream).
 */
export function swarmUpstream(site: SwarmSite, host: HostInfo): string {
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
  // A node that refused a request is left out for 1 s only. In a rolling update or a rollback (stop-first:
  // a host-mode port serves one task per node), the next node stops as soon as this one's new task is
  // healthy, about a second after it came back; a longer fail_timeout still had it marked down then, and
  // with both nodes marked down nginx answers 502 to every request until the mark expires (seen in a
  // rollback: 209 of 2,344 requests). A silent node costs one request per second its connect timeout.
  const servers = nodes.map((n) => {
    return `server ${advertisedAddress(n)}:${rt.port} max_fails=1 fail_timeout=1s; # ${n.name}\n`;
  });
  return `# Written by the sites role: the nodes that run the web tasks of ${site.name}.\n${servers.join('')}`;
}

/** No colors: the stack rolls itself out, then `current` follows and `onceLive` runs. */
function goLiveSteps(i: GoLiveInput<SwarmSite>): PlanStep[] {
  return [
    ...rollout(i),
    { phase: 'switch', title: i.currentTitle, command: switchCurrent(i.paths, i.release) },
    ...i.onceLive,
  ];
}

/**
 * `docker service logs` of each service of the site's stack, each line tagged with its replica and node
 * (`sample_web.2@node1`). Only a manager can read them: on the other nodes the script prints nothing
 * (the manager prints the logs of every node's tasks).
 */
export function swarmLogsScript(site: SwarmSite, q: LogsQuery): string {
  const read = words('docker', 'service', 'logs', '--no-task-ids', ...dockerLogFlags(q));
  return [
    `[ "$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" = true ] || exit 0`,
    // docker pads the task's name to align the columns: `sample_web.1@node1    | line`.
    `for vd_svc in $(${words('docker', 'stack', 'services', '--format', '{{.Name}}', site.name)} 2>/dev/null); do`,
    `  ( ${read} "$vd_svc" 2>&1 | sed -u -E ${quote('s/^([^ |]+) +\\| /\\1 | /')} ) &`,
    'done',
    'wait',
  ].join('\n');
}

/**
 * Read on a manager: the nodes that run a task of the web service now, one `swarm_node=<hostname>|<address>`
 * line each (the address is the one the node advertises), or `swarm_not_manager` on another host.
 */
export function taskNodesScript(site: SwarmSite): string {
  const service = stackService(site, site.runtime.web);
  return [
    `[ "$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" = true ] || { echo swarm_not_manager; exit 0; }`,
    `for vd_n in $(${words('docker', 'service', 'ps', '--filter', 'desired-state=running', '--format', '{{.Node}}|{{.CurrentState}}', service)} 2>/dev/null | sed -n -E ${quote('s/^([^|]+)[|]Running.*/\\1/p')} | sort -u); do`,
    `  echo "swarm_node=$vd_n|$(docker node inspect -f '{{.Status.Addr}}' "$vd_n" 2>/dev/null)"`,
    'done',
  ].join('\n');
}

/** The address a swarm node of the inventory advertises: `docker_swarm_advertise_addr`, else its own. */
function advertisedAddress(h: Pick<InventoryHost, 'address' | 'vars'>): string {
  const advertised = h.vars.docker_swarm_advertise_addr;
  return typeof advertised === 'string' && advertised !== '' ? advertised : h.address;
}

/**
 * The inventory host to open a console on, from `taskNodesScript`'s output: the node --host names
 * (`wanted`), which must run a task, else the first that runs one. A node is the inventory host of its
 * advertised address, else of its hostname.
 */
export function pickTaskNode(
  site: SwarmSite,
  stdout: string,
  inventory: Pick<InventoryHost, 'name' | 'address' | 'vars'>[],
  wanted?: string,
): { host: string; note?: string } {
  const service = stackService(site, site.runtime.web);
  if (stdout.split('\n').includes('swarm_not_manager'))
    throw new UserError(
      `site ${site.name}: its host is not a swarm manager, so it cannot say where the tasks of ${service} run`,
      1,
      'put the site on a manager of the swarm (docker_swarm: manager)',
    );
  const nodes: string[] = [];
  const strangers: string[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('swarm_node=')) continue;
    const [name, addr] = line.slice('swarm_node='.length).split('|');
    const host =
      inventory.find((h) => addr && advertisedAddress(h) === addr) ?? inventory.find((h) => h.name === name);
    if (host) nodes.push(host.name);
    else strangers.push(addr ? `${name} (${addr})` : name);
  }
  const elsewhere = strangers.length > 0 ? `; on nodes not in the inventory: ${strangers.join(', ')}` : '';
  const hint = `the hosts that run one: ${nodes.join(', ') || 'none'}${elsewhere}`;
  if (wanted !== undefined) {
    if (!inventory.some((h) => h.name === wanted))
      throw new UserError(`--host ${wanted}: no such host in the inventory`, 1, hint);
    if (!nodes.includes(wanted))
      throw new UserError(`--host ${wanted}: no task of ${service} runs there`, 1, hint);
    return { host: wanted };
  }
  if (nodes.length === 0)
    throw new UserError(
      `site ${site.name}: no task of ${service} is running on a host of the inventory${elsewhere}`,
      1,
      'see verdandi status: a console opens in a running task',
    );
  return nodes.length === 1
    ? { host: nodes[0] }
    : {
        host: nodes[0],
        note: `${nodes.length} hosts run a task of ${service} (${nodes.join(', ')}): on ${nodes[0]} (choose another with --host)`,
      };
}

export const swarm: DeployRuntime<SwarmSite, typeof schema> = {
  schema,
  // The web tasks publish on the nodes: no port of the manager is taken.
  hostPorts: () => [],
  registryPasswordSecret: (site) => site.runtime.registry?.password,
  stateLines: () => [],
  statusLines: (site) => [stackStatusScript(site)],
  parseStack,
  renderEnv: renderDockerEnv,
  buildSteps: ({ site, paths, release }) => [imageBuildStep(site, paths, release, imageName(site, release))],
  inRelease: (site, paths, release, command) =>
    runInImage(imageName(site, release), paths, release, command, site.runtime.runOptions),
  publishSteps: publish,
  consoleScript: ({ site, command }) => {
    // A task of the web service running on this node; its environment is the secret the entrypoint
    // loads (roles/sites/README.md), read again by the console's shell.
    const service = stackService(site, site.runtime.web);
    const find = [
      sh`vd_c=$(docker ps -q --filter ${`label=com.docker.swarm.service.name=${service}`} | head -n 1)`,
      sh`if [ -z "$vd_c" ]; then echo ${`no task of ${service} runs on this node: choose a node that runs one with --host (verdandi status lists them)`} >&2; exit 1; fi`,
    ].join('\n');
    const loadEnv =
      'if [ -r /run/secrets/env ]; then while IFS= read -r l; do [ -n "$l" ] && export "$l"; done < /run/secrets/env; fi; ';
    return containerConsole(find, loadEnv, command);
  },
  // The site is on a manager; its tasks run on the nodes: the console opens on one that runs a task.
  consoleHost: { script: taskNodesScript, pick: pickTaskNode },
  migrationStops: stopForMigrations,
  goLiveSteps,
  // The registry keeps the pushed images (its own garbage collection frees them).
  removeArtifacts: (site, releases) =>
    [
      `${words('docker', 'rmi', ...releases.map((r) => imageName(site, r)))} >/dev/null 2>&1`,
      // A secret still used by a task (a release that runs) stays.
      `${words('docker', 'secret', 'rm', ...releases.map((r) => envSecretName(site, r)))} >/dev/null 2>&1`,
      'true',
    ].join('; '),
  cleanupSteps: () => [],
  logsScript: (site, _paths, q) => swarmLogsScript(site, q),
  failureHeadline: (step, code) =>
    step === 'converge' && code === ROLLED_BACK_EXIT
      ? 'ROLLED BACK: the new release did not become healthy and Swarm rolled the update back'
      : undefined,
  roleNeeds: (site, _paths, host) => {
    refuseWorkers(site);
    // The role owns a swarm site's upstreams: the nodes, not a color.
    return { packages: [], upstream: { content: swarmUpstream(site, host), owner: 'role' } };
  },
};
