/**
 * What the benchmark's work is made of, shared by the Verdandi playbook (work.ts), the raw-ssh check
 * and the driver. The Ansible play (ansible/work.yml) spells the same values out in YAML.
 */
export const BENCH_PACKAGES = ['cron', 'tree', 'less', 'nginx'];
export const BENCH_SERVICES = ['cron', 'ssh', 'nginx'];
export const BENCH_PORT = 8081;
export const BENCH_USER = 'benchuser';
export const BENCH_HOME = '/home/benchuser';
export const BENCH_DIR = '/srv/bench';
export const APP_CONF = '/srv/bench/app.conf';
export const NGINX_SITE = '/etc/nginx/conf.d/bench.conf';
export const LINK_PATH = '/srv/bench/current.conf';
/** The play's default message (the driver always passes one). */
export const DEFAULT_MESSAGE = 'hello';

/** Where the `copies` role writes its files (one role of many `copy` tasks: see roles/copies). */
export const COPIES_DIR = '/srv/bench-copies';
/** Where each simulated host of the `many-hosts` scenario keeps its own file (see sim-work.ts). */
export const SIM_DIR = '/srv/bench-sim';

/**
 * The built-in roles of the staging provision that can run here. Left out: pyenv (builds Python from
 * python.org sources, minutes per host, and python.org is not reachable) and sites (deploys an app
 * from its git repository). No Ansible counterpart: it would mean rewriting these roles in Ansible.
 */
export const STAGING_ROLES = ['nginx', 'supervisor', 'postgres', 'docker'];
