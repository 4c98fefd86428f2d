/**
 * `tls.acme` of the nginx and sites roles without a host: the schema (exactly one of certificate paths
 * and acme; names a certificate can hold), the vhosts rendered before and after the certificate exists,
 * the task order (plain-HTTP vhost, certbot, TLS vhost) and certbot's command.
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import Handlebars from 'handlebars';
import nginxRole, { acmeHttpSiteFile, siteView, vars } from '../../roles/nginx/index.js';
import sitesRole from '../../roles/sites/index.js';
import {
  ACME_ACCOUNT_NOTES,
  acmeAccountTasks,
  acmeDirectory,
  acmeSchema,
  certificateCurrentCheck,
  LETS_ENCRYPT_DIRECTORY,
  LETS_ENCRYPT_STAGING_DIRECTORY,
  obtainCertificateTask,
} from '../../src/deploy/acme.js';
import { sitesVarsSchema } from '../../src/deploy/site.js';
import type { RunStep, Task } from '../../src/engine/types.js';
import { hostInfo } from '../fixtures/roles/host-info.js';

function render(role: 'nginx' | 'sites', view: object): string {
  const src = readFileSync(new URL(`../../roles/${role}/templates/vhost.conf.hbs`, import.meta.url), 'utf8');
  return Handlebars.compile(src, { noEscape: true, strict: true })(view);
}

const acme = { email: 'ops@example.org' };
const nginxSite = (tls: unknown, extra: Record<string, unknown> = {}) =>
  vars.parse({
    nginx_sites: [{ name: 'shop', server_names: ['shop.example.org'], root: '/srv/shop', tls, ...extra }],
  }).nginx_sites[0];

test("acme options: Let's Encrypt by default, staging, or a directory of its own; not staging and a directory", (t) => {
  t.is(acmeDirectory(acmeSchema.parse(acme)), LETS_ENCRYPT_DIRECTORY);
  t.is(acmeDirectory(acmeSchema.parse({ ...acme, staging: true })), LETS_ENCRYPT_STAGING_DIRECTORY);
  t.is(
    acmeDirectory(acmeSchema.parse({ ...acme, directory: 'https://localhost:14000/dir' })),
    'https://localhost:14000/dir',
  );
  t.throws(() => acmeSchema.parse({ ...acme, staging: true, directory: 'https://ca.test/dir' }), {
    message: /either directory .* or staging: true .*not both/,
  });
  t.throws(() => acmeSchema.parse({ email: 'not an address' }), {
    message: /acme.email must be an e-mail address/,
  });
  t.throws(() => acmeSchema.parse({ ...acme, directory: 'nope' }), {
    message: /acme.directory must be a URL/,
  });
  t.throws(() => acmeSchema.parse({ ...acme, caBundle: 'relative.pem' }), { message: /absolute path/ });
});

test('nginx tls: exactly one of certificate + key and acme', (t) => {
  t.truthy(nginxSite({ acme }).tls?.acme);
  t.truthy(nginxSite({ certificate: '/c.pem', key: '/k.pem' }).tls?.certificate);
  t.throws(() => nginxSite({ certificate: '/c.pem', key: '/k.pem', acme }), {
    message: /tls takes either certificate and key .* or acme .*not both/,
  });
  t.throws(() => nginxSite({ certificate: '/c.pem' }), {
    message: /tls needs both certificate and key .*or acme/,
  });
  t.throws(() => nginxSite({}), { message: /tls needs both certificate and key/ });
});

test('nginx tls.acme needs host names a certificate can hold', (t) => {
  t.throws(() => nginxSite({ acme }, { server_names: ['_'] }), {
    message: /\\"_\\" is no public host name: a site with tls.acme needs/,
  });
  t.throws(() => nginxSite({ acme }, { server_names: ['ok.example.org', '*.example.org'] }), {
    message: /wildcard/,
  });
  t.throws(() => nginxSite({ acme }, { server_names: ['10.0.0.1'] }), { message: /is an address/ });
  // Without acme, `_` is fine.
  t.notThrows(() => nginxSite({ certificate: '/c.pem', key: '/k.pem' }, { server_names: ['_'] }));
});

test("nginx vhost of an ACME site: plain HTTP with the challenge first, then TLS with certbot's files", (t) => {
  const s = nginxSite({ acme });
  const http = render('nginx', siteView(s, { httpOnly: true }));
  t.regex(http, /listen 80;/);
  t.notRegex(http, /ssl|443|return 301/);
  t.regex(http, /location \^~ \/\.well-known\/acme-challenge\/ \{\n\s+root \/var\/www\/acme-challenge;/);
  t.regex(http, /location \/ \{\n\s+try_files/);

  const tls = render('nginx', siteView(s));
  t.regex(tls, /listen 443 ssl http2;/);
  t.regex(tls, /ssl_certificate \/etc\/letsencrypt\/live\/shop\/fullchain\.pem;/);
  t.regex(tls, /ssl_certificate_key \/etc\/letsencrypt\/live\/shop\/privkey\.pem;/);
  // The plain-HTTP server answers the challenge (renewals) and redirects everything else.
  const [redirect, main] = tls.split(/\nserver \{/).slice(1);
  t.regex(
    redirect,
    /listen 80;[\s\S]*location \^~ \/\.well-known\/acme-challenge\/ \{[\s\S]*location \/ \{\n\s+return 301 https:\/\/\$host\$request_uri;/,
  );
  t.notRegex(main, /acme-challenge/);

  // Answering on both: the one server holds the challenge location.
  const both = render('nginx', siteView(nginxSite({ acme, redirect_http: false })));
  t.notRegex(both, /return 301/);
  t.regex(both, /listen 80;\n\s+listen 443 ssl http2;/);
  t.regex(both, /acme-challenge/);
});

test('a site with certificate paths renders as before (no challenge location)', (t) => {
  const conf = render('nginx', siteView(nginxSite({ certificate: '/c.pem', key: '/k.pem' })));
  t.regex(conf, /server_name shop\.example\.org;\n {4}return 301 https:\/\/\$host\$request_uri;\n\}/);
  t.notRegex(conf, /acme-challenge/);
  t.regex(conf, /ssl_certificate \/c\.pem;/);
});

test('nginx tasks: certbot and its timer, plain-HTTP vhost, certificate, then the TLS vhost', async (t) => {
  const v = vars.parse({
    nginx_sites: [
      {
        name: 'shop',
        server_names: ['shop.example.org', 'www.shop.example.org'],
        root: '/srv/shop',
        tls: { acme: { ...acme, caBundle: '/etc/ca.pem' } },
      },
    ],
  });
  const tasks = (await nginxRole.tasks(v, hostInfo('web1'))) as Task[];
  const names = tasks.map((x) => x.name);
  const at = (re: RegExp) => names.findIndex((n) => re.test(n));
  t.true(at(/^apt certbot/) >= 0, names.join('\n'));
  t.true(at(/certbot\.timer/) >= 0);
  t.true(at(/verdandi-acme\.conf/) >= 0, 'the drop-in giving certbot.service the CA bundle');
  const http = at(/^plain-HTTP vhost shop/);
  const cert = at(/^certificate shop \(shop\.example\.org, www\.shop\.example\.org\)/);
  const vhost = at(/^vhost shop$/);
  t.true(http >= 0 && http < cert && cert < vhost, names.join('\n'));
  t.is(JSON.stringify(tasks[http]).includes(acmeHttpSiteFile('shop')), true);
  // Only the TLS vhost notifies the reload: the certificate's own reload is certbot's deploy hook.
  t.deepEqual(tasks[cert].notify, []);
  t.deepEqual(tasks[vhost].notify, ['reload nginx']);
});

test('two caBundle files, or one for some sites only, are refused (certbot.service has one environment)', async (t) => {
  const v = vars.parse({
    nginx_sites: [
      { name: 'a', server_names: ['a.test'], root: '/x', tls: { acme: { ...acme, caBundle: '/a.pem' } } },
      { name: 'b', server_names: ['b.test'], root: '/x', tls: { acme: { ...acme, caBundle: '/b.pem' } } },
    ],
  });
  await t.throwsAsync(async () => nginxRole.tasks(v, hostInfo('web1')), {
    message: /different caBundle files \(\/a\.pem, \/b\.pem\)/,
  });
  // A bundle for one site only would take the system's CAs from the other's renewals.
  const mixed = vars.parse({
    nginx_sites: [
      { name: 'a', server_names: ['a.test'], root: '/x', tls: { acme: { ...acme, caBundle: '/a.pem' } } },
      { name: 'b', server_names: ['b.test'], root: '/x', tls: { acme } },
    ],
  });
  await t.throwsAsync(async () => nginxRole.tasks(mixed, hostInfo('web1')), {
    message: /different caBundle files \(\/a\.pem, none\)/,
  });
});

test('certbot: webroot, deploy hook, the CA bundle in the environment, guarded by the certificate', (t) => {
  const req = {
    certName: 'shop',
    domains: ['shop.example.org', 'A.example.org'],
    acme: acmeSchema.parse({ ...acme, directory: 'https://localhost:14000/dir', caBundle: '/etc/ca.pem' }),
    siteFile: '/etc/nginx/sites-enabled/verdandi-shop.conf',
    httpSiteFile: '/etc/nginx/verdandi-acme/verdandi-shop.conf',
  };
  const task = obtainCertificateTask(req);
  t.falsy(task.alwaysRuns);
  // The guard reads the certificate's names (sorted, lowercase) and the server certbot recorded.
  const guard = certificateCurrentCheck(req);
  t.regex(guard, /test -e \/etc\/letsencrypt\/live\/shop\/fullchain\.pem/);
  t.regex(guard, /'a\.example\.org shop\.example\.org '/);
  t.regex(
    guard,
    /grep -qxF 'server = https:\/\/localhost:14000\/dir' \/etc\/letsencrypt\/renewal\/shop\.conf/,
  );
  t.deepEqual(task.plan({ stdout: 'verdandi-guard unless 0\n', exitCode: 0 }).steps, []);

  const steps = task.plan({ stdout: 'verdandi-guard unless 1\n', exitCode: 0 }).steps as RunStep[];
  t.is(steps.length, 1);
  const script = JSON.stringify(steps[0]);
  for (const word of [
    'certbot certonly --non-interactive --agree-tos',
    '--server https://localhost:14000/dir',
    '--webroot --webroot-path /var/www/acme-challenge',
    '--cert-name shop -d shop.example.org -d A.example.org',
    "--deploy-hook 'systemctl reload nginx'",
    'systemctl reload-or-restart nginx',
  ])
    t.true(script.includes(word), word);
  // The CA bundle reaches certbot through its environment (the task's env), not its arguments.
  t.true(script.includes('REQUESTS_CA_BUNDLE'));
  t.false(script.includes('--ca-bundle'));
});

test("the ACME account's e-mail: one task per server after the certificates, guarded by a note", async (t) => {
  const v = vars.parse({
    nginx_sites: [
      { name: 'a', server_names: ['a.test'], root: '/x', tls: { acme } },
      { name: 'b', server_names: ['b.test'], root: '/x', tls: { acme } },
    ],
  });
  const tasks = (await nginxRole.tasks(v, hostInfo('web1'))) as Task[];
  const names = tasks.map((x) => x.name);
  const account = names.findIndex((n) =>
    /^ACME account e-mail ops@example\.org at https:\/\/acme-v02/.test(n),
  );
  t.true(account > names.findIndex((n) => /^certificate b /.test(n)), names.join('\n'));
  t.is(names.filter((n) => n.startsWith('ACME account')).length, 1, 'one account per server');

  const [task] = acmeAccountTasks(
    [acmeSchema.parse({ ...acme, directory: 'https://localhost:14000/dir', caBundle: '/etc/ca.pem' })],
    'here',
  );
  t.deepEqual(task.plan({ stdout: 'verdandi-guard unless 0\n', exitCode: 0 }).steps, []);
  const script = JSON.stringify(task.plan({ stdout: 'verdandi-guard unless 1\n', exitCode: 0 }).steps);
  t.true(
    script.includes(
      'certbot update_account --non-interactive --no-eff-email --email ops@example.org --server https://localhost:14000/dir',
    ),
    script,
  );
  t.true(script.includes(`${ACME_ACCOUNT_NOTES}/https___localhost_14000_dir`), script);
  t.true(script.includes('REQUESTS_CA_BUNDLE'));

  // certbot keeps one account per server: two e-mails for one server cannot both be its contact.
  t.throws(
    () =>
      acmeAccountTasks(
        [acmeSchema.parse(acme), acmeSchema.parse({ email: 'b@example.org' })],
        'sites of host web1',
      ),
    {
      message:
        /sites of host web1: the ACME sites of https:\/\/acme-v02\.api\.letsencrypt\.org\/directory name different e-mails \(ops@example\.org, b@example\.org\)/,
    },
  );
  // Different servers, different accounts.
  t.is(
    acmeAccountTasks(
      [acmeSchema.parse(acme), acmeSchema.parse({ email: 'b@example.org', staging: true })],
      'x',
    ).length,
    2,
  );
});

test('sites: nginx.tls takes exactly one form; the ACME vhost and tasks follow the nginx role', async (t) => {
  const site = (tls: unknown, serverNames = ['app.example.org']) => ({
    name: 'app',
    repo: 'x',
    runtime: { type: 'docker' },
    nginx: { serverNames, tls },
  });
  t.throws(() => sitesVarsSchema.parse({ sites: [site({ certificate: '/c', key: '/k', acme })] }), {
    message: /nginx.tls takes either certificate and key .* not both/,
  });
  t.throws(() => sitesVarsSchema.parse({ sites: [site({ key: '/k' })] }), {
    message: /nginx.tls needs both/,
  });
  t.throws(() => sitesVarsSchema.parse({ sites: [site({ acme }, ['_'])] }), {
    message: /needs the host names/,
  });

  const v = sitesVarsSchema.parse({ sites: [site({ acme: { ...acme, staging: true } })] });
  const tasks = (await sitesRole.tasks(v, hostInfo('web1'))).flat() as Task[];
  const names = tasks.map((x) => x.name);
  const http = names.findIndex((n) => n.startsWith('plain-HTTP vhost of site app'));
  const cert = names.findIndex((n) =>
    n.startsWith('certificate site-app (app.example.org) from https://acme-staging'),
  );
  const vhost = names.findIndex((n) => n.includes('/etc/nginx/conf.d/verdandi-app.conf'));
  t.true(http >= 0 && http < cert && cert < vhost, names.join('\n'));
  t.true(names.some((n) => n.startsWith('apt certbot')));
  t.true(JSON.stringify(tasks[http]).includes('/etc/nginx/verdandi-acme/site-app.conf'));
  t.deepEqual(tasks[vhost].notify, ['reload nginx']);
});

test("sites vhost: plain HTTP with the challenge, then TLS on certbot's files and a redirect that keeps the challenge", (t) => {
  const base = {
    name: 'app',
    upstreamName: 'verdandi_site_app',
    upstreamFile: '/etc/nginx/verdandi/app.upstream',
    serverNames: 'app.example.org',
    listen: 80,
    acmeWebroot: '/var/www/acme-challenge',
    clientMaxBodySize: '10m',
    maintenanceFlag: '/etc/nginx/maintenance/app.on',
    maintenanceRoot: '/var/www/maintenance',
    retry: false,
  };
  const http = render('sites', { ...base, tls: null, acmeChallenges: true });
  t.regex(http, /listen 80;/);
  t.notRegex(http, /ssl|return 301/);
  t.regex(http, /location \^~ \/\.well-known\/acme-challenge\/ \{\n\s+root \/var\/www\/acme-challenge;/);
  // The maintenance switch spares the challenges.
  t.regex(http, /if \(\$uri ~ \^\/\\\.well-known\/acme-challenge\/\) \{\n\s+set \$maintenance "";/);

  const tls = render('sites', {
    ...base,
    acmeChallenges: false,
    tls: {
      certificate: '/etc/letsencrypt/live/site-app/fullchain.pem',
      key: '/etc/letsencrypt/live/site-app/privkey.pem',
    },
  });
  const [, redirect, main] = tls.split(/\nserver \{/);
  t.regex(redirect, /acme-challenge[\s\S]*location \/ \{\n\s+return 301/);
  t.regex(main, /listen 443 ssl;\n\s+ssl_certificate \/etc\/letsencrypt\/live\/site-app\/fullchain\.pem;/);
  t.notRegex(main, /acme-challenge/);

  // Certificate paths without ACME: as before.
  const plain = render('sites', { ...base, acmeWebroot: null, tls: { certificate: '/c', key: '/k' } });
  t.notRegex(plain, /acme-challenge/);
  t.regex(plain, /server_name app\.example\.org;\n {4}return 301/);
});
