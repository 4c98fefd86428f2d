/**
 * HTTPS certificates by ACME (`tls.acme` of the nginx role) on a real test host, offline: Let's
 * Encrypt's test server, pebble (Debian's package), runs on the host itself with an API certificate the
 * test makes (the package ships none), and validates HTTP-01 challenges on port 80 of the names
 * /etc/hosts gives it (pebble resolves with the system resolver).
 *
 * The first provision serves the challenge on plain HTTP, gets the certificate with certbot and only then
 * writes the TLS vhost: HTTPS answers with a certificate chained to pebble's root. A second provision
 * changes nothing. A renewal by Debian's certbot.timer service (made due) installs a new certificate and
 * reloads nginx; one with nothing due reloads nothing. A name pebble cannot validate fails the run with
 * certbot's reason, and that site still answers on plain HTTP. The sites role's vhost does the same. A
 * changed acme.email becomes the account's contact at the ACME server, without a new certificate.
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

const HOST = 'acm-web';
const hosts = useTestHosts(test, [HOST]);
const project = projectDir('roles-acme');
test.after.always(() => project.cleanup());

const PEBBLE = '/etc/pebble-test';
const acme = {
  email: 'ops@example.org',
  directory: 'https://localhost:14000/dir',
  caBundle: `${PEBBLE}/api-ca.pem`,
};
const shop = { name: 'shop', server_names: ['shop.acme.test'], root: '/srv/shop', tls: { acme } };

/** pebble's API certificate (signed by a CA of the test's: certbot trusts it through caBundle) and config. */
const pebbleSetup = [
  'set -e',
  'apt-get update -qq',
  'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pebble openssl curl >/dev/null',
  `mkdir -p ${PEBBLE} && cd ${PEBBLE}`,
  'openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=pebble API test CA" -keyout api-ca.key -out api-ca.pem 2>/dev/null',
  'openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout api.key -out api.csr 2>/dev/null',
  'printf "subjectAltName=DNS:localhost,IP:127.0.0.1\\n" > api.ext',
  'openssl x509 -req -in api.csr -CA api-ca.pem -CAkey api-ca.key -CAcreateserial -days 7 -extfile api.ext -out api.pem 2>/dev/null',
  `cat > config.json <<'EOF'
{"pebble": {"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
 "certificate": "${PEBBLE}/api.pem", "privateKey": "${PEBBLE}/api.key",
 "httpPort": 80, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF`,
  'echo "127.0.0.1 shop.acme.test" >> /etc/hosts',
  'mkdir -p /srv/shop && echo "the shop over TLS" > /srv/shop/index.html',
  // No sleep before validating, no nonce rejected on purpose: the run is deterministic.
  `systemd-run --unit=pebble -E PEBBLE_VA_NOSLEEP=1 -E PEBBLE_WFE_NONCEREJECT=0 pebble -config ${PEBBLE}/config.json`,
].join('\n');

const https = `curl -sS --cacert ${PEBBLE}/root.pem --resolve shop.acme.test:443:127.0.0.1 https://shop.acme.test/`;
const servedSerial = `openssl s_client -connect 127.0.0.1:443 -servername shop.acme.test </dev/null 2>/dev/null | openssl x509 -noout -serial`;
const nginxReloads = 'journalctl -u nginx --no-pager -o cat | grep -c "^Reloaded" || true';

