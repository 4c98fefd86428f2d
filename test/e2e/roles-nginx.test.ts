/**
 * The nginx role on a fresh test host over real SSH: it converges, serves the configured sites (static
 * and reverse proxy) on port 80 with `nginx -t` passing, changes nothing on the second run, reloads
 * (same master process) on a change, switches a site to maintenance with its flag file, and refuses a
 * template edit that breaks nginx while the running nginx keeps serving.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import {
  assertConverged,
  projectDir,
  provision,
  sshOk,
  stackInventory,
  waitOnHost,
} from '../fixtures/roles/e2e.js';
import { PROJECT_ROOT } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'roles-nginx';
const hosts = useTestHosts(test, [HOST]);
const project = projectDir('roles-nginx');
test.after.always(() => project.cleanup());

const sites = [
  { name: 'demo', server_names: ['demo.test'], root: '/srv/demo', default_server: true },
  {
    name: 'api',
    server_names: ['api.test'],
    upstream: { servers: ['127.0.0.1:9000'] },
    locations: [{ path: '= /healthz', return: '200 "healthy\\n"' }],
  },
];

const curl = (hostHeader: string, path = '/') =>
  `curl -sS -o /dev/stdout -w '\\n%{http_code}' -H 'Host: ${hostHeader}' http://127.0.0.1${path}`;

test.serial('converges, serves a static site and a proxied one, nginx -t passes', async (t) => {
  // The site's files and the app behind the proxy are not the role's business: the test brings them.
  await sshOk(
    t,
    hosts,
    HOST,
    [
      'mkdir -p /srv/demo /srv/backend',
      'echo "static demo page" > /srv/demo/index.html',
      'echo "from the backend" > /srv/backend/index.html',
      'systemd-run --unit=backend --working-directory=/srv/backend python3 -m http.server 9000 --bind 127.0.0.1',
    ].join(' && '),
  );
  const inv = stackInventory(project.dir, [hosts.get(HOST)], ['nginx'], { nginx_sites: sites });
  const first = await provision(project.dir, inv);
  const report = assertConverged(t, first, HOST);
  t.true(report.changed > 0);

  await sshOk(t, hosts, HOST, 'nginx -t');
  t.true(await waitOnHost(hosts, HOST, 'curl -fsS http://127.0.0.1:9000/'));
  const demo = await sshOk(t, hosts, HOST, curl('demo.test'));
  t.is(demo, 'static demo page\n\n200');
  const api = await sshOk(t, hosts, HOST, curl('api.test'));
  t.is(api, 'from the backend\n\n200');
  t.is(await sshOk(t, hosts, HOST, curl('api.test', '/healthz')), 'healthy\n\n200');
  // Debian's default site is gone; server_tokens off hides the version.
  t.is((await hosts.ssh(HOST, 'test -e /etc/nginx/sites-enabled/default')).code, 1);
  const headers = await sshOk(t, hosts, HOST, "curl -sSI -H 'Host: demo.test' http://127.0.0.1/");
  t.regex(headers, /^Server: nginx\r?$/m);
});

test.serial('a second run changes nothing', async (t) => {
  const inv = stackInventory(project.dir, [hosts.get(HOST)], ['nginx'], { nginx_sites: sites });
  const again = await provision(project.dir, inv);
  const report = assertConverged(t, again, HOST);
  t.is(report.changed, 0, again.stdout);
});

test.serial('a change reloads nginx: same master process, new config served', async (t) => {
  const pidBefore = (await sshOk(t, hosts, HOST, 'cat /run/nginx.pid')).trim();
  const changed = sites.map((s) =>
    s.name === 'demo' ? { ...s, locations: [{ path: '= /version', return: '200 "v2\\n"' }] } : s,
  );
  const inv = stackInventory(project.dir, [hosts.get(HOST)], ['nginx'], { nginx_sites: changed });
  const r = await provision(project.dir, inv);
  t.true(assertConverged(t, r, HOST).changed > 0);
  t.is(await sshOk(t, hosts, HOST, curl('demo.test', '/version')), 'v2\n\n200');
  t.is((await sshOk(t, hosts, HOST, 'cat /run/nginx.pid')).trim(), pidBefore);
});

test.serial('maintenance: the flag file turns the site into a 503 page, and back', async (t) => {
  await sshOk(t, hosts, HOST, 'touch /etc/nginx/maintenance/demo.on');
  const defaultPage = await sshOk(t, hosts, HOST, curl('demo.test'));
  t.regex(defaultPage, /Maintenance in progress/);
  t.regex(defaultPage, /\n503$/);
  // The other site is not affected.
  t.regex(await sshOk(t, hosts, HOST, curl('api.test')), /\n200$/);
  await sshOk(t, hosts, HOST, 'echo "demo is being upgraded" > /var/www/maintenance/demo.html');
  t.is(await sshOk(t, hosts, HOST, curl('demo.test')), 'demo is being upgraded\n\n503');
  await sshOk(t, hosts, HOST, 'rm /etc/nginx/maintenance/demo.on');
  t.is(await sshOk(t, hosts, HOST, curl('demo.test')), 'static demo page\n\n200');
});

test.serial(
  'a template edit that breaks nginx is refused; the old config stays and nginx keeps serving',
  async (t) => {
    // A project role of the same name wins over the built-in one: copy it and break its vhost template,
    // as a user editing the template would.
    const roleDir = join(project.dir, 'roles', 'nginx');
    cpSync(join(PROJECT_ROOT, 'roles', 'nginx'), roleDir, { recursive: true });
    // A project's roles are ES modules, like its package says.
    writeFileSync(join(project.dir, 'package.json'), '{ "private": true, "type": "module" }\n');
    const tpl = join(roleDir, 'templates', 'vhost.conf.hbs');
    writeFileSync(
      tpl,
      readFileSync(tpl, 'utf8').replace(
        'server_name {{serverNames}};',
        'server_name {{serverNames}};\n    this_is_not_a_directive on;',
      ),
    );
    const before = await sshOk(t, hosts, HOST, 'sha256sum /etc/nginx/sites-enabled/verdandi-*.conf');

    const inv = stackInventory(project.dir, [hosts.get(HOST)], ['nginx'], { nginx_sites: sites });
    const broken = await provision(project.dir, inv);
    t.is(broken.code, 2, broken.stdout + broken.stderr);
    t.is(broken.report?.hosts[HOST].failed, 1);
    t.regex(broken.stdout + broken.stderr, /this_is_not_a_directive/);

    t.is(await sshOk(t, hosts, HOST, 'sha256sum /etc/nginx/sites-enabled/verdandi-*.conf'), before);
    t.is((await hosts.ssh(HOST, 'grep -r this_is_not_a_directive /etc/nginx')).code, 1);
    t.is(
      (await hosts.ssh(HOST, 'ls -A /etc/nginx/sites-enabled | grep -c "^\\.verdandi-"')).stdout.trim(),
      '0',
    );
    await sshOk(t, hosts, HOST, 'nginx -t');
    t.is(await sshOk(t, hosts, HOST, 'systemctl is-active nginx'), 'active\n');
    t.regex(await sshOk(t, hosts, HOST, curl('api.test')), /from the backend\n\n200$/);
  },
);
