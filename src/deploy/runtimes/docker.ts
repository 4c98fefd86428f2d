/**
 * Docker sites: each color is a container of the release's image (built on the host from the release,
 * without its .env), published on the color's port; the release's commands run in its image.
 */
import { z } from 'zod';
import { UserError } from '../../util/errors.js';
import { hereDocument, quote, sh, words } from '../../util/shell.js';
import type { PlanStep } from '../plan-step.js';
import { releaseDir, releaseEnvFile } from '../release-files.js';
import { COLORS, type SitePaths } from '../site-base.js';
import { type ColorOps, initialUpstream, withColors } from './colors.js';
import { allSources, dockerLogFlags, taggedSource } from './log-lines.js';
import type { DeployRuntime, LogsQuery, RuntimeSite } from './runtime.js';

const schema = z.object({
  type: z.literal('docker'),
  /** Dockerfile path relative to the release; the image is built on the host from the release. */
  dockerfile: z.string().default('Dockerfile'),
  /** Port the application listens on inside the container (also given as $PORT). */
  containerPort: z.number().int().min(1).max(65535).default(8000),
  /** Extra `docker run` options (volumes, --add-host...). */
  runOptions: z.array(z.string()).default([]),
});

export type DockerSite = RuntimeSite<z.infer<typeof schema>>;

/** A site whose release is an image: docker and swarm sites. */
export type ImageSite = RuntimeSite<{ type: string; dockerfile: string }>;

/** The release's image: `verdandi/<site>:<release>`, under the registry's address when there is one. */
export function imageName(site: RuntimeSite, release: string, registry?: string): string {
  return `${registry ? `${registry}/` : ''}verdandi/${site.name}:${release}`;
}

/**
 * Runs a site command (build, check, migration) in a one-off container of the release's image. The
 * command is a here-document on docker's standard input (`-i`), read and evaluated by the container's
 * shell: it is no process's argument (a container's processes show in the host's `ps`), and it runs
 * with no standard input, as it did before. It ends the line.
 */
export function runInImage(
  image: string,
  paths: SitePaths,
  release: string,
  command: string,
  options: string[],
): string {
  return `${words(
    'docker',
    'run',
    '--rm',
    '-i',
    '--env-file',
    releaseEnvFile(paths, release),
    '--network',
    'host',
    ...options,
    image,
    'sh',
    '-c',
    'vd_s=$(cat); exec 0</dev/null; eval "$vd_s"',
  )} ${hereDocument(0, command)}`;
}

/**
 * Builds the release's image on the host. The context goes through tar without the release's .env:
 * secrets never end up in an image layer.
 */
export function imageBuildStep(site: ImageSite, paths: SitePaths, release: string, image: string): PlanStep {
  return {
    phase: 'build',
    title: 'image build',
    command: `${words('tar', '-C', releaseDir(paths, release), '--exclude=./.env', '-c', '.')} | ${words('docker', 'build', '--quiet', '-t', image, '-f', site.runtime.dockerfile, '-')}`,
  };
}