test.serial('the first provision gets a certificate by HTTP-01 and serves HTTPS with it', async (t) => {
  // pebble on the host (in the first test: the host boots in a hook of its own).
  await sshOk(t, hosts, HOST, pebbleSetup);
  t.true(
    await waitOnHost(hosts, HOST, `curl -fsS --cacert ${PEBBLE}/api-ca.pem https://localhost:14000/dir`),
    'pebble answers',
  );

  const inv = stackInventory(project.dir, [hosts.get(HOST)], ['nginx'], { nginx_sites: [shop] });
  const first = await provision(project.dir, inv);
  t.true(assertConverged(t, first, HOST).changed > 0);

  // pebble's root (it makes a new one at each start) and intermediate: the chain the site must lead to.
  await sshOk(
    t,
    hosts,
    HOST,
    `curl -fsS --cacert ${PEBBLE}/api-ca.pem https://localhost:15000/roots/0 > ${PEBBLE}/root.pem`,
  );
  t.is(await sshOk(t, hosts, HOST, https), 'the shop over TLS\n');
  const verify = await sshOk(
    t,
    hosts,
    HOST,
    `openssl s_client -connect 127.0.0.1:443 -servername shop.acme.test -CAfile ${PEBBLE}/root.pem -verify_return_error </dev/null 2>&1`,
  );
  t.regex(verify, /Verify return code: 0 \(ok\)/);
  t.regex(
    await sshOk(t, hosts, HOST, `${servedSerial.replace('-serial', '-ext subjectAltName')}`),
    /DNS:shop\.acme\.test/,
  );

  // Plain HTTP redirects, except the challenge directory (renewals use it).
  const redirect = await sshOk(
    t,
    hosts,
    HOST,
    "curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: shop.acme.test' http://127.0.0.1/x",
  );
  t.is(redirect, '301 https://shop.acme.test/x');
  await sshOk(
    t,
    hosts,
    HOST,
    'mkdir -p /var/www/acme-challenge/.well-known/acme-challenge && echo token > /var/www/acme-challenge/.well-known/acme-challenge/probe',
  );
  t.is(
    await sshOk(
      t,
      hosts,
      HOST,
      "curl -sS -H 'Host: shop.acme.test' http://127.0.0.1/.well-known/acme-challenge/probe",
    ),
    'token\n',
  );
  await sshOk(t, hosts, HOST, 'rm /var/www/acme-challenge/.well-known/acme-challenge/probe');

  // Renewals: Debian's timer, its service trusting pebble's API CA, certbot's hook reloading nginx.
  t.is(
    await sshOk(t, hosts, HOST, 'systemctl is-enabled certbot.timer; systemctl is-active certbot.timer'),
    'enabled\nactive\n',
  );
  t.regex(
    await sshOk(t, hosts, HOST, 'systemctl show certbot.service -p Environment'),
    new RegExp(`REQUESTS_CA_BUNDLE=${PEBBLE}/api-ca.pem`),
  );
  const renewal = await sshOk(t, hosts, HOST, 'cat /etc/letsencrypt/renewal/shop.conf');
  t.regex(renewal, /^renew_hook = systemctl reload nginx$/m);
  t.regex(renewal, /^authenticator = webroot$/m);
  t.regex(renewal, /^server = https:\/\/localhost:14000\/dir$/m);
});

test.serial('a second provision changes nothing', async (t) => {
  const inv = stackInventory(project.dir, [hosts.get(HOST)], ['nginx'], { nginx_sites: [shop] });
  const again = await provision(project.dir, inv);
  t.is(assertConverged(t, again, HOST).changed, 0, again.stdout);
});

test.serial('certbot.timer renews a due certificate and reloads nginx; nothing due, no reload', async (t) => {
  const serialBefore = await sshOk(t, hosts, HOST, servedSerial);
  const reloadsBefore = Number(await sshOk(t, hosts, HOST, nginxReloads));

  // What the timer starts, with nothing due: no new certificate, no reload.
  await sshOk(t, hosts, HOST, 'systemctl start certbot.service');
  t.is(await sshOk(t, hosts, HOST, servedSerial), serialBefore);
  t.is(Number(await sshOk(t, hosts, HOST, nginxReloads)), reloadsBefore);

  // Due: pebble's certificates last years, so the renewal window is made longer than that.
  await sshOk(
    t,
    hosts,
    HOST,
    "sed -i 's/^# renew_before_expiry = .*/renew_before_expiry = 3650 days/' /etc/letsencrypt/renewal/shop.conf",
  );
  await sshOk(t, hosts, HOST, 'systemctl start certbot.service');
  await sshOk(
    t,
    hosts,
    HOST,
    "sed -i 's/^renew_before_expiry = .*/# renew_before_expiry = 30 days/' /etc/letsencrypt/renewal/shop.conf",
  );
  t.true(
    await waitOnHost(hosts, HOST, `test "$(${servedSerial})" != '${serialBefore.trim()}'`, 30),
    'a new certificate is served',
  );
  t.is(Number(await sshOk(t, hosts, HOST, nginxReloads)), reloadsBefore + 1);
  t.is(await sshOk(t, hosts, HOST, https), 'the shop over TLS\n');
  t.is((await sshOk(t, hosts, HOST, 'ls /etc/letsencrypt/archive/shop/ | grep -c "^cert"')).trim(), '2');

  // And the role is still converged: a renewal is no change of its.
  const inv = stackInventory(project.dir, [hosts.get(HOST)], ['nginx'], { nginx_sites: [shop] });
  t.is(assertConverged(t, await provision(project.dir, inv), HOST).changed, 0);
});

