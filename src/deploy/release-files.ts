/**
 * Where a release lives on the host and how its commands run as the app user: the building blocks
 * every runtime shares. Like everything the runtimes import, it imports no runtime: through an import
 * cycle a bundled build once evaluated the runtime table before the swarm runtime existed.
 */
import { words } from '../util/shell.js';
import type { SitePaths } from './site-base.js';

/** Runs `command` as the app user, in `cwd`, with the site's environment and virtualenv. */
export function asApp(paths: SitePaths, cwd: string, command: string): string {
  // Positional parameters carry the values: no quoting inside quoting.
  const inner =
    'cd "$1" || exit 1; ' +
    'if [ -f ./.env ]; then set -a; . ./.env; set +a; fi; ' +
    'if [ -d .venv ]; then VIRTUAL_ENV="$PWD/.venv"; PATH="$VIRTUAL_ENV/bin:$PATH"; export VIRTUAL_ENV PATH; fi; ' +
    'exec sh -c "$2"';
  return words(
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
    command,
  );
}

export function releaseDir(paths: SitePaths, release: string): string {
  return `${paths.releases}/${release}`;
}

/** Each release carries its environment: what it was deployed with is what it runs with (rollback too). */
export function releaseEnvFile(paths: SitePaths, release: string): string {
  return `${releaseDir(paths, release)}/.env`;
}