/** docker's env-file syntax: no quoting, so no line breaks. */
export function renderDockerEnv(values: Record<string, string>): string {
  const lines = Object.entries(values).map(([k, v]) => {
    if (/[\r\n]/.test(v)) throw new Error(`${k}: a docker env file cannot hold a value with a line break`);
    return `${k}=${v}`;
  });
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/**
 * `verdandi console` in a running container, whose name is in `$vd_c` once `find` ran (it exits 1 with
 * a message when there is none): `docker exec` with a terminal when the console has one. In the
 * container, `prelude` (swarm: the environment from its secret) then the command, else bash or sh.
 * The command is `docker exec`'s argument: the user's own command line, never a value of the `.env`.
 */
export function containerConsole(find: string, prelude: string, command: string | undefined): string {
  const inner = `${prelude}${command === undefined ? 'if command -v bash >/dev/null 2>&1; then exec bash; fi; exec sh' : `exec ${command}`}`;
  return [
    find,
    'if [ -t 0 ]; then vd_t=-it; else vd_t=-i; fi',
    `exec docker exec "$vd_t" "$vd_c" sh -c ${quote(inner)}`,
  ].join('\n');
}

/** Process options are for supervised sites: a container site with workers is refused. */
export function refuseWorkers(site: RuntimeSite): void {
  if (site.process.workers.length > 0) {
    throw new UserError(
      `site ${site.name}: process.workers are for python and node sites (supervisor programs)`,
      1,
    );
  }
}

const containerColors: ColorOps<DockerSite> = {
  slotState: (_site, paths, color) =>
    sh`r=$(docker inspect -f '{{index .Config.Labels "verdandi.release"}}' ${paths.program(color)} 2>/dev/null) && echo "slot_${color}=$r"`,
  processState: (_site, paths, color) =>
    `echo "proc_${color}=$(${sh`docker inspect -f '{{.State.Status}}' ${paths.program(color)}`} 2>/dev/null || echo absent)"`,
  start: (site, paths, color, release) => {
    const rt = site.runtime;
    const name = paths.program(color);
    return [
      sh`docker rm -f ${name} >/dev/null 2>&1`,
      words(
        'docker',
        'run',
        '--detach',
        '--name',
        name,
        '--restart',
        'unless-stopped',
        '--env-file',
        releaseEnvFile(paths, release),
        '--env',
        `PORT=${rt.containerPort}`,
        '--publish',
        `127.0.0.1:${paths.port(color)}:${rt.containerPort}`,
        '--label',
        `verdandi.site=${site.name}`,
        '--label',
        `verdandi.release=${release}`,
        '--stop-timeout',
        site.process.stopTimeout,
        ...rt.runOptions,
        imageName(site, release),
      ),
    ].join('; ');
  },
  pause: (site, paths, color) =>
    `${sh`docker stop --time ${site.process.stopTimeout} ${paths.program(color)} >/dev/null 2>&1`}; true`,
  resume: (_site, paths, color) => sh`docker start ${paths.program(color)}`,
  stop: (site, paths, color) => {
    const name = paths.program(color);
    return [
      sh`docker stop --time ${site.process.stopTimeout} ${name} >/dev/null 2>&1`,
      sh`docker rm -f ${name} >/dev/null 2>&1`,
      'true',
    ].join('; ');
  },
};

/** `docker logs` of each color's container that exists (the idle one keeps its last output). */
export function dockerLogsScript(_site: DockerSite, paths: SitePaths, q: LogsQuery): string {
  return allSources(
    COLORS.map((color) => {
      const container = paths.program(color);
      return taggedSource(
        color,
        `${words('docker', 'container', 'inspect', container)} >/dev/null 2>&1 && ${words('docker', 'logs', ...dockerLogFlags(q), container)}`,
      );
    }),
  );
}

export const docker: DeployRuntime<DockerSite, typeof schema> = {
  ...withColors(containerColors),
  schema,
  registryPasswordSecret: () => undefined,
  renderEnv: renderDockerEnv,
  buildSteps: ({ site, paths, release }) => [imageBuildStep(site, paths, release, imageName(site, release))],
  inRelease: (site, paths, release, command) =>
    runInImage(imageName(site, release), paths, release, command, []),
  removeArtifacts: (site, releases) =>
    `${words('docker', 'rmi', ...releases.map((r) => imageName(site, r)))} >/dev/null 2>&1; true`,
  cleanupSteps: () => [],
  logsScript: dockerLogsScript,
  consoleScript: ({ paths, live, command }) => {
    // Without a known live color (no upstream file), blue: the color of a site's first deploy.
    const name = paths.program(live ?? 'blue');
    const find = [
      sh`vd_c=${name}`,
      sh`if [ "$(docker inspect -f '{{.State.Running}}' ${name} 2>/dev/null)" != true ]; then echo ${`the container ${name} of the live release is not running (see verdandi status)`} >&2; exit 1; fi`,
    ].join('\n');
    return containerConsole(find, '', command);
  },
  roleNeeds: (site, paths) => {
    refuseWorkers(site);
    return { packages: [], upstream: initialUpstream(paths) };
  },
};
