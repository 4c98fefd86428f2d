/**
 * twin: the files of the benchmark's work (../../work.ts) as a role: the app's file, nginx's site and
 * a link, and the handler restarting nginx when the site changes. `twin_message` is the one var the
 * one-change runs change: it only goes into the site, so one file changes and nginx restarts.
 */
import { defineRole, link, service, template, z } from 'verdandi';
import { APP_CONF, BENCH_PORT, BENCH_USER, DEFAULT_MESSAGE, LINK_PATH, NGINX_SITE } from '../../spec.js';

export default defineRole({
  name: 'twin',
  vars: z.object({ twin_message: z.string().default(DEFAULT_MESSAGE) }),
  tasks: (v, host) => [
    template({
      path: APP_CONF,
      src: new URL('../../templates/app.conf.hbs', import.meta.url),
      vars: { hostname: host.name, port: BENCH_PORT },
      owner: BENCH_USER,
      group: BENCH_USER,
      mode: '0640',
    }),
    template({
      path: NGINX_SITE,
      src: new URL('../../templates/nginx-site.conf.hbs', import.meta.url),
      vars: { hostname: host.name, port: BENCH_PORT, message: v.twin_message },
      owner: 'root',
      group: 'root',
      mode: '0644',
      notify: 'restart nginx',
    }),
    link({ path: LINK_PATH, target: APP_CONF }),
  ],
  handlers: {
    'restart nginx': () => service({ unit: 'nginx', state: 'restarted' }),
  },
});
