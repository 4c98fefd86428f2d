/**
 * `verdandi demo` (`npm run demo`): the whole story on this machine in a few minutes.
 *   1. boot a local test host (Debian 12 in systemd-nspawn, at 10.231.N.2);
 *   2. write a demo project: an inventory giving the host nginx, supervisor, postgres and the sites role,
 *      and a git repository made from the bundled sample site (examples/sample-site);
 *   3. provision the host, deploy the sample site's `main` branch;
 *   4. print the site's URL and the next commands to try.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { knownHostsFile } from '../connection/index.js';
import { deploy } from '../deploy/deploy.js';
import type { SiteInput } from '../deploy/site.js';
import { up } from '../testhost/index.js';
import { terminalProgress } from '../testhost/progress.js';
import { packageRoot } from '../util/user-code.js';
import { provision } from './provision.js';

const run = promisify(execFile);

export interface DemoOptions {
  host: string;
  /** Project directory of the demo (created). */
  dir: string;
  verbose: boolean;
}

/** The sample site as the demo (and the e2e tests) describe it: python from Debian, PostgreSQL by peer auth. */
export function sampleSite(repo: string, address: string): SiteInput {
  return {
    name: 'sample',
    repo,
    branch: 'main',
    runtime: {
      type: 'python',
      python: 'system',
      virtualenv: true,
      systemSitePackages: true,
      requirements: 'requirements.txt',
      pipOptions: ['--no-index'],
    },
    packages: ['python3-uvicorn', 'python3-psycopg2'],
    checks: ['python -m py_compile app.py migrate.py worker.py'],
    migrate: { command: 'python migrate.py', check: 'python migrate.py --check' },
    // No password: the app user `sample` logs into its database over the local socket (peer auth).
    env: { vars: { DATABASE_URL: 'dbname=sample', GREETING: 'Hello from Verdandi' }, secrets: {} },
    process: {
      command: 'python -m uvicorn app:app --host 127.0.0.1 --port $PORT',
      port: 8000,
      stopTimeout: 20,
      workers: [{ name: 'stats', command: 'python worker.py' }],
    },
    nginx: { serverNames: [address, '_'], listen: 80, clientMaxBodySize: '10m' },
    health: { path: '/health', status: 200, timeout: 30 },
    keepReleases: 5,
  };
}

/** Makes a git repository of the sample site with one commit on `main`. */
export async function makeSampleRepo(dest: string): Promise<void> {
  await rm(dest, { recursive: true, force: true });
  await cp(join(packageRoot(), 'examples', 'sample-site'), dest, { recursive: true });
  const git = (...args: string[]) =>
    run('git', ['-c', 'user.name=Verdandi demo', '-c', 'user.email=demo@verdandi.invalid', ...args], {
      cwd: dest,
    });
  await git('init', '--quiet', '--initial-branch=main');
  // So the commits the demo suggests work on a machine without a git identity.
  await git('config', 'user.name', 'Verdandi demo');
  await git('config', 'user.email', 'demo@verdandi.invalid');
  await git('add', '-A');
  await git('commit', '--quiet', '-m', 'Sample site');
}

export function demoInventory(host: { name: string; address: string; key: string }, repo: string) {
  return {
    hosts: { [host.name]: { address: host.address, user: 'root', key: host.key } },
    groups: {
      web: {
        hosts: [host.name],
        roles: ['nginx', 'supervisor', 'postgres', 'sites'],
        vars: {
          postgres_users: [{ name: 'sample' }],
          postgres_databases: [{ name: 'sample', owner: 'sample' }],
          sites: [sampleSite(repo, host.address)],
        },
      },
    },
  };
}

export async function demo(o: DemoOptions): Promise<number> {
  const dir = resolve(o.dir);
  const say = (text: string) => process.stdout.write(`${text}\n`);
  say(`Verdandi demo: project in ${dir}`);
  const [host] = await up([o.host], { progress: await terminalProgress() });
  say(`test host ${host.name} is up at ${host.address}`);

  // The demo host is a fresh machine on each run: forget the key recorded for its address last time.
  await rm(knownHostsFile(dir), { force: true });
  const repo = join(dir, 'sample-site');
  await mkdir(join(dir, 'inventories'), { recursive: true });
  await makeSampleRepo(repo);
  const inventory = join(dir, 'inventories', 'demo.yml');
  await writeFile(
    inventory,
    `# Written by \`verdandi demo\`: one test host with nginx, supervisor, PostgreSQL and the sample site.\n${yaml.dump(demoInventory(host, repo), { lineWidth: -1 })}`,
  );

  say('\n== provision: nginx, supervisor, postgres, sites');
  const provisioned = await provision(inventory, { verbose: o.verbose, hostKeyChecking: 'accept-new' });
  if (provisioned !== 0) {
    say(`provision failed (exit ${provisioned}): see above`);
    return provisioned;
  }
  say('\n== deploy: sample site, branch main');
  const deployed = await deploy(inventory, { branch: 'main', verbose: o.verbose });
  if (deployed !== 0) {
    say(`deploy failed (exit ${deployed}): see above`);
    return deployed;
  }
  const inv = relative(process.cwd(), inventory) || inventory;
  say(`
The sample site answers at http://${host.address}/  (try: curl http://${host.address}/)

Next, try:
  node bin/verdandi.js status ${inv}
  cd ${relative(process.cwd(), repo) || repo} && echo '# change' >> app.py && git commit -qam change && cd -
  node bin/verdandi.js deploy ${inv} --branch main      # zero downtime: watch curl in a loop meanwhile
  node bin/verdandi.js rollback ${inv}
  node bin/verdandi.js deploy ${inv} --branch main --if-changed
  node bin/verdandi.js testhost down ${host.name}       # when done
`);
  return 0;
}
