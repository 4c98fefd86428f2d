/**
 * The supervisor role on a fresh test host over real SSH: programs from typed data run (RUNNING, and
 * really answering), the second run changes nothing, a changed program is restarted alone (the other
 * keeps its process), and a program removed from the list is stopped and its file removed.
 */
import test from 'ava';
import {
  assertConverged,
  projectDir,
  provision,
  sshOk,
  stackInventory,
  waitOnHost,
} from '../fixtures/roles/e2e.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'roles-supervisor';
const hosts = useTestHosts(test, [HOST]);
const project = projectDir('roles-supervisor');
test.after.always(() => project.cleanup());

const web = {
  name: 'web',
  command: 'python3 -m http.server 9100 --bind 127.0.0.1',
  directory: '/srv/web',
  user: 'nobody',
  environment: { GREETING: 'hello' },
  stopsignal: 'INT',
  stopwaitsecs: 5,
};
const ticker = {
  name: 'ticker',
  command: '/bin/sh -c "while :; do date; sleep 5; done"',
  redirect_stderr: true,
};

const inventory = (programs: unknown[]) =>
  stackInventory(project.dir, [hosts.get(HOST)], ['supervisor'], { supervisor_programs: programs });

const pidOf = async (name: string) => (await hosts.ssh(HOST, `supervisorctl pid ${name}`)).stdout.trim();

test.serial('converges: the programs are RUNNING and the web one answers', async (t) => {
  await sshOk(t, hosts, HOST, 'mkdir -p /srv/web && echo "served by supervisor" > /srv/web/index.html');
  const r = await provision(project.dir, inventory([web, ticker]));
  t.true(assertConverged(t, r, HOST).changed > 0);

  t.true(await waitOnHost(hosts, HOST, 'supervisorctl status web | grep -q RUNNING'), 'web is RUNNING');
  t.true(await waitOnHost(hosts, HOST, 'supervisorctl status ticker | grep -q RUNNING'), 'ticker is RUNNING');
  t.true(await waitOnHost(hosts, HOST, 'curl -fsS http://127.0.0.1:9100/'));
  t.is(await sshOk(t, hosts, HOST, 'curl -fsS http://127.0.0.1:9100/'), 'served by supervisor\n');
  // As the user asked for, with the environment asked for.
  const pid = await pidOf('web');
  t.is((await sshOk(t, hosts, HOST, `ps -o user= -p ${pid}`)).trim(), 'nobody');
  t.regex(await sshOk(t, hosts, HOST, `tr '\\0' '\\n' < /proc/${pid}/environ`), /^GREETING=hello$/m);
  // The file may hold secrets: root only.
  t.is((await sshOk(t, hosts, HOST, 'stat -c %a /etc/supervisor/conf.d/verdandi-web.conf')).trim(), '600');
});

test.serial('a second run changes nothing', async (t) => {
  const r = await provision(project.dir, inventory([web, ticker]));
  t.is(assertConverged(t, r, HOST).changed, 0, r.stdout);
});

test.serial('a changed program restarts alone', async (t) => {
  const webBefore = await pidOf('web');
  const tickerBefore = await pidOf('ticker');
  const r = await provision(
    project.dir,
    inventory([{ ...web, environment: { GREETING: 'bonjour' } }, ticker]),
  );
  t.true(assertConverged(t, r, HOST).changed > 0);
  t.true(await waitOnHost(hosts, HOST, 'supervisorctl status web | grep -q RUNNING'));
  const webAfter = await pidOf('web');
  t.not(webAfter, webBefore);
  t.regex(await sshOk(t, hosts, HOST, `tr '\\0' '\\n' < /proc/${webAfter}/environ`), /^GREETING=bonjour$/m);
  t.is(await pidOf('ticker'), tickerBefore);
});

test.serial('a program removed from the list is stopped and its file removed', async (t) => {
  const webBefore = await pidOf('web');
  const r = await provision(project.dir, inventory([{ ...web, environment: { GREETING: 'bonjour' } }]));
  t.true(assertConverged(t, r, HOST).changed > 0);
  t.is((await hosts.ssh(HOST, 'test -e /etc/supervisor/conf.d/verdandi-ticker.conf')).code, 1);
  const status = await hosts.ssh(HOST, 'supervisorctl status');
  t.notRegex(status.stdout, /ticker/);
  t.is(await pidOf('web'), webBefore);
  const again = await provision(project.dir, inventory([{ ...web, environment: { GREETING: 'bonjour' } }]));
  t.is(assertConverged(t, again, HOST).changed, 0, again.stdout);
});
