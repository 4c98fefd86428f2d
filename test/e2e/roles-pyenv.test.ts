/**
 * The pyenv role on a fresh test host over real SSH, served STAND-INS for upstream pyenv and for a
 * CPython source tarball (test/fixtures/roles/pyenv-standin/README.md says why and what they do): the
 * build machines reach neither GitHub nor python.org, and compiling the real CPython takes minutes per
 * version on 2 cores, more than the CI budget allows for a test whose subject is the role.
 *
 * The stand-ins are put on the host as a local git repository (pyenv) and a python-build mirror
 * directory (file:// URL) and cache directory (the tarballs), which the role gets through its ordinary
 * vars: `pyenv_git_url`, `python_build_mirror_url`, `pyenv_build_cache_dir`.
 */
import test from 'ava';
import {
  assertConverged,
  PYENV_STANDIN_VARS,
  projectDir,
  provision,
  pyenvStandins,
  sshOk,
  stackInventory,
} from '../fixtures/roles/e2e.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'roles-pyenv';
const hosts = useTestHosts(test, [HOST]);
const project = projectDir('roles-pyenv');
test.after.always(() => project.cleanup());

const vars = (pythonVersion: string, extra: Record<string, unknown> = {}) => ({
  ...PYENV_STANDIN_VARS,
  pyenv_user: 'app',
  pyenv_python_version: pythonVersion,
  ...extra,
});
const inventory = (v: Record<string, unknown>) =>
  stackInventory(project.dir, [hosts.get(HOST)], ['pyenv'], v);

/** As the app user in a login shell: what a person gets after `sudo -iu app`. */
const asApp = (cmd: string) => `runuser -l app -c '${cmd}'`;

/** Puts what the role is served on the host (after the host booted: ava runs before hooks concurrently). */
async function prepareHost(): Promise<void> {
  const { script, input } = pyenvStandins();
  const r = await hosts.ssh(HOST, script, { input });
  if (r.code !== 0) throw new Error(`preparing the stand-ins failed: ${r.stderr}`);
}

test.serial(
  'converges: pyenv from the local repository, Python from the mirror, global, in login shells',
  async (t) => {
    await prepareHost();
    const r = await provision(project.dir, inventory(vars('3.11-standin')));
    t.true(assertConverged(t, r, HOST).changed > 0);

    // The checkout is at the tag, owned by the app user, in its home.
    t.is((await sshOk(t, hosts, HOST, 'stat -c %U /home/app/.pyenv/bin/pyenv')).trim(), 'app');
    t.is(await sshOk(t, hosts, HOST, asApp('pyenv --version')), 'pyenv 0.0.1-standin\n');
    t.is(await sshOk(t, hosts, HOST, asApp('pyenv version-name')), '3.11-standin\n');
    // Python runs through pyenv's shims, from a login shell's PATH.
    t.is(await sshOk(t, hosts, HOST, asApp('command -v python')), '/home/app/.pyenv/shims/python\n');
    t.is(
      await sshOk(
        t,
        hosts,
        HOST,
        asApp('python -c "import os; print(6 * 7, os.environ[\\"VERDANDI_STANDIN_PYTHON\\"])"'),
      ),
      '42 3.11-standin\n',
    );
  },
);

test.serial('a second run changes nothing', async (t) => {
  const r = await provision(project.dir, inventory(vars('3.11-standin')));
  t.is(assertConverged(t, r, HOST).changed, 0, r.stdout);
});

test.serial(
  'upgrade knob: a new pyenv_python_version from the cache directory, the old one removed',
  async (t) => {
    // The role created the cache directory; the tarball is put there as an admin would.
    await sshOk(
      t,
      hosts,
      HOST,
      'cp /srv/python-tarballs/Python-3.12-standin.tar.xz /var/cache/python-build/',
    );
    const r = await provision(
      project.dir,
      inventory(
        vars('3.12-standin', {
          pyenv_remove_other_versions: true,
          python_build_mirror_url: 'file:///nonexistent',
        }),
      ),
    );
    t.true(assertConverged(t, r, HOST).changed > 0);
    t.is(await sshOk(t, hosts, HOST, 'ls /home/app/.pyenv/versions'), '3.12-standin\n');
    t.is(
      await sshOk(
        t,
        hosts,
        HOST,
        asApp('python -c "import os; print(os.environ[\\"VERDANDI_STANDIN_PYTHON\\"])"'),
      ),
      '3.12-standin\n',
    );
    const again = await provision(
      project.dir,
      inventory(
        vars('3.12-standin', {
          pyenv_remove_other_versions: true,
          python_build_mirror_url: 'file:///nonexistent',
        }),
      ),
    );
    t.is(assertConverged(t, again, HOST).changed, 0, again.stdout);
  },
);
