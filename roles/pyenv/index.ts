/**
 * pyenv: the Python of the app, built from source by pyenv (`pyenv_python_version` is the
 * upgrade knob).
 *
 * - build dependencies from apt;
 * - pyenv cloned from `pyenv_git_url` at `pyenv_version`, into the app user's home (`pyenv_user`) or a
 *   system path (`/opt/pyenv`, owned by root);
 * - shell init for login shells (`/etc/profile.d/pyenv.sh`, or the user's `~/.pyenv_profile` sourced
 *   from `~/.profile`);
 * - `pyenv install -s <pyenv_python_version>` (skipped when that Python is already built), made global;
 * - optionally, every other installed version removed (`pyenv_remove_other_versions`);
 * - for hosts that cannot reach python.org: `python_build_mirror_url` (python-build's
 *   PYTHON_BUILD_MIRROR_URL) and `pyenv_build_cache_dir` (PYTHON_BUILD_CACHE_PATH: source tarballs put
 *   there are used instead of downloading).
 */
import {
  apt,
  command,
  copy,
  defineRole,
  directory,
  git,
  lineinfile,
  quote,
  shell,
  type Task,
  template,
  user,
  z,
} from 'verdandi';

const version = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]*$/, 'a version is letters, digits, ".", "_", "+" or "-"');
const absolutePath = z.string().regex(/^\/[A-Za-z0-9_./+-]*$/, 'an absolute path without spaces');

/** What pyenv's wiki lists for building CPython on Debian. */
export const BUILD_PACKAGES = [
  'build-essential',
  'ca-certificates',
  'curl',
  'git',
  'libbz2-dev',
  'libffi-dev',
  'liblzma-dev',
  'libncursesw5-dev',
  'libreadline-dev',
  'libsqlite3-dev',
  'libssl-dev',
  'libxml2-dev',
  'libxmlsec1-dev',
  'make',
  'tk-dev',
  'xz-utils',
  'zlib1g-dev',
];

export const vars = z.object({
  /** Install for this user, in their home. Unset: a system install in `pyenv_root`, owned by root. */
  pyenv_user: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/)
    .optional(),
  /** Create `pyenv_user` (with a home) when it does not exist. */
  pyenv_create_user: z.boolean().default(true),
  /** Home of `pyenv_user`. Default: `/home/<pyenv_user>`. */
  pyenv_user_home: absolutePath.optional(),
  /** Where pyenv lives. Default: `<home>/.pyenv` for a user, `/opt/pyenv` otherwise. */
  pyenv_root: absolutePath.optional(),
  pyenv_git_url: z.string().min(1).default('https://github.com/pyenv/pyenv.git'),
  /** Branch, tag or commit of pyenv. */
  pyenv_version: version.default('v2.4.16'),
  /** The Python that is built and made global. */
  pyenv_python_version: version.default('3.11.9'),
  /** Uninstall every other Python version found in `<pyenv_root>/versions`. */
  pyenv_remove_other_versions: z.boolean().default(false),
  pyenv_build_packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]*$/)).default(BUILD_PACKAGES),
  /** PYTHON_CONFIGURE_OPTS, e.g. `--enable-shared`. */
  pyenv_python_configure_opts: z.string().default(''),
  /** PYTHON_BUILD_MIRROR_URL: where python-build downloads source tarballs from instead of python.org. */
  python_build_mirror_url: z.string().min(1).optional(),
  /** PYTHON_BUILD_MIRROR_URL_SKIP_CHECKSUM: the mirror serves `<version>/Python-<version>.tar.xz` paths
   * (a plain copy of python.org's tree) rather than files named by checksum. */
  python_build_mirror_url_skip_checksum: z.boolean().default(false),
  /** PYTHON_BUILD_CACHE_PATH: a directory of source tarballs (`Python-3.11.9.tar.xz`) used before any
   * download. Created when missing. */
  pyenv_build_cache_dir: absolutePath.optional(),
});

export type PyenvVars = z.infer<typeof vars>;

const templateFile = (name: string) => new URL(`./templates/${name}`, import.meta.url);

