/**
 * A typical staging stack on ONE fresh test host, all five roles together (as the inventories describe:
 * nginx → an app server run by supervisor with pyenv's Python → PostgreSQL; plus docker): it converges,
 * every service answers, and the next run reports 0 changed.
 *
 * pyenv gets the STAND-INS of test/fixtures/roles/pyenv-standin (no GitHub or python.org from the
 * build machines; see its README). The "app" is Python's http.server run with pyenv's python, standing
 * in for uvicorn (no PyPI either).
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
  waitOnHost,
} from '../fixtures/roles/e2e.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'roles-stack';
const hosts = useTestHosts(test, [HOST]);
const project = projectDir('roles-stack');
test.after.always(() => project.cleanup());

const DB_PASSWORD = 'stack-db-password-7';

const vars = {
  ...PYENV_STANDIN_VARS,
  pyenv_user: 'catalogage',
  pyenv_python_version: '3.11-standin',
  postgres_users: [{ name: 'catalogage', password: DB_PASSWORD }],
  postgres_databases: [{ name: 'catalogage', owner: 'catalogage' }],
  supervisor_programs: [
    {
      name: 'server',
      command:
        '/home/catalogage/.pyenv/versions/3.11-standin/bin/python -m http.server 3579 --bind 127.0.0.1',
      directory: '/home/catalogage/app',
      user: 'catalogage',
      environment: { DATABASE_URL: `postgresql://catalogage:${DB_PASSWORD}@localhost:5432/catalogage` },
      stopsignal: 'INT',
    },
  ],
  nginx_sites: [
    {
      name: 'catalogage',
      server_names: ['catalogage.test'],
      default_server: true,
      upstream: { servers: ['127.0.0.1:3579'] },
    },
  ],
};

const roles = ['pyenv', 'postgres', 'nginx', 'supervisor', 'docker'];

/** Puts what the role is served on the host (after the host booted: ava runs before hooks concurrently). */
async function prepareHost(): Promise<void> {
  const { script, input } = pyenvStandins();
  const r = await hosts.ssh(HOST, script, { input });
  if (r.code !== 0) throw new Error(`preparing the pyenv stand-ins failed: ${r.stderr}`);
  // The app's user and code come from the deploy (the sites role), not from these roles: made by hand.
  const app = await hosts.ssh(
    HOST,
    'useradd --create-home --shell /bin/bash catalogage && runuser -u catalogage -- sh -c \'mkdir -p ~/app && echo "[]" > ~/app/index.html\'',
  );
  if (app.code !== 0) throw new Error(`creating the app user failed: ${app.stderr}`);
}

test.serial(
  'all five roles converge one host and every service answers; the next run changes nothing',
  async (t) => {
    await prepareHost();
    const inv = stackInventory(project.dir, [hosts.get(HOST)], roles, vars);
    const first = await provision(project.dir, inv);
    t.true(assertConverged(t, first, HOST).changed > 0);
    t.log(`first run: ${first.report?.hosts[HOST].changed} changed`);

    // What the app serves (its working directory), through nginx → supervisor's program.
    t.true(
      await waitOnHost(hosts, HOST, 'supervisorctl status server | grep -q RUNNING'),
      'server is RUNNING',
    );
    t.true(
      await waitOnHost(hosts, HOST, "curl -fsS -H 'Host: catalogage.test' http://127.0.0.1/"),
      'nginx → app',
    );
    t.is(await sshOk(t, hosts, HOST, "curl -fsS -H 'Host: catalogage.test' http://127.0.0.1/"), '[]\n');
    await sshOk(t, hosts, HOST, 'nginx -t');
    t.is(
      await sshOk(
        t,
        hosts,
        HOST,
        `PGPASSWORD='${DB_PASSWORD}' psql -h 127.0.0.1 -U catalogage catalogage -tAc 'select 1'`,
      ),
      '1\n',
    );
    t.is(
      (
        await sshOk(
          t,
          hosts,
          HOST,
          "docker info --format '{{.ServerVersion}}' >/dev/null && systemctl is-active docker",
        )
      ).trim(),
      'active',
    );
    t.is(await sshOk(t, hosts, HOST, 'runuser -l catalogage -c \'python -c "print(6 * 7)"\''), '42\n');

    const second = await provision(project.dir, inv);
    t.is(assertConverged(t, second, HOST).changed, 0, second.stdout);
  },
);
