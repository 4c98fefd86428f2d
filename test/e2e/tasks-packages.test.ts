/**
 * The language package task types end to end on a fresh Debian test host, with no public registry:
 * pip installs wheels built on the host itself, from a `--find-links` directory and from a package
 * index served on the host's loopback. Each type converges the host, a second run changes nothing,
 * `--check` leaves the host as it was, and a change made by hand is repaired.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { taskRuns } from '../helpers/task-runs.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'tb-packages';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-tasks-packages-'));
test.after.always(() => removeProject(dir));

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

import { removeProject } from '../helpers/cli.js';

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

/** A tiny package `tbnpm` at a version, packed with `npm pack` on the host; returns the tarball's path. */
async function packNpm(version: string): Promise<string> {
  const src = `/srv/tb-npm-src-${version}`;
  await ssh(
    `mkdir -p ${src} && cd ${src} && printf '%s' '{"name":"tbnpm","version":"${version}","main":"index.js"}' > package.json && echo "module.exports = '${version}';" > index.js && npm pack --silent >/dev/null`,
  );
  return `${src}/tbnpm-${version}.tgz`;
}

test.serial(
  'npm: without npm the task fails naming the packages; then a packed tarball in a directory',
  async (t) => {
    const missing = playbook(
      'npm-missing',
      ['npm'],
      [`npm(${JSON.stringify({ package: 'tbnpm', global: true })})`],
    );
    const res = await run(missing);
    t.is(res.code, 2, res.stdout + res.stderr);
    t.regex(
      res.stdout + res.stderr,
      /npm tbnpm: npm is not installed on the host: install it first with apt\(\{ packages: \['nodejs', 'npm'\] \}\)/,
    );

    await ssh(
      `(${APT} install --no-install-recommends nodejs npm || (apt-get -q update && ${APT} install --no-install-recommends nodejs npm)) >/dev/null 2>&1`,
    );
    const tarball = await packNpm('1.0.0');
    const app = '/srv/tb-npm-app';
    const file = playbook(
      'npm-path',
      ['npm'],
      [
        `npm(${JSON.stringify({ package: 'tbnpm', version: '1.0.0', source: tarball, path: app, extraArgs: ['--offline'] })})`,
      ],
    );
    await lifecycle(t, {
      file,
      label: /npm tbnpm \(tbnpm is not installed\)/,
      state: `cd ${app} 2>/dev/null && node -p "require('tbnpm')" 2>/dev/null; true`,
      converged: '1.0.0\n',
      drift: `rm -rf ${app}/node_modules/tbnpm`,
    });

    const newer = await packNpm('2.0.0');
    const upgrade = playbook(
      'npm-path-2',
      ['npm'],
      [
        `npm(${JSON.stringify({ package: 'tbnpm', version: '2.0.0', source: newer, path: app, extraArgs: ['--offline'] })})`,
      ],
    );
    t.is(await changedBy(t, upgrade), 1);
    t.is(await ssh(`cd ${app} && node -p "require('tbnpm')"`), '2.0.0\n');
    t.is(await changedBy(t, upgrade), 0);
  },
);

test.serial('npm: global install, then absent removes it', async (t) => {
  const tarball = '/srv/tb-npm-src-1.0.0/tbnpm-1.0.0.tgz';
  const file = playbook(
    'npm-global',
    ['npm'],
    [`npm(${JSON.stringify({ package: 'tbnpm', source: tarball, global: true, extraArgs: ['--offline'] })})`],
  );
  const installed = 'test -f "$(npm root -g)/tbnpm/package.json" && echo yes || echo no';
  t.is(await ssh(installed), 'no\n');
  const check = await run(file, '--check');
  t.is(check.code, 0, check.stdout + check.stderr);
  t.regex(check.stdout, /would change\s+tb-packages\s+.*npm tbnpm \(tbnpm is not installed\)/);
  t.is(await ssh(installed), 'no\n', '--check changed nothing');
  t.is(await changedBy(t, file), 1);
  t.is(await ssh(installed), 'yes\n');
  t.is(await changedBy(t, file), 0);

  const absent = playbook(
    'npm-global-absent',
    ['npm'],
    [`npm(${JSON.stringify({ package: 'tbnpm', global: true, state: 'absent' })})`],
  );
  t.is(await changedBy(t, absent), 1);
  t.is(await ssh(installed), 'no\n');
  t.is(await changedBy(t, absent), 0);
});

/** SQL as postgres in a database, on stdin; the rows as `a|b` lines. */
const psql = (database: string, sql: string) =>
  ssh(`cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -d ${database}`, sql);