/** Where things go, from the vars. */
export function layout(v: PyenvVars) {
  const home = v.pyenv_user ? (v.pyenv_user_home ?? `/home/${v.pyenv_user}`) : undefined;
  const root = v.pyenv_root ?? (home ? `${home}/.pyenv` : '/opt/pyenv');
  return {
    home,
    root,
    owner: v.pyenv_user ?? 'root',
    pyenv: `${root}/bin/pyenv`,
    python: `${root}/versions/${v.pyenv_python_version}/bin/python`,
    /** Login shells read this: /etc/profile.d for a system install, the user's own file otherwise. */
    profile: home ? `${home}/.pyenv_profile` : '/etc/profile.d/pyenv.sh',
  };
}

/** Environment of `pyenv install`: python-build's knobs. */
export function buildEnv(v: PyenvVars, root: string): Record<string, string> {
  const env: Record<string, string> = { PYENV_ROOT: root };
  if (v.python_build_mirror_url) env.PYTHON_BUILD_MIRROR_URL = v.python_build_mirror_url;
  if (v.python_build_mirror_url_skip_checksum) env.PYTHON_BUILD_MIRROR_URL_SKIP_CHECKSUM = '1';
  if (v.pyenv_build_cache_dir) env.PYTHON_BUILD_CACHE_PATH = v.pyenv_build_cache_dir;
  if (v.pyenv_python_configure_opts) env.PYTHON_CONFIGURE_OPTS = v.pyenv_python_configure_opts;
  return env;
}

export default defineRole({
  name: 'pyenv',
  description: 'pyenv from git and one Python built by it, made global',
  vars,
  tasks(v) {
    const where = layout(v);
    const asUser = v.pyenv_user;
    const tasks: Task[] = [apt({ packages: v.pyenv_build_packages })];
    if (asUser && v.pyenv_create_user) tasks.push(user({ user: asUser, createHome: true }));
    tasks.push(
      git({ repo: v.pyenv_git_url, dest: where.root, version: v.pyenv_version, owner: where.owner }),
    );
    if (v.pyenv_build_cache_dir) {
      tasks.push(directory({ path: v.pyenv_build_cache_dir, owner: where.owner, mode: '0755' }));
    }

    tasks.push(
      template({
        path: where.profile,
        src: templateFile('profile.sh.hbs'),
        vars: { root: quote(where.root), pythonVersion: v.pyenv_python_version },
        owner: where.owner,
        mode: '0644',
      }),
    );
    if (where.home) {
      tasks.push(
        lineinfile({
          path: `${where.home}/.profile`,
          line: '[ -f "$HOME/.pyenv_profile" ] && . "$HOME/.pyenv_profile"',
          create: true,
        }),
      );
    }

    tasks.push(
      command({
        name: `pyenv install ${v.pyenv_python_version}`,
        argv: [where.pyenv, 'install', '-s', v.pyenv_python_version],
        user: asUser,
        cwd: where.root,
        env: buildEnv(v, where.root),
        creates: where.python,
      }),
      // `pyenv global X` only writes this file: writing it ourselves makes it idempotent for free.
      copy({
        path: `${where.root}/version`,
        content: `${v.pyenv_python_version}\n`,
        owner: where.owner,
        mode: '0644',
      }),
    );

    if (v.pyenv_remove_other_versions) {
      const versionsDir = `${where.root}/versions`;
      tasks.push(
        shell({
          name: `remove Python versions other than ${v.pyenv_python_version}`,
          script: [
            `for d in ${quote(versionsDir)}/*; do`,
            '  [ -d "$d" ] || continue',
            '  name=$(basename "$d")',
            `  [ "$name" = ${quote(v.pyenv_python_version)} ] && continue`,
            '  echo "uninstalling Python $name"',
            `  ${quote(where.pyenv)} uninstall -f "$name"`,
            'done',
          ].join('\n'),
          user: asUser,
          cwd: where.root,
          env: { PYENV_ROOT: where.root },
          onlyIf: `ls -1 ${quote(versionsDir)} 2>/dev/null | grep -qvxF ${quote(v.pyenv_python_version)}`,
        }),
      );
    }
    return tasks;
  },
});