test.serial(
  "a name the ACME server cannot validate fails with certbot's reason; the site answers on HTTP",
  async (t) => {
    await sshOk(t, hosts, HOST, 'mkdir -p /srv/lost && echo "lost but served" > /srv/lost/index.html');
    const lost = { name: 'lost', server_names: ['lost.invalid'], root: '/srv/lost', tls: { acme } };
    const inv = stackInventory(project.dir, [hosts.get(HOST)], ['nginx'], { nginx_sites: [shop, lost] });
    const r = await provision(project.dir, inv);
    const out = r.stdout + r.stderr;
    t.is(r.code, 2, out);
    t.is(r.report?.hosts[HOST].failed, 1);
    t.regex(out, /certificate lost \(lost\.invalid\)/);
    t.regex(out, /Certbot failed to authenticate some domains/);
    t.regex(out, /lookup lost\.invalid/);

    t.is(
      await sshOk(t, hosts, HOST, "curl -sS -H 'Host: lost.invalid' http://127.0.0.1/"),
      'lost but served\n',
    );
    t.is((await hosts.ssh(HOST, 'test -e /etc/letsencrypt/live/lost')).code, 1);

    // A maintenance spares the ACME challenges (a renewal may fall due during one).
    const challenge = '/var/www/acme-challenge/.well-known/acme-challenge/probe';
    await sshOk(t, hosts, HOST, `touch /etc/nginx/maintenance/lost.on && echo token > ${challenge}`);
    const lostUrl = (path: string) => `curl -sS -H 'Host: lost.invalid' http://127.0.0.1${path}`;
    t.is(await sshOk(t, hosts, HOST, `${lostUrl('/')} -o /dev/null -w '%{http_code}'`), '503');
    t.is(await sshOk(t, hosts, HOST, lostUrl('/.well-known/acme-challenge/probe')), 'token\n');
    await sshOk(t, hosts, HOST, `rm /etc/nginx/maintenance/lost.on ${challenge}`);
    // The other site is untouched.
    t.is(await sshOk(t, hosts, HOST, https), 'the shop over TLS\n');
  },
);

test.serial(
  'the sites role: its vhost gets a certificate the same way, then proxies over HTTPS',
  async (t) => {
    await sshOk(
      t,
      hosts,
      HOST,
      [
        'echo "127.0.0.1 app.acme.test" >> /etc/hosts',
        // What the deploy would start: the blue color's port answers.
        'mkdir -p /srv/blue && echo "the app behind the site" > /srv/blue/index.html',
        'systemd-run --unit=blue --working-directory=/srv/blue python3 -m http.server 8000 --bind 127.0.0.1',
      ].join(' && '),
    );
    const app = {
      name: 'app',
      repo: 'https://git.example.org/app.git',
      runtime: { type: 'docker' },
      nginx: { serverNames: ['app.acme.test'], tls: { acme } },
    };
    const inv = stackInventory(project.dir, [hosts.get(HOST)], ['nginx', 'sites'], {
      nginx_sites: [shop],
      sites: [app],
    });
    const first = await provision(project.dir, inv);
    t.true(assertConverged(t, first, HOST).changed > 0);
    t.true(await waitOnHost(hosts, HOST, 'curl -fsS http://127.0.0.1:8000/'));
    t.is(
      await sshOk(
        t,
        hosts,
        HOST,
        `curl -sS --cacert ${PEBBLE}/root.pem --resolve app.acme.test:443:127.0.0.1 https://app.acme.test/`,
      ),
      'the app behind the site\n',
    );
    t.regex(
      await sshOk(
        t,
        hosts,
        HOST,
        'openssl x509 -in /etc/letsencrypt/live/site-app/fullchain.pem -noout -ext subjectAltName',
      ),
      /DNS:app\.acme\.test/,
    );
    const again = await provision(project.dir, inv);
    t.is(assertConverged(t, again, HOST).changed, 0, again.stdout);
  },
);

test.serial("a changed acme.email becomes the ACME account's contact, once", async (t) => {
  const showAccount = `REQUESTS_CA_BUNDLE=${PEBBLE}/api-ca.pem certbot show_account --server ${acme.directory} 2>&1`;
  t.regex(await sshOk(t, hosts, HOST, showAccount), /Email contact: ops@example\.org/);

  const moved = { ...shop, tls: { acme: { ...acme, email: 'admin@example.org' } } };
  const inv = stackInventory(project.dir, [hosts.get(HOST)], ['nginx'], { nginx_sites: [moved] });
  const r = await provision(project.dir, inv);
  t.is(assertConverged(t, r, HOST).changed, 1, r.stdout);
  t.regex(r.stdout, /ACME account e-mail admin@example\.org/);
  // The server itself has the new contact; the certificate was not re-issued for it.
  t.regex(await sshOk(t, hosts, HOST, showAccount), /Email contact: admin@example\.org/);
  t.is((await sshOk(t, hosts, HOST, 'ls /etc/letsencrypt/archive/shop/ | grep -c "^cert"')).trim(), '2');

  const again = await provision(project.dir, inv);
  t.is(assertConverged(t, again, HOST).changed, 0, again.stdout);
});
