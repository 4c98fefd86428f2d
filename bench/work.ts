/**
 * The benchmark's work, Verdandi side: the same desired state as `ansible/work.yml`, task for task.
 *
 *   apt packages present, a user, a directory, two files from templates, a symlink,
 *   three services started and enabled, and a handler restarting nginx when its site changes.
 *
 * `bench_message` is the one var the one-change scenario changes (`--var bench_message=...`): it only
 * goes into the nginx site, so one file changes and the handler restarts nginx.
 */
import { apt, definePlaybook, directory, link, service, template, user } from 'verdandi';
import {
  APP_CONF,
  BENCH_DIR,
  BENCH_HOME,
  BENCH_PACKAGES,
  BENCH_PORT,
  BENCH_SERVICES,
  BENCH_USER,
  DEFAULT_MESSAGE,
  LINK_PATH,
  NGINX_SITE,
} from './spec.js';

export default definePlaybook({
  plays: [
    {
      name: 'bench',
      hosts: 'all',
      tasks: (host) => {
        const message = String(host.vars.bench_message ?? DEFAULT_MESSAGE);
        return [
          apt({ packages: BENCH_PACKAGES, cacheValidTime: 3600 }),
          user({ user: BENCH_USER, shell: '/bin/bash', home: BENCH_HOME, createHome: true }),
          directory({ path: BENCH_DIR, owner: BENCH_USER, group: BENCH_USER, mode: '0755' }),
          template({
            path: APP_CONF,
            src: new URL('./templates/app.conf.hbs', import.meta.url),
            vars: { hostname: host.name, port: BENCH_PORT },
            owner: BENCH_USER,
            group: BENCH_USER,
            mode: '0640',
          }),
          template({
            path: NGINX_SITE,
            src: new URL('./templates/nginx-site.conf.hbs', import.meta.url),
            vars: { hostname: host.name, port: BENCH_PORT, message },
            owner: 'root',
            group: 'root',
            mode: '0644',
            notify: 'restart nginx',
          }),
          link({ path: LINK_PATH, target: APP_CONF }),
          ...BENCH_SERVICES.map((name) => service({ unit: name, state: 'started', enabled: true })),
        ];
      },
      handlers: {
        'restart nginx': () => service({ unit: 'nginx', state: 'restarted' }),
      },
    },
  ],
});
