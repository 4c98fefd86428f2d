/**
 * The language package task types end to end on a fresh Debian test host, with no public registry:
 * pip installs wheels built on the host itself, from a `--find-links` directory and from a package
 * index served on the host's loopback. Each type converges the host, a second run changes nothing,
 * `--check` leaves the host as it was, and a change made by hand is repaired.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { taskRuns } from '../helpers/task-runs.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'tb-packages';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-tasks-packages-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const { playbook, run, ssh, changedBy, lifecycle } = taskRuns(hosts, HOST, dir);

const APT = 'DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0';

/** Python writing a pure-Python wheel of `tbdemo` at a version into a directory (argv: version, dir). */
const MAKE_WHEEL = `
import base64, hashlib, sys, zipfile
version, out = sys.argv[1], sys.argv[2]
info = f'tbdemo-{version}.dist-info'
files = {
    'tbdemo/__init__.py': f"VERSION = '{version}'\\n",
    f'{info}/METADATA': f'Metadata-Version: 2.1\\nName: tbdemo\\nVersion: {version}\\n',
    f'{info}/WHEEL': 'Wheel-Version: 1.0\\nGenerator: verdandi-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n',
}
record = ''.join(
    f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},{len(text.encode())}\\n"
    for path, text in files.items()
) + f'{info}/RECORD,,\\n'
files[f'{info}/RECORD'] = record
with zipfile.ZipFile(f'{out}/tbdemo-{version}-py3-none-any.whl', 'w') as wheel:
    for path, text in files.items():
        wheel.writestr(path, text)
`;

const makeWheel = (version: string, out: string) =>
  ssh(`mkdir -p ${out} && python3 - ${version} ${out}`, MAKE_WHEEL);

const importedVersion = (venv: string) =>
  `${venv}/bin/python -c 'import tbdemo; print(tbdemo.VERSION)' 2>/dev/null; true`;

test.serial('pip: without python3-venv the task fails, naming the package to install', async (t) => {
  await ssh(`${APT} remove python3-venv python3.11-venv >/dev/null 2>&1 || true`);
  const file = playbook(
    'pip-no-venv',
    ['pip'],
    [`pip(${JSON.stringify({ virtualenv: '/srv/tb-venv-none', packages: 'tbdemo' })})`],
  );
  const res = await run(file);
  t.is(res.code, 2, res.stdout + res.stderr);
  t.regex(res.stdout + res.stderr, /pip \/srv\/tb-venv-none: python3 .*apt\(\{ packages: .*'python3-venv'/);
  t.notRegex(res.stdout + res.stderr, /\n\s+at /, 'no stack trace');
  t.is((await hosts.ssh(HOST, 'test -e /srv/tb-venv-none')).code, 1, 'nothing was created');
  await ssh(
    `(${APT} install python3-venv || (apt-get -q update && ${APT} install python3-venv)) >/dev/null 2>&1`,
  );
});

test.serial(
  'pip: a wheel from findLinks with extraArgs into a new virtualenv; uninstalled by hand, reinstalled',
  async (t) => {
    await makeWheel('1.0', '/srv/tb-wheels');
    const venv = '/srv/tb-venv';
    const file = playbook(
      'pip-find-links',
      ['pip'],
      [
        `pip(${JSON.stringify({ virtualenv: venv, packages: 'tbdemo==1.0', findLinks: '/srv/tb-wheels', extraArgs: ['--no-index'] })})`,
      ],
    );
    await lifecycle(t, {
      file,
      label: /pip tbdemo==1\.0 in \/srv\/tb-venv \(.*\)/,
      state: importedVersion(venv),
      converged: '1.0\n',
      drift: `${venv}/bin/python -m pip uninstall -q -y tbdemo`,
    });
  },
);

test.serial(
  'pip: latest from a package index on the host upgrades when the index has a newer version; absent removes',
  async (t) => {
    const index = '/srv/tb-index/simple/tbdemo';
    await makeWheel('1.0', index);
    const page = (versions: string[]) =>
      `<html><body>${versions.map((v) => `<a href="tbdemo-${v}-py3-none-any.whl">tbdemo-${v}-py3-none-any.whl</a>`).join('\n')}</body></html>\n`;
    await ssh(`cat > ${index}/index.html`, page(['1.0']));
    await ssh(
      'systemd-run --unit=tb-pip-index --quiet python3 -m http.server 8765 --bind 127.0.0.1 --directory /srv/tb-index',
    );
    // Wait until the index answers (python3 is there; curl may not be).
    await ssh(
      `for i in $(seq 1 100); do python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8765/simple/tbdemo/')" 2>/dev/null && exit 0; sleep 0.1; done; exit 1`,
    );
    const venv = '/srv/tb-venv-index';
    const options = {
      virtualenv: venv,
      packages: 'tbdemo',
      state: 'latest',
      indexUrl: 'http://127.0.0.1:8765/simple',
    };
    const file = playbook('pip-index', ['pip'], [`pip(${JSON.stringify(options)})`]);
    t.is(await changedBy(t, file), 1);
    t.is(await ssh(importedVersion(venv)), '1.0\n');
    t.is(await changedBy(t, file), 0, 'the index has nothing newer');

    await makeWheel('2.0', index);
    await ssh(`cat > ${index}/index.html`, page(['1.0', '2.0']));
    const check = await run(file, '--check');
    t.is(check.code, 0, check.stdout + check.stderr);
    t.regex(
      check.stdout,
      /would change\s+tb-packages\s+.*pip tbdemo in \/srv\/tb-venv-index \(installs tbdemo 2\.0\)/,
    );
    t.is(await ssh(importedVersion(venv)), '1.0\n', '--check changed nothing');
    t.is(await changedBy(t, file), 1);
    t.is(await ssh(importedVersion(venv)), '2.0\n');

    const absent = playbook(
      'pip-absent',
      ['pip'],
      [`pip(${JSON.stringify({ virtualenv: venv, packages: 'TBDemo', state: 'absent' })})`],
    );
    t.is(await changedBy(t, absent), 1);
    t.is(await ssh(importedVersion(venv)), '');
    t.is(await changedBy(t, absent), 0);
    await ssh('systemctl stop tb-pip-index');
  },
);

