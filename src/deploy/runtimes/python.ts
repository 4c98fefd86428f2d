/** Python sites: supervisor programs; a virtualenv per requirements, shared between releases. */
import { z } from 'zod';
import { quote, words } from '../../util/shell.js';
import { asApp, releaseDir } from '../release-files.js';
import type { SitePaths } from '../site-base.js';
import type { DeployRuntime, RuntimeSite } from './runtime.js';
import { supervisedRuntime, supervisorNeeds } from './supervised.js';

const schema = z.object({
  type: z.literal('python'),
  /** `system` (Debian's /usr/bin/python3) or a pyenv version installed by the pyenv role ("3.11.9"). */
  python: z.string().default('system'),
  /** Where pyenv lives when `python` is a version (the pyenv role's root). */
  pyenvRoot: z.string().default('/opt/pyenv'),
  /** Make a virtualenv `.venv` inside each release. */
  virtualenv: z.boolean().default(true),
  /** The virtualenv sees the system's packages (Debian's python3-*), for hosts without a package index. */
  systemSitePackages: z.boolean().default(false),
  /** Requirements file in the repository, installed with pip into the virtualenv when present. */
  requirements: z.string().default('requirements.txt'),
  /** Extra pip options: ['--no-index', '--find-links', '/srv/wheels'] for hosts that cannot reach an index. */
  pipOptions: z.array(z.string()).default([]),
});

export type PythonSite = RuntimeSite<z.infer<typeof schema>>;

/** The python binary a python site's virtualenv is made from. */
export function pythonBinary(site: PythonSite): string {
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
export function pythonVenvScript(site: PythonSite, paths: SitePaths): string {
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

export const python: DeployRuntime<PythonSite, typeof schema> = {
  ...supervisedRuntime,
  schema,
  buildSteps: ({ site, paths, release }) =>
    site.runtime.virtualenv
      ? [
          {
            phase: 'build',
            title: 'dependencies',
            command: asApp(paths, releaseDir(paths, release), pythonVenvScript(site, paths)),
          },
        ]
      : [],
  cleanupSteps: (site, paths) =>
    site.runtime.virtualenv
      ? [{ phase: 'cleanup', title: 'unused virtualenvs', command: pruneVenvs(paths), bestEffort: true }]
      : [],
  // Debian's python makes virtualenvs with python3-venv; a pyenv build has its own venv module.
  roleNeeds: (site, paths) =>
    supervisorNeeds(
      site,
      paths,
      site.runtime.virtualenv && site.runtime.python === 'system' ? ['python3-venv'] : [],
    ),
};
