/** Python sites: supervisor programs; a virtualenv per requirements, shared between releases. */
import { quote, words } from '../../util/shell.js';
import { asApp, releaseDir } from '../release-files.js';
import type { Site, SitePaths } from '../site.js';
import type { DeployRuntime } from './index.js';
import { supervisedRuntime } from './supervised.js';

/** The python binary a python site's virtualenv is made from. */
export function pythonBinary(site: Site): string {
  if (site.runtime.type !== 'python') throw new Error('not a python site');
  const rt = site.runtime;
  return rt.python === 'system' ? '/usr/bin/python3' : `${rt.pyenvRoot}/versions/${rt.python}/bin/python`;
}

/**
 * The release's virtualenv: `.venv` → `shared/venvs/<key>`, where the key hashes the requirements file,
 * the interpreter and the pip options. A deploy that does not change the requirements reuses the
 * virtualenv of the previous release (seconds instead of a pip install); a new one is built in place
 * (virtualenvs cannot be moved) and marked complete only once pip succeeded, so a failed build is
 * rebuilt next time. Runs as the app user, in the release.
 */
export function pythonVenvScript(site: Site, paths: SitePaths): string {
  if (site.runtime.type !== 'python') throw new Error('not a python site');
  const rt = site.runtime;
  const recipe = words(
    pythonBinary(site),
    rt.systemSitePackages && '--system-site-packages',
    ...rt.pipOptions,
  );
  const venvs = `${paths.shared}/venvs`;
  return [
    `key=$( { cat ${quote(rt.requirements)} 2>/dev/null; echo ${quote(recipe)}; } | sha256sum | cut -c1-16 )`,
    `venv=${quote(venvs)}/$key`,
    'if [ ! -f "$venv/.verdandi-complete" ]; then',
    '  rm -rf "$venv"',
    `  mkdir -p ${quote(venvs)}`,
    `  ${words(pythonBinary(site), '-m', 'venv', rt.systemSitePackages && '--system-site-packages')} "$venv" || exit 1`,
    `  if [ -f ${quote(rt.requirements)} ]; then`,
    `    "$venv/bin/pip" install --quiet --disable-pip-version-check ${words(...rt.pipOptions)} -r ${quote(rt.requirements)} || exit 1`,
    '  fi',
    '  touch "$venv/.verdandi-complete"',
    'else',
    '  echo "reusing the virtualenv $venv (same requirements)"',
    'fi',
    'ln -sfn "$venv" .venv',
  ].join('\n');
}

/** Removes the shared virtualenvs no kept release links to. */
export function pruneVenvs(paths: SitePaths): string {
  const venvs = `${paths.shared}/venvs`;
  return [
    `for v in ${quote(venvs)}/*; do`,
    '  [ -d "$v" ] || continue',
    '  used=no',
    `  for l in ${quote(paths.releases)}/*/.venv; do [ "$(readlink "$l")" = "$v" ] && used=yes; done`,
    '  if [ "$used" = no ]; then rm -rf "$v"; fi',
    'done',
    'true',
  ].join('\n');
}

const withVirtualenv = (site: Parameters<DeployRuntime['cleanup']>[0]) =>
  site.runtime.type === 'python' && site.runtime.virtualenv;

export const python: DeployRuntime = {
  ...supervisedRuntime,
  dependenciesTitle: 'dependencies',
  dependencies: (site, paths, release) =>
    withVirtualenv(site) ? asApp(paths, releaseDir(paths, release), pythonVenvScript(site, paths)) : null,
  cleanup: (site, paths) =>
    withVirtualenv(site) ? [{ title: 'unused virtualenvs', command: pruneVenvs(paths) }] : [],
};
