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
import { quote, sh, words } from '../../util/shell.js';
import type { PlanStep } from '../plan.js';
import { imageName, releaseDir, releaseEnvFile } from '../release-files.js';
import type { Site, SitePaths } from '../site.js';
import { dockerImage, runInImage } from './docker.js';
import type { DeployRuntime, RolloutInput } from './index.js';

/** Exit code of the convergence wait when Swarm rolled the update back (failure_action: rollback). */
export const ROLLED_BACK_EXIT = 3;

function swarmOf(site: Site) {
  if (site.runtime.type !== 'swarm') throw new Error(`site ${site.name} is not a swarm site`);
  return site.runtime;
}

/** A compose service's name in the site's stack. */
export function stackService(site: Site, service: string): string {
  return `${site.name}_${service}`;
}

/** The Docker secret that holds a release's environment file. */
export function envSecretName(site: Site, release: string): string {
  return `${site.name}-env-${release}`;
}

/** `docker login` to the site's registry, the password on stdin. Null without a registry. */
export function registryLogin(site: Site): string | null {
  const r = swarmOf(site).registry;
  if (!r) return null;
  return `${words('docker', 'login', r.address, '--username', r.username, '--password-stdin')} >/dev/null`;
}

export function pushImage(site: Site, release: string): string {
  return `${words('docker', 'push', imageName(site, release))} >/dev/null`;
}

/**
 * The release's environment as a Docker secret, read from its 0600 file (no value on a command line).
 * A site without env has an empty file, and Docker refuses an empty secret ("secret data must be larger
 * than 0"): its secret is then one empty line, which the documented entrypoint loop skips.
 */
export function createEnvSecret(site: Site, paths: SitePaths, release: string): string {
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
export function deployStack(site: Site, paths: SitePaths, release: string): string {
  const rt = swarmOf(site);
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
export function convergeScript(site: Site, release: string): string {
  const rt = swarmOf(site);
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
export function scaleToZero(site: Site, services: string[], timeoutSeconds = 120): string {
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
export function stackStatusScript(site: Site): string {
  return [
    `${words('docker', 'stack', 'services', '--format', 'swarm_service={{.Name}}|{{.Replicas}}|{{.Image}}', site.name)} 2>/dev/null`,
    `${words('docker', 'stack', 'ps', '--filter', 'desired-state=running', '--format', 'swarm_task={{.Name}}|{{.Node}}|{{.CurrentState}}|{{.Image}}', site.name)} 2>/dev/null`,
  ].join('\n');
}

/** Steps that deploy `previous` again (the undo of anything that touched the stack). */
function restore(site: Site, paths: SitePaths, previous: string | undefined): string[] {
  if (!previous) return [`${words('docker', 'stack', 'rm', site.name)} >/dev/null 2>&1; true`];
  return [deployStack(site, paths, previous), convergeScript(site, previous)];
}

/**
 * A deploy's steps after the build and checks, before any migration (so maintenance lasts no longer
 * than it must): the registry login, the push, the environment's secret.
 */
function publish(i: RolloutInput): PlanStep[] {
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

function login({ site, registryPassword }: RolloutInput): PlanStep[] {
  const command = registryLogin(site);
  if (!command) return [];
  if (registryPassword === undefined)
    throw new Error(`site ${site.name}: the registry password was not read from the secrets`);
  return [{ phase: 'build', title: 'registry login', command, stdin: `${registryPassword}\n` }];
}

function envSecret({ site, paths, release }: RolloutInput): PlanStep {
  return { phase: 'build', title: 'environment secret', command: createEnvSecret(site, paths, release) };
}

/** Milliseconds a step that waits for the stack may take (its wait, plus Docker's own commands). */
function stackTimeoutMs(site: Site): number {
  return (swarmOf(site).convergeTimeout + 60) * 1000;
}

/**
 * The stack deploy and the wait for convergence. A deploy published the release before; a rollback
 * logs in again (the credentials `--with-registry-auth` hands the nodes) and makes sure the target's
 * secret exists.
 */
function rollout(i: RolloutInput): PlanStep[] {
  const { site, paths, release, previous } = i;
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

function stopForMigrations(i: RolloutInput): PlanStep[] {
  const { site, paths, previous } = i;
  // Nothing runs before the first release.
  if (!previous) return [];
  const rt = swarmOf(site);
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

const noColors = (what: string) => () => {
  throw new Error(`${what}: swarm sites have no colors`);
};

export const swarm: DeployRuntime = {
  ...dockerImage,
  inRelease: (site, paths, release, command) =>
    runInImage(site, paths, release, command, swarmOf(site).runOptions),
  colors: false,
  slotState: () => '',
  processState: () => null,
  start: noColors('start'),
  pause: noColors('pause'),
  resume: noColors('resume'),
  stop: noColors('stop'),
  // The registry keeps the pushed images (its own garbage collection frees them).
  removeArtifacts: (site, releases) =>
    [
      `${words('docker', 'rmi', ...releases.map((r) => imageName(site, r)))} >/dev/null 2>&1`,
      // A secret still used by a task (a release that runs) stays.
      `${words('docker', 'secret', 'rm', ...releases.map((r) => envSecretName(site, r)))} >/dev/null 2>&1`,
      'true',
    ].join('; '),
  publish,
  rollout,
  stopForMigrations,
  statusScript: (site) => stackStatusScript(site),
};