test.serial(
  'postgresPrivs: table grants read from the ACLs, converged, revoked by hand and granted again',
  async (t) => {
    await ssh(
      `(${APT} install --no-install-recommends postgresql || (apt-get -q update && ${APT} install --no-install-recommends postgresql)) >/dev/null 2>&1`,
    );
    await ssh('systemctl start postgresql');
    await psql('postgres', 'CREATE ROLE tbreader LOGIN; CREATE ROLE tbwriter LOGIN; CREATE DATABASE tbapp;');
    await psql(
      'tbapp',
      'CREATE TABLE orders (id serial primary key); CREATE TABLE items (id int); CREATE SCHEMA sales; INSERT INTO orders DEFAULT VALUES;',
    );
    const file = playbook(
      'pg-privs-table',
      ['postgresPrivs'],
      [
        `postgresPrivs(${JSON.stringify({ database: 'tbapp', roles: 'tbreader', privs: ['SELECT'], objs: ['orders', 'items'] })})`,
      ],
    );
    const acl = `SELECT relname || ' ' || coalesce(array_to_string(relacl, ','), '-') FROM pg_class WHERE relname IN ('orders', 'items') ORDER BY 1;`;
    await lifecycle(t, {
      file,
      label:
        /postgres privs table tbapp:orders,items tbreader \(grants SELECT on orders to tbreader; SELECT on items to tbreader\)/,
      state: `cd / && runuser -u postgres -- psql -X -A -t -d tbapp -c "${acl}"`,
      converged:
        'items postgres=arwdDxt/postgres,tbreader=r/postgres\norders postgres=arwdDxt/postgres,tbreader=r/postgres\n',
      drift: `cd / && runuser -u postgres -- psql -X -q -d tbapp -c 'REVOKE SELECT ON items FROM tbreader'`,
    });
    t.is(await psql('tbapp', 'SET ROLE tbreader; SELECT count(*) FROM orders;'), '1\n', 'the role can read');
  },
);

test.serial(
  'postgresPrivs: database, schema, sequences in a schema and default privileges; absent revokes',
  async (t) => {
    const file = playbook(
      'pg-privs-more',
      ['postgresPrivs'],
      [
        `postgresPrivs(${JSON.stringify({ database: 'tbapp', roles: 'PUBLIC', privs: 'ALL', type: 'database', state: 'absent' })})`,
        `postgresPrivs(${JSON.stringify({ database: 'tbapp', roles: 'tbwriter', privs: 'CONNECT', type: 'database' })})`,
        `postgresPrivs(${JSON.stringify({ database: 'tbapp', roles: 'tbwriter', privs: ['USAGE', 'CREATE'], type: 'schema', objs: 'sales' })})`,
        `postgresPrivs(${JSON.stringify({ database: 'tbapp', roles: 'tbwriter', privs: 'ALL', type: 'sequence', objs: 'ALL_IN_SCHEMA' })})`,
        `postgresPrivs(${JSON.stringify({ database: 'tbapp', roles: 'tbreader', privs: 'SELECT', type: 'default', objs: 'TABLES', schema: 'sales' })})`,
      ],
    );
    const check = await run(file, '--check');
    t.is(check.code, 0, check.stdout + check.stderr);
    t.regex(
      check.stdout,
      /would change\s+tb-packages\s+.*postgres privs database tbapp PUBLIC \(revokes CONNECT, TEMPORARY on tbapp from PUBLIC\)/,
    );
    t.is(await changedBy(t, file), 5);
    t.is(await changedBy(t, file), 0);
    const state = await psql(
      'tbapp',
      `SELECT array_to_string(datacl, ',') FROM pg_database WHERE datname = 'tbapp';
     SELECT array_to_string(nspacl, ',') FROM pg_namespace WHERE nspname = 'sales';
     SELECT array_to_string(relacl, ',') FROM pg_class WHERE relname = 'orders_id_seq';
     SELECT array_to_string(defaclacl, ',') FROM pg_default_acl;`,
    );
    t.is(
      state,
      'postgres=CTc/postgres,tbwriter=c/postgres\npostgres=UC/postgres,tbwriter=UC/postgres\npostgres=rwU/postgres,tbwriter=rwU/postgres\ntbreader=r/postgres\n',
    );
    // A table created later in the schema by postgres is readable by tbreader through the default.
    t.is(
      await psql(
        'tbapp',
        'GRANT USAGE ON SCHEMA sales TO tbreader; CREATE TABLE sales.q (id int); SET ROLE tbreader; SELECT count(*) FROM sales.q;',
      ),
      '0\n',
    );

    const revoke = playbook(
      'pg-privs-revoke',
      ['postgresPrivs'],
      [
        `postgresPrivs(${JSON.stringify({ database: 'tbapp', roles: 'tbwriter', privs: 'CREATE', type: 'schema', objs: 'sales', state: 'absent' })})`,
      ],
    );
    t.is(await changedBy(t, revoke), 1);
    t.is(
      await psql('tbapp', `SELECT array_to_string(nspacl, ',') FROM pg_namespace WHERE nspname = 'sales';`),
      'postgres=UC/postgres,tbwriter=U/postgres,tbreader=U/postgres\n',
    );
    t.is(await changedBy(t, revoke), 0);

    const ghost = playbook(
      'pg-privs-ghost',
      ['postgresPrivs'],
      [
        `postgresPrivs(${JSON.stringify({ database: 'tbapp', roles: 'tbghost', privs: 'SELECT', objs: 'orders' })})`,
      ],
    );
    const res = await run(ghost);
    t.is(res.code, 2, res.stdout + res.stderr);
    t.regex(
      res.stdout + res.stderr,
      /postgres privs tbapp: role tbghost not found: create it with postgresUser\(\) before this task/,
    );
  },
);
