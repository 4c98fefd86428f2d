/**
 * HTTPS certificates from an ACME server (Let's Encrypt), shared by the nginx and sites roles: the
 * `tls.acme` options and the tasks that obtain a certificate with Debian's certbot (HTTP-01, webroot
 * authenticator) and keep it renewed (Debian's `certbot.timer`). It lives beside the sites' schema,
 * which takes the same `acme` options.
 *
 * The order that lets a first provision work: nginx cannot start a TLS server without the certificate's
 * files, so until they exist the site's vhost is a plain-HTTP one that also serves the challenge
 * directory; certbot is run once it is live; then the role writes the TLS vhost and reloads. Renewals
 * reuse the same webroot (certbot records it), and certbot's deploy hook reloads nginx only when a
 * certificate was actually issued.
 */
import { z } from 'zod';
import type { Task } from '../engine/types.js';
import { apt } from '../tasks/apt.js';
import { shell } from '../tasks/command.js';
import { copy } from '../tasks/copy.js';
import { directory } from '../tasks/directory.js';
import { service } from '../tasks/service.js';
import { UserError } from '../util/errors.js';
import { quote } from '../util/shell.js';

/** Where certbot writes the challenge files and every ACME vhost serves `/.well-known/acme-challenge/`. */
export const ACME_WEBROOT = '/var/www/acme-challenge';
/** The plain-HTTP vhosts that serve a site until its first certificate exists (copied into place once). */
export const ACME_HTTP_DIR = '/etc/nginx/verdandi-acme';
export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';
export const LETS_ENCRYPT_STAGING_DIRECTORY = 'https://acme-staging-v02.api.letsencrypt.org/directory';
/** certbot.service reads REQUESTS_CA_BUNDLE from here, so the timer's renewals trust the same CA. */
export const CERTBOT_DROP_IN = '/etc/systemd/system/certbot.service.d/verdandi-acme.conf';
/** Run by certbot once per certificate it issued (first or renewed): the only reload a renewal causes. */
export const ACME_DEPLOY_HOOK = 'systemctl reload nginx';

