/**
 * Docker sites: each color is a container of the release's image (built on the host from the release,
 * without its .env), published on the color's port; the release's commands run in its image.
 */
import { sh, words } from '../../util/shell.js';
import { imageName, releaseDir, releaseEnvFile } from '../release-files.js';
import type { Site, SitePaths } from '../site.js';
import type { DeployRuntime } from './index.js';

/** Runs a site command (build, check, migration) in a one-off container of the release's image. */
export function runInImage(
  site: Site,
  paths: SitePaths,
  release: string,
  command: string,
  options: string[],
): string {
  return words(
    'docker',
    'run',
    '--rm',
    '--env-file',
    releaseEnvFile(paths, release),
    '--network',
    'host',
    ...options,
    imageName(site, release),
    'sh',
    '-c',
    command,
  );
}

export const dockerImage: Pick<
  DeployRuntime,
  'dependenciesTitle' | 'dependencies' | 'inRelease' | 'renderEnv' | 'removeArtifacts' | 'cleanup'
> = {
  dependenciesTitle: 'image build',
  // The context goes through tar without the release's .env: secrets never end up in an image layer.
  dependencies: (site, paths, release) => {
    if (site.runtime.type !== 'docker' && site.runtime.type !== 'swarm')
      throw new Error('not a container site');
    return `${words('tar', '-C', releaseDir(paths, release), '--exclude=./.env', '-c', '.')} | ${words('docker', 'build', '--quiet', '-t', imageName(site, release), '-f', site.runtime.dockerfile, '-')}`;
  },
  inRelease: (site, paths, release, command) => runInImage(site, paths, release, command, []),
  // docker's env-file syntax: no quoting, so no line breaks.
  renderEnv: (values) => {
    const lines = Object.entries(values).map(([k, v]) => {
      if (/[\r\n]/.test(v)) throw new Error(`${k}: a docker env file cannot hold a value with a line break`);
      return `${k}=${v}`;
    });
    return lines.length ? `${lines.join('\n')}\n` : '';
  },
  removeArtifacts: (site, releases) =>
    `${words('docker', 'rmi', ...releases.map((r) => imageName(site, r)))} >/dev/null 2>&1; true`,
  cleanup: () => [],
};

export const docker: DeployRuntime = {
  ...dockerImage,
  colors: true,
  slotState: (_site, paths, color) =>
    sh`r=$(docker inspect -f '{{index .Config.Labels "verdandi.release"}}' ${paths.program(color)} 2>/dev/null) && echo "slot_${color}=$r"`,
  processState: (_site, paths, color) =>
    `echo "proc_${color}=$(${sh`docker inspect -f '{{.State.Status}}' ${paths.program(color)}`} 2>/dev/null || echo absent)"`,
  start: (site, paths, color, release) => {
    if (site.runtime.type !== 'docker') throw new Error('not a docker site');
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
