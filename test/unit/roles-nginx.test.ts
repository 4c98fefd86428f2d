/**
 * nginx role without a host: vars validation, the vhost/nginx.conf views rendered through the role's own
 * templates (strict handlebars, like the template task), and the task list (validate + reload wiring).
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import Handlebars from 'handlebars';
import role, { mainConfigView, siteFile, siteView, vars } from '../../roles/nginx/index.js';
import { hostInfo } from '../fixtures/roles/host-info.js';

function render(name: string, view: object): string {
  const src = readFileSync(new URL(`../../roles/nginx/templates/${name}`, import.meta.url), 'utf8');
  return Handlebars.compile(src, { noEscape: true, strict: true })(view);
}

test('defaults: gzip on, server_tokens off, auto workers, 10m bodies', (t) => {
  const conf = render('nginx.conf.hbs', mainConfigView(vars.parse({})));
  t.regex(conf, /^worker_processes auto;$/m);
  t.regex(conf, /^\s+server_tokens off;$/m);
  t.regex(conf, /^\s+gzip on;$/m);
  t.regex(conf, /^\s+client_max_body_size 10m;$/m);
  t.regex(conf, /include \/etc\/nginx\/sites-enabled\/\*;/);
});

test('gzip off and extra http directives', (t) => {
  const conf = render(
    'nginx.conf.hbs',
    mainConfigView(
      vars.parse({
        nginx_gzip: false,
        nginx_worker_processes: 2,
        nginx_http_extra: ['map_hash_bucket_size 128;'],
      }),
    ),
  );
  t.regex(conf, /^\s+gzip off;$/m);
  t.notRegex(conf, /gzip_types/);
  t.regex(conf, /^worker_processes 2;$/m);
  t.regex(conf, /^\s+map_hash_bucket_size 128;$/m);
});

test('an upstream site proxies / to its upstream and carries the maintenance switch', (t) => {
  const v = vars.parse({
    nginx_sites: [
      {
        name: 'catalogage',
        server_names: ['catalogage.example.org'],
        upstream: { servers: ['127.0.0.1:3579'] },
      },
    ],
  });
  const conf = render('vhost.conf.hbs', siteView(v.nginx_sites[0]));
  t.regex(conf, /upstream catalogage_backend \{\n\s+server 127\.0\.0\.1:3579;\n\}/);
  t.regex(conf, /listen 80;/);
  t.regex(conf, /server_name catalogage\.example\.org;/);
  t.regex(conf, /location \/ \{\n\s+proxy_pass http:\/\/catalogage_backend;/);
  t.regex(conf, /if \(-f \/etc\/nginx\/maintenance\/catalogage\.on\) \{\n\s+return 503;/);
  t.regex(conf, /try_files \/catalogage\.html \/_default\.html =503;/);
  t.notRegex(conf, /ssl_certificate/);
});

test('a TLS site listens on 443 with its certificate and redirects plain HTTP', (t) => {
  const v = vars.parse({
    nginx_sites: [
      {
        name: 'www',
        server_names: ['example.org', 'www.example.org'],
        root: '/srv/www',
        default_server: true,
        tls: { certificate: '/etc/ssl/certs/www.pem', key: '/etc/ssl/private/www.key' },
        locations: [
          { path: '/api/', proxy_pass: 'http://127.0.0.1:3000' },
          { path: '= /health', return: '204' },
        ],
      },
    ],
  });
  const conf = render('vhost.conf.hbs', siteView(v.nginx_sites[0]));
  t.regex(conf, /listen 443 ssl http2 default_server;/);
  t.regex(conf, /ssl_certificate \/etc\/ssl\/certs\/www\.pem;/);
  t.regex(conf, /ssl_certificate_key \/etc\/ssl\/private\/www\.key;/);
  t.regex(
    conf,
    /listen 80 default_server;\n\s+server_name example\.org www\.example\.org;\n\s+return 301 https/,
  );
  t.regex(conf, /root \/srv\/www;/);
  t.regex(conf, /location \/ \{\n\s+try_files \$uri \$uri\/ =404;/);
  t.regex(conf, /location \/api\/ \{\n\s+proxy_pass http:\/\/127\.0\.0\.1:3000;/);
  t.regex(conf, /location = \/health \{\n\s+return 204;/);
});

test('a user location "/" replaces the generated one', (t) => {
  const v = vars.parse({ nginx_sites: [{ name: 'x', locations: [{ path: '/', return: '200 ok' }] }] });
  const conf = render('vhost.conf.hbs', siteView(v.nginx_sites[0]));
  t.is(conf.match(/location \/ \{/g)?.length, 1);
  t.regex(conf, /return 200 ok;/);
});

test('vars refuse what would break the config or the shell', (t) => {
  t.throws(() => vars.parse({ nginx_sites: [{ name: 'a' }] }), {
    message: /upstream, a root or at least one location/,
  });
  t.throws(() => vars.parse({ nginx_sites: [{ name: 'Bad Name', root: '/x' }] }));
  t.throws(() => vars.parse({ nginx_sites: [{ name: 'a', root: '/x; evil' }] }));
  t.throws(() => vars.parse({ nginx_sites: [{ name: 'a', root: '/x', extra: ['location / {'] }] }));
  t.throws(() => vars.parse({ nginx_gzip: 'yes' }));
});

test('tasks: every config file is validated before it replaces the old one and reloads nginx', async (t) => {
  const v = vars.parse({ nginx_sites: [{ name: 'app', upstream: { servers: ['127.0.0.1:3579'] } }] });
  const tasks = (await role.tasks(v, hostInfo('web1'))) as Array<{ name: string; notify: string[] }>;
  const names = tasks.map((x) => x.name);
  t.true(names.includes('vhost app'));
  const vhost = tasks.find((x) => x.name === 'vhost app')!;
  t.deepEqual(vhost.notify, ['reload nginx']);
  const main = tasks.find((x) => x.name.includes('/etc/nginx/nginx.conf'))!;
  t.deepEqual(main.notify, ['reload nginx']);
  t.is(siteFile('app'), '/etc/nginx/sites-enabled/verdandi-app.conf');
  // The last task keeps nginx running; the handler reloads (never restarts).
  t.true(names[names.length - 1].includes('nginx'));
  const handler = role.handlers!['reload nginx'](v, hostInfo('web1')) as { name: string };
  t.regex(handler.name, /nginx/);
});

test('two sites with one name are refused', async (t) => {
  const v = vars.parse({
    nginx_sites: [
      { name: 'a', root: '/x' },
      { name: 'a', root: '/y' },
    ],
  });
  await t.throwsAsync(async () => role.tasks(v, hostInfo('web1')), {
    message: /nginx_sites of host web1: "a" is listed twice/,
  });
});
