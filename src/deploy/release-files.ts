/**
 * Where a release lives on the host and how its commands run as the app user: the building blocks
 * every runtime shares. Like everything the runtimes import, it imports no runtime: through an import
 * cycle a bundled build once evaluated the runtime table before the swarm runtime existed.
 */
import { hereDocument, words } from '../util/shell.js';
import type { SitePaths } from './site-base.js';

/**
 * Runs `command` as the app user, in `cwd`, with the site's environment and virtualenv. The command is
 * a here-document on fd 3, read and evaluated by the app user's shell: it is no process's argument, so
 * `ps` on the host does not show it (see tasks/command.ts, shellOf). It ends the line.
 */
export function asApp(paths: SitePaths, cwd: string, command: string): string {
  // A positional parameter carries the directory: no quoting inside quoting.
  const inner =
    'cd "$1" || exit 1; ' +
    'if [ -f ./.env ]; then set -a; . ./.env; set +a; fi; ' +
    'if [ -d .venv ]; then VIRTUAL_ENV="$PWD/.venv"; PATH="$VIRTUAL_ENV/bin:$PATH"; export VIRTUAL_ENV PATH; fi; ' +
    'vd_s=$(cat <&3); exec 3<&-; set --; eval "$vd_s"';
  return `${words(
    'runuser',
    '-u',
    paths.user,
    '--',
    'env',
    `HOME=${paths.dir}`,
    'sh',
    '-c',
    inner,
    'sh',
    cwd,
  )} ${hereDocument(3, command)}`;
}

export function releaseDir(paths: SitePaths, release: string): string {
  return `${paths.releases}/${release}`;
}

/** Each release carries its environment: what it was deployed with is what it runs with (rollback too). */
export function releaseEnvFile(paths: SitePaths, release: string): string {
  return `${releaseDir(paths, release)}/.env`;
}
