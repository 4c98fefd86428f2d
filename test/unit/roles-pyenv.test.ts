/** pyenv role without a host: where things go and which python-build knobs are passed. */
import test from 'ava';
import role, { buildEnv, layout, vars } from '../../roles/pyenv/index.js';
import { hostInfo } from '../fixtures/roles/host-info.js';

test('system install under /opt/pyenv, profile in /etc/profile.d', (t) => {
  const where = layout(vars.parse({ pyenv_python_version: '3.12.4' }));
  t.is(where.root, '/opt/pyenv');
  t.is(where.owner, 'root');
  t.is(where.profile, '/etc/profile.d/pyenv.sh');
  t.is(where.python, '/opt/pyenv/versions/3.12.4/bin/python');
});

test("user install in the user's home", (t) => {
  const where = layout(vars.parse({ pyenv_user: 'app' }));
  t.is(where.root, '/home/app/.pyenv');
  t.is(where.owner, 'app');
  t.is(where.profile, '/home/app/.pyenv_profile');
});

test('mirror and cache reach python-build through its environment', (t) => {
  const v = vars.parse({
    python_build_mirror_url: 'http://mirror.internal/python',
    python_build_mirror_url_skip_checksum: true,
    pyenv_build_cache_dir: '/var/cache/python-build',
  });
  t.deepEqual(buildEnv(v, '/opt/pyenv'), {
    PYENV_ROOT: '/opt/pyenv',
    PYTHON_BUILD_MIRROR_URL: 'http://mirror.internal/python',
    PYTHON_BUILD_MIRROR_URL_SKIP_CHECKSUM: '1',
    PYTHON_BUILD_CACHE_PATH: '/var/cache/python-build',
  });
  t.deepEqual(buildEnv(vars.parse({}), '/r'), { PYENV_ROOT: '/r' });
});

test('tasks: install guarded by the built python, removal of others only when asked', async (t) => {
  const base = (await role.tasks(vars.parse({ pyenv_user: 'app' }), hostInfo('web1'))) as any[];
  const install = base.find((x) => x.name.startsWith('pyenv install'));
  t.truthy(install);
  t.false(install.alwaysRuns === true);
  t.false(base.some((x) => x.name.startsWith('remove Python versions')));
  const withRemoval = (await role.tasks(
    vars.parse({ pyenv_user: 'app', pyenv_remove_other_versions: true }),
    hostInfo('web1'),
  )) as any[];
  t.true(withRemoval.some((x) => x.name.startsWith('remove Python versions')));
  t.throws(() => vars.parse({ pyenv_python_version: '3.11; rm -rf /' }));
});