const absolutePath = (what: string) =>
  z.string().regex(/^\/[^\s'"`$\\;]*$/, `${what} must be an absolute path without spaces or quotes`);

export const acmeSchema = z
  .object({
    /** The account's contact: expiry and problem notices from the ACME server. */
    email: z.email('acme.email must be an e-mail address'),
    /** The ACME server's directory URL (default: Let's Encrypt). */
    directory: z.url('acme.directory must be a URL (https://.../directory)').optional(),
    /** Let's Encrypt's staging server: untrusted certificates, generous rate limits. */
    staging: z.boolean().default(false),
    /** A CA bundle on the host that certbot trusts for the ACME server's own HTTPS (a private ACME server). */
    caBundle: absolutePath('acme.caBundle').optional(),
  })
  .refine((a) => !(a.staging && a.directory !== undefined), {
    message:
      "acme: give either directory (your ACME server) or staging: true (Let's Encrypt staging), not both",
  });

/**
 * A `tls` block gets its certificate one way: certificate and key (files on the host), or `acme`,
 * never both. A zod refinement for the blocks of the nginx and sites roles; `what` names the block.
 */
export function tlsSourceCheck(what: string) {
  return (t: { certificate?: string; key?: string; acme?: unknown }, ctx: z.RefinementCtx): void => {
    const paths = t.certificate !== undefined || t.key !== undefined;
    if (t.acme && paths)
      ctx.addIssue({
        code: 'custom',
        message: `${what} takes either certificate and key (files on the host) or acme (a certificate from an ACME server), not both`,
      });
    else if (!t.acme && (t.certificate === undefined || t.key === undefined))
      ctx.addIssue({
        code: 'custom',
        message: `${what} needs both certificate and key (files on the host), or acme: { email } (a certificate from an ACME server)`,
      });
  };
}

export type Acme = z.infer<typeof acmeSchema>;

/** The directory URL certbot talks to. */
export function acmeDirectory(a: Acme): string {
  return a.directory ?? (a.staging ? LETS_ENCRYPT_STAGING_DIRECTORY : LETS_ENCRYPT_DIRECTORY);
}

/** The files certbot keeps current for a certificate (links to the latest issued ones). */
export function acmeCertificatePaths(certName: string): { certificate: string; key: string } {
  const live = `/etc/letsencrypt/live/${certName}`;
  return { certificate: `${live}/fullchain.pem`, key: `${live}/privkey.pem` };
}

/**
 * Why a server name cannot be in a certificate, or null: HTTP-01 validates real host names only
 * (no catch-all `_`, no wildcard, no regular expression, no IP address).
 */
export function acmeNameProblem(name: string): string | null {
  if (name === '_' || name === '' || name === 'localhost') return `"${name}" is no public host name`;
  if (name.includes('*')) return `"${name}" is a wildcard (HTTP-01 cannot validate wildcards)`;
  if (name.startsWith('~')) return `"${name}" is a regular expression`;
  if (/^[0-9.]+$/.test(name) || name.includes(':')) return `"${name}" is an address`;
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/i.test(name))
    return `"${name}" is not a host name`;
  return null;
}

/**
 * What every host with ACME sites needs once: certbot, the challenge webroot, and the renewal timer
 * Debian ships (twice a day, renewing what expires within 30 days). `caBundle`: the CA certbot.service
 * trusts for the ACME server (a drop-in), or undefined to leave certbot.service as it is.
 */
export function acmeHostTasks(caBundle: string | undefined): Task[] {
  const tasks: Task[] = [
    apt({ packages: ['certbot', 'openssl'] }),
    directory({ path: ACME_WEBROOT, owner: 'root', group: 'root', mode: '0755' }),
  ];
  if (caBundle !== undefined) {
    tasks.push(
      directory({
        path: CERTBOT_DROP_IN.replace(/\/[^/]+$/, ''),
        owner: 'root',
        group: 'root',
        mode: '0755',
      }),
      copy({
        path: CERTBOT_DROP_IN,
        content: `# Managed by Verdandi: the ACME server's CA, for the renewals of certbot.timer.\n[Service]\nEnvironment=REQUESTS_CA_BUNDLE=${caBundle}\n`,
        owner: 'root',
        group: 'root',
        mode: '0644',
      }),
      // systemd reads a drop-in at its next daemon-reload: until then the timer's renewals would run
      // without it. The service task reloads when certbot.service has a drop-in systemd has not read.
      service({ unit: 'certbot.service' }),
    );
  }
  tasks.push(service({ unit: 'certbot.timer', state: 'started', enabled: true }));
  return tasks;
}

/**
 * The one CA bundle of a host's ACME sites, or undefined when none names one. certbot.service has one
 * environment, and REQUESTS_CA_BUNDLE replaces the system's CAs: two bundles, or a bundle for some
 * sites only (the others' renewals would no longer trust their server), are refused.
 */
export function acmeCaBundle(acmes: Acme[], where: string): string | undefined {
  const bundles = new Set(acmes.map((a) => a.caBundle));
  if (bundles.size > 1)
    throw new UserError(
      `${where}: the ACME sites name different caBundle files (${[...bundles].map((b) => b ?? 'none').join(', ')})`,
      1,
      "certbot's renewals run with one CA bundle, which replaces the system's CAs: give every ACME site of the host the same caBundle, or none",
    );
  return [...bundles][0];
}

/** Where the role notes, per ACME server, the e-mail it last gave that server's account. */
export const ACME_ACCOUNT_NOTES = '/etc/letsencrypt/verdandi-accounts';

/**
 * certbot registers its account with the e-mail of the first certificate request and never looks at it
 * again: a changed `acme.email` would leave expiry notices going to the old address. One task per ACME
 * server keeps the account's contact the configured one (`certbot update_account`), guarded by a note
 * of the e-mail last set, so an unchanged e-mail costs no call to the server. It runs after the
 * certificate requests (the account exists by then). Two e-mails for one server are refused: certbot
 * keeps one account per server on a host.
 */
export function acmeAccountTasks(acmes: Acme[], where: string): Task[] {
  const emailsByServer = new Map<string, Set<string>>();
  for (const a of acmes) {
    const server = acmeDirectory(a);
    const emails = emailsByServer.get(server) ?? new Set<string>();
    emails.add(a.email);
    emailsByServer.set(server, emails);
  }
  const tasks: Task[] = [];
  for (const [server, emails] of emailsByServer) {
    if (emails.size > 1)
      throw new UserError(
        `${where}: the ACME sites of ${server} name different e-mails (${[...emails].join(', ')})`,
        1,
        'certbot keeps one account per ACME server on a host: give every site of that server the same acme.email',
      );
    const [email] = emails;
    const note = `${ACME_ACCOUNT_NOTES}/${server.replace(/[^A-Za-z0-9.-]/g, '_')}`;
    const caBundle = acmes.find((a) => acmeDirectory(a) === server)?.caBundle;
    const update = ['certbot', 'update_account', '--non-interactive', '--no-eff-email'];
    tasks.push(
      shell({
        name: `ACME account e-mail ${email} at ${server}`,
        script: [
          'set -e',
          [...update, '--email', email, '--server', server].map(quote).join(' '),
          `mkdir -p ${quote(ACME_ACCOUNT_NOTES)}`,
          `printf '%s\\n' ${quote(email)} > ${quote(`${note}.tmp`)}`,
          `mv -f ${quote(`${note}.tmp`)} ${quote(note)}`,
        ].join('\n'),
        env: caBundle ? { REQUESTS_CA_BUNDLE: caBundle } : {},
        unless: `grep -qxF -- ${quote(email)} ${quote(note)}`,
      }),
    );
  }
  return tasks;
}

export interface CertificateRequest {
  /** certbot's name of the certificate: `/etc/letsencrypt/live/<certName>/`. */
  certName: string;
  domains: string[];
  acme: Acme;
  /** The vhost file nginx reads for the site, and the plain-HTTP one that stands in until a certificate exists. */
  siteFile: string;
  httpSiteFile: string;
}

/** The shell guard: true when the certificate exists for exactly these names, from this ACME server. */
export function certificateCurrentCheck(r: CertificateRequest): string {
  const { certificate } = acmeCertificatePaths(r.certName);
  const names = [...new Set(r.domains.map((d) => d.toLowerCase()))].sort();
  const renewal = `/etc/letsencrypt/renewal/${r.certName}.conf`;
  return [
    `test -e ${quote(certificate)}`,
    `grep -qxF ${quote(`server = ${acmeDirectory(r.acme)}`)} ${quote(renewal)}`,
    // The certificate's DNS names, one per line, sorted: openssl prints `DNS:a, DNS:b` under a header.
    `test "$(openssl x509 -in ${quote(certificate)} -noout -ext subjectAltName | sed 1d | tr ',' '\\n' | sed -n 's/^ *DNS://p' | LC_ALL=C sort | tr '\\n' ' ')" = ${quote(`${names.join(' ')} `)}`,
  ].join(' && ');
}

/**
 * The task that obtains the certificate when it is missing, or names or server changed: while no
 * certificate exists it first puts the plain-HTTP vhost in place and reloads nginx (so the challenge is
 * served), then runs certbot. Its failure (the ACME server's reason on stderr) fails the host; the site
 * keeps answering on plain HTTP, and the next provision tries again.
 */
export function obtainCertificateTask(r: CertificateRequest): Task {
  const { certificate } = acmeCertificatePaths(r.certName);
  const args = [
    'certbot',
    'certonly',
    '--non-interactive',
    '--agree-tos',
    '--no-eff-email',
    '--email',
    r.acme.email,
    '--server',
    acmeDirectory(r.acme),
    '--webroot',
    '--webroot-path',
    ACME_WEBROOT,
    '--cert-name',
    r.certName,
    ...r.domains.flatMap((d) => ['-d', d]),
    // The guard said the certificate is missing or no longer matches: issue one now, even if the old one
    // is far from expiry (certbot would otherwise keep it).
    '--force-renewal',
    '--deploy-hook',
    ACME_DEPLOY_HOOK,
  ];
  const tmp = `${ACME_HTTP_DIR}/.${r.certName}.installing`;
  const script = [
    'set -e',
    `if [ ! -e ${quote(certificate)} ]; then`,
    '  # No certificate yet: nginx cannot load the TLS server, so the site answers on plain HTTP and serves',
    '  # the challenge directory until certbot has one.',
    `  cp ${quote(r.httpSiteFile)} ${quote(tmp)}`,
    `  mv -f ${quote(tmp)} ${quote(r.siteFile)}`,
    '  systemctl reload-or-restart nginx',
    'fi',
    args.map(quote).join(' '),
  ].join('\n');
  return shell({
    name: `certificate ${r.certName} (${r.domains.join(', ')}) from ${acmeDirectory(r.acme)}`,
    script,
    env: r.acme.caBundle ? { REQUESTS_CA_BUNDLE: r.acme.caBundle } : {},
    unless: certificateCurrentCheck(r),
  });
}
