/**
 * web: nginx serving one TLS site (the certificate and key certbot made, copied from the controller),
 * an nftables firewall, a swap file, a weekly nginx reload and the team's own apt repository. The port
 * of ../../../ansible/roles/web, task for task (../../../README.md maps them), with no `shell` or
 * `command` task.
 */
import {
  absent,
  apt,
  aptRepository,
  copy,
  cron,
  defineRole,
  directory,
  firewall,
  link,
  service,
  swap,
  template,
  z,
} from 'verdandi';

/** A file of the project (the folder holding roles/), as the Ansible role takes it from playbook_dir. */
const projectFile = (path: string) => new URL(`../../${path}`, import.meta.url);

export default defineRole({
  name: 'web',
  vars: z.object({
    web_server_name: z.string().default('www.example.org'),
    web_repo_uri: z.string().default('https://apt.example.org/debian'),
    web_tools_package: z.string().default('site-tools'),
    web_swap_file: z.string().default('/swapfile'),
    web_swap_size: z.string().default('64M'),
    /** false in a container: the kernel refuses swapon there. */
    web_swap_activate: z.boolean().default(true),
  }),
  tasks: (vars) => [
    // An apt repository of the team's own tools, signed by its key; the lists are refreshed when it
    // changed, so the packages below can come from it in the same run.
    aptRepository({
      name: 'tools repository',
      repository: 'tools',
      uris: vars.web_repo_uri,
      suites: './',
      key: { src: projectFile('files/apt/tools.gpg') },
    }),
    // nftables for the firewall task (the Ansible role installs ufw for its ufw tasks).
    apt({ name: 'packages', packages: ['nginx', 'cron', 'nftables', vars.web_tools_package] }),

    // nginx with the TLS files certbot made on the controller.
    directory({ name: 'TLS directory', path: '/etc/nginx/tls', mode: '0750' }),
    copy({
      name: 'TLS certificate',
      path: '/etc/nginx/tls/site.crt',
      src: projectFile('files/tls/site.crt'),
      mode: '0644',
      notify: 'reload nginx',
    }),
    copy({
      name: 'TLS key',
      path: '/etc/nginx/tls/site.key',
      src: projectFile('files/tls/site.key'),
      mode: '0600',
      sensitive: true,
      notify: 'reload nginx',
    }),
    template({
      name: 'site configuration',
      path: '/etc/nginx/sites-available/site.conf',
      src: new URL('./templates/site.conf.hbs', import.meta.url),
      vars,
      mode: '0644',
      notify: 'reload nginx',
    }),
    link({
      name: 'site enabled',
      path: '/etc/nginx/sites-enabled/site.conf',
      target: '/etc/nginx/sites-available/site.conf',
      notify: 'reload nginx',
    }),
    absent({
      name: 'default site disabled',
      path: '/etc/nginx/sites-enabled/default',
      notify: 'reload nginx',
    }),
    service({ name: 'nginx running', unit: 'nginx', state: 'started', enabled: true }),

    // Firewall: SSH (allowed unless allowSsh: false), HTTP and HTTPS; everything else dropped.
    firewall({ name: 'firewall', allow: [{ port: [80, 443] }] }),

    // The file, its mode and swap signature, its fstab line, and swapon unless in a container.
    swap({
      name: 'swap',
      path: vars.web_swap_file,
      size: vars.web_swap_size,
      activate: vars.web_swap_activate,
    }),

    // nginx rereads the certificates certbot renews.
    cron({
      name: 'nginx reloaded weekly',
      job: 'web-reload',
      schedule: '15 4 * * 1',
      command: 'systemctl reload nginx',
    }),
  ],
  handlers: { 'reload nginx': () => service({ unit: 'nginx', state: 'reloaded' }) },
});
